// lower-train: Graph → CompiledPlan in mode "train".
//
// `schedule` is one training step: the forward pass in training mode (active dropout hashed from the
// step seed, batch norm on batch statistics), the softmax-cross-entropy loss, the backward pass of
// compiler/autodiff.ts (one or more kernels per backward step), and one SGD update per parameter
// part. 3×3 stride-1 convolutions run forward, data and weight gradient as Winograd F(2×2, 3×3),
// weight transforms in the step, unless `winograd: false` (lower-train-winograd.ts).
// `training.evalSchedule` is the inference forward pass, taken verbatim from compiler/lower.ts with
// its activations renamed `eval:X` and its Winograd weight transforms (`prepare` there) in the
// schedule; it shares the parameter tensors, so it always evaluates the current weights.
//
// Every activation, gradient and statistic has its own buffer (no reuse yet): all forward values stay
// alive, which is what "saved for backward" means until the memory planner exists. A weight over
// maxBindingBytes is split by output rows exactly as lower.ts splits it (the same part tensors); its
// gradient and velocity are split the same way, so update kernels run per part.
//
// Micro-batching: when a per-example value (or its gradient) would exceed maxBindingBytes at `batch`,
// the schedule is lowered for the largest divisor b of `batch` that fits (weight-split.ts `microBatchFor`) and
// the plan records `batch` (the whole batch) and `microBatch` b. The trainer runs the schedule K =
// batch / b times per step on consecutive chunks: the loss gradient divides by the whole batch (so the
// micro-steps' parameter gradients add up to the batch-mean gradient), and the update kernels
// (update.ts, "sgd.update.micro") fold each micro-step's gradient into the momentum and apply the
// weights after the last. The result equals one big batch up to float summation order, except that
// batch norm normalises with per-micro-batch statistics (and updates its running averages K times)
// and `grad:P` holds only the last micro-step's share. Dropout masks are those of the whole batch:
// every micro-step uses the step's seed and hashes global example indices (util.ts).
import { type TrainingGraph, differentiate } from "./autodiff.ts";
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, elementCount } from "./graph.ts";
import { fusedAt, type Fusion, planFusion } from "./fuse.ts";
import { type GradFold, gradFolds } from "./fuse-backward.ts";
import { withFlatParameters } from "./fuse-optimizer.ts";
import { type LowerOptions, lower } from "./lower.ts";
import { microBatchFor } from "./weight-split.ts";
import { type Part, STEP_UNIFORM } from "./lower-train-ops.ts";
import { type TrainingFusion, trainingFusion } from "./lower-train-fused.ts";
import { type StepLowering, lowerStep } from "./lower-train-steps.ts";
import {
  type CompiledPlan,
  type PlanKernel,
  type PlanTensor,
  type PlanTraining,
  planSchema,
} from "./plan.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelSource } from "./wgsl/common.ts";

export { STEP_UNIFORM };

export interface TrainLowerOptions extends LowerOptions {
  /** μ of the update rule. */
  momentum: number;
  /** λ of the update rule. */
  weightDecay: number;
  /** Dropout layers applied in training; default all (see autodiff.ts). */
  activeDropout?: string[];
  /** Also compute ∂L/∂(graph inputs), as `grad:<input>` (for gradient checks). */
  inputGradients?: boolean;
  /**
   * Values whose gradient `grad:X` must exist as a tensor even when fusion would fold X's activation
   * derivative into the next layer's backward: hybrid placement's boundary, whose gradient arrives
   * from the other lowering (the head's) and is what the trunk's backward starts from.
   */
  keepGradients?: readonly string[];
  /**
   * The examples a step's loss averages over, when more than `batch`: a caller that runs the plan
   * several times per step (hybrid placement's micro-batching) gets micro-step updates and 1/lossBatch.
   */
  lossBatch?: number;
  /**
   * Dropout node → the mask-hash words of the source layer it is a slice of (placements lowering a
   * sliced or partial graph: towers.ts `dropoutSources`); others hash as themselves.
   */
  dropoutSource?: Record<string, DropoutSource>;
}

/** A dropout node's source layer (index in the source graph), its per-example size, and the slice. */
export interface DropoutSource {
  layer: number;
  perExample: number;
  offset: number;
  stride: number;
}

const F32 = 4;
const DEVICE = 0;

