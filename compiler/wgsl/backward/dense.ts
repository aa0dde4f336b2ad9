// Dense (fully connected) backward, PyTorch [out, in/groups] weights, input flattened in CHW order:
//   dx[n, g·K + k] = Σ_{o ∈ group g} dy[n, o] · w[o, k]
//   dW[o, k]       = Σ_n dy[n, o] · x[n, g(o)·K + k]
//   db[o]          = Σ_n dy[n, o]            the dW GEMM's column of ones: with fusion, the wgrad
//                                            kernel's extra workgroup column (x ≡ 1); without,
//                                            conv.ts channelSumKernel with INNER = 1
// Register-blocked: an invocation keeps a block of dx (examples × features) or dW (rows × features) sums,
// its features adjacent across lanes so that each weight or input load is LANES adjacent words; the other
// operand's block comes from the workgroup id. Every sum runs in a fixed order (o ascending, n
// ascending) whatever the blocks: no atomics, bitwise reproducible. Measured on lavapipe (fc6 of
// alexnet-fmnist, batch 128, 4608 → 512): dgrad 40 ms and wgrad 45 ms, against 224 and 203 ms with one
// output per invocation (the sums, and so the bits, are the same). The folded db sums n ascending like
// channelSumKernel's serial form, so for batches ≤ util.ts SERIAL_REDUCTION_MAX fused and unfused plans
// give the same bits.
//
// A weight split into row parts (fc6: 151 MB over a 128 MiB binding limit) gets one dx kernel per
// part: the first writes dx, the later ones add their rows' contribution in part order; and one dW
// kernel per part, writing that part of the gradient (whose rows live in the same-numbered part).
import { consts, header, sections, shapeText, u32 } from "../common.ts";
import { each, largestDividing } from "../conv-tiles.ts";
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

/** Lanes per workgroup and features per lane (strided by the lanes, so a load is LANES adjacent words). */
const LANES = 16;
const FEATURES_PER_LANE = 8;
const FEATURE_BLOCK = LANES * FEATURES_PER_LANE;

