// Max and average pooling, NCHW, one invocation per output element. Padding is per side and already
// includes the extra bottom/right row that `round: ceil` needs. Only in-bounds elements take part:
// a max never picks a padding zero, an average divides by the count of in-bounds elements (PyTorch's
// count_include_pad=False, cuDNN's EXCLUDE_PADDING).
//
// Fused (compiler/fuse.ts): an LRN prologue evaluates the LRN of x at each element a window reads
// (lrn.ts lrn_at), so the LRN's output is never stored. Overlapping windows (3×3, stride 2) evaluate
// an element up to 4 times, about 2.2× the LRN kernel's work, for one dispatch and one full-size
// tensor written and read back less. In training the kernel also stores each window's arg-max, the
// one thing the pool's backward reads, so the backward's arg-max kernel (which would need the
// unstored LRN output) is not needed either.
import type { Padding2D } from "../graph.ts";
import { type TrainKernelSource, declare, read, write } from "./backward/util.ts";
import {
  type KernelIdentity,
  WORKGROUP,
  consts,
  elementwiseMain,
  header,
  i32,
  sections,
  shapeText,
  u32,
} from "./common.ts";
import { LRN_AT_WGSL, type LrnSpec, lrnConsts, lrnFlops } from "./lrn.ts";

export interface PoolSpec {
  op: "maxpool" | "avgpool";
  batch: number;
  /** [C, H, W] */
  input: readonly number[];
  /** [C, OH, OW] */
  output: readonly number[];
  window: readonly [number, number];
  stride: readonly [number, number];
  pad: Padding2D;
  /** With `lrn`, x is the LRN's input; `argmax` (max only): each window's arg-max, for the backward. */
  tensors: { x: string; y: string; argmax?: string };
  /** A fused LRN prologue (compiler/fuse.ts): the window elements are lrn_at of x, never stored. */
  lrn?: { layer: string; attrs: LrnSpec["attrs"] };
}

export function poolKernel(id: KernelIdentity, spec: PoolSpec): TrainKernelSource {
  const { batch, pad, op, lrn } = spec;
  const [c, h, w] = spec.input;
  const [, oh, ow] = spec.output;
  const [kh, kw] = spec.window;
  const [sh, sw] = spec.stride;
  const total = batch * c * oh * ow;
  const isMax = op === "maxpool";
  const argmax = spec.tensors.argmax;
  if (argmax && !isMax) throw new Error("pool: only a max-pool has an arg-max");
  const bindings = [
    read("x", spec.tensors.x),
    write("y", spec.tensors.y),
    ...(argmax ? [write("argmax", argmax, "u32")] : []),
  ];
  const load = lrn ? "lrn_at(nc, iy * W + ix)" : "x[(nc * H + iy) * W + ix]";
  // The arg-max is backward/pool.ts poolArgmaxKernel's: the first maximum in row-major scan order
  // (strict >, the first element taken as is), so the backward routes each gradient identically.
  const track = argmax
    ? "\n      if (first || v > best) { best = v; arg = iy * W + ix; first = false; }"
    : "";
  const maxBody = `  var m = -0x1.fffffep+127f;           // lowest f32; every window holds ≥ 1 in-bounds element (checked)
${argmax ? "  var best = m;\n  var arg = 0u;\n  var first = true;\n" : ""}  for (var iy = y_lo; iy < y_hi; iy++) {
    for (var ix = x_lo; ix < x_hi; ix++) {
      let v = ${load};
      m = max(m, v);${track}
    }
  }
  y[i] = m;${argmax ? "\n  argmax[i] = arg;" : ""}`;
  const avgBody = `  var sum = 0.0;
  for (var iy = y_lo; iy < y_hi; iy++) {
    for (var ix = x_lo; ix < x_hi; ix++) { sum += ${load}; }
  }
  y[i] = sum / f32((y_hi - y_lo) * (x_hi - x_lo));`;
  const body = `  let ox = i % OW;
  let oy = (i / OW) % OH;
  let nc = i / (OW * OH);                 // n * C + c
  let iy0 = i32(oy * SH) - PAD_TOP;
  let ix0 = i32(ox * SW) - PAD_LEFT;
  let y_lo = u32(max(iy0, 0i));
  let y_hi = u32(min(iy0 + i32(KH), i32(H)));  // exclusive: the window clipped to the image
  let x_lo = u32(max(ix0, 0i));
  let x_hi = u32(min(ix0 + i32(KW), i32(W)));
${isMax ? maxBody : avgBody}`;
  const { code, dispatch } = elementwiseMain(total, body);
  const fusedOp = lrn ? `lrn+${op}` : op;
  return {
    op: fusedOp,
    wgsl: sections(
      header(id, fusedOp, [
        `x ${shapeText([batch, ...spec.input])} -> y ${shapeText([batch, ...spec.output])}`,
        `window ${kh}x${kw}, stride ${sh}x${sw}, pad top ${pad.top} bottom ${pad.bottom} left ${pad.left} right ${pad.right}; padding never takes part`,
        ...(lrn
          ? [
              `fused prologue: every window element is ${lrn.layer}'s LRN of x (lrn_at, as lrn.ts), never stored: size ${lrn.attrs.size}, k ${lrn.attrs.k}, alpha ${lrn.attrs.alpha} (${lrn.attrs.alphaOf}), beta ${lrn.attrs.beta}, ${lrn.attrs.groups} channel group(s)`,
            ]
          : []),
        ...(argmax
          ? [
              "also writes argmax (u32, iy·W + ix): each window's first maximum in row-major order, for the backward",
            ]
          : []),
      ]),
      consts({
        H: u32(h),
        W: u32(w),
        OH: u32(oh),
        OW: u32(ow),
        KH: u32(kh),
        KW: u32(kw),
        SH: u32(sh),
        SW: u32(sw),
        PAD_TOP: i32(pad.top),
        PAD_LEFT: i32(pad.left),
      }),
      ...(lrn ? [consts(lrnConsts(spec.input, lrn.attrs))] : []),
      declare(bindings),
      ...(lrn ? [LRN_AT_WGSL] : []),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * kh * kw * (lrn ? 1 + lrnFlops(lrn.attrs) : 1),
  };
}