function internal(message: string, span?: Node["span"]): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, span));
}

const sanitize = (name: string) => name.toLowerCase().replace(/[^a-z0-9_]/g, "_");

class TrainLowering implements StepLowering {
  readonly tensors = new Map<string, PlanTensor>();
  readonly kernels: PlanKernel[] = [];
  readonly wgsl: Record<string, string> = {};
  readonly schedule: string[] = [];
  readonly evalSchedule: string[] = [];
  /** Per-example shape of every graph value. */
  readonly shapes = new Map<string, number[]>();
  /** Parameter → its row parts (one part, the parameter itself, when not split). */
  readonly parts = new Map<string, Part[]>();
  readonly graph: Graph;
  readonly tg: TrainingGraph;
  readonly opts: TrainLowerOptions;
  /** Examples per run of the schedule: the micro-batch. */
  readonly batch: number;
  /** The whole batch (micro-steps × micro-batch): what the loss averages over. */
  readonly wholeBatch: number;
  /** The forward's fusion groups (fuse.ts), as in the inference plan the eval schedule comes from. */
  readonly fusion: Fusion;
  /** Producer node → the activation backward folded into its dx kernel (see gradFolds). */
  readonly folds: Map<string, GradFold>;
  /** The active dropouts, and what the backward reads where a fused forward stores no value. */
  readonly fused: TrainingFusion;
  readonly wholeBatchV = new Map<string, string>();

  constructor(graph: Graph, opts: TrainLowerOptions, wholeBatch: number) {
    this.graph = graph;
    this.opts = opts;
    this.fusion = planFusion(graph, { enabled: opts.fuse !== false });
    this.batch = opts.batch;
    this.wholeBatch = wholeBatch;
    this.tg = differentiate(graph, {
      activeDropout: opts.activeDropout,
      inputGradients: opts.inputGradients,
    });
    const keep = new Set(opts.keepGradients ?? []);
    this.folds =
      opts.fuse === false
        ? new Map()
        : new Map([...gradFolds(this.tg)].filter(([, f]) => !keep.has(f.activation)));
    this.fused = trainingFusion(this.fusion, this.tg);
    for (const f of this.folds.values()) f.y = this.fused.savedAs.get(f.y) ?? f.y;
    const sources = opts.dropoutSource ?? {};
    this.tg.dropout = this.tg.dropout.map((d) => ({ ...d, ...sources[d.node] }));
    for (const i of graph.inputs) this.shapes.set(i.name, i.shape);
    for (const n of graph.nodes) this.shapes.set(n.name, n.shape);
  }

  // ---- tensors ----

  root(name: string): string {
    return this.tensors.get(name)?.aliasOf ?? name;
  }

  add(name: string, shape: number[], role: PlanTensor["role"], extra: Partial<PlanTensor> = {}) {
    if (this.tensors.has(name)) throw internal(`tensor \`${name}\` declared twice`);
    const bytes = elementCount(shape) * (extra.dtype === "u32" ? 4 : F32);
    if (bytes > this.opts.maxBindingBytes && !extra.aliasOf) {
      throw new DiagnosticError(
        diag(
          "AX3001",
          { tensor: name, bytes, device: `device ${DEVICE}`, limit: this.opts.maxBindingBytes },
          undefined,
        ),
      );
    }
    const t: PlanTensor = { name, shape, dtype: "f32", role, bytes, device: DEVICE, ...extra };
    if (t.aliasOf) t.aliasOf = this.root(t.aliasOf);
    this.tensors.set(name, t);
  }

  /** A [batch, ...] tensor for graph value `value`. */
  batched(name: string, value: string, role: PlanTensor["role"], aliasOf?: string) {
    this.add(name, [this.batch, ...this.shapes.get(value)!], role, aliasOf ? { aliasOf } : {});
  }

  /** Declares `base` (a gradient or velocity of `param`) split exactly like the parameter. */
  paramLike(param: string, base: string, role: "gradient" | "velocity") {
    const shape = this.graph.params.find((p) => p.name === param)!.shape;
    const parts = this.parts.get(param)!;
    if (parts.length === 1) return this.add(base, shape, role);
    const rowElements = elementCount(shape.slice(1));
    parts.forEach((part, j) =>
      this.add(`${base}.part${j}`, [part.rowCount, ...shape.slice(1)], role, {
        partOf: { tensor: base, offset: part.rowBase * rowElements },
      }),
    );
  }

