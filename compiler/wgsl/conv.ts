// Direct convolution, NCHW activations, PyTorch OIHW weights, optional fused bias.
//
// One invocation computes OCB adjacent output channels at one (n, oh, ow): every input value it loads
// is reused OCB times from registers, and the padded-window bounds checks are paid once per OCB
// outputs. Consecutive invocations walk ow, so within a workgroup the weight loads are uniform and
// the input loads are (strided) neighbours. This is the "unfused baseline": an implicit-GEMM tiling
// with workgroup memory replaces it later behind the same KernelSource seam.
//
// A kernel may compute only output channels [OC_BASE, OC_BASE + OC_COUNT): how a weight larger than
// maxStorageBufferBindingSize is split over several kernels (its part holds exactly those rows).
import type { Padding2D } from "../graph.ts";
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  consts,
  declareBindings,
  foldGrid,
  header,
  i32,
  sections,
  shapeText,
  u32,
} from "./common.ts";

export interface ConvSpec {
  batch: number;
  /** [C_in, H, W] */
  input: readonly number[];
  /** [C_out, OH, OW] */
  output: readonly number[];
  kernel: readonly [number, number];
  stride: readonly [number, number];
  pad: Padding2D;
  groups: number;
  /** First output channel this kernel computes, and how many (all by default). */
  outBase: number;
  outCount: number;
  tensors: { x: string; w: string; b?: string; y: string };
  /** Output channels per invocation; chosen automatically when absent (tests force 1). */
  channelsPerInvocation?: number;
}

/** Largest block of output channels that never straddles a group or the kernel's channel range. */
function channelBlock(spec: ConvSpec): number {
  const perGroup = spec.output[0] / spec.groups;
  for (const b of [4, 2, 1]) {
    if (perGroup % b === 0 && spec.outCount % b === 0 && spec.outBase % b === 0) return b;
  }
  return 1;
}

export function convKernel(id: KernelIdentity, spec: ConvSpec): KernelSource {
  const [ci, h, w] = spec.input;
  const [co, oh, ow] = spec.output;
  const [kh, kw] = spec.kernel;
  const [sh, sw] = spec.stride;
  const { pad, groups, batch } = spec;
  const cig = ci / groups;
  const ocb = spec.channelsPerInvocation ?? channelBlock(spec);
  if (spec.outCount % ocb !== 0 || (co / groups) % ocb !== 0)
    throw new Error(`conv: bad channel block ${ocb}`);
  const invocations = batch * (spec.outCount / ocb) * oh * ow;
  const dispatch = foldGrid(Math.ceil(invocations / WORKGROUP));
  const hasBias = spec.tensors.b !== undefined;

  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "w", tensor: spec.tensors.w, access: "read" as const },
    ...(hasBias ? [{ name: "b", tensor: spec.tensors.b!, access: "read" as const }] : []),
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];

  const split =
    spec.outCount !== co ? `, output channels [${spec.outBase}, ${spec.outBase + spec.outCount})` : "";
  const head = header(id, "conv", [
    `x ${shapeText([batch, ...spec.input])} -> y ${shapeText([batch, ...spec.output])}${split}`,
    `kernel ${kh}x${kw}, stride ${sh}x${sw}, pad top ${pad.top} bottom ${pad.bottom} left ${pad.left} right ${pad.right}, groups ${groups}${hasBias ? ", bias" : ""}`,
    `one invocation = ${ocb} output channel(s) at one (n, oh, ow); w holds rows [OC_BASE, OC_BASE + OC_COUNT)`,
  ]);

  const shape = consts({
    N: u32(batch),
    CI: u32(ci),
    H: u32(h),
    W: u32(w),
    CO: u32(co),
    OH: u32(oh),
    OW: u32(ow),
    KH: u32(kh),
    KW: u32(kw),
    SH: u32(sh),
    SW: u32(sw),
    PAD_TOP: i32(pad.top),
    PAD_LEFT: i32(pad.left),
    CI_PER_GROUP: u32(cig),
    CO_PER_GROUP: u32(co / groups),
    OC_BASE: u32(spec.outBase),
    OC_COUNT: u32(spec.outCount),
    OCB: u32(ocb),
    INVOCATIONS: u32(invocations),
    GRID_X: u32(dispatch[0]),
  });

  const main = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * GRID_X + wid.x) * ${WORKGROUP}u + lid;
  if (i >= INVOCATIONS) { return; }
  // i = ((n * OC_COUNT/OCB + block) * OH + oh) * OW + ow
  let ox = i % OW;
  let oy = (i / OW) % OH;
  let block = (i / (OW * OH)) % (OC_COUNT / OCB);
  let n = i / (OW * OH * (OC_COUNT / OCB));
  let r0 = block * OCB;              // first row of this block within w
  let oc0 = OC_BASE + r0;            // its output channel
  let g = oc0 / CO_PER_GROUP;        // the block never straddles a group

  var acc: array<f32, OCB>;
  for (var j = 0u; j < OCB; j++) { acc[j] = ${hasBias ? "b[oc0 + j]" : "0.0"}; }

  let iy0 = i32(oy * SH) - PAD_TOP;
  let ix0 = i32(ox * SW) - PAD_LEFT;
  let x_n = (n * CI + g * CI_PER_GROUP) * H * W;
  let w_stride = CI_PER_GROUP * KH * KW;   // one output channel's filter
  for (var c = 0u; c < CI_PER_GROUP; c++) {
    for (var ky = 0u; ky < KH; ky++) {
      let iy = iy0 + i32(ky);
      if (iy < 0 || iy >= i32(H)) { continue; }
      let x_row = x_n + (c * H + u32(iy)) * W;
      let w_row = r0 * w_stride + (c * KH + ky) * KW;
      for (var kx = 0u; kx < KW; kx++) {
        let ix = ix0 + i32(kx);
        if (ix < 0 || ix >= i32(W)) { continue; }
        let v = x[x_row + u32(ix)];
        for (var j = 0u; j < OCB; j++) { acc[j] = fma(v, w[w_row + j * w_stride + kx], acc[j]); }
      }
    }
  }
  for (var j = 0u; j < OCB; j++) {
    y[((n * CO + oc0 + j) * OH + oy) * OW + ox] = acc[j];
  }
}
`;

  const cigk = cig * kh * kw;
  return {
    op: "conv",
    wgsl: sections(head, shape, declareBindings(bindings), main),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * batch * spec.outCount * oh * ow * cigk,
  };
}
