// Convolution backward, NCHW activations, PyTorch OIHW weights (grouped, strided, padded).
//
//  dgrad: dx[n, c, iy, ix] = Σ_{oc ∈ group(c)} Σ_{ky, kx : (iy + PT − ky) = oy·SH, (ix + PL − kx) = ox·SW}
//                              dy[n, oc, oy, ox] · w[oc, c − g·CIG, ky, kx]
//         the gather form: one invocation per dx element reads every dy that x fed, so no two
//         invocations write the same address (no atomics) and each sum has a fixed order
//         (oc, then ky, then kx ascending).
//  wgrad: dW[oc, c, ky, kx] = Σ_{n, oy, ox} dy[n, oc, oy, ox] · x[n, g·CIG + c, oy·SH − PT + ky, ox·SW − PL + kx]
//         a fixed-order sum per weight element (util.ts reduceMain): serial when N·OH·OW is short,
//         else a workgroup whose lanes stride over it and whose lane 0 adds the lane sums in order;
//  bgrad: db[oc] = Σ_{n, oy, ox} dy[n, oc, oy, ox] — with fusion, folded into the wgrad kernel as
//         the GEMM's column of ones (conv-blocked.ts: extra workgroups of the same dispatch); without,
//         channelSumKernel below, shared with dense and batch norm.
//
// A weight split into row parts (over maxStorageBufferBindingSize) gets one dgrad kernel per part:
// the first writes dx, each later one adds its output channels' contribution (kernels run in order,
// so the sum order is fixed); and one wgrad kernel per part, writing that part of the gradient.
import { WORKGROUP, consts, header, sections, shapeText, u32 } from "../common.ts";
import { type ConvGeometry, channelRangeText, convGeometryConsts, describeConv } from "../conv-geometry.ts";
import { blockedDataGradKernel, blockedWeightGradKernel } from "./conv-blocked.ts";
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
  reduceMain,
  write,
} from "./util.ts";

/** The gradient kernels' geometry: the weight part is output channels [outBase, outBase + outCount). */
export type ConvGradSpec = ConvGeometry;

function describe(spec: ConvGradSpec): string {
  return describeConv(spec, channelRangeText(spec, "weight rows"));
}

