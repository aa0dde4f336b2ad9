// The plan: the single contract between the compiler and the runtime. `alexc compile -o DIR` writes
// it as DIR/plan.json next to DIR/kernels/*.wgsl; the runtime validates it with this same schema.
// Bump PLAN_VERSION on any incompatible change.
import { z } from "zod";
import { memoryPlanSchema } from "./memory.ts";

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
  // ---- training plans only (mode "train") ----
  /** the integer class label per example (i32), written by the host with the batch */
  "labels",
  /** the per-step uniform struct (learning rate, dropout seed, step), written by the host */
  "uniform",
  /** ∂L/∂(a value or parameter), L the batch-mean loss */
  "gradient",
  /** a parameter's momentum buffer v */
  "velocity",
  /** a statistic the forward pass saves for the backward pass (batch mean, softmax probabilities) */
  "saved",
  /** the scalar batch-mean loss, and the per-example losses it sums */
  "loss",
  /**
   * a flat buffer that other tensors are views into (`aliasOf` + `aliasOffset`): the parameter,
   * momentum and gradient arenas of compiler/fuse-optimizer.ts. Never read or written by name.
   */
  "arena",
  /**
   * computed from parameters by a `prepare` kernel (a Winograd weight transform), kept as long as
   * the parameters; forward plans only
   */
  "derived",
]);

export const planTensorSchema = z.object({
  name: z.string(),
  /** Full shape including the batch dimension for activations: NCHW or [N, F]. */
  shape: z.array(z.number().int().nonnegative()),
  /**
   * f32 everywhere except the labels (i32) and the uniform struct (u32 words, see `training`); f16 in
   * forward plans lowered with f16 storage (the device needs `shader-f16`).
   */
  dtype: z.enum(["f32", "f16", "i32", "u32"]),
  role: tensorRoleSchema,
  bytes: z.number().int().nonnegative(),
  device: z.number().int().nonnegative(),
  /** Shares the buffer of another tensor (a flatten is a view, no copy). */
  aliasOf: z.string().optional(),
  /**
   * With `aliasOf`: the view starts this many bytes into its root (a multiple of the storage offset
   * alignment) and covers `bytes` of it — a parameter inside a flat parameter arena. Absent: 0.
   */
  aliasOffset: z.number().int().nonnegative().optional(),
  /**
   * This tensor holds a contiguous run of another (row-major) tensor's elements, starting at element
   * `offset`: how a parameter larger than the device's maxStorageBufferBindingSize is split
   * (fc6's 151 MB weight under lavapipe's 128 MiB limit). The host uploads each part separately.
   */
  partOf: z.object({ tensor: z.string(), offset: z.number().int().nonnegative() }).optional(),
  /**
   * Placed plans: this tensor is a per-device copy of a host-written tensor (an input, the labels, the
   * uniform) that lives on device 0 under the original name; the host writes every replica too.
   */
  replicaOf: z.string().optional(),
});

export const bindingSchema = z.object({
  binding: z.number().int().nonnegative(),
  tensor: z.string(),
  /** `uniform`: the training plan's per-step struct, bound as `var<uniform>`. */
  access: z.enum(["read", "read_write", "uniform"]),
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
  /**
   * The FLOPs of the textbook algorithm this kernel stands in for, where it computes a layer another
   * way (a Winograd convolution's GEMM carries the direct convolution's), so rates compare alike.
   */
  equivalentFlops: z.number().nonnegative().optional(),
});

export const dispatchStepSchema = z.object({ kind: z.literal("dispatch"), kernel: z.string() });

/**
 * Placed plans only: copy tensor `tensor` (a root tensor on device `from`) into `peer`, its copy on
 * device `to`, after every earlier step of `from` and before every later step of `to` that reads it.
 * The runtime goes through host staging (copy to a MAP_READ buffer, map, queue.writeBuffer).
 */
export const transferStepSchema = z.object({
  kind: z.literal("transfer"),
  tensor: z.string(),
  peer: z.string(),
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** Never set: lets one-device code read `step.kernel` of any step (undefined for a transfer). */
  kernel: z.undefined().optional(),
});

export const scheduleStepSchema = z.discriminatedUnion("kind", [dispatchStepSchema, transferStepSchema]);

/**
 * What a training plan (mode "train") adds: `schedule` is one training step (forward in training
 * mode, loss, backward, updates), `evalSchedule` an inference forward pass over `eval:`-prefixed
 * activations that shares the parameter tensors. Tensor names: `grad:X` is ∂L/∂X for a value or a
 * parameter X, `velocity:P` the momentum of parameter P, `eval:X` the inference copy of value X.
 */
