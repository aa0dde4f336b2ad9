// autodiff: Graph → TrainingGraph, reverse-mode differentiation as plain data.
//
// The TrainingGraph lists, in execution order: every forward node in training mode, the loss, the
// backward step of each node in reverse graph order, and one update per trainable parameter. Lowering
// (compiler/lower-train.ts) turns each step into kernels; nothing here knows about WGSL.
//
// Tensor naming, shared with the plan and the Trainer:
//  - `grad:X`        ∂L/∂X for a graph value X (node output or, with `inputGradients`, an input) and
//                    for a parameter X (`grad:conv2.weight`); L is the batch-mean loss, so parameter
//                    gradients are batch means;
//  - `grad:X@C`      one consumer C's contribution to ∂L/∂X when X has several consumers
//                    (`grad:X@C#j` when C reads X in more than one input slot); summed into `grad:X`
//                    in consumer order (graph order, then slot order), so the sum is deterministic;
//  - `velocity:P`    parameter P's momentum buffer;
//  - `N:batch_mean`, `N:batch_invstd`  batch-norm N's batch statistics saved for its backward;
//  - `N:probs`, `N:per_example`        the loss N's softmax probabilities and per-example losses.
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, type OpKind, elementCount } from "./graph.ts";

/** How a node's training-mode forward differs from inference. */
export type ForwardMode =
  /** the same computation as inference */
  | "same"
  /** inverted dropout with a hashed mask (an active dropout layer) */
  | "dropout"
  /** a view of its input: flatten, and dropout not active in training */
  | "view"
  /** batch norm over batch statistics, updating the running averages */
  | "batch-stats";

export interface ForwardStep {
  kind: "forward";
  node: string;
  op: OpKind;
  mode: ForwardMode;
}

export interface LossStep {
  kind: "loss";
  node: string;
  logits: string;
  labels: string;
  /** The scalar batch-mean loss. */
  output: string;
}

export interface BackwardTerm {
  /** The input value this term is a gradient contribution to. */
  input: string;
  /** The input slot of the node. */
  slot: number;
  /** The tensor written: `grad:X` or `grad:X@node`. */
  term: string;
  /** The term is the node's output gradient itself (a view: flatten, identity dropout). */
  view: boolean;
}

export interface BackwardStep {
  kind: "backward";
  node: string;
  op: OpKind;
  /** ∂L/∂(this node's output); absent for the loss, whose own gradient is the seed 1. */
  dy?: string;
  /** Forward values and statistics this rule reads. */
  saved: string[];
  /** One term per input that needs a gradient. */
  dx: BackwardTerm[];
  /** Gradients of the node's trainable parameters. */
  dparams: { param: string; grad: string }[];
}

export interface AccumulateStep {
  kind: "accumulate";
  value: string;
  /** Summed left to right in this order. */
  terms: string[];
  output: string;
}

export interface UpdateStep {
  kind: "update";
  param: string;
  layer: string;
  grad: string;
  velocity: string;
}

export type TrainingStep = ForwardStep | LossStep | BackwardStep | AccumulateStep | UpdateStep;

export interface DropoutLayer {
  node: string;
  /**
   * The `layer` word of the mask hash: the index in graph.nodes of the SOURCE layer this node computes
   * (itself, unless a placement lowered a slice of it; see lower-train.ts `dropoutSource`).
   */
  layer: number;
  p: number;
  active: boolean;
  /** Elements per example of the source layer's output (the hash indexes example · perExample + j). */
  perExample: number;
  /** Local per-example element j is source element offset + j · stride (a channel / unit slice). */
  offset: number;
  stride: number;
}

export interface TrainingGraph {
  /** The forward graph, unchanged. */
  graph: Graph;
  steps: TrainingStep[];
  /** The integer labels tensor the loss reads. */
  labels: string;
  /** Forward values and statistics read by some backward step, in first-use order. */
  saved: string[];
  /** Graph value → its total gradient tensor (only values a gradient is computed for). */
  valueGradients: Record<string, string>;
  /** Trainable parameter → gradient tensor / velocity tensor. */
  gradients: Record<string, string>;
  velocities: Record<string, string>;
  dropout: DropoutLayer[];
}

export interface DifferentiateOptions {
  /** Dropout layers applied in training; default all. Others are the identity in training too. */
  activeDropout?: string[];
  /** Also compute ∂L/∂(graph inputs) (for gradient checks of a network's first layer). Default false. */
  inputGradients?: boolean;
}

