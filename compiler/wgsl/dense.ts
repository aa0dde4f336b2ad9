// Fully connected layer y[n, o] = b[o] + Σ_k w[o, k] · x[n, g·K + k], PyTorch [out, in/groups] weight,
// input flattened in CHW order (a [C, H, W] activation is already that, row-major).
//
// Two forms, by batch:
// - From TILED_MIN_BATCH examples up, a register-blocked GEMM: one invocation keeps TN examples × TR
//   consecutive output rows of sums, and for each k loads TN inputs and TR weights for TN·TR FMAs;
//   the example block comes from the workgroup id. Each output sums k ascending, alone: the order does
//   not depend on the tiles, on a weight split into row parts, or on the output rows a device holds.
//   Measured on lavapipe (fc6 of alexnet-fmnist, 4608 → 512): 56–59 ms against 154–180 ms for the
//   reduction form at batch 128, 8 against 17 ms at batch 16, 4 against 8 at batch 4; TN × TR = 16 × 8
//   in workgroups of 8 was the fastest of 10 tilings tried (vec4 loads did not help).
// - At batch 1, a matrix-vector product bound by reading the weight (fc6: 151 MB), where the two forms
//   measured alike (a 9216 → 2048 part: 40–46 ms against 45–49): one workgroup owns RPW
//   output rows; its 64 invocations stride along the rows together (adjacent lanes read adjacent
//   words), keep NB batch rows × RPW output rows of sums in registers so each weight word is loaded
//   once per NB examples and each input word once per RPW rows, and finish with a reduction in
//   workgroup memory. RPW > 1 cut the loads per FMA from 9/8 to 12/32 at batch 8; the summation order
//   of every output is that of RPW = 1 (same lanes, same terms, same reduction).
//
// A kernel computes rows [ROW_BASE, ROW_BASE + ROWS) and reads `w` as exactly those rows: the part of
// a weight that was split because it exceeds maxStorageBufferBindingSize.
import type { ActivationOp } from "../graph.ts";
import { epilogueFunction } from "./activation.ts";
import { type DropoutEpilogue, dropoutEpilogueLine, dropoutEpilogueWgsl } from "./backward/elementwise.ts";
import { type TrainKernelSource, declare, read, uniform, write } from "./backward/util.ts";
import { each, largestDividing } from "./conv-tiles.ts";
import {
  type KernelIdentity,
  WORKGROUP,
  consts,
  foldGrid,
  header,
  sections,
  shapeText,
  u32,
} from "./common.ts";

export interface DenseSpec {
  batch: number;
  /** Input features per example (C·H·W for a feature map). */
  inFeatures: number;
  outFeatures: number;
  groups: number;
  rowBase: number;
  rowCount: number;
  tensors: { x: string; w: string; b?: string; y: string };
  /** A fused activation epilogue (compiler/fuse.ts): y stores activation(sum). */
  activation?: ActivationOp;
  /** A fused dropout in training (compiler/fuse.ts): y stores the dropout of that. */
  dropout?: DropoutEpilogue;
}

/** Batch rows kept in registers: the largest of 8, 4, 2, 1 that divides the batch. */
function batchBlock(batch: number): number {
  return [8, 4, 2, 1].find((b) => batch % b === 0)!;
}

/** Output rows per workgroup: 4, 2 or 1, so that a workgroup's rows are in one group and one part. */
function rowBlock(spec: DenseSpec): number {
  const perGroup = spec.outFeatures / spec.groups;
  return [4, 2, 1].find((r) => perGroup % r === 0 && spec.rowBase % r === 0 && spec.rowCount % r === 0)!;
}

/** The batch from which the tiled GEMM form is used (measured: see the header). */
export const TILED_MIN_BATCH = 2;

export function denseKernel(id: KernelIdentity, spec: DenseSpec): TrainKernelSource {
  return spec.batch >= TILED_MIN_BATCH ? tiledDenseKernel(id, spec) : reductionDenseKernel(id, spec);
}