/** The feature index of slot `q`: lanes take adjacent features, slots are LANES apart. */
const feature = (q: number) => `k0 + ${q * LANES}u`;
/** The same, clamped into [0, K) for loads: lanes past K load a real word and store nothing. */
const featureLoad = (q: number) => `min(${feature(q)}, K - 1u)`;

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
  // TN examples (from the workgroup id) × FEATURES_PER_LANE features per invocation: for each row o,
  // FEATURES_PER_LANE weight loads and TN dy loads feed TN·FEATURES_PER_LANE FMAs.
  const tn = largestDividing([16, 8, 4, 2, 1], [spec.batch]);
  const k = spec.inFeatures / spec.groups;
  const bound = [read("dy", spec.tensors.dy), read("w", spec.tensors.w), write("dx", spec.tensors.dx)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  const dispatch: [number, number, number] = [Math.ceil(k / FEATURE_BLOCK), spec.batch / tn, spec.groups];
  const acc = (n: number, q: number) => `acc${n}_${q}`;
  const dxIndex = (n: number, q: number, at: (q: number) => string) => `(n0 + ${n}u) * IN + g * K + ${at(q)}`;
  const main = `@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.y * ${tn}u;  // first example of the block
  let g = wid.z;  // the group: dx's features [g·K, (g + 1)·K)
  let k0 = wid.x * ${FEATURE_BLOCK}u + lid;
  // rows of g's group that this part holds
  let o_lo = max(g * OUT_PER_GROUP, ROW_BASE);
  let o_hi = min((g + 1u) * OUT_PER_GROUP, ROW_BASE + ROWS);
${each(tn, (n) => each(FEATURES_PER_LANE, (q) => `  var ${acc(n, q)} = ${spec.accumulate ? `dx[${dxIndex(n, q, featureLoad)}]` : "0.0"};`))}
  for (var o = o_lo; o < o_hi; o++) {
${each(FEATURES_PER_LANE, (q) => `    let w${q} = w[(o - ROW_BASE) * K + ${featureLoad(q)}];`)}
${each(tn, (n) => `    let dy${n} = dy[(n0 + ${n}u) * OUT + o];`)}
${each(tn, (n) => each(FEATURES_PER_LANE, (q) => `    ${acc(n, q)} = fma(dy${n}, w${q}, ${acc(n, q)});`))}
  }
${each(
  FEATURES_PER_LANE,
  (q) => `  if (${feature(q)} < K) {
${each(tn, (n) => `    ${storeGrad(spec.fold, "dx", dxIndex(n, q, feature), acc(n, q))}`)}
  }`,
)}
}
`;
  return {
    op: "dense.dgrad",
    wgsl: sections(
      header(id, "dense dgrad", [
        `dy ${shapeText([spec.batch, spec.outFeatures])} -> dx ${shapeText([spec.batch, spec.inFeatures])}, groups ${spec.groups}${part(spec)}${spec.accumulate ? " (adds to dx)" : ""}`,
        `one invocation = ${tn} example(s) × ${FEATURES_PER_LANE} features ${LANES} apart, each summed over rows o ascending`,
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [LANES, 1, 1],
    dispatch,
    flops: 2 * spec.batch * spec.rowCount * k,
  };
}

export function denseWeightGradKernel(
  id: KernelIdentity,
  spec: DenseGradSpec & { tensors: { x: string; dy: string; dw: string; db?: string } },
): TrainKernelSource {
  const k = spec.inFeatures / spec.groups;
  const { db } = spec.tensors;
  // TR rows (from the workgroup id, all in one group) × FEATURES_PER_LANE features per invocation: for
  // each example, FEATURES_PER_LANE input loads and TR dy loads feed TR·FEATURES_PER_LANE FMAs.
  const tr = largestDividing([16, 8, 4, 2, 1], [spec.rowCount, spec.rowBase, spec.outFeatures / spec.groups]);
  const bindings = [
    read("x", spec.tensors.x),
    read("dy", spec.tensors.dy),
    write("dw", spec.tensors.dw),
    ...(db ? [write("db", db)] : []),
  ];
  const columns = Math.ceil(k / FEATURE_BLOCK);
  const dispatch: [number, number, number] = [columns + (db ? 1 : 0), spec.rowCount / tr, 1];
  const acc = (r: number, q: number) => `acc${r}_${q}`;
  // The column of ones gets a workgroup column of its own (the last x), so no weight lane pays a
  // select for it: its lane 0 sums n ascending for the block's rows.
  const biasColumn = `
  if (wid.x == ${columns}u) {   // the bias column: db rows r0 … r0 + ${tr - 1} of this part
    if (lid != 0u) { return; }
${each(tr, (r) => `    var b${r} = 0.0;`)}
    for (var n = 0u; n < N; n++) {
${each(tr, (r) => `      b${r} += dy[n * OUT + o + ${r}u];`)}
    }
${each(tr, (r) => `    db[o + ${r}u] = b${r};`)}
    return;
  }`;
  const main = `@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = wid.y * ${tr}u;  // first row of the block, within this part
  let o = ROW_BASE + r0;${db ? biasColumn : ""}
  let x_off = (o / OUT_PER_GROUP) * K;  // the rows' group reads its slice of the input
  let k0 = wid.x * ${FEATURE_BLOCK}u + lid;
${each(tr, (r) => each(FEATURES_PER_LANE, (q) => `  var ${acc(r, q)} = 0.0;`))}
  for (var n = 0u; n < N; n++) {
${each(FEATURES_PER_LANE, (q) => `    let x${q} = x[n * IN + x_off + ${featureLoad(q)}];`)}
${each(tr, (r) => `    let dy${r} = dy[n * OUT + o + ${r}u];`)}
${each(tr, (r) => each(FEATURES_PER_LANE, (q) => `    ${acc(r, q)} = fma(dy${r}, x${q}, ${acc(r, q)});`))}
  }
${each(
  FEATURES_PER_LANE,
  (q) => `  if (${feature(q)} < K) {
${each(tr, (r) => `    dw[(r0 + ${r}u) * K + ${feature(q)}] = ${acc(r, q)};`)}
  }`,
)}
}
`;
  return {
    op: db ? "dense.wgrad+bias" : "dense.wgrad",
    wgsl: sections(
      header(id, db ? "dense wgrad + bias gradient" : "dense wgrad", [
        `x ${shapeText([spec.batch, spec.inFeatures])}, dy ${shapeText([spec.batch, spec.outFeatures])} -> dW${part(spec)}${db ? ", db" : ""}`,
        `one invocation = ${tr} weight row(s) × ${FEATURES_PER_LANE} features ${LANES} apart, each summed over the batch n ascending`,
        ...(db
          ? [
              `bias gradient folded in: db = Σ_n dy (the GEMM's column of ones), one extra workgroup per row block whose lane 0 sums n ascending (no separate bgrad kernel)`,
            ]
          : []),
      ]),
      consts(shapeConsts(spec)),
      declare(bindings),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [LANES, 1, 1],
    dispatch,
    flops: 2 * spec.batch * spec.rowCount * k + (db ? spec.batch * spec.rowCount : 0),
  };
}
