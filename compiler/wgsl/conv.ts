// Direct convolution, NCHW activations, PyTorch OIHW weights, optional fused bias: an implicit GEMM
// (M = output channels, N = batch·OH·OW, K = C_in/groups·KH·KW) with register blocking, never an
// im2col buffer.
//
// Work split (see conv-tiles.ts for why this shape suits lavapipe):
//  - a workgroup owns one block of OCB output channels (uniform, so every weight load is one scalar
//    load broadcast to all lanes) and WG lanes;
//  - a lane owns PX consecutive output pixels of one output row (n, oy, ox0 … ox0+PX−1) for those OCB
//    channels: OCB·PX accumulators in registers;
//  - per input channel c and filter row ky, the lane loads the (PX−1)·SW + KW input values its PX
//    windows cover once, and every tap (kx) of every pixel reads them from registers.
// Shapes are WGSL constants and the tap loops are unrolled at generation time, so padding checks are
// emitted only for the columns that can fall outside the image, and the row check only when padding or
// the last window can leave it. Out-of-image taps read index 0 and are replaced by 0.
//
// Summation order (fixed, so the bits are the same on every run): each output starts at its bias (or
// 0) and adds x·w by fma over c ascending, then ky ascending, then kx ascending.
//
// A kernel may compute only output channels [OC_BASE, OC_BASE + OC_COUNT): how a weight larger than
// maxStorageBufferBindingSize is split over several kernels (its part holds exactly those rows).
import type { ActivationOp } from "../graph.ts";
import { epilogueFunction } from "./activation.ts";
import { type DropoutEpilogue, dropoutEpilogueLine, dropoutEpilogueWgsl } from "./backward/elementwise.ts";
import { type TrainKernelSource, declare, read, uniform, write } from "./backward/util.ts";
import { type KernelIdentity, consts, foldGrid, header, sections, shapeText, u32 } from "./common.ts";
import { type ConvGeometry, channelRangeText, convGeometryConsts, describeConv } from "./conv-geometry.ts";
import { each, indent, lanes, largestDividing, pixelBlock } from "./conv-tiles.ts";

export interface ConvSpec extends ConvGeometry {
  tensors: { x: string; w: string; b?: string; y: string };
  /** Output channels per invocation; chosen automatically when absent (tests force 1). */
  channelsPerInvocation?: number;
  /** Consecutive output pixels per invocation; chosen automatically when absent. */
  pixelsPerInvocation?: number;
  /** Lanes per workgroup; chosen automatically when absent. */
  workgroupSize?: number;
  /** A fused activation epilogue (compiler/fuse.ts): y stores activation(acc). */
  activation?: ActivationOp;
  /** A fused dropout in training (compiler/fuse.ts): y stores the dropout of that. */
  dropout?: DropoutEpilogue;
}

/** Largest block of output channels that never straddles a group or the kernel's channel range. */
const MAX_ACC = 32;
function channelBlock(spec: ConvSpec, px: number): number {
  const perGroup = spec.output[0] / spec.groups;
  // Keep OCB·PX ≤ 32 accumulators (measured: more spills without gaining reuse on lavapipe).
  const cands = [8, 4, 2, 1].filter((b) => b * px <= MAX_ACC || b === 1);
  return largestDividing(cands, [perGroup, spec.outCount, spec.outBase]);
}