  /** The tensors of `base` (a parameter, gradient or velocity) part by part. */
  partNames(param: string, base: string): string[] {
    const parts = this.parts.get(param)!;
    return parts.length === 1 ? [base] : parts.map((_, j) => `${base}.part${j}`);
  }

  // ---- kernels ----

  emit(
    layer: string,
    what: string,
    source: KernelSource | TrainKernelSource,
    phase: "train" | "eval" = "train",
  ) {
    // a forward kernel of a fused anchor computes its whole group (fuse.ts); an eval one the
    // inference group, without the dropout (the identity there)
    // (Winograd's stages are `fwd_wt`, `fwd_in`, `fwd_mm`, `fwd_out`: all of the group's forward)
    const train = what === "fwd" || what.startsWith("fwd_");
    const active = train ? this.fused.active : undefined;
    const fwd = train || what === "eval";
    const group = (fwd ? fusedAt(this.fusion, layer, active)?.members : undefined) ?? [layer];
    const name = `k${String(this.kernels.length).padStart(3, "0")}_${what}_${group.map(sanitize).join("_")}`;
    this.kernels.push({
      name,
      file: `kernels/${name}.wgsl`,
      layer,
      op: source.op,
      group,
      device: DEVICE,
      entryPoint: source.entryPoint,
      bindings: source.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
      workgroupSize: source.workgroupSize,
      dispatch: source.dispatch,
      flops: source.flops,
    });
    // Templates name the kernel in their header; the real name is only known here.
    this.wgsl[name] = source.wgsl.replace(/^\/\/ alexc kernel \S+/, `// alexc kernel ${name}`);
    (phase === "train" ? this.schedule : this.evalSchedule).push(name);
  }

  id(layer: string) {
    // The real name is allotted by emit(), which rewrites the header line.
    return { name: "pending", layer, group: [layer] };
  }

  // ---- the plan ----

  run(): CompiledPlan {
    const { graph, opts, tg } = this;
    // the evaluation schedule runs on weights that change every step: Winograd's weight transforms
    // (the inference plan's `prepare`) run in it, before each convolution (lowerEval)
    const inference = lower(graph, opts);
    for (const t of inference.plan.tensors) {
      if (t.role !== "param") continue;
      this.tensors.set(t.name, t);
      const param = t.partOf?.tensor ?? t.name;
      const shape = graph.params.find((p) => p.name === param)!.shape;
      const rowBase = (t.partOf?.offset ?? 0) / elementCount(shape.slice(1));
      const list = this.parts.get(param) ?? [];
      list.push({ tensor: t.name, rowBase, rowCount: t.shape[0] });
      this.parts.set(param, list);
    }

    for (const i of graph.inputs) this.batched(i.name, i.name, "input");
    this.add(tg.labels, [this.batch], "labels", { dtype: "i32" });
    this.add(STEP_UNIFORM, [4], "uniform", { dtype: "u32" });
    for (const p of graph.params) {
      if (!p.trainable) continue;
      this.paramLike(p.name, tg.gradients[p.name], "gradient");
      this.paramLike(p.name, tg.velocities[p.name], "velocity");
    }

    for (const step of tg.steps) lowerStep(this, step);
    this.lowerEval(inference);

    const logits = this.tensors.get(graph.logits);
    if (!logits) throw internal(`the logits \`${graph.logits}\` are not computed`);
    logits.role = "logits";
    const training: PlanTraining = {
      labels: tg.labels,
      loss: graph.loss,
      uniform: STEP_UNIFORM,
      momentum: opts.momentum,
      weightDecay: opts.weightDecay,
      evalSchedule: this.evalSchedule.map((kernel) => ({ kind: "dispatch" as const, kernel })),
      evalInputs: Object.fromEntries(graph.inputs.map((i) => [i.name, `eval:${i.name}`])),
      evalLogits: `eval:${graph.logits}`,
      gradients: tg.gradients,
      velocities: tg.velocities,
      // a folded activation's ∂L/∂y is never stored (gradFolds)
      valueGradients: Object.fromEntries(
        Object.entries(tg.valueGradients).filter(([, g]) => this.tensors.has(g)),
      ),
      saved: [...new Set(tg.saved.map((s) => this.fused.savedAs.get(s) ?? s))],
      dropout: tg.dropout,
      layers: graph.nodes.map((n) => ({
        layer: n.name,
        activations: [...this.tensors.keys()].filter((t) => t === n.name || t.startsWith(`${n.name}:`)),
        gradients: [
          ...(this.tensors.has(tg.valueGradients[n.name] ?? "") ? [tg.valueGradients[n.name]] : []),
          ...n.params.filter((p) => tg.gradients[p]).map((p) => tg.gradients[p]),
        ],
      })),
    };
    const { prepare: _, ...forward } = inference.plan; // its prepare kernels run in the eval schedule
    const plan = {
      ...forward,
      ...(this.wholeBatch !== this.batch ? { batch: this.wholeBatch, microBatch: this.batch } : {}),
      mode: "train" as const,
      tensors: [...this.tensors.values()],
      kernels: this.kernels,
      schedule: this.schedule.map((kernel) => ({ kind: "dispatch" as const, kernel })),
      training,
    };
    const checked = planSchema.safeParse(plan);
    if (!checked.success) throw internal(`lowerTraining produced an invalid plan: ${checked.error.message}`);
    return { plan: checked.data, wgsl: this.wgsl };
  }

