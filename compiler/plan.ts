// The plan: the single contract between the compiler and the runtime. `alexc compile -o DIR` writes
// it as DIR/plan.json next to DIR/kernels/*.wgsl; the runtime validates it with this same schema.
// Bump PLAN_VERSION on any incompatible change.
import { z } from "zod";

export const PLAN_VERSION = 1;

export const initSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("normal"), mean: z.number(), std: z.number() }),
  z.object({ kind: z.literal("constant"), value: z.number() }),
]);

export const tensorRoleSchema = z.enum([
  /** a network input, written by the host before a step (NCHW f32) */
  "input",
  /** a learned parameter or running statistic, PyTorch layout */
  "param",
  /** an intermediate activation */
  "activation",
  /** the logits, read back by the host */
  "logits",
]);

export const planTensorSchema = z.object({
  name: z.string(),
  /** Full shape including the batch dimension for activations: NCHW or [N, F]. */
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.literal("f32"),
  role: tensorRoleSchema,
  bytes: z.number().int().nonnegative(),
  device: z.number().int().nonnegative(),
  /** Shares the buffer of another tensor (a flatten is a view, no copy). */
  aliasOf: z.string().optional(),
  /**
   * This tensor holds a contiguous run of another (row-major) tensor's elements, starting at element
   * `offset`: how a parameter larger than the device's maxStorageBufferBindingSize is split
   * (fc6's 151 MB weight under lavapipe's 128 MiB limit). The host uploads each part separately.
   */
  partOf: z.object({ tensor: z.string(), offset: z.number().int().nonnegative() }).optional(),
});

export const bindingSchema = z.object({
  binding: z.number().int().nonnegative(),
  tensor: z.string(),
  access: z.enum(["read", "read_write"]),
});

export const kernelSchema = z.object({
  /** Stable, sanitised name; the WGSL lives in `kernels/<name>.wgsl`. */
  name: z.string().regex(/^[a-z][a-z0-9_]*$/),
  file: z.string(),
  /** The source layer this kernel computes (its anchor). */
  layer: z.string(),
  op: z.string(),
  /** The fusion group: the graph nodes this kernel computes (one per kernel before fusion). */
  group: z.array(z.string()).min(1),
  device: z.number().int().nonnegative(),
  entryPoint: z.string(),
  bindings: z.array(bindingSchema),
  workgroupSize: z.tuple([
    z.number().int().positive(),
    z.number().int().positive(),
    z.number().int().positive(),
  ]),
  dispatch: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  /** Useful work, for reporting rates. */
  flops: z.number().nonnegative(),
});

export const scheduleStepSchema = z.object({ kind: z.literal("dispatch"), kernel: z.string() });

export const planSchema = z.object({
  format: z.literal("alexc-plan"),
  version: z.literal(PLAN_VERSION),
  compiler: z.string(),
  network: z.string(),
  source: z.string(),
  mode: z.literal("forward"),
  batch: z.number().int().positive(),
  classes: z.number().int().positive(),
  towers: z.number().int().positive(),
  devices: z.array(z.object({ index: z.number().int().nonnegative(), label: z.string() })).min(1),
  tensors: z.array(planTensorSchema),
  params: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int().positive()),
      init: initSchema,
      trainable: z.boolean(),
      layer: z.string(),
    }),
  ),
  kernels: z.array(kernelSchema),
  schedule: z.array(scheduleStepSchema),
  inputs: z.array(z.string()),
  logits: z.string(),
});

export type Plan = z.infer<typeof planSchema>;
export type PlanTensor = z.infer<typeof planTensorSchema>;
export type PlanKernel = z.infer<typeof kernelSchema>;
export type PlanBinding = z.infer<typeof bindingSchema>;

/** A plan together with its kernels' WGSL source, keyed by kernel name (what compile produces in memory). */
export interface CompiledPlan {
  plan: Plan;
  wgsl: Record<string, string>;
}
