// Max and average pooling, NCHW, one invocation per output element. Padding is per side and already
// includes the extra bottom/right row that `round: ceil` needs. Only in-bounds elements take part:
// a max never picks a padding zero, an average divides by the count of in-bounds elements (PyTorch's
// count_include_pad=False, cuDNN's EXCLUDE_PADDING).
import type { Padding2D } from "../graph.ts";
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  consts,
  declareBindings,
  elementwiseMain,
  header,
  i32,
  sections,
  shapeText,
  u32,
} from "./common.ts";

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
  tensors: { x: string; y: string };
}

export function poolKernel(id: KernelIdentity, spec: PoolSpec): KernelSource {
  const { batch, pad, op } = spec;
  const [c, h, w] = spec.input;
  const [, oh, ow] = spec.output;
  const [kh, kw] = spec.window;
  const [sh, sw] = spec.stride;
  const total = batch * c * oh * ow;
  const isMax = op === "maxpool";
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const body = `  let ox = i % OW;
  let oy = (i / OW) % OH;
  let nc = i / (OW * OH);                 // n * C + c
  let iy0 = i32(oy * SH) - PAD_TOP;
  let ix0 = i32(ox * SW) - PAD_LEFT;
  let y_lo = u32(max(iy0, 0i));
  let y_hi = u32(min(iy0 + i32(KH), i32(H)));  // exclusive: the window clipped to the image
  let x_lo = u32(max(ix0, 0i));
  let x_hi = u32(min(ix0 + i32(KW), i32(W)));
${
  isMax
    ? `  var m = -0x1.fffffep+127f;           // lowest f32; every window holds ≥ 1 in-bounds element (checked)
  for (var iy = y_lo; iy < y_hi; iy++) {
    for (var ix = x_lo; ix < x_hi; ix++) { m = max(m, x[(nc * H + iy) * W + ix]); }
  }
  y[i] = m;`
    : `  var sum = 0.0;
  for (var iy = y_lo; iy < y_hi; iy++) {
    for (var ix = x_lo; ix < x_hi; ix++) { sum += x[(nc * H + iy) * W + ix]; }
  }
  y[i] = sum / f32((y_hi - y_lo) * (x_hi - x_lo));`
}`;
  const { code, dispatch } = elementwiseMain(total, body);
  return {
    op,
    wgsl: sections(
      header(id, op, [
        `x ${shapeText([batch, ...spec.input])} -> y ${shapeText([batch, ...spec.output])}`,
        `window ${kh}x${kw}, stride ${sh}x${sw}, pad top ${pad.top} bottom ${pad.bottom} left ${pad.left} right ${pad.right}; padding never takes part`,
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
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * kh * kw,
  };
}