export const trainingSchema = z.object({
  /** The i32 labels tensor, [batch]. */
  labels: z.string(),
  /** The scalar batch-mean loss tensor, [1]. */
  loss: z.string(),
  /**
   * The uniform tensor: 4 words `{ lr: f32, seed: u32, step: u32, micro: u32 }` (lr as its f32 bits; `micro` is 0
   * except in a micro-batched plan's micro-steps, see wgsl/backward/update.ts).
   * Only lr and seed enter the arithmetic; step is informational.
   */
  uniform: z.string(),
  momentum: z.number(),
  weightDecay: z.number(),
  evalSchedule: z.array(scheduleStepSchema),
  /** Graph input → its tensor in the inference schedule. */
  evalInputs: z.record(z.string(), z.string()),
  evalLogits: z.string(),
  /** Trainable parameter → its gradient / velocity tensor (split like the parameter, via `partOf`). */
  gradients: z.record(z.string(), z.string()),
  velocities: z.record(z.string(), z.string()),
  /** Graph value → its gradient tensor, for every value the backward pass computes one for. */
  valueGradients: z.record(z.string(), z.string()),
  /** Forward values (and statistics) the backward pass reads. */
  saved: z.array(z.string()),
  /** Dropout layers, with the layer index their mask hash uses and whether training applies them. */
  dropout: z.array(
    z.object({
      ...{ node: z.string(), layer: z.number().int(), p: z.number(), active: z.boolean() },
      // the source layer's per-example size and this node's slice of it (see autodiff.ts DropoutLayer)
      ...{ perExample: z.number().int().optional(), offset: z.number().int().optional() },
      stride: z.number().int().optional(),
    }),
  ),
  /** Layers in schedule order with their activation and gradient tensors, for non-finite hunting. */
  layers: z.array(
    z.object({ layer: z.string(), activations: z.array(z.string()), gradients: z.array(z.string()) }),
  ),
});

export const planSchema = z
  .object({
    format: z.literal("alexc-plan"),
    version: z.literal(PLAN_VERSION),
    compiler: z.string(),
    network: z.string(),
    source: z.string(),
    mode: z.enum(["forward", "train"]),
    /** Examples per run (per training step) as the caller sees them: `writeBatch`/`writeInput` take this many. */
    batch: z.number().int().positive(),
    /**
     * Micro-batching: present when some per-example tensor at `batch` would exceed the device's
     * maxStorageBufferBindingSize. Every batched tensor and kernel is then lowered for `microBatch`
     * examples (a divisor of `batch`; under data placement, of each device's half), and the runtime
     * runs the schedule K = batch / (devices splitting the batch × microBatch) times per run/step over
     * consecutive chunks of each device's share. Placed plans run their transfers every micro-step. Training accumulates the micro-steps' gradients into
     * the momentum buffer (see wgsl/backward/update.ts) and applies the weights once, after the last.
     */
    microBatch: z.number().int().positive().optional(),
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
    /**
     * Kernels run once each time the parameters are uploaded, before any schedule: they compute the
     * `derived` tensors (Winograd-transformed weights). Never part of `schedule`.
     */
    prepare: z.array(z.string()).optional(),
    inputs: z.array(z.string()),
    logits: z.string(),
    /** Present exactly when mode is "train". */
    training: trainingSchema.optional(),
    /**
     * Present for plans placed over several devices (compiler/lower-placed.ts): the strategy, and for
     * every node of the placed graph the source layer it computes a slice of and its device.
     */
    /**
     * Where each tensor lives (compiler/memory.ts, attached by compiler/memory-bind.ts): per device,
     * arenas and an aligned offset per root tensor. Absent: the runtime gives every tensor a buffer.
     */
    memory: memoryPlanSchema.optional(),
    placement: z
      .object({
        strategy: z.enum(["model", "data", "hybrid"]),
        nodes: z.record(z.string(), z.object({ layer: z.string(), device: z.number().int().nonnegative() })),
      })
      .optional(),
  })
  .superRefine((plan, ctx) => {
    const microUpdates = plan.kernels.some((k) => k.op === "sgd.update.micro");
    if (plan.microBatch === undefined && !microUpdates) return;
    if (plan.microBatch === undefined && !plan.placement)
      ctx.addIssue({ code: "custom", message: "micro-batched update kernels in a plan without microBatch" });
    if (plan.microBatch !== undefined && plan.batch % plan.microBatch !== 0)
      ctx.addIssue({
        code: "custom",
        message: `microBatch ${plan.microBatch} does not divide batch ${plan.batch}`,
      });
  });

export type Plan = z.infer<typeof planSchema>;
export type PlanTensor = z.infer<typeof planTensorSchema>;
export type PlanKernel = z.infer<typeof kernelSchema>;
export type PlanBinding = z.infer<typeof bindingSchema>;
export type PlanTraining = z.infer<typeof trainingSchema>;
export type ScheduleStep = z.infer<typeof scheduleStepSchema>;
export type TransferStep = z.infer<typeof transferStepSchema>;

/** A plan together with its kernels' WGSL source, keyed by kernel name (what compile produces in memory). */
export interface CompiledPlan {
  plan: Plan;
  wgsl: Record<string, string>;
}
