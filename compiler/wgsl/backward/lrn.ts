// Local response normalisation backward, NCHW, per channel group (tower), from the saved input x:
//   y_j = x_j · s_j^−β,   s_j = k + α' Σ_{m ∈ W(j)} x_m²
//   dx_i = dy_i · s_i^−β − 2α'β · x_i · Σ_{j ∈ W(i)} dy_j · x_j · s_j^(−β−1)
// W(j) is the window of channels within ⌊n/2⌋ of j, clipped to j's group; it is symmetric (i ∈ W(j)
// ⇔ j ∈ W(i)), so the sum runs over i's own window. α' = α for the paper's `alphaOf: "sum"`, α/n for
// Caffe/ONNX/PyTorch's `"mean"`, resolved here as in the forward (../lrn.ts).
// One invocation per dx element recomputes the ≤ n scales s_j it needs (n = 5: 25 loads), in a fixed
// order; no sliding sums that would serialise over channels.
import type { LrnAttrs } from "../../graph.ts";
import { WORKGROUP, consts, f32, header, sections, shapeText, u32 } from "../common.ts";
import { type KernelIdentity, type TrainKernelSource, declare, elementwise, read, write } from "./util.ts";

export function lrnGradKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    shape: readonly number[];
    attrs: Pick<LrnAttrs, "size" | "k" | "alpha" | "beta" | "alphaOf" | "groups">;
    tensors: { x: string; dy: string; dx: string };
  },
): TrainKernelSource {
  const { batch, attrs } = spec;
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = batch * c * inner;
  const alpha = attrs.alphaOf === "mean" ? attrs.alpha / attrs.size : attrs.alpha;
  const half = Math.floor(attrs.size / 2);
  const bindings = [read("x", spec.tensors.x), read("dy", spec.tensors.dy), write("dx", spec.tensors.dx)];
  const body = `  let p = i % INNER;
  let ch = (i / INNER) % C;
  let base = (i / (INNER * C)) * C * INNER + p;       // element (n, 0, p)
  let g0 = i32((ch / C_PER_GROUP) * C_PER_GROUP);
  let g1 = g0 + i32(C_PER_GROUP) - 1i;                 // ch's group is channels [g0, g1]
  var cross = 0.0;                                     // Σ_{j ∈ W(ch)} dy_j · x_j · s_j^(−β−1)
  var own_scale = 0.0;                                 // s_ch^−β
  for (var j = max(i32(ch) - HALF, g0); j <= min(i32(ch) + HALF, g1); j++) {
    var sum = 0.0;
    for (var m = max(j - HALF, g0); m <= min(j + HALF, g1); m++) {
      let a = x[base + u32(m) * INNER];
      sum = fma(a, a, sum);
    }
    let s = LRN_K + ALPHA * sum;
    let e = base + u32(j) * INNER;
    cross = fma(dy[e] * x[e], pow(s, -BETA - 1.0), cross);
    if (u32(j) == ch) { own_scale = pow(s, -BETA); }
  }
  dx[i] = dy[i] * own_scale - 2.0 * ALPHA * BETA * x[i] * cross;`;
  const { code, dispatch } = elementwise(total, body);
  return {
    op: "lrn.grad",
    wgsl: sections(
      header(id, "lrn backward", [
        `x, dy ${shapeText([batch, ...spec.shape])}, size ${attrs.size}, k ${attrs.k}, alpha ${attrs.alpha} (${attrs.alphaOf}: α' = ${alpha}), beta ${attrs.beta}, ${attrs.groups} channel group(s)`,
        "dx_i = dy_i·s_i^−β − 2α'β·x_i·Σ_{j∈W(i)} dy_j·x_j·s_j^(−β−1), windows clipped to the group",
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
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * (2 * half + 1) * (2 * (2 * half + 1) + 8),
  };
}
