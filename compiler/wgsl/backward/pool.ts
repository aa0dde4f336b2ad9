// Max- and average-pooling backward, NCHW, gather form: one invocation per dx element visits every
// output window that covers it (oy, then ox ascending) and adds that window's share of dy. No two
// invocations write the same address, so no atomics, and the sum order is fixed.
//
// Windows are clipped to the image exactly as in the forward (../pool.ts): padding never takes part.
//  - max:  a window's gradient goes to its FIRST maximum in row-major scan order over the clipped
//          window (iy, then ix ascending; a later element wins only if strictly greater). The forward
//          stores the maximum value, which is the same whichever tied element is chosen, so this rule
//          is consistent with it; ties are routed to exactly one input, never split. The arg-max of
//          every window is found once by its own kernel (poolArgmaxKernel), so the gather reads one
//          index per covering window instead of rescanning each window for each of its inputs.
//  - avg:  each element of the window receives dy / (in-bounds count), the forward's divisor.
import type { Padding2D } from "../../graph.ts";
import { WORKGROUP, consts, header, i32, sections, shapeText, u32 } from "../common.ts";
import {
  type GradEpilogue,
  epilogueBindings,
  epilogueFunction,
  storeGrad,
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  elementwise,
  read,
  write,
} from "./util.ts";

interface PoolGeometry {
  batch: number;
  input: readonly number[];
  output: readonly number[];
  window: readonly [number, number];
  stride: readonly [number, number];
  pad: Padding2D;
}

export interface PoolGradSpec extends PoolGeometry {
  op: "maxpool" | "avgpool";
  /** argmax (from poolArgmaxKernel) is needed by max, not by avg. */
  tensors: { argmax?: string; dy: string; dx: string };
  fold?: GradEpilogue;
}

function geometryConsts(spec: PoolGeometry) {
  const [, h, w] = spec.input;
  const [, oh, ow] = spec.output;
  return {
    H: u32(h),
    W: u32(w),
    OH: u32(oh),
    OW: u32(ow),
    KH: i32(spec.window[0]),
    KW: i32(spec.window[1]),
    SH: i32(spec.stride[0]),
    SW: i32(spec.stride[1]),
    PAD_TOP: i32(spec.pad.top),
    PAD_LEFT: i32(spec.pad.left),
  };
}

const geometryText = ({ window: [kh, kw], stride: [sh, sw], pad }: PoolGeometry) =>
  `window ${kh}x${kw}, stride ${sh}x${sw}, pad top ${pad.top} bottom ${pad.bottom} left ${pad.left} right ${pad.right}; padding never takes part`;

/** Per output window of a max-pool: the input-plane index (iy·W + ix) of its first maximum. */
export function poolArgmaxKernel(
  id: KernelIdentity,
  spec: PoolGeometry & { tensors: { x: string; argmax: string } },
): TrainKernelSource {
  const [c] = spec.input;
  const [, oh, ow] = spec.output;
  const [kh, kw] = spec.window;
  const total = spec.batch * c * oh * ow;
  const bindings = [read("x", spec.tensors.x), write("argmax", spec.tensors.argmax, "u32")];
  const body = `  let ox = i32(i % OW);
  let oy = i32((i / OW) % OH);
  let nc = i / (OW * OH);                       // n * C + c
  let wy0 = oy * SH - PAD_TOP;
  let wx0 = ox * SW - PAD_LEFT;
  let y_lo = u32(max(wy0, 0i));
  let y_hi = u32(min(wy0 + KH, i32(H)));
  let x_lo = u32(max(wx0, 0i));
  let x_hi = u32(min(wx0 + KW, i32(W)));
  // the first maximum in row-major scan order (strict >, so the earliest tie wins)
  var best = x[(nc * H + y_lo) * W + x_lo];
  var arg = y_lo * W + x_lo;
  for (var wy = y_lo; wy < y_hi; wy++) {
    for (var wx = x_lo; wx < x_hi; wx++) {
      let v = x[(nc * H + wy) * W + wx];
      if (v > best) { best = v; arg = wy * W + wx; }
    }
  }
  argmax[i] = arg;`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: "maxpool.argmax",
    wgsl: sections(
      header(id, "maxpool arg-max per window (for the backward)", [
        `x ${shapeText([spec.batch, ...spec.input])} -> argmax ${shapeText([spec.batch, ...spec.output])} (u32, iy·W + ix)`,
        geometryText(spec),
        "tie rule: a window's gradient goes to its FIRST maximum in row-major window scan order",
      ]),
      consts(geometryConsts(spec)),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * kh * kw,
  };
}

export function poolGradKernel(id: KernelIdentity, spec: PoolGradSpec): TrainKernelSource {
  const { batch, op } = spec;
  const [c, h, w] = spec.input;
  const [kh, kw] = spec.window;
  const [sh, sw] = spec.stride;
  const total = batch * c * h * w;
  const isMax = op === "maxpool";
  if (isMax && !spec.tensors.argmax) throw new Error("maxpool backward needs the windows' arg-max");
  const bound = [
    ...(isMax ? [read("argmax", spec.tensors.argmax!, "u32")] : []),
    read("dy", spec.tensors.dy),
    write("dx", spec.tensors.dx),
  ];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  // Window (oy, ox) covers rows [oy·SH − PT, oy·SH − PT + KH): it covers iy iff
  // oy ∈ [ceil((iy + PT − KH + 1) / SH), floor((iy + PT) / SH)], clamped to [0, OH).
  const share = isMax
    ? `      let o = (nc * OH + u32(oy)) * OW + u32(ox);
      if (argmax[o] == me) { acc += dy[o]; }`
    : `      let wy0 = oy * SH - PAD_TOP;
      let wx0 = ox * SW - PAD_LEFT;
      let count = (min(wy0 + KH, i32(H)) - max(wy0, 0i)) * (min(wx0 + KW, i32(W)) - max(wx0, 0i));
      acc += dy[(nc * OH + u32(oy)) * OW + u32(ox)] / f32(count);`;
  const body = `  let ix = i32(i % W);
  let iy = i32((i / W) % H);
  let nc = i / (W * H);                         // n * C + c
  let me = u32(iy) * W + u32(ix);
  let oy_lo = max(0i, (iy + PAD_TOP - KH + SH) / SH);   // ceil((iy + PT − KH + 1) / SH); a negative numerator clamps to 0 either way
  let oy_hi = min(i32(OH) - 1i, (iy + PAD_TOP) / SH);
  let ox_lo = max(0i, (ix + PAD_LEFT - KW + SW) / SW);
  let ox_hi = min(i32(OW) - 1i, (ix + PAD_LEFT) / SW);
  var acc = 0.0;
  for (var oy = oy_lo; oy <= oy_hi; oy++) {
    for (var ox = ox_lo; ox <= ox_hi; ox++) {
${share}
    }
  }
  ${storeGrad(spec.fold, "dx", "i", "acc")}`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: `${op}.grad`,
    wgsl: sections(
      header(id, `${op} backward`, [
        `dy ${shapeText([batch, ...spec.output])} -> dx ${shapeText([batch, ...spec.input])}`,
        geometryText(spec),
        isMax
          ? "each window's gradient goes to its arg-max (first maximum in row-major order, see the argmax kernel)"
          : "each in-bounds element of a window gets dy / (in-bounds count), the forward's divisor",
      ]),
      consts(geometryConsts(spec)),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * Math.ceil(kh / sh) * Math.ceil(kw / sw) * 2,
  };
}