/** The labels tensor. A colon never appears in a graph name, so this cannot collide with a value. */
export const LABELS = "input:labels";

// ---- the gradient rules: one per op ----

interface RuleContext {
  /** The node's forward mode in this training graph. */
  mode: ForwardMode;
}

interface GradientRule {
  /** Forward values (or statistics) the backward step reads, besides parameters and its output gradient. */
  saves(node: Node, ctx: RuleContext): string[];
  /** The input gradient is the output gradient itself (no kernel; the term is a view). */
  view?(ctx: RuleContext): boolean;
  /** The math, for the IR dump and the kernel headers' readers. */
  math: string;
}

const input0 = (n: Node) => [n.inputs[0]];
const output = (n: Node) => [n.name];
const nothing = () => [];

/** Exhaustive over OpKind: adding an op without a gradient rule fails to compile. */
export const gradientRules = {
  conv: {
    saves: input0,
    math: "dx = Σ_{oc,ky,kx} dy·w (gather over the flipped filter); dW = Σ_{n,oy,ox} dy·x; db = Σ_{n,oy,ox} dy",
  },
  dense: { saves: input0, math: "dx = dy·W; dW = dyᵀ·x; db = Σ_n dy" },
  relu: { saves: output, math: "dx = dy · [y > 0]" },
  tanh: { saves: output, math: "dx = dy · (1 − y²)" },
  sigmoid: { saves: output, math: "dx = dy · y · (1 − y)" },
  lrn: {
    saves: input0,
    math: "dx_i = dy_i·s_i^−β − 2α'β·x_i·Σ_{j∈W(i)} dy_j·x_j·s_j^(−β−1), s_j = k + α'Σ_{W(j)} x²",
  },
  maxpool: { saves: input0, math: "dx = Σ over windows whose first maximum (row-major scan) is x of dy" },
  avgpool: { saves: nothing, math: "dx = Σ over windows covering x of dy / (in-bounds count)" },
  dropout: {
    saves: nothing,
    view: (ctx) => ctx.mode === "view",
    math: "dx = dy · mask / (1 − p), mask regenerated from the hash of (seed, layer, index)",
  },
  batchnorm: {
    saves: (n, ctx) =>
      ctx.mode === "batch-stats" ? [n.inputs[0], `${n.name}:batch_mean`, `${n.name}:batch_invstd`] : [],
    math: "dx = γ·invstd/M·(M·dy − Σdy − x̂·Σdy·x̂); dγ = Σdy·x̂; dβ = Σdy (M = N·H·W)",
  },
  flatten: { saves: nothing, view: () => true, math: "dx = dy (a view)" },
  concat: { saves: nothing, math: "dx_j = dy[channels of input j]" },
  softmax: { saves: output, math: "dx = y · (dy − Σ_c dy·y)" },
  softmax_cross_entropy: {
    saves: (n) => [`${n.name}:probs`, LABELS],
    math: "dlogits = (p − onehot(label)) / N",
  },
} satisfies Record<OpKind, GradientRule>;

function internal(message: string): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, undefined));
}

function forwardMode(node: Node, activeDropout: Set<string> | undefined): ForwardMode {
  switch (node.attrs.op) {
    case "dropout":
      return !activeDropout || activeDropout.has(node.name) ? "dropout" : "view";
    case "flatten":
      return "view";
    case "batchnorm":
      return "batch-stats";
    default:
      return "same";
  }
}

