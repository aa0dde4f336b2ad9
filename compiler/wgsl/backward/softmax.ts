// Softmax backward and the softmax + cross-entropy loss.
//
//  softmax backward:  dx = y · (dy − Σ_c dy_c · y_c), per row (n, position), from the saved output y.
//  loss (one kernel, one workgroup): per example n, p = softmax(logits[n]) (max-subtracted),
//        ℓ_n = −log p[label_n] = log Σ_c exp(z_c − max) − (z_label − max), then
//        loss = (Σ_n ℓ_n) / N with the ℓ_n added in n order by lane 0 (deterministic).
//        The probabilities are saved for the backward.
//  loss backward: dlogits[n, c] = (p[n, c] − [c = label_n]) / N.
// Labels are i32 class indices; the host rejects out-of-range labels before writing them.
import { WORKGROUP, consts, header, sections, shapeText, u32 } from "../common.ts";
import { type KernelIdentity, type TrainKernelSource, declare, elementwise, read, write } from "./util.ts";

export function softmaxGradKernel(
  id: KernelIdentity,
  spec: { batch: number; shape: readonly number[]; tensors: { y: string; dy: string; dx: string } },
): TrainKernelSource {
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const rows = spec.batch * inner;
  const bindings = [read("y", spec.tensors.y), read("dy", spec.tensors.dy), write("dx", spec.tensors.dx)];
  const { code, dispatch } = elementwise(
    rows,
    `  let base = (i / INNER) * C * INNER + i % INNER;  // row (n, p): C elements INNER apart
  var dot = 0.0;
  for (var ch = 0u; ch < C; ch++) { let e = base + ch * INNER; dot = fma(dy[e], y[e], dot); }
  for (var ch = 0u; ch < C; ch++) { let e = base + ch * INNER; dx[e] = y[e] * (dy[e] - dot); }`,
  );
  return {
    op: "softmax.grad",
    wgsl: sections(
      header(id, "softmax backward", [
        `dx = y·(dy − Σ dy·y) over dim 1 of ${shapeText([spec.batch, ...spec.shape])}, one invocation per row`,
      ]),
      consts({ C: u32(c), INNER: u32(inner) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 4 * rows * c,
  };
}

export function softmaxCrossEntropyKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    classes: number;
    tensors: { logits: string; labels: string; probs: string; perExample: string; loss: string };
  },
): TrainKernelSource {
  const t = spec.tensors;
  const bindings = [
    read("z", t.logits),
    read("labels", t.labels, "i32"),
    write("probs", t.probs),
    write("per_example", t.perExample),
    write("loss", t.loss),
  ];
  const code = `${consts({ N: u32(spec.batch), C: u32(spec.classes), WG: u32(WORKGROUP) })}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var n = lid; n < N; n += WG) {
    let row = n * C;
    var m = -0x1.fffffep+127f;  // the lowest finite f32
    for (var c = 0u; c < C; c++) { m = max(m, z[row + c]); }
    var total = 0.0;
    for (var c = 0u; c < C; c++) { total += exp(z[row + c] - m); }
    for (var c = 0u; c < C; c++) { probs[row + c] = exp(z[row + c] - m) / total; }
    per_example[n] = log(total) - (z[row + u32(labels[n])] - m);
  }
  storageBarrier();  // per_example is written by all lanes, summed by lane 0
  if (lid == 0u) {
    var sum = 0.0;
    for (var n = 0u; n < N; n++) { sum += per_example[n]; }
    loss[0] = sum / f32(N);
  }
}
`;
  return {
    op: "softmax_cross_entropy",
    wgsl: sections(
      header(id, "softmax cross-entropy loss", [
        `logits ${shapeText([spec.batch, spec.classes])}, i32 labels -> probs, per-example −log p[label], loss = their mean`,
        "one workgroup; lane 0 sums the per-example losses in n order (deterministic)",
      ]),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch: [1, 1, 1],
    flops: 5 * spec.batch * spec.classes,
  };
}

export function softmaxCrossEntropyGradKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    classes: number;
    /**
     * The N of the batch-mean loss when it exceeds `batch` (a micro-batched plan: the kernel sees one
     * micro-batch, the loss averages the whole batch, so micro-steps' gradients add up to its gradient).
     */
    lossBatch?: number;
    tensors: { probs: string; labels: string; dlogits: string };
  },
): TrainKernelSource {
  const t = spec.tensors;
  const lossBatch = spec.lossBatch ?? spec.batch;
  const bindings = [read("probs", t.probs), read("labels", t.labels, "i32"), write("dlogits", t.dlogits)];
  const { code, dispatch } = elementwise(
    spec.batch * spec.classes,
    `  let n = i / C;
  let onehot = select(0.0, 1.0, i32(i % C) == labels[n]);
  dlogits[i] = (probs[i] - onehot) / f32(N);`,
  );
  return {
    op: "softmax_cross_entropy.grad",
    wgsl: sections(
      header(id, "softmax cross-entropy backward", [
        `dlogits = (p − onehot(label)) / N over ${shapeText([spec.batch, spec.classes])}${lossBatch !== spec.batch ? `, N = ${lossBatch} (the whole batch; this is one micro-batch)` : ""}`,
      ]),
      consts({ N: u32(lossBatch), C: u32(spec.classes) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 2 * spec.batch * spec.classes,
  };
}
