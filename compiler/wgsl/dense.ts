// Fully connected layer y[n, o] = b[o] + Σ_k w[o, k] · x[n, g·K + k], PyTorch [out, in/groups] weight,
// input flattened in CHW order (a [C, H, W] activation is already that, row-major).
//
// A dense layer at small batch is a matrix-vector product bound by reading the weight (fc6: 151 MB).
// So one workgroup owns RPW output rows: its 64 invocations stride along the rows together (adjacent
// lanes read adjacent words), keep NB batch rows × RPW output rows of sums in registers so each weight
// word is loaded once per NB examples and each input word once per RPW rows, and finish with a
// reduction in workgroup memory. RPW > 1 cut the loads per FMA from 9/8 to 12/32 at batch 8; the
// summation order of every output is that of RPW = 1 (same lanes, same terms, same reduction).
//
// A kernel computes rows [ROW_BASE, ROW_BASE + ROWS) and reads `w` as exactly those rows: the part of
// a weight that was split because it exceeds maxStorageBufferBindingSize.
import type { ActivationOp } from "../graph.ts";
import { epilogueFunction } from "./activation.ts";
import { type DropoutEpilogue, dropoutEpilogueLine, dropoutEpilogueWgsl } from "./backward/elementwise.ts";
import { type TrainKernelSource, declare, read, uniform, write } from "./backward/util.ts";
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

export function denseKernel(id: KernelIdentity, spec: DenseSpec): TrainKernelSource {
  const { batch, inFeatures, outFeatures, groups, rowBase, rowCount } = spec;
  const k = inFeatures / groups;
  const nb = batchBlock(batch);
  const rpw = rowBlock(spec);
  const dispatch = foldGrid(rowCount / rpw);
  const hasBias = spec.tensors.b !== undefined;
  const { dropout } = spec;
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
  const head = header(id, op, [
    `x ${shapeText([batch, inFeatures])} -> y ${shapeText([batch, outFeatures])}${split}, groups ${groups}${hasBias ? ", bias" : ""}`,
    `one workgroup = ${rpw} output row(s) for all examples, ${nb} example(s) per pass; w holds rows [ROW_BASE, ROW_BASE + ROWS)`,
    ...(spec.activation ? [`fused epilogue: y = ${spec.activation}(dense)`] : []),
    ...(dropout ? [dropoutEpilogueLine(dropout)] : []),
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
  const value = spec.activation ? "activation(sum)" : "sum";
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
      y[yi] = ${dropout ? `dropout_epilogue(${value}, yi)` : value};
    }
    workgroupBarrier();  // partial is reused by the next batch block
  }
}
`;
  return {
    op,
    wgsl: sections(
      head,
      shape,
      declare(bindings),
      ...epilogueFunction(spec.activation),
      ...(dropout ? dropoutEpilogueWgsl(dropout, batch, outFeatures) : []),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * batch * rowCount * k,
  };
}
