// Local response normalisation backward, NCHW, per channel group (tower), from the saved input x:
//   y_j = x_j · s_j^−β,   s_j = k + α' Σ_{m ∈ W(j)} x_m²
//   dx_i = dy_i · s_i^−β − 2α'β · x_i · Σ_{j ∈ W(i)} t_j,   t_j = dy_j · x_j · s_j^(−β−1)
// W(j) is the window of channels within ⌊n/2⌋ of j, clipped to j's group; it is symmetric (i ∈ W(j)
// ⇔ j ∈ W(i)), so the sum runs over i's own window. α' = α for the paper's `alphaOf: "sum"`, α/n for
// Caffe/ONNX/PyTorch's `"mean"`, resolved here as in the forward (../lrn.ts).
//
// One invocation per (example, group, pixel) walks the group's channels once, keeping the last n
// squares x_m² and the last n values of t_j and s_j^−β in registers (shift registers, straight-line
// code): per element one pow and a handful of loads, where recomputing every window per element costs
// n² loads and n pows — on lavapipe this kernel was the slowest of a training step. Lanes are
// consecutive pixels, so every load is contiguous across the vector. Each window sum adds its n terms
// in a fixed order (out-of-group terms are zeros), so results are the same run to run.
import type { LrnAttrs } from "../../graph.ts";
import { WORKGROUP, consts, f32, header, sections, shapeText, u32 } from "../common.ts";
import { each } from "../conv-tiles.ts";
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

export function lrnGradKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    shape: readonly number[];
    attrs: Pick<LrnAttrs, "size" | "k" | "alpha" | "beta" | "alphaOf" | "groups">;
    tensors: { x: string; dy: string; dx: string };
    fold?: GradEpilogue;
  },
): TrainKernelSource {
  const { batch, attrs } = spec;
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = batch * c * inner;
  const alpha = attrs.alphaOf === "mean" ? attrs.alpha / attrs.size : attrs.alpha;
  const half = Math.floor(attrs.size / 2);
  const n = 2 * half + 1; // registers per shift register: the window W(j) has at most 2·half + 1 channels
  const bound = [read("x", spec.tensors.x), read("dy", spec.tensors.dy), write("dx", spec.tensors.dx)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  // Register index 0 is the oldest. At iteration k: q holds x_m² for m = k−2h … k, so s_j for
  // j = k − h is complete; t and r hold t_m, s_m^−β for m = j−2h … j, so dx_i for i = j − h is too.
  const shift = (name: string, value: string) =>
    `${each(n - 1, (r) => `${name}${r} = ${name}${r + 1};`, " ")} ${name}${n - 1} = ${value};`;
  const sum = (name: string) => each(n, (r) => `${name}${r}`, " + ");
  const body = `  let p = i % INNER;
  let g = (i / INNER) % GROUPS;
  let base = ((i / (INNER * GROUPS)) * C + g * CG) * INNER + p;   // element (n, first channel of g, p)
  ${each(n, (r) => `var q${r} = 0.0; var t${r} = 0.0; var r${r} = 0.0;`, "\n  ")}
  for (var k = 0i; k < i32(CG) + 2i * HALF; k++) {
    var xk = 0.0;
    if (k < i32(CG)) { xk = x[base + u32(k) * INNER]; }
    ${shift("q", "xk * xk")}
    let j = k - HALF;
    var tj = 0.0;
    var rj = 0.0;
    if (j >= 0i && j < i32(CG)) {
      let s = LRN_K + ALPHA * (${sum("q")});
      rj = pow(s, -BETA);
      let e = base + u32(j) * INNER;
      tj = dy[e] * x[e] * rj / s;
    }
    ${shift("t", "tj")}
    ${shift("r", "rj")}
    let o = j - HALF;
    if (o >= 0i) {
      let e = base + u32(o) * INNER;
      ${storeGrad(spec.fold, "dx", "e", `dy[e] * r${half} - 2.0 * ALPHA * BETA * x[e] * (${sum("t")})`)}
    }
  }`;
  const lanes = batch * attrs.groups * inner;
  const { code, dispatch } = elementwise(lanes, body);
  return {
    op: "lrn.grad",
    wgsl: sections(
      header(id, "lrn backward", [
        `x, dy ${shapeText([batch, ...spec.shape])}, size ${attrs.size}, k ${attrs.k}, alpha ${attrs.alpha} (${attrs.alphaOf}: α' = ${alpha}), beta ${attrs.beta}, ${attrs.groups} channel group(s)`,
        "dx_i = dy_i·s_i^−β − 2α'β·x_i·Σ_{j∈W(i)} dy_j·x_j·s_j^(−β−1), windows clipped to the group",
        "one invocation per (example, group, pixel) slides over the group's channels",
      ]),
      consts({
        C: u32(c),
        INNER: u32(inner),
        GROUPS: u32(attrs.groups),
        CG: u32(c / attrs.groups),
        HALF: `${half}i`,
        LRN_K: f32(attrs.k),
        ALPHA: f32(alpha),
        BETA: f32(attrs.beta),
      }),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * (3 * n + 12),
  };
}