export function convKernel(id: KernelIdentity, spec: ConvSpec): TrainKernelSource {
  const [ci, h, w] = spec.input;
  const [co, oh, ow] = spec.output;
  const [kh, kw] = spec.kernel;
  const [sh, sw] = spec.stride;
  const { pad, groups, batch } = spec;
  const cig = ci / groups;
  const px = spec.pixelsPerInvocation ?? pixelBlock(ow, 16);
  const ocb = spec.channelsPerInvocation ?? channelBlock(spec, px);
  if (spec.outCount % ocb !== 0 || (co / groups) % ocb !== 0 || spec.outBase % ocb !== 0)
    throw new Error(`conv: bad channel block ${ocb}`);
  const bx = Math.ceil(ow / px); // pixel blocks per output row
  const q = batch * oh * bx; // lanes in all
  const wg = spec.workgroupSize ?? lanes(q);
  const qg = Math.ceil(q / wg); // workgroups per channel block
  const blocks = spec.outCount / ocb;
  const dispatch = foldGrid(qg * blocks);
  const hasBias = spec.tensors.b !== undefined;
  const seg = (px - 1) * sw + kw; // input values per (c, ky) row segment

  const { dropout } = spec;
  const bindings = [
    read("x", spec.tensors.x),
    read("w", spec.tensors.w),
    ...(hasBias ? [read("b", spec.tensors.b!)] : []),
    write("y", spec.tensors.y),
    ...(dropout ? [uniform(dropout.step)] : []),
  ];

  const op = ["conv", ...(spec.activation ? [spec.activation] : []), ...(dropout ? ["dropout"] : [])].join(
    "+",
  );
  const head = header(id, op, [
    `x ${shapeText([batch, ...spec.input])} -> y ${shapeText([batch, ...spec.output])}${channelRangeText(spec)}`,
    describeConv(spec, hasBias ? ", bias" : ""),
    `workgroup = ${ocb} output channel(s) x ${wg} lanes; lane = ${px} consecutive pixels of one output row; w holds rows [OC_BASE, OC_BASE + OC_COUNT)`,
    `each output: bias (or 0), then fma over c, ky, kx ascending (fixed order, deterministic)`,
    ...(spec.activation ? [`fused epilogue: y = ${spec.activation}(conv)`] : []),
    ...(dropout ? [dropoutEpilogueLine(dropout)] : []),
  ]);

  const shape = consts({
    ...convGeometryConsts(spec),
    OCB: u32(ocb),
    PX: u32(px),
    BX: u32(bx),
    LANES: u32(q),
    QG: u32(qg),
    WSTRIDE: u32(cig * kh * kw),
    GRID_X: u32(dispatch[0]),
  });

  // Column t of the segment is x[.., ix0 + t], ix0 = bx·PX·SW − PAD_LEFT: check it only where some bx
  // puts it outside [0, W).
  const colCheck = (t: number) => -pad.left + t < 0 || (bx - 1) * px * sw - pad.left + t >= w;
  const rowCheck = pad.top > 0 || (oh - 1) * sh - pad.top + kh - 1 >= h;
  const load = (t: number) => {
    const conds = [
      ...(rowCheck ? ["row_ok"] : []),
      ...(colCheck(t) ? [`ix0 + ${t}i >= 0 && ix0 + ${t}i < i32(W)`] : []),
    ];
    if (conds.length === 0) return `let x${t} = x[u32(row + ${t}i)];`;
    const ok = conds.join(" && ");
    return `let ok${t} = ${ok};\nlet x${t} = select(0.0, x[select(0u, u32(row + ${t}i), ok${t})], ok${t});`;
  };
  const taps = each(ocb, (j) =>
    each(
      kw,
      (kx) =>
        `let w${j}_${kx} = w[w_row + ${j * cig * kh * kw + kx}u];\n${each(px, (p) => `a${j}_${p} = fma(x${p * sw + kx}, w${j}_${kx}, a${j}_${p});`)}`,
    ),
  );
  const tail = ow % px; // pixels p ≥ tail of the last block of a row are past OW
  const store = each(ocb, (j) =>
    each(px, (p) => {
      const v = spec.activation ? `activation(a${j}_${p})` : `a${j}_${p}`;
      const at = `y_row + ${j * oh * ow + p}u`;
      const st = `y[${at}] = ${dropout ? `dropout_epilogue(${v}, ${at})` : v};`;
      return tail !== 0 && p >= tail ? `if (ox0 + ${p}u < OW) { ${st} }` : st;
    }),
  );
  const main = `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * GRID_X + wid.x;
  if (wg >= QG * (OC_COUNT / OCB)) { return; }
  let r0 = (wg / QG) * OCB;          // first row of this block within w (workgroup-uniform)
  let oc0 = OC_BASE + r0;            // its output channel
  let g = oc0 / CO_PER_GROUP;        // the block never straddles a group
  let lane = (wg % QG) * ${wg}u + lid;
  let qi = min(lane, LANES - 1u);    // lanes past the end compute a copy of the last and store nothing
  // qi = (n * OH + oy) * BX + bxi
  let bxi = qi % BX;
  let oy = (qi / BX) % OH;
  let n = qi / (BX * OH);
  let ox0 = bxi * PX;
  let iy0 = i32(oy * SH) - PAD_TOP;
  let ix0 = i32(ox0 * SW) - PAD_LEFT;
  let x_n = i32((n * CI + g * CI_PER_GROUP) * H * W) + ix0;
${indent(
  each(ocb, (j) => each(px, (p) => `var a${j}_${p} = ${hasBias ? `b[oc0 + ${j}u]` : "0.0"};`)),
  2,
)}
  for (var c = 0u; c < CI_PER_GROUP; c++) {
    for (var ky = 0u; ky < KH; ky++) {
      let iy = iy0 + i32(ky);${rowCheck ? "\n      let row_ok = iy >= 0 && iy < i32(H);" : ""}
      let row = x_n + i32(c * H * W) + iy * i32(W);
      let w_row = r0 * WSTRIDE + (c * KH + ky) * KW;
${indent(each(seg, load), 6)}
${indent(taps, 6)}
    }
  }
  if (lane >= LANES) { return; }
  let y_row = ((n * CO + oc0) * OH + oy) * OW + ox0;
${indent(store, 2)}
}
`;

  const cigk = cig * kh * kw;
  return {
    op,
    wgsl: sections(
      head,
      shape,
      declare(bindings),
      ...epilogueFunction(spec.activation),
      ...(dropout ? dropoutEpilogueWgsl(dropout, batch, co * oh * ow) : []),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [wg, 1, 1],
    dispatch,
    flops: 2 * batch * spec.outCount * oh * ow * cigk,
  };
}
