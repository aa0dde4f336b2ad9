// Element-wise activations, one invocation per element, and the same expressions as a fused epilogue
// of a conv / dense kernel (compiler/fuse.ts), so fused and unfused plans agree bit for bit.
import type { ActivationOp } from "../graph.ts";
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  declareBindings,
  elementwiseMain,
  header,
  sections,
  shapeText,
} from "./common.ts";

/** The WGSL expression for each activation of `v`. */
export const activationExpr: Record<ActivationOp, string> = {
  relu: "max(v, 0.0)",
  // tanh(±9) already rounds to ±1 in f32; clamping keeps drivers that evaluate tanh through exp()
  // from overflowing to inf/inf = NaN for large |v|.
  tanh: "tanh(clamp(v, -15.0, 15.0))",
  // exp(-v) overflows to +inf for v < -88, and 1 / (1 + inf) = 0 is the right limit, so no clamp.
  sigmoid: "1.0 / (1.0 + exp(-v))",
};

/** The WGSL function a fused kernel applies to each output before storing it (none without one). */
export function epilogueFunction(op: ActivationOp | undefined): string[] {
  return op ? [`fn activation(v: f32) -> f32 {\n  return ${activationExpr[op]};\n}`] : [];
}

export interface ActivationSpec {
  op: ActivationOp;
  /** Full shape including the batch. */
  shape: readonly number[];
  tensors: { x: string; y: string };
}

export function activationKernel(id: KernelIdentity, spec: ActivationSpec): KernelSource {
  const total = spec.shape.reduce((a, b) => a * b, 1);
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const { code, dispatch } = elementwiseMain(total, `  let v = x[i];\n  y[i] = ${activationExpr[spec.op]};`);
  return {
    op: spec.op,
    wgsl: sections(
      header(id, spec.op, [`y = ${activationExpr[spec.op]} element-wise over ${shapeText(spec.shape)}`]),
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total,
  };
}
