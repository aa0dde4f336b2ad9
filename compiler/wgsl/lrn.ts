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

export function lrnKernel(id: KernelIdentity, spec: LrnSpec): KernelSource {
  const { batch, attrs } = spec;
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = batch * c * inner;
  const alpha = attrs.alphaOf === "mean" ? attrs.alpha / attrs.size : attrs.alpha;
  const half = Math.floor(attrs.size / 2);
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const body = `  let p = i % INNER;
  let ch = (i / INNER) % C;
  let n = i / (INNER * C);
  let g0 = (ch / C_PER_GROUP) * C_PER_GROUP;           // first channel of ch's group
  let lo = max(i32(ch) - HALF, i32(g0));
  let hi = min(i32(ch) + HALF, i32(g0 + C_PER_GROUP) - 1);
  var sum = 0.0;
  for (var j = lo; j <= hi; j++) {
    let a = x[(n * C + u32(j)) * INNER + p];
    sum = fma(a, a, sum);
  }
  y[i] = x[i] / pow(LRN_K + ALPHA * sum, BETA);`;
  const { code, dispatch } = elementwiseMain(total, body);
  return {
    op: "lrn",
    wgsl: sections(
      header(id, "lrn", [
        `x ${shapeText([batch, ...spec.shape])}, size ${attrs.size}, k ${attrs.k}, alpha ${attrs.alpha} (${attrs.alphaOf}: α' = ${alpha}), beta ${attrs.beta}, ${attrs.groups} channel group(s)`,
      ]),
      consts({
        C: u32(c),
        INNER: u32(inner),
        C_PER_GROUP: u32(c / attrs.groups),
        HALF: `${half}i`,
        LRN_K: f32(attrs.k),
        ALPHA: f32(alpha),
        BETA: f32(attrs.beta),
      }),
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * (2 * (2 * half + 1) + 4),
  };
}
