// fuse-backward: the backward half of fusion (fuse.ts does the forward). An activation's backward
// kernel (∂L/∂x = ∂L/∂y · act'(y), element by element) folds into the kernel that produces its
// ∂L/∂y: that kernel applies the derivative as it stores (wgsl/backward/util.ts GradEpilogue), so
// neither the extra dispatch nor the ∂L/∂y tensor exists. And a conv / dense bias gradient
// (db = Σ dy per output channel) folds into the layer's weight-gradient kernel: it is that GEMM
// with a column of ones for the input, so the same dispatch computes it (wgsl/backward
// conv-blocked.ts, dense.ts). Chosen per training graph, before lowering.
import type { BackwardStep, TrainingGraph } from "./autodiff.ts";
import type { ActivationOp } from "./graph.ts";
import { activationOps } from "./check/attributes.ts";

/** An activation backward step folded into the kernel that produces its ∂L/∂y (GradEpilogue). */
export interface GradFold {
  /** The activation node, whose backward step emits nothing. */
  activation: string;
  op: ActivationOp;
  /** The activation's saved output. */
  y: string;
  /** ∂L/∂(the activation's input): what the producer's kernel now stores, and that input. */
  dx: string;
  input: string;
}

/** Ops whose dx kernel stores through a GradEpilogue (wgsl/backward: one store per dx element). */
const FOLDS_INTO = new Set<string>(["conv", "dense", "lrn", "maxpool", "avgpool", "dropout"]);

/**
 * Producer → fold, for every activation whose ∂L/∂y is written by exactly one backward kernel (its
 * only consumer's dx; no accumulation, no view) of an op in FOLDS_INTO: that kernel multiplies by
 * the activation's derivative as it stores, and ∂L/∂y itself is never materialised. The numbers are
 * those of the two kernels: the same expression on the same value (activationGradExpr).
 */
export function gradFolds(tg: TrainingGraph): Map<string, GradFold> {
  const producer = new Map<string, BackwardStep>();
  for (const s of tg.steps)
    if (s.kind === "backward") for (const t of s.dx) if (!t.view) producer.set(t.term, s);
  const folds = new Map<string, GradFold>();
  for (const s of tg.steps) {
    if (s.kind !== "backward" || !ACTIVATIONS.has(s.op) || !s.dy || s.dx.length !== 1) continue;
    const k = producer.get(s.dy);
    if (!k || !FOLDS_INTO.has(k.op) || k.dx.length !== 1 || folds.has(k.node)) continue;
    const [term] = s.dx;
    folds.set(k.node, {
      activation: s.node,
      op: s.op as ActivationOp,
      y: s.node,
      dx: term.term,
      input: term.input,
    });
  }
  return folds;
}

const ACTIVATIONS = new Set<string>(activationOps);

/** A conv / dense bias gradient computed by the layer's weight-gradient kernel(s). */
export interface BiasFold {
  layer: string;
  op: "conv" | "dense";
  /** The gradients the weight-gradient kernels store: ∂L/∂W (part by part) and ∂L/∂b. */
  weightGrad: string;
  biasGrad: string;
}

/**
 * The step's bias fold: when it trains both the weight and the bias of a conv / dense layer. A
 * trained bias beside a frozen weight has no weight-gradient kernel to ride in and keeps its own.
 */
export function biasFold(step: BackwardStep): BiasFold | undefined {
  if (step.op !== "conv" && step.op !== "dense") return undefined;
  const grad = (suffix: string) => step.dparams.find((d) => d.param === `${step.node}.${suffix}`)?.grad;
  const [weightGrad, biasGrad] = [grad("weight"), grad("bias")];
  return weightGrad && biasGrad ? { layer: step.node, op: step.op, weightGrad, biasGrad } : undefined;
}

export function biasFolds(tg: TrainingGraph): BiasFold[] {
  return tg.steps.flatMap((s) => (s.kind === "backward" ? (biasFold(s) ?? []) : []));
}

/** Where a conv's bias gradient is summed (lowered later: lower-train-winograd.ts decides which). */
const WINOGRAD_OR_DIRECT =
  "the conv GEMM's column of ones; for a Winograd weight gradient, the GEMM's sum of the transformed ∂L/∂y at ξ = 5";

/** `--explain-fusion`, backward half: one line per fold. */
export function explainGradFolds(folds: ReadonlyMap<string, GradFold>, biases: readonly BiasFold[]): string {
  const lines = [...folds].map(
    ([producer, f]) =>
      `${f.activation}'s derivative (${f.op}) folded into ${producer}'s backward, which stores ${f.dx}`,
  );
  const biasLines = biases.map(
    (b) =>
      `${b.layer}'s bias gradient folded into its weight-gradient kernel (${b.op === "conv" ? WINOGRAD_OR_DIRECT : "the dense GEMM's column of ones"}), which stores ${b.biasGrad} beside ${b.weightGrad}`,
  );
  return [
    `backward: ${folds.size} activation derivative(s) folded`,
    ...lines,
    `backward: ${biases.length} bias gradient(s) folded (no separate bgrad kernel)`,
    ...biasLines,
  ].join("\n");
}
