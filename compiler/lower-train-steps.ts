// The kernels of each step of a training graph (autodiff.ts): an op's forward in training mode and its
// backward step through the per-op tables of lower-train-ops.ts, as the fusion groups change them
// (fuse.ts, fuse-backward.ts, lower-train-fused.ts), and the steps that are no op's own: the loss, the
// sum of a value's gradient terms, and the SGD update per parameter part. compiler/lower-train.ts owns
// the tensors, the kernel names, the schedule and the plan; these functions declare tensors and emit
// kernels through it.
import type { BackwardStep, ForwardMode, TrainingGraph, TrainingStep } from "./autodiff.ts";
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, elementCount } from "./graph.ts";
import { computedBy, fusedAt, type Fusion } from "./fuse.ts";
import type { GradFold } from "./fuse-backward.ts";
import { type LowerOptions, tiles } from "./lower.ts";
import {
  type OpContext,
  type Part,
  STEP_UNIFORM,
  lowerTrainBackward,
  lowerTrainForward,
} from "./lower-train-ops.ts";
import { type TrainingFusion, lrnPoolTrainKernel } from "./lower-train-fused.ts";
import type { PlanTensor } from "./plan.ts";
import { ACCUMULATE_MAX_TERMS, accumulateKernel } from "./wgsl/backward/elementwise.ts";
import { softmaxCrossEntropyKernel } from "./wgsl/backward/softmax.ts";
import { updateKernel } from "./wgsl/backward/update.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelIdentity, KernelSource } from "./wgsl/common.ts";

/** What a step's lowering sees of the training lowering in progress (lower-train.ts). */
export interface StepLowering {
  readonly graph: Graph;
  readonly tg: TrainingGraph;
  readonly opts: LowerOptions & { momentum: number; weightDecay: number };
  /** Examples per run of the schedule: the micro-batch. */
  readonly batch: number;
  /** The whole batch (micro-steps × micro-batch): what the loss averages over. */
  readonly wholeBatch: number;
  /** Per-example shape of every graph value. */
  readonly shapes: Map<string, number[]>;
  /** Parameter → its row parts (one part, the parameter itself, when not split). */
  readonly parts: Map<string, Part[]>;
  readonly tensors: Map<string, PlanTensor>;
  /** The forward's fusion groups (fuse.ts), as in the inference plan the eval schedule comes from. */
  readonly fusion: Fusion;
  /** Producer node → the activation backward folded into its dx kernel (see gradFolds). */
  readonly folds: Map<string, GradFold>;
  /** The active dropouts, and what the backward reads where a fused forward stores no value. */
  readonly fused: TrainingFusion;
  /** Conv weight part → the forward's Winograd V holding the whole batch (see OpContext). */
  readonly wholeBatchV: Map<string, string>;
  add(name: string, shape: number[], role: PlanTensor["role"], extra?: Partial<PlanTensor>): void;
  /** A [batch, ...] tensor for graph value `value`. */
  batched(name: string, value: string, role: PlanTensor["role"], aliasOf?: string): void;
  /** The tensors of `base` (a parameter, gradient or velocity) part by part. */
  partNames(param: string, base: string): string[];
  emit(layer: string, what: string, source: KernelSource | TrainKernelSource): void;
  id(layer: string): KernelIdentity;
}

function internal(message: string, span?: Node["span"]): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, span));
}

/** Emits the kernels of one step of the training graph, declaring the tensors it writes. */
export function lowerStep(l: StepLowering, step: TrainingStep) {
  switch (step.kind) {
    case "forward":
      forward(l, nodeNamed(l, step.node), step.mode);
      break;
    case "loss":
      loss(l, nodeNamed(l, step.node));
      break;
    case "backward":
      backward(l, nodeNamed(l, step.node), step);
      break;
    case "accumulate":
      accumulate(l, step.value, step.terms, step.output);
      break;
    case "update":
      update(l, step.param, step.layer);
      break;
  }
}

function nodeNamed(l: StepLowering, name: string): Node {
  const n = l.graph.nodes.find((x) => x.name === name);
  if (!n) throw internal(`the training graph names an unknown node \`${name}\``);
  return n;
}

function nodeParam(node: Node, suffix: string): string | undefined {
  return node.params.find((p) => p === `${node.name}.${suffix}`);
}

function context(l: StepLowering, node: Node): OpContext {
  const x = node.inputs[0];
  return {
    batch: l.batch,
    lossBatch: l.wholeBatch,
    tg: l.tg,
    foldBias: l.opts.fuse !== false,
    node,
    x,
    inShape: l.shapes.get(x)!,
    y: node.name,
    id: l.id(node.name),
    shapeOf: (value) => l.shapes.get(value)!,
    param: (suffix) => nodeParam(node, suffix),
    parts: (param) => l.parts.get(param)!,
    partNames: (param, base) => l.partNames(param, base),
    add: (name, shape, role, extra) => l.add(name, shape, role, extra ?? {}),
    bytesOf: (name) => l.tensors.get(name)?.bytes,
    tiles: (kind, shape) => tiles(l.opts, kind, shape),
    winograd: l.opts.winograd !== false,
    maxBindingBytes: l.opts.maxBindingBytes,
    wholeBatchV: l.wholeBatchV,
    emit: (what, source) => l.emit(node.name, what, source),
  };
}

