// Softmax over the feature dimension (dim 0 of the per-example shape: the classes of a vector, the
// channels at each position of a map), one invocation per row in three passes: max, Σ exp(x − max),
// normalise. Subtracting the max keeps exp from overflowing. A row is ≤ a few thousand classes, so
// the serial row beats a workgroup reduction's barriers at the batch sizes AlexNet runs.
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  consts,
  declareBindings,
  elementwiseMain,
  header,
  sections,
  shapeText,
  u32,
} from "./common.ts";

export interface SoftmaxSpec {
  batch: number;
  /** [C] or [C, H, W]: softmax over C. */
  shape: readonly number[];
  tensors: { x: string; y: string };
}

export function softmaxKernel(id: KernelIdentity, spec: SoftmaxSpec): KernelSource {
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const rows = spec.batch * inner;
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const body = `  // i is a row: (n, p); its C elements are INNER apart
  let base = (i / INNER) * C * INNER + i % INNER;
  var m = -0x1.fffffep+127f;  // the lowest finite f32
  for (var ch = 0u; ch < C; ch++) { m = max(m, x[base + ch * INNER]); }
  var sum = 0.0;
  for (var ch = 0u; ch < C; ch++) { sum += exp(x[base + ch * INNER] - m); }
  let scale = 1.0 / sum;
  for (var ch = 0u; ch < C; ch++) { y[base + ch * INNER] = exp(x[base + ch * INNER] - m) * scale; }`;
  const { code, dispatch } = elementwiseMain(rows, body);
  return {
    op: "softmax",
    wgsl: sections(
      header(id, "softmax", [
        `over dim 1 of ${shapeText([spec.batch, ...spec.shape])}, one invocation per row`,
      ]),
      consts({ C: u32(c), INNER: u32(inner) }),
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: rows * c * 5,
  };
}
