// Dense (fully connected) backward, PyTorch [out, in/groups] weights, input flattened in CHW order:
//   dx[n, g·K + k] = Σ_{o ∈ group g} dy[n, o] · w[o, k]
//   dW[o, k]       = Σ_n dy[n, o] · x[n, g(o)·K + k]
//   db[o]          = Σ_n dy[n, o]            the dW GEMM's column of ones: with fusion, the wgrad
//                                            kernel's extra workgroup column (x ≡ 1); without,
//                                            conv.ts channelSumKernel with INNER = 1
// One invocation per dx / dW element, each sum in a fixed order (o ascending, n ascending): no atomics,
// bitwise reproducible. The folded db sums n ascending like channelSumKernel's serial form, so for
// batches ≤ util.ts SERIAL_REDUCTION_MAX fused and unfused plans give the same bits.
//
// A weight split into row parts (fc6: 151 MB over a 128 MiB binding limit) gets one dx kernel per
// part: the first writes dx, the later ones add their rows' contribution in part order; and one dW
// kernel per part, writing that part of the gradient (whose rows live in the same-numbered part).
import { WORKGROUP, consts, header, sections, shapeText, u32 } from "../common.ts";
import { each } from "../conv-tiles.ts";
import {
  type GradEpilogue,
  epilogueBindings,
  epilogueFunction,
  storeGrad,
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  read,
  write,
} from "./util.ts";

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

/** Examples per dgrad invocation: the largest of 8, 4, 2, 1 that divides the batch. */
const block = (batch: number) => [8, 4, 2, 1].find((b) => batch % b === 0)!;

/**
 * A 2-D grid: x covers `lanes` (the index named `lane`, one per invocation) plus `extraX` workgroup
 * columns that `prelude` handles and returns from, y counts blocks whose index the caller derives
 * from wid.y in `blockLet`. The body goes where `BODY` is substituted.
 */
function grid(lanes: number, blocks: number, lane: string, blockLet: string, extraX = 0) {
  const dispatch: [number, number, number] = [Math.ceil(lanes / WORKGROUP) + extraX, blocks, 1];
  return {
    dispatch,
    code: (body: string, prelude = "") => `${consts({ LANES: u32(lanes) })}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${blockLet}${prelude}
  let ${lane} = wid.x * ${WORKGROUP}u + lid;
  if (${lane} >= LANES) { return; }
${body}
}
`,
  };
}

function part(spec: DenseGradSpec): string {
  return spec.rowCount !== spec.outFeatures
    ? `, weight rows [${spec.rowBase}, ${spec.rowBase + spec.rowCount})`
    : "";
}

