// The shape of one convolution kernel's work, shared by the direct forward kernel (conv.ts), the
// Winograd one (winograd.ts) and the gradient kernels (backward/conv.ts, conv-blocked.ts): they differ
// in tiling and tensors, never in what the convolution is, so the geometry, its WGSL constants and the
// header line describing it are defined once here.
import type { Padding2D } from "../graph.ts";
import { i32, u32 } from "./common.ts";

export interface ConvGeometry {
  batch: number;
  /** [C_in, H, W] */
  input: readonly number[];
  /** [C_out, OH, OW] */
  output: readonly number[];
  kernel: readonly [number, number];
  stride: readonly [number, number];
  pad: Padding2D;
  groups: number;
  /** The output channels [outBase, outBase + outCount) this kernel computes: the rows its weight part holds. */
  outBase: number;
  outCount: number;
}

/**
 * The geometry as WGSL constants. Strides are u32 where kernels multiply output indices by them and
 * i32 where they enter signed window arithmetic; a kernel's own constants are spread after these.
 */
export function convGeometryConsts(
  spec: ConvGeometry,
  strideType: "u32" | "i32" = "u32",
): Record<string, string> {
  const [ci, h, w] = spec.input;
  const [co, oh, ow] = spec.output;
  const stride = strideType === "u32" ? u32 : i32;
  return {
    N: u32(spec.batch),
    CI: u32(ci),
    H: u32(h),
    W: u32(w),
    CO: u32(co),
    OH: u32(oh),
    OW: u32(ow),
    KH: u32(spec.kernel[0]),
    KW: u32(spec.kernel[1]),
    SH: stride(spec.stride[0]),
    SW: stride(spec.stride[1]),
    PAD_TOP: i32(spec.pad.top),
    PAD_LEFT: i32(spec.pad.left),
    CI_PER_GROUP: u32(ci / spec.groups),
    CO_PER_GROUP: u32(co / spec.groups),
    OC_BASE: u32(spec.outBase),
    OC_COUNT: u32(spec.outCount),
  };
}

/** The header line naming kernel, stride, padding and groups, plus what the caller appends. */
export function describeConv(spec: ConvGeometry, extra = ""): string {
  const { pad } = spec;
  return `kernel ${spec.kernel.join("x")}, stride ${spec.stride.join("x")}, pad top ${pad.top} bottom ${pad.bottom} left ${pad.left} right ${pad.right}, groups ${spec.groups}${extra}`;
}

/** ", output channels [a, b)" when the kernel computes part of them, else "". */
export function channelRangeText(spec: ConvGeometry, noun = "output channels"): string {
  return spec.outCount !== spec.output[0]
    ? `, ${noun} [${spec.outBase}, ${spec.outBase + spec.outCount})`
    : "";
}