/** Differentiates `graph`'s loss with respect to every trainable parameter. */
export function differentiate(graph: Graph, opts: DifferentiateOptions = {}): TrainingGraph {
  const loss = graph.nodes.find((n) => n.name === graph.loss);
  if (!loss || loss.attrs.op !== "softmax_cross_entropy")
    throw internal(`network \`${graph.name}\` has no softmax_cross_entropy loss to differentiate`);
  for (const d of opts.activeDropout ?? []) {
    const node = graph.nodes.find((n) => n.name === d);
    if (!node || node.attrs.op !== "dropout")
      throw internal(`activeDropout names \`${d}\`, not a dropout layer`);
  }
  const active = opts.activeDropout ? new Set(opts.activeDropout) : undefined;
  const trainable = new Set(graph.params.filter((p) => p.trainable).map((p) => p.name));
  const modes = new Map(graph.nodes.map((n) => [n.name, forwardMode(n, active)]));

  // Which values carry a gradient: downstream of a trainable parameter (or of an input, on request)…
  const requires = new Set<string>(opts.inputGradients ? graph.inputs.map((i) => i.name) : []);
  for (const n of graph.nodes) {
    if (n.params.some((p) => trainable.has(p)) || n.inputs.some((i) => requires.has(i))) requires.add(n.name);
  }
  // …and upstream of the loss (a layer nothing reads contributes nothing; its params get zero gradient).
  const reaches = new Set<string>([loss.name]);
  for (const n of [...graph.nodes].reverse()) {
    if (reaches.has(n.name)) for (const i of n.inputs) reaches.add(i);
  }
  const differentiated = (value: string) => requires.has(value) && reaches.has(value);

  // Consumers of each differentiated value, in graph order then slot order.
  const consumers = new Map<string, { node: string; slot: number }[]>();
  for (const n of graph.nodes) {
    if (!reaches.has(n.name)) continue;
    n.inputs.forEach((input, slot) => {
      if (!differentiated(input)) return;
      const list = consumers.get(input) ?? [];
      list.push({ node: n.name, slot });
      consumers.set(input, list);
    });
  }
  const termName = (value: string, node: string, slot: number) => {
    const list = consumers.get(value)!;
    if (list.length === 1) return `grad:${value}`;
    const sameNode = list.filter((c) => c.node === node).length > 1;
    return `grad:${value}@${node}${sameNode ? `#${slot}` : ""}`;
  };

  const steps: TrainingStep[] = [];
  for (const n of graph.nodes) {
    if (n === loss) continue;
    steps.push({ kind: "forward", node: n.name, op: n.attrs.op, mode: modes.get(n.name)! });
  }
  steps.push({ kind: "loss", node: loss.name, logits: loss.inputs[0], labels: LABELS, output: loss.name });

  const valueGradients: Record<string, string> = {};
  const gradients: Record<string, string> = {};
  const saved: string[] = [];
  const accumulate = (value: string) => {
    const list = consumers.get(value);
    if (!list) return;
    const terms = list.map((c) => termName(value, c.node, c.slot));
    valueGradients[value] = `grad:${value}`;
    if (terms.length > 1) steps.push({ kind: "accumulate", value, terms, output: `grad:${value}` });
  };

  for (const n of [...graph.nodes].reverse()) {
    if (!reaches.has(n.name) || !requires.has(n.name)) continue;
    const isLoss = n === loss;
    if (!isLoss) {
      accumulate(n.name);
      // Nothing downstream carries a gradient back (e.g. only a dead branch reads it).
      if (!valueGradients[n.name]) continue;
    }
    const mode = modes.get(n.name)!;
    const rule: GradientRule = gradientRules[n.attrs.op];
    const view = rule.view?.({ mode }) ?? false;
    const dx: BackwardTerm[] = n.inputs.flatMap((input, slot) =>
      differentiated(input) ? [{ input, slot, term: termName(input, n.name, slot), view }] : [],
    );
    const dparams = n.params
      .filter((p) => trainable.has(p))
      .map((param) => ({ param, grad: `grad:${param}` }));
    for (const d of dparams) gradients[d.param] = d.grad;
    const reads = dx.length + dparams.length > 0 ? rule.saves(n, { mode }) : [];
    for (const s of reads) if (!saved.includes(s)) saved.push(s);
    steps.push({
      kind: "backward",
      node: n.name,
      op: n.attrs.op,
      ...(isLoss ? {} : { dy: valueGradients[n.name] }),
      saved: reads,
      dx,
      dparams,
    });
  }
  if (opts.inputGradients) for (const i of graph.inputs) accumulate(i.name);

  const velocities: Record<string, string> = {};
  for (const p of graph.params) {
    if (!p.trainable) continue;
    // A parameter of a layer that does not reach the loss still decays: its gradient is zero.
    gradients[p.name] ??= `grad:${p.name}`;
    velocities[p.name] = `velocity:${p.name}`;
    steps.push({
      kind: "update",
      param: p.name,
      layer: p.layer,
      grad: gradients[p.name],
      velocity: velocities[p.name],
    });
  }

  const dropout = graph.nodes.flatMap((n, layer) =>
    n.attrs.op === "dropout"
      ? [
          {
            ...{ node: n.name, layer, p: n.attrs.p, active: modes.get(n.name) === "dropout" },
            ...{ perExample: elementCount(n.shape), offset: 0, stride: 1 },
          },
        ]
      : [],
  );
  return { graph, steps, labels: LABELS, saved, valueGradients, gradients, velocities, dropout };
}
