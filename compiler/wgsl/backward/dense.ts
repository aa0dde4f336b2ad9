// Dense (fully connected) backward, PyTorch [out, in/groups] weights, input flattened in CHW order:
//   dx[n, g·K + k] = Σ_{o ∈ group g} dy[n, o] · w[o, k]
//   dW[o, k]       = Σ_n dy[n, o] · x[n, g(o)·K + k]
//   db[o]          = Σ_n dy[n, o]            (conv.ts channelSumKernel with INNER = 1)
// One invocation per dx / dW element, each sum in a fixed order (o ascending, n ascending): no atomics,
// bitwise reproducible.
//
// A weight split into row parts (fc6: 151 MB over a 128 MiB binding limit) gets one dx kernel per
// part: the first writes dx, the later ones add their rows' contribution in part order; and one dW
// kernel per part, writing that part of the gradient (whose rows live in the same-numbered part).
import { WORKGROUP, consts, header, sections, shapeText, u32 } from "../common.ts";
import { type KernelIdentity, type TrainKernelSource, declare, elementwise, read, write } from "./util.ts";

export interface DenseGradSpec {
  batch: number;
  inFeatures: number;
  outFeatures: number;
  groups: number;
  /** The weight part: rows [rowBase, rowBase + rowCount). */
  rowBase: number;
  rowCount: number;
}

function shapeConsts(spec: DenseGradSpec) {
  return {
    N: u32(spec.batch),
    IN: u32(spec.inFeatures),
    OUT: u32(spec.outFeatures),
    K: u32(spec.inFeatures / spec.groups),
    OUT_PER_GROUP: u32(spec.outFeatures / spec.groups),
    ROW_BASE: u32(spec.rowBase),
    ROWS: u32(spec.rowCount),
  };
}

function part(spec: DenseGradSpec): string {
  return spec.rowCount !== spec.outFeatures
    ? `, weight rows [${spec.rowBase}, ${spec.rowBase + spec.rowCount})`
    : "";
}

export function denseDataGradKernel(
  id: KernelIdentity,
  spec: DenseGradSpec & { accumulate: boolean; tensors: { dy: string; w: string; dx: string } },
): TrainKernelSource {
  const total = spec.batch * spec.inFeatures;
  const bindings = [read("dy", spec.tensors.dy), read("w", spec.tensors.w), write("dx", spec.tensors.dx)];
  const body = `  let f = i % IN;
  let n = i / IN;
  let g = f / K;
  let k = f - g * K;
  // rows of g's group that this part holds
  let o_lo = max(g * OUT_PER_GROUP, ROW_BASE);
  let o_hi = min((g + 1u) * OUT_PER_GROUP, ROW_BASE + ROWS);
  var acc = ${spec.accumulate ? "dx[i]" : "0.0"};
  for (var o = o_lo; o < o_hi; o++) {
    acc = fma(dy[n * OUT + o], w[(o - ROW_BASE) * K + k], acc);
  }
  dx[i] = acc;`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: "dense.dgrad",
    wgsl: sections(
      header(id, "dense dgrad", [
        `dy ${shapeText([spec.batch, spec.outFeatures])} -> dx ${shapeText([spec.batch, spec.inFeatures])}, groups ${spec.groups}${part(spec)}${spec.accumulate ? " (adds to dx)" : ""}`,
        "one invocation per dx element, sum over rows o ascending",
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * spec.batch * spec.rowCount * (spec.inFeatures / spec.groups),
  };
}

export function denseWeightGradKernel(
  id: KernelIdentity,
  spec: DenseGradSpec & { tensors: { x: string; dy: string; dw: string } },
): TrainKernelSource {
  const k = spec.inFeatures / spec.groups;
  const total = spec.rowCount * k;
  const bindings = [read("x", spec.tensors.x), read("dy", spec.tensors.dy), write("dw", spec.tensors.dw)];
  const body = `  let k = i % K;
  let o = ROW_BASE + i / K;
  let x_off = (o / OUT_PER_GROUP) * K + k;
  var acc = 0.0;
  for (var n = 0u; n < N; n++) { acc = fma(dy[n * OUT + o], x[n * IN + x_off], acc); }
  dw[i] = acc;`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: "dense.wgrad",
    wgsl: sections(
      header(id, "dense wgrad", [
        `x ${shapeText([spec.batch, spec.inFeatures])}, dy ${shapeText([spec.batch, spec.outFeatures])} -> dW${part(spec)}`,
        "one invocation per weight element, sum over the batch n ascending",
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * spec.batch * total,
  };
}