export function denseDataGradKernel(
  id: KernelIdentity,
  spec: DenseGradSpec & {
    accumulate: boolean;
    fold?: GradEpilogue;
    tensors: { dy: string; w: string; dx: string };
  },
): TrainKernelSource {
  // NB examples per invocation share each weight load; lanes are consecutive features k.
  const nb = block(spec.batch);
  const bound = [read("dy", spec.tensors.dy), read("w", spec.tensors.w), write("dx", spec.tensors.dx)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  // The example block comes from the workgroup id alone, so lavapipe sees the dy loads as uniform
  // (one scalar load and a broadcast) rather than a per-lane gather.
  const { code, dispatch } = grid(spec.inFeatures, spec.batch / nb, "f", `let n0 = wid.y * ${nb}u;`);
  const body = `
  let g = f / K;
  let k = f - g * K;
  // rows of g's group that this part holds
  let o_lo = max(g * OUT_PER_GROUP, ROW_BASE);
  let o_hi = min((g + 1u) * OUT_PER_GROUP, ROW_BASE + ROWS);
${each(nb, (j) => `  var acc${j} = ${spec.accumulate ? `dx[(n0 + ${j}u) * IN + f]` : "0.0"};`)}
  for (var o = o_lo; o < o_hi; o++) {
    let wv = w[(o - ROW_BASE) * K + k];
${each(nb, (j) => `    acc${j} = fma(dy[(n0 + ${j}u) * OUT + o], wv, acc${j});`)}
  }
${each(nb, (j) => `  ${storeGrad(spec.fold, "dx", `(n0 + ${j}u) * IN + f`, `acc${j}`)}`)}`;
  return {
    op: "dense.dgrad",
    wgsl: sections(
      header(id, "dense dgrad", [
        `dy ${shapeText([spec.batch, spec.outFeatures])} -> dx ${shapeText([spec.batch, spec.inFeatures])}, groups ${spec.groups}${part(spec)}${spec.accumulate ? " (adds to dx)" : ""}`,
        `one invocation per ${nb} dx element(s) (examples n0 … n0 + ${nb - 1} of a feature), sum over rows o ascending`,
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      code(body),
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
  spec: DenseGradSpec & { tensors: { x: string; dy: string; dw: string; db?: string } },
): TrainKernelSource {
  const k = spec.inFeatures / spec.groups;
  const { db } = spec.tensors;
  // R rows per invocation share each input load; the rows of a block stay in one group.
  const r = [8, 4, 2, 1].find(
    (b) => spec.rowCount % b === 0 && spec.rowBase % b === 0 && (spec.outFeatures / spec.groups) % b === 0,
  )!;
  const bindings = [
    read("x", spec.tensors.x),
    read("dy", spec.tensors.dy),
    write("dw", spec.tensors.dw),
    ...(db ? [write("db", db)] : []),
  ];
  // The row block comes from the workgroup id alone: uniform dy loads, as in the dgrad.
  const { code, dispatch } = grid(
    k,
    spec.rowCount / r,
    "k",
    `let r0 = wid.y * ${r}u;   // first row of the block, within this part`,
    db ? 1 : 0,
  );
  // The column of ones gets a workgroup column of its own (the last x), so no weight lane pays a
  // select for it: its lane 0 is a weight lane with x ≡ 1, summing n ascending.
  const biasColumn = `
  if (wid.x == ${dispatch[0] - 1}u) {   // the bias column: db rows r0 … r0 + ${r - 1} of this part
    if (lid != 0u) { return; }
    let o = ROW_BASE + r0;
${each(r, (j) => `    var b${j} = 0.0;`)}
    for (var n = 0u; n < N; n++) {
${each(r, (j) => `      b${j} += dy[n * OUT + o + ${j}u];`)}
    }
${each(r, (j) => `    db[o + ${j}u] = b${j};`)}
    return;
  }`;
  const body = `
  let o = ROW_BASE + r0;
  let x_off = (o / OUT_PER_GROUP) * K + k;
${each(r, (j) => `  var acc${j} = 0.0;`)}
  for (var n = 0u; n < N; n++) {
    let xv = x[n * IN + x_off];
${each(r, (j) => `    acc${j} = fma(dy[n * OUT + o + ${j}u], xv, acc${j});`)}
  }
${each(r, (j) => `  dw[(r0 + ${j}u) * K + k] = acc${j};`)}`;
  return {
    op: db ? "dense.wgrad+bias" : "dense.wgrad",
    wgsl: sections(
      header(id, db ? "dense wgrad + bias gradient" : "dense wgrad", [
        `x ${shapeText([spec.batch, spec.inFeatures])}, dy ${shapeText([spec.batch, spec.outFeatures])} -> dW${part(spec)}${db ? ", db" : ""}`,
        `one invocation per ${r} weight element(s) (rows r0 … r0 + ${r - 1} of a column), sum over the batch n ascending`,
        ...(db
          ? [
              `bias gradient folded in: db = Σ_n dy (the GEMM's column of ones), one extra workgroup per row block whose lane 0 sums n ascending (no separate bgrad kernel)`,
            ]
          : []),
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      code(body, db ? biasColumn : ""),
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * spec.batch * spec.rowCount * k + (db ? spec.batch * spec.rowCount : 0),
  };
}
