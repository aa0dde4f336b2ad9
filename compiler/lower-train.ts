// lower-train: Graph → CompiledPlan in mode "train".
//
// `schedule` is one training step: the forward pass in training mode (active dropout hashed from the
// step seed, batch norm on batch statistics), the softmax-cross-entropy loss, the backward pass of
// compiler/autodiff.ts (one or more kernels per backward step), and one SGD update per parameter part.
// `training.evalSchedule` is the inference forward pass, taken verbatim from compiler/lower.ts with
// its activations renamed `eval:X`; it shares the parameter tensors, so it always evaluates the
// current weights.
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
import { type BackwardStep, type ForwardMode, type TrainingGraph, differentiate } from "./autodiff.ts";
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, elementCount } from "./graph.ts";
import { computedBy, fusedAt, type Fusion, planFusion } from "./fuse.ts";
import { type GradFold, gradFolds } from "./fuse-backward.ts";
import { withFlatParameters } from "./fuse-optimizer.ts";
import { type LowerOptions, lower, tiles } from "./lower.ts";
import { microBatchFor } from "./weight-split.ts";
import {
  type OpContext,
  type Part,
  STEP_UNIFORM,
  lowerTrainBackward,
  lowerTrainForward,
} from "./lower-train-ops.ts";
import { type TrainingFusion, lrnPoolTrainKernel, trainingFusion } from "./lower-train-fused.ts";
import {
  type CompiledPlan,
  type PlanKernel,
  type PlanTensor,
  type PlanTraining,
  planSchema,
} from "./plan.ts";
import { ACCUMULATE_MAX_TERMS, accumulateKernel } from "./wgsl/backward/elementwise.ts";
import { softmaxCrossEntropyKernel } from "./wgsl/backward/softmax.ts";
import { updateKernel } from "./wgsl/backward/update.ts";
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

class TrainLowering {
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
    const active = what === "fwd" ? this.fused.active : undefined;
    const fwd = what === "fwd" || what === "eval";
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
    // the evaluation schedule runs on weights that change every step: no once-per-upload transforms
    const inference = lower(graph, { ...opts, winograd: false });
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