/** The one-dx-element-per-invocation gather kernel: kept for strided convolutions. */
function gatherDataGradKernel(
  id: KernelIdentity,
  spec: ConvGradSpec & {
    accumulate: boolean;
    fold?: GradEpilogue;
    tensors: { dy: string; w: string; dx: string };
  },
): TrainKernelSource {
  const [ci, h, w] = spec.input;
  const total = spec.batch * ci * h * w;
  const bound = [read("dy", spec.tensors.dy), read("w", spec.tensors.w), write("dx", spec.tensors.dx)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  // Output channels of c's group that this part holds: [max(g·COG, OC_BASE), min((g+1)·COG, OC_BASE+OC_COUNT)).
  const body = `  let ix = i32(i % W);
  let iy = i32((i / W) % H);
  let c = (i / (W * H)) % CI;
  let n = i / (W * H * CI);
  let g = c / CI_PER_GROUP;
  let c_in_group = c - g * CI_PER_GROUP;
  let oc_lo = max(g * CO_PER_GROUP, OC_BASE);
  let oc_hi = min((g + 1u) * CO_PER_GROUP, OC_BASE + OC_COUNT);
  var acc = ${spec.accumulate ? "dx[i]" : "0.0"};
  for (var oc = oc_lo; oc < oc_hi; oc++) {
    let dy_c = (n * CO + oc) * OH;
    let w_c = ((oc - OC_BASE) * CI_PER_GROUP + c_in_group) * KH;
    for (var ky = 0u; ky < KH; ky++) {
      let ty = iy + PAD_TOP - i32(ky);          // = oy·SH when this tap reads x[iy]
      if (ty < 0 || ty % SH != 0) { continue; }
      let oy = u32(ty / SH);
      if (oy >= OH) { continue; }
      for (var kx = 0u; kx < KW; kx++) {
        let tx = ix + PAD_LEFT - i32(kx);
        if (tx < 0 || tx % SW != 0) { continue; }
        let ox = u32(tx / SW);
        if (ox >= OW) { continue; }
        acc = fma(dy[(dy_c + oy) * OW + ox], w[(w_c + ky) * KW + kx], acc);
      }
    }
  }
  ${storeGrad(spec.fold, "dx", "i", "acc")}`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: "conv.dgrad",
    wgsl: sections(
      header(id, "conv dgrad", [
        `dy ${shapeText([spec.batch, ...spec.output])} -> dx ${shapeText([spec.batch, ...spec.input])}${spec.accumulate ? " (adds to dx)" : ""}`,
        describe(spec),
        "gather: one invocation per dx element, sums over oc, ky, kx ascending (deterministic, no atomics)",
      ]),
      consts(convGeometryConsts(spec, "i32")),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * total * (spec.outCount / spec.groups) * spec.kernel[0] * spec.kernel[1],
  };
}

/** The one-workgroup-per-weight-element kernel (unused: kept as the simple reference form). */
export function reduceWeightGradKernel(
  id: KernelIdentity,
  spec: ConvGradSpec & { tensors: { x: string; dy: string; dw: string } },
): TrainKernelSource {
  const [ci] = spec.input;
  const [, oh, ow] = spec.output;
  const [kh, kw] = spec.kernel;
  const cig = ci / spec.groups;
  const rows = spec.outCount * cig * kh * kw;
  const bindings = [read("x", spec.tensors.x), read("dy", spec.tensors.dy), write("dw", spec.tensors.dw)];
  const { code, dispatch, serial } = reduceMain({
    rows,
    count: 1,
    length: spec.batch * oh * ow,
    prologue: `  // r = ((oc_local * CI_PER_GROUP + c) * KH + ky) * KW + kx, oc_local within this part
  let kx = r % KW;
  let ky = (r / KW) % KH;
  let c = (r / (KW * KH)) % CI_PER_GROUP;
  let oc = OC_BASE + r / (KW * KH * CI_PER_GROUP);
  let x_c = (oc / CO_PER_GROUP) * CI_PER_GROUP + c;  // the input channel this weight reads`,
    accumulate: `    // k = (n * OH + oy) * OW + ox
    let ox = k % OW;
    let oy = (k / OW) % OH;
    let n = k / (OW * OH);
    let iy = i32(oy) * SH - PAD_TOP + i32(ky);
    let ix = i32(ox) * SW - PAD_LEFT + i32(kx);
    if (iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
      acc[0] = fma(dy[((n * CO + oc) * OH + oy) * OW + ox], x[((n * CI + x_c) * H + u32(iy)) * W + u32(ix)], acc[0]);
    }`,
    epilogue: "  dw[r] = sum[0];",
  });
  return {
    op: "conv.wgrad",
    wgsl: sections(
      header(id, "conv wgrad", [
        `x ${shapeText([spec.batch, ...spec.input])}, dy ${shapeText([spec.batch, ...spec.output])} -> dW rows [${spec.outBase}, ${spec.outBase + spec.outCount})`,
        describe(spec),
        serial
          ? `one invocation per weight element, its ${spec.batch * oh * ow} terms summed in (n, oy, ox) order`
          : `one workgroup per weight element; lanes split the ${spec.batch * oh * ow}-term reduction, lane 0 sums lanes in order`,
      ]),
      consts(convGeometryConsts(spec, "i32")),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * rows * spec.batch * oh * ow,
  };
}

/** dx for the output channels of one weight part; `accumulate` adds to dx instead of writing it. */
export function convDataGradKernel(
  id: KernelIdentity,
  spec: ConvGradSpec & {
    accumulate: boolean;
    fold?: GradEpilogue;
    tensors: { dy: string; w: string; dx: string };
  },
): TrainKernelSource {
  // Stride 1 (every dgrad AlexNet needs: conv1 reads the image and gets none) is a register-blocked
  // convolution of dy with the flipped filter; strided ones keep the gather kernel.
  if (spec.stride[0] === 1 && spec.stride[1] === 1) return blockedDataGradKernel(id, spec, describe(spec));
  return gatherDataGradKernel(id, spec);
}

/** dW for one weight part (rows [outBase, outBase + outCount)), and those rows of db when bound. */
export function convWeightGradKernel(
  id: KernelIdentity,
  spec: ConvGradSpec & { tensors: { x: string; dy: string; dw: string; db?: string } },
): TrainKernelSource {
  return blockedWeightGradKernel(id, spec, describe(spec));
}

/**
 * out[c] = Σ_{n, p} g[(n·C + c)·INNER + p] (and, with `second`, out2[c] = Σ g·(x − mean_c)·invstd_c):
 * the bias gradient of conv (INNER = OH·OW) and dense (INNER = 1) in unfused plans, and batch
 * norm's dβ / dγ.
 * A fixed-order sum per channel (util.ts reduceMain): deterministic.
 */
export function channelSumKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    /** [C, ...] per example. */
    shape: readonly number[];
    layer: string;
    op: string;
    tensors: { dy: string; out: string };
    /** Batch norm: also Σ dy·x̂, x̂ recomputed from x and the saved batch statistics. */
    normalised?: { x: string; mean: string; invstd: string; out: string };
  },
): TrainKernelSource {
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const nrm = spec.normalised;
  const bindings = [
    read("dy", spec.tensors.dy),
    ...(nrm ? [read("x", nrm.x), read("mean", nrm.mean), read("invstd", nrm.invstd)] : []),
    write("out", spec.tensors.out),
    ...(nrm ? [write("out2", nrm.out)] : []),
  ];
  const { code, dispatch } = reduceMain({
    rows: c,
    count: nrm ? 2 : 1,
    length: spec.batch * inner,
    prologue: nrm ? "  let m = mean[r];\n  let s = invstd[r];" : "",
    accumulate: `    let e = ((k / INNER) * C + r) * INNER + k % INNER;  // k = n * INNER + p
    acc[0] += dy[e];${nrm ? "\n    acc[1] = fma(dy[e], (x[e] - m) * s, acc[1]);" : ""}`,
    epilogue: `  out[r] = sum[0];${nrm ? "\n  out2[r] = sum[1];" : ""}`,
  });
  return {
    op: spec.op,
    wgsl: sections(
      header(id, spec.op, [
        `Σ over batch${inner > 1 ? " and positions" : ""} of dy ${shapeText([spec.batch, ...spec.shape])} per channel${nrm ? ", and of dy·x̂" : ""}`,
        "a fixed-order sum per channel (serial, or lanes then lane sums in lane order): deterministic",
      ]),
      consts({ N: u32(spec.batch), C: u32(c), INNER: u32(inner) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: spec.batch * c * inner * (nrm ? 4 : 1),
  };
}
