// Local response normalisation across channels, NCHW, one invocation per output element:
//   y_c = x_c / (k + α' Σ_{j = max(lo, c − ⌊n/2⌋)}^{min(hi, c + ⌊n/2⌋)} x_j²)^β
// where [lo, hi] is the channel range of c's group (the layer's tower) and α' is α for the paper's
// `alphaOf: "sum"` or α/n for Caffe/ONNX/PyTorch's `"mean"` — resolved here, baked in as a const.
// The window is at most n wide (5 in AlexNet), so recomputing it per output beats a sliding sum
// that would serialise over channels.
import type { LrnAttrs } from "../graph.ts";
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  consts,
  declareBindings,
  elementwiseMain,
  f32,
  header,
  sections,
  shapeText,
  u32,
} from "./common.ts";

export interface LrnSpec {
  batch: number;
  /** [C, H, W] (or [C] for a vector). */
  shape: readonly number[];
  attrs: Pick<LrnAttrs, "size" | "k" | "alpha" | "beta" | "alphaOf" | "groups">;
  tensors: { x: string; y: string };
}

/** The LRN constants of lrn_at for input shape [C, ...] (α' resolved, see the file comment). */
export function lrnConsts(shape: readonly number[], attrs: LrnSpec["attrs"]): Record<string, string> {
  const [c, ...rest] = shape;
  return {
    C: u32(c),
    INNER: u32(rest.reduce((a, b) => a * b, 1)),
    C_PER_GROUP: u32(c / attrs.groups),
    HALF: `${Math.floor(attrs.size / 2)}i`,
    LRN_K: f32(attrs.k),
    ALPHA: f32(resolvedAlpha(attrs)),
    BETA: f32(attrs.beta),
  };
}

const resolvedAlpha = (attrs: LrnSpec["attrs"]) =>
  attrs.alphaOf === "mean" ? attrs.alpha / attrs.size : attrs.alpha;

/**
 * `lrn_at(nc, p)`: the LRN of x at plane nc = n·C + c, element p of the plane, reading the storage
 * binding `x`. Both lrnKernel and a max-pool with a fused LRN (pool.ts) call it, so the two compute
 * the same bits.
 */
export const LRN_AT_WGSL = `fn lrn_at(nc: u32, p: u32) -> f32 {
  let ch = nc % C;
  let n = nc / C;
  let g0 = (ch / C_PER_GROUP) * C_PER_GROUP;           // first channel of ch's group
  let lo = max(i32(ch) - HALF, i32(g0));
  let hi = min(i32(ch) + HALF, i32(g0 + C_PER_GROUP) - 1);
  var sum = 0.0;
  for (var j = lo; j <= hi; j++) {
    let a = x[(n * C + u32(j)) * INNER + p];
    sum = fma(a, a, sum);
  }
  return x[nc * INNER + p] / pow(LRN_K + ALPHA * sum, BETA);
}`;

/** FLOPs of one lrn_at. */
export const lrnFlops = (attrs: LrnSpec["attrs"]) => 2 * (2 * Math.floor(attrs.size / 2) + 1) + 4;

export function lrnKernel(id: KernelIdentity, spec: LrnSpec): KernelSource {
  const { batch, attrs } = spec;
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = batch * c * inner;
  const alpha = resolvedAlpha(attrs);
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const { code, dispatch } = elementwiseMain(total, "  y[i] = lrn_at(i / INNER, i % INNER);");
  return {
    op: "lrn",
    wgsl: sections(
      header(id, "lrn", [
        `x ${shapeText([batch, ...spec.shape])}, size ${attrs.size}, k ${attrs.k}, alpha ${attrs.alpha} (${attrs.alphaOf}: α' = ${alpha}), beta ${attrs.beta}, ${attrs.groups} channel group(s)`,
      ]),
      consts(lrnConsts(spec.shape, attrs)),
      declareBindings(bindings),
      LRN_AT_WGSL,
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * lrnFlops(attrs),
  };
}