    for (const step of tg.steps) {
      switch (step.kind) {
        case "forward":
          this.forward(this.node(step.node), step.mode);
          break;
        case "loss":
          this.loss(this.node(step.node));
          break;
        case "backward":
          this.backward(this.node(step.node), step);
          break;
        case "accumulate":
          this.accumulate(step.value, step.terms, step.output);
          break;
        case "update":
          this.update(step.param, step.layer);
          break;
      }
    }
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
    const plan = {
      ...inference.plan,
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

  node(name: string): Node {
    const n = this.graph.nodes.find((x) => x.name === name);
    if (!n) throw internal(`the training graph names an unknown node \`${name}\``);
    return n;
  }

  param(node: Node, suffix: string): string | undefined {
    return node.params.find((p) => p === `${node.name}.${suffix}`);
  }

  /** The inference schedule of lower.ts, activations renamed `eval:X`, parameters shared. */
  lowerEval(inference: CompiledPlan) {
    const rename = (t: string) => (this.tensors.get(t)?.role === "param" ? t : `eval:${t}`);
    for (const t of inference.plan.tensors) {
      if (t.role === "param") continue;
      this.add(rename(t.name), t.shape, t.role === "logits" ? "activation" : t.role, {
        ...(t.aliasOf ? { aliasOf: rename(t.aliasOf) } : {}),
      });
    }
    for (const k of inference.plan.kernels) {
      const wgsl = inference.wgsl[k.name].replace(
        /(var<storage, \w+> \w+: array<f32>; \/\/ )(.+)$/gm,
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

  // ---- forward in training mode, loss, backward, updates ----

  context(node: Node): OpContext {
    const x = node.inputs[0];
    return {
      batch: this.batch,
      lossBatch: this.wholeBatch,
      tg: this.tg,
      foldBias: this.opts.fuse !== false,
      node,
      x,
      inShape: this.shapes.get(x)!,
      y: node.name,
      id: this.id(node.name),
      shapeOf: (value) => this.shapes.get(value)!,
      param: (suffix) => this.param(node, suffix),
      parts: (param) => this.parts.get(param)!,
      partNames: (param, base) => this.partNames(param, base),
      add: (name, shape, role, extra) => this.add(name, shape, role, extra ?? {}),
      tiles: (kind, shape) => tiles(this.opts, kind, shape),
      emit: (what, source) => this.emit(node.name, what, source),
    };
  }

  forward(node: Node, mode: ForwardMode) {
    if (mode === "view") return this.batched(node.name, node.name, "activation", node.inputs[0]);
    // An absorbed layer is computed by its anchor's kernels, into the group's output (fuse.ts).
    if (computedBy(this.fusion, node.name, this.fused.active)) return;
    const fused = fusedAt(this.fusion, node.name, this.fused.active);
    const output = fused?.output ?? node.name;
    this.batched(output, output, "activation");
    const c = this.context(node);
    const id = { ...c.id, group: fused?.members ?? [node.name] };
    if (fused?.prologue) {
      // the LRN's output is never stored; the arg-max the pool's backward reads is (lower-train-fused.ts)
      const argmax = this.fused.savedAs.get(fused.prologue.node);
      if (argmax) this.add(argmax, [this.batch, ...node.shape], "saved", { dtype: "u32" });
      const spec = { batch: this.batch, lrn: this.node(fused.prologue.node), pool: node, argmax };
      return this.emit(node.name, "fwd", lrnPoolTrainKernel(id, spec));
    }
    const dropout = fused?.dropout && this.fused.dropoutEpilogue(fused.dropout.node);
    lowerTrainForward({ ...c, id, y: output, activation: fused?.epilogue?.op, dropout });
  }

  loss(node: Node) {
    const logits = node.inputs[0];
    const classes = elementCount(this.shapes.get(logits)!);
    this.add(node.name, [1], "loss");
    this.add(`${node.name}:per_example`, [this.batch], "loss");
    this.add(`${node.name}:probs`, [this.batch, classes], "saved");
    this.emit(
      node.name,
      "loss",
      softmaxCrossEntropyKernel(this.id(node.name), {
        batch: this.batch,
        classes,
        tensors: {
          logits,
          labels: this.tg.labels,
          probs: `${node.name}:probs`,
          perExample: `${node.name}:per_example`,
          loss: node.name,
        },
      }),
    );
  }

  backward(node: Node, step: BackwardStep) {
    // A folded activation's derivative is applied by the kernel that produces its ∂L/∂y.
    if ([...this.folds.values()].some((f) => f.activation === node.name)) return;
    const dy = step.dy ?? "";
    const fold = this.folds.get(node.name);
    for (const term of step.dx) {
      if (fold) this.batched(fold.dx, fold.input, "gradient");
      else if (term.view) this.batched(term.term, term.input, "gradient", dy);
      else this.batched(term.term, term.input, "gradient");
    }
    if (step.dx.every((t) => t.view) && step.dparams.length === 0) return;
    // Only concat has several inputs, and it finds each input's term by slot itself.
    const c = {
      ...this.context(node),
      ...(fold ? { gradFold: { op: fold.op, y: fold.y } } : {}),
      // a relu fused with a dropout reads the dropout's output (lower-train-fused.ts)
      ...(node.attrs.op === "relu" ? { y: this.fused.savedAs.get(node.name) ?? node.name } : {}),
      argmaxSaved: node.attrs.op === "maxpool" && this.tensors.has(`${node.name}:argmax`),
    };
    lowerTrainBackward(c, { dy, dx: fold ? fold.dx : step.dx[0]?.term, step });
  }

  accumulate(value: string, terms: string[], output: string) {
    this.batched(output, value, "gradient");
    const shape = [this.batch, ...this.shapes.get(value)!];
    for (let j = 0; j < terms.length; j += ACCUMULATE_MAX_TERMS) {
      const chunk = terms.slice(j, j + ACCUMULATE_MAX_TERMS);
      this.emit(
        value,
        "accum",
        accumulateKernel(this.id(value), { shape, terms: chunk, out: output, into: j > 0 }),
      );
    }
  }

  update(param: string, layer: string) {
    const weights = this.partNames(param, param);
    const grads = this.partNames(param, this.tg.gradients[param]);
    const velocities = this.partNames(param, this.tg.velocities[param]);
    weights.forEach((w, j) =>
      this.emit(
        layer,
        "update",
        updateKernel(this.id(layer), {
          shape: this.tensors.get(w)!.shape,
          momentum: this.opts.momentum,
          weightDecay: this.opts.weightDecay,
          tensors: { w, v: velocities[j], g: grads[j], step: STEP_UNIFORM },
          micro: this.wholeBatch !== this.batch,
        }),
      ),
    );
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
