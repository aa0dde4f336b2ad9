// Batch normalisation at inference: y = (x − mean_c) / sqrt(var_c + ε) · γ_c + β_c, per channel c
// (dim 0 of the per-example shape: channels of a feature map, features of a vector). Folding the
// statistics into the preceding conv's weights is a later optimisation; this is the plain kernel.
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

export interface BatchNormSpec {
  batch: number;
  /** [C, H, W] or [C]. */
  shape: readonly number[];
  eps: number;
  /** γ and β are optional (a non-affine batch norm): absent means 1 and 0. */
  tensors: { x: string; mean: string; variance: string; gamma?: string; beta?: string; y: string };
}

export function batchNormKernel(id: KernelIdentity, spec: BatchNormSpec): KernelSource {
  const { batch, tensors } = spec;
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = batch * c * inner;
  const bindings = [
    { name: "x", tensor: tensors.x, access: "read" as const },
    { name: "mean", tensor: tensors.mean, access: "read" as const },
    { name: "variance", tensor: tensors.variance, access: "read" as const },
    ...(tensors.gamma ? [{ name: "gamma", tensor: tensors.gamma, access: "read" as const }] : []),
    ...(tensors.beta ? [{ name: "beta", tensor: tensors.beta, access: "read" as const }] : []),
    { name: "y", tensor: tensors.y, access: "read_write" as const },
  ];
  const scaled = tensors.gamma ? " * gamma[ch]" : "";
  const shifted = tensors.beta ? " + beta[ch]" : "";
  const body = `  let ch = (i / INNER) % C;
  y[i] = (x[i] - mean[ch]) / sqrt(variance[ch] + EPS)${scaled}${shifted};`;
  const { code, dispatch } = elementwiseMain(total, body);
  return {
    op: "batchnorm",
    wgsl: sections(
      header(id, "batchnorm", [
        `inference with running statistics over ${shapeText([batch, ...spec.shape])}, eps ${spec.eps}`,
      ]),
      consts({ C: u32(c), INNER: u32(inner), EPS: f32(spec.eps) }),
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * 4,
  };
}