/** What both forms share: bindings, the op name, the header's first line and the epilogue code. */
function denseParts(spec: DenseSpec) {
  const { batch, inFeatures, outFeatures, groups, rowBase, rowCount, dropout } = spec;
  const hasBias = spec.tensors.b !== undefined;
  const bindings = [
    read("x", spec.tensors.x),
    read("w", spec.tensors.w),
    ...(hasBias ? [read("b", spec.tensors.b!)] : []),
    write("y", spec.tensors.y),
    ...(dropout ? [uniform(dropout.step)] : []),
  ];
  const split = rowCount !== outFeatures ? `, output rows [${rowBase}, ${rowBase + rowCount})` : "";
  const op = ["dense", ...(spec.activation ? [spec.activation] : []), ...(dropout ? ["dropout"] : [])].join(
    "+",
  );
  const summary = `x ${shapeText([batch, inFeatures])} -> y ${shapeText([batch, outFeatures])}${split}, groups ${groups}${hasBias ? ", bias" : ""}`;
  const epilogue = [
    ...(spec.activation ? [`fused epilogue: y = ${spec.activation}(dense)`] : []),
    ...(dropout ? [dropoutEpilogueLine(dropout)] : []),
  ];
  const code = [
    ...epilogueFunction(spec.activation),
    ...(dropout ? dropoutEpilogueWgsl(dropout, batch, outFeatures) : []),
  ];
  /** The WGSL statement storing `sum` (plus the bias unless it holds it) as row `o`, flat index `yi`. */
  const store = (sum: string, o: string, yi: string, addBias = true) => {
    const biased = hasBias && addBias ? `b[${o}] + ${sum}` : sum;
    const value = spec.activation ? `activation(${biased})` : biased;
    return `y[${yi}] = ${dropout ? `dropout_epilogue(${value}, ${yi})` : value};`;
  };
  /** The kernel from its header, shape constants and entry point. */
  const finish = (
    head: string,
    shape: string,
    main: string,
    workgroup: number,
    dispatch: [number, number, number],
  ): TrainKernelSource => ({
    op,
    wgsl: sections(head, shape, declare(bindings), ...code, main),
    entryPoint: "main",
    bindings,
    workgroupSize: [workgroup, 1, 1],
    dispatch,
    flops: 2 * batch * rowCount * (inFeatures / groups),
  });
  return { op, summary, epilogue, store, hasBias, finish };
}

function tiledDenseKernel(id: KernelIdentity, spec: DenseSpec): TrainKernelSource {
  const { batch, inFeatures, outFeatures, groups, rowBase, rowCount } = spec;
  const k = inFeatures / groups;
  const perGroup = outFeatures / groups;
  const tn = largestDividing([16, 8, 4, 2, 1], [batch]);
  const tr = largestDividing([8, 4, 2, 1], [perGroup, rowBase, rowCount]);
  const wg = 8;
  const dispatch: [number, number, number] = [Math.ceil(rowCount / (tr * wg)), batch / tn, 1];
  const { op, summary, epilogue, store, finish } = denseParts(spec);
  const head = header(id, op, [
    summary,
    `one invocation = ${tn} example(s) × ${tr} consecutive output row(s), each summed over k ascending; w holds rows [ROW_BASE, ROW_BASE + ROWS)`,
    ...epilogue,
  ]);
  const shape = consts({
    IN: u32(inFeatures),
    OUT: u32(outFeatures),
    K: u32(k),
    OUT_PER_GROUP: u32(perGroup),
    ROW_BASE: u32(rowBase),
    ROWS: u32(rowCount),
  });
  const acc = (n: number, r: number) => `acc${n}_${r}`;
  // With one group every lane reads the same input offset; saying so keeps the x loads lane-invariant.
  const xOff = groups === 1 ? "0u" : "((ROW_BASE + r0) / OUT_PER_GROUP) * K";
  const main = `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.y * ${tn}u;  // first example of the block
  let r0 = (wid.x * ${wg}u + lid) * ${tr}u;  // first row within w
  if (r0 >= ROWS) { return; }
  let x_off = ${xOff};  // the rows' group reads its slice of the input
${each(tn, (n) => each(tr, (r) => `  var ${acc(n, r)} = 0.0;`))}
  for (var k = 0u; k < K; k++) {
${each(tr, (r) => `    let w${r} = w[(r0 + ${r}u) * K + k];`)}
${each(tn, (n) => `    let x${n} = x[(n0 + ${n}u) * IN + x_off + k];`)}
${each(tn, (n) => each(tr, (r) => `    ${acc(n, r)} = fma(x${n}, w${r}, ${acc(n, r)});`))}
  }
  let o = ROW_BASE + r0;
${each(tn, (n) => each(tr, (r) => `  ${store(acc(n, r), `o + ${r}u`, `(n0 + ${n}u) * OUT + o + ${r}u`)}`))}
}
`;
  return finish(head, shape, main, wg, dispatch);
}