  /**
   * The inference schedule of lower.ts, activations renamed `eval:X`, parameters shared. Its kernels
   * are taken in emission order, which puts a Winograd weight transform (a `prepare` kernel there)
   * just before its convolution's input transform: every evaluation transforms the current weights.
   */
  lowerEval(inference: CompiledPlan) {
    const rename = (t: string) => (this.tensors.get(t)?.role === "param" ? t : `eval:${t}`);
    const roles: Partial<Record<PlanTensor["role"], PlanTensor["role"]>> = {
      logits: "activation",
      derived: "activation", // recomputed by each evaluation, as above
    };
    for (const t of inference.plan.tensors) {
      if (t.role === "param") continue;
      this.add(rename(t.name), t.shape, roles[t.role] ?? t.role, {
        ...(t.aliasOf ? { aliasOf: rename(t.aliasOf) } : {}),
      });
    }
    for (const k of inference.plan.kernels) {
      const wgsl = inference.wgsl[k.name].replace(
        /(var<storage, \w+> \w+: array<[\w<>]+>; \/\/ )(.+)$/gm,
        (_, decl: string, tensor: string) => decl + rename(tensor),
      );
      this.emit(
        k.layer,
        "eval",
        {
          ...k,
          wgsl,
          bindings: k.bindings.map((b, i) => ({ name: `b${i}`, tensor: rename(b.tensor), access: b.access })),
        },
        "eval",
      );
    }
  }
}

/**
 * Lowers `graph` to a training plan: one SGD step per run of `schedule`, inference in
 * `training.evalSchedule`. With fusion on, the updates run as one kernel per device over flat
 * parameter arenas (fuse-optimizer.ts).
 */
export function lowerTraining(graph: Graph, opts: TrainLowerOptions): CompiledPlan {
  return withOptimizerFusion(lowerTrainingSteps(graph, opts), opts);
}

/** The last pass of every training lowering (one device or placed): the optimizer fusion. */
export function withOptimizerFusion(compiled: CompiledPlan, opts: TrainLowerOptions): CompiledPlan {
  return opts.fuse === false
    ? compiled
    : withFlatParameters(compiled, { maxBindingBytes: opts.maxBindingBytes });
}

/** lowerTraining without the optimizer fusion: what the placed lowerings transform further. */
export function lowerTrainingSteps(graph: Graph, opts: TrainLowerOptions): CompiledPlan {
  if (!(opts.momentum >= 0) || !(opts.weightDecay >= 0))
    throw internal(`momentum and weight decay must be ≥ 0, got ${opts.momentum} and ${opts.weightDecay}`);
  // A batch whose activations (or their gradients) exceed a binding is micro-batched: the schedule is
  // lowered for the micro-batch and the trainer runs it once per chunk, accumulating (update.ts).
  const micro = microBatchFor(graph, opts.batch, opts.maxBindingBytes);
  const whole = opts.lossBatch ?? opts.batch;
  if (micro !== opts.batch && opts.lossBatch !== undefined)
    throw internal("lossBatch is for a caller that micro-batches itself: pass a batch that fits");
  return new TrainLowering(graph, { ...opts, batch: micro }, whole).run();
}