function forward(l: StepLowering, node: Node, mode: ForwardMode) {
  if (mode === "view") return l.batched(node.name, node.name, "activation", node.inputs[0]);
  // An absorbed layer is computed by its anchor's kernels, into the group's output (fuse.ts).
  if (computedBy(l.fusion, node.name, l.fused.active)) return;
  const fused = fusedAt(l.fusion, node.name, l.fused.active);
  const output = fused?.output ?? node.name;
  l.batched(output, output, "activation");
  const c = context(l, node);
  const id = { ...c.id, group: fused?.members ?? [node.name] };
  if (fused?.prologue) {
    // the LRN's output is never stored; the arg-max the pool's backward reads is (lower-train-fused.ts)
    const argmax = l.fused.savedAs.get(fused.prologue.node);
    if (argmax) l.add(argmax, [l.batch, ...node.shape], "saved", { dtype: "u32" });
    const spec = { batch: l.batch, lrn: nodeNamed(l, fused.prologue.node), pool: node, argmax };
    return l.emit(node.name, "fwd", lrnPoolTrainKernel(id, spec));
  }
  const dropout = fused?.dropout && l.fused.dropoutEpilogue(fused.dropout.node);
  lowerTrainForward({ ...c, id, y: output, activation: fused?.epilogue?.op, dropout });
}

function loss(l: StepLowering, node: Node) {
  const logits = node.inputs[0];
  const classes = elementCount(l.shapes.get(logits)!);
  l.add(node.name, [1], "loss");
  l.add(`${node.name}:per_example`, [l.batch], "loss");
  l.add(`${node.name}:probs`, [l.batch, classes], "saved");
  l.emit(
    node.name,
    "loss",
    softmaxCrossEntropyKernel(l.id(node.name), {
      batch: l.batch,
      classes,
      tensors: {
        logits,
        labels: l.tg.labels,
        probs: `${node.name}:probs`,
        perExample: `${node.name}:per_example`,
        loss: node.name,
      },
    }),
  );
}

function backward(l: StepLowering, node: Node, step: BackwardStep) {
  // A folded activation's derivative is applied by the kernel that produces its ∂L/∂y.
  if ([...l.folds.values()].some((f) => f.activation === node.name)) return;
  const dy = step.dy ?? "";
  const fold = l.folds.get(node.name);
  for (const term of step.dx) {
    if (fold) l.batched(fold.dx, fold.input, "gradient");
    else if (term.view) l.batched(term.term, term.input, "gradient", dy);
    else l.batched(term.term, term.input, "gradient");
  }
  if (step.dx.every((t) => t.view) && step.dparams.length === 0) return;
  // Only concat has several inputs, and it finds each input's term by slot itself.
  const c = {
    ...context(l, node),
    ...(fold ? { gradFold: { op: fold.op, y: fold.y } } : {}),
    // a relu fused with a dropout reads the dropout's output (lower-train-fused.ts)
    ...(node.attrs.op === "relu" ? { y: l.fused.savedAs.get(node.name) ?? node.name } : {}),
    argmaxSaved: node.attrs.op === "maxpool" && l.tensors.has(`${node.name}:argmax`),
  };
  lowerTrainBackward(c, { dy, dx: fold ? fold.dx : step.dx[0]?.term, step });
}

function accumulate(l: StepLowering, value: string, terms: string[], output: string) {
  l.batched(output, value, "gradient");
  const shape = [l.batch, ...l.shapes.get(value)!];
  for (let j = 0; j < terms.length; j += ACCUMULATE_MAX_TERMS) {
    const chunk = terms.slice(j, j + ACCUMULATE_MAX_TERMS);
    l.emit(value, "accum", accumulateKernel(l.id(value), { shape, terms: chunk, out: output, into: j > 0 }));
  }
}

function update(l: StepLowering, param: string, layer: string) {
  const weights = l.partNames(param, param);
  const grads = l.partNames(param, l.tg.gradients[param]);
  const velocities = l.partNames(param, l.tg.velocities[param]);
  weights.forEach((w, j) =>
    l.emit(
      layer,
      "update",
      updateKernel(l.id(layer), {
        shape: l.tensors.get(w)!.shape,
        momentum: l.opts.momentum,
        weightDecay: l.opts.weightDecay,
        tensors: { w, v: velocities[j], g: grads[j], step: STEP_UNIFORM },
        micro: l.wholeBatch !== l.batch,
      }),
    ),
  );
}