function reductionDenseKernel(id: KernelIdentity, spec: DenseSpec): TrainKernelSource {
  const { batch, inFeatures, outFeatures, groups, rowBase, rowCount } = spec;
  const k = inFeatures / groups;
  const nb = batchBlock(batch);
  const rpw = rowBlock(spec);
  const dispatch = foldGrid(rowCount / rpw);
  const { op, summary, epilogue, store, hasBias, finish } = denseParts(spec);
  const head = header(id, op, [
    summary,
    `one workgroup = ${rpw} output row(s) for all examples, ${nb} example(s) per pass; w holds rows [ROW_BASE, ROW_BASE + ROWS)`,
    ...epilogue,
  ]);
  const shape = consts({
    N: u32(batch),
    IN: u32(inFeatures),
    OUT: u32(outFeatures),
    K: u32(k),
    OUT_PER_GROUP: u32(outFeatures / groups),
    ROW_BASE: u32(rowBase),
    ROWS: u32(rowCount),
    NB: u32(nb),
    RPW: u32(rpw),
    WG: u32(WORKGROUP),
    GRID_X: u32(dispatch[0]),
  });
  const main = `var<workgroup> partial: array<f32, ${WORKGROUP * nb * rpw}>; // [RPW][NB][WG]

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = (wid.y * GRID_X + wid.x) * RPW;  // first row within w (workgroup-uniform: barriers are legal)
  if (r0 >= ROWS) { return; }
  let x_off = ((ROW_BASE + r0) / OUT_PER_GROUP) * K;  // the rows' group reads its slice of the input
  for (var n0 = 0u; n0 < N; n0 += NB) {
    // Zeroed explicitly: a bare var in a loop body is not re-zeroed per iteration on every driver
    // (seen on lavapipe), although WGSL says it should be.
    var acc: array<f32, ${nb * rpw}>;
    for (var j = 0u; j < NB * RPW; j++) { acc[j] = 0.0; }
    for (var k = lid; k < K; k += WG) {
      var xv: array<f32, NB>;
      for (var j = 0u; j < NB; j++) { xv[j] = x[(n0 + j) * IN + x_off + k]; }
      for (var q = 0u; q < RPW; q++) {
        let wv = w[(r0 + q) * K + k];
        for (var j = 0u; j < NB; j++) { acc[q * NB + j] = fma(wv, xv[j], acc[q * NB + j]); }
      }
    }
    for (var j = 0u; j < NB * RPW; j++) { partial[j * WG + lid] = acc[j]; }
    workgroupBarrier();
    // NB·RPW invocations each add up one (row, example)'s WG partial sums. A log-depth tree would need
    // a barrier per level, and barriers are what CPU implementations (lavapipe) pay for most.
    if (lid < NB * RPW) {
      let o = ROW_BASE + r0 + lid / NB;
      var sum = ${hasBias ? "b[o]" : "0.0"};
      for (var t = 0u; t < WG; t++) { sum += partial[lid * WG + t]; }
      let yi = (n0 + lid % NB) * OUT + o;
      ${store("sum", "o", "yi", false)}
    }
    workgroupBarrier();  // partial is reused by the next batch block
  }
}
`;
  return finish(head, shape, main, WORKGROUP, dispatch);
}
