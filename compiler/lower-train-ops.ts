// Per-op kernel choices of the training lowering, as two tables keyed by OpKind (exhaustive through
// `satisfies`): how each op runs forward in training mode, and which kernels compute its backward
// step. compiler/lower-train.ts owns the tensors, the schedule and the plan; these functions only
// declare an op's own extra tensors and emit its kernels through the context.
import type { BackwardStep, TrainingGraph } from "./autodiff.ts";
import { DiagnosticError, diag } from "./diagnostics.ts";
import { biasFold } from "./fuse-backward.ts";
import { winogradDataGrad, winogradForward, winogradWeightGrad } from "./lower-train-winograd.ts";
import type { Tiles, TunableKind, TunableShape } from "./tuning.ts";
import type { GradEpilogue } from "./wgsl/backward/util.ts";
import { type ActivationOp, type Node, type NodeAttrs, type OpKind, elementCount } from "./graph.ts";
import type { PlanTensor } from "./plan.ts";
import { activationKernel } from "./wgsl/activation.ts";
import {
  batchNormGradKernel,
  batchNormStatsKernel,
  batchNormTrainKernel,
} from "./wgsl/backward/batchnorm.ts";
import { channelSumKernel, convDataGradKernel, convWeightGradKernel } from "./wgsl/backward/conv.ts";
import { denseDataGradKernel, denseWeightGradKernel } from "./wgsl/backward/dense.ts";
import type { DropoutEpilogue } from "./wgsl/backward/elementwise.ts";
import { activationGradKernel, concatGradKernel, dropoutKernel } from "./wgsl/backward/elementwise.ts";
import { lrnGradKernel } from "./wgsl/backward/lrn.ts";
import { poolArgmaxKernel, poolGradKernel } from "./wgsl/backward/pool.ts";
import { softmaxCrossEntropyGradKernel, softmaxGradKernel } from "./wgsl/backward/softmax.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelIdentity, KernelSource } from "./wgsl/common.ts";
import { concatKernel } from "./wgsl/concat.ts";
import { convKernel } from "./wgsl/conv.ts";
import { denseKernel } from "./wgsl/dense.ts";
import { lrnKernel } from "./wgsl/lrn.ts";
import { poolKernel } from "./wgsl/pool.ts";
import { softmaxKernel } from "./wgsl/softmax.ts";

/** The per-step uniform tensor (see plan.ts `training.uniform`). */
export const STEP_UNIFORM = "input:step";

/** A contiguous run of a weight's output rows (the whole weight when it is not split). */
export interface Part {
  tensor: string;
  rowBase: number;
  rowCount: number;
}

/** What an op's lowering sees of the lowering in progress. */
export interface OpContext {
  /** Examples per run of the schedule (the micro-batch when the plan is micro-batched). */
  batch: number;
  /** The whole batch the loss averages over (`batch` × micro-steps): the loss gradient's 1/N. */
  lossBatch: number;
  tg: TrainingGraph;
  node: Node;
  /** The node's first input and its per-example shape. */
  x: string;
  inShape: number[];
  /** The node's output tensor (a fused anchor's: its group's output). */
  y: string;
  /** A conv / dense anchor's fused activation epilogue (fuse.ts), if any. */
  activation?: ActivationOp;
  /** A conv / dense anchor's fused dropout (fuse.ts): its mask, applied after the activation. */
  dropout?: DropoutEpilogue;
  /** A max-pool whose forward kernel (an LRN + max-pool group, fuse.ts) wrote `<node>:argmax`. */
  argmaxSaved?: boolean;
  /** Backward: the activation derivative the dx kernel applies as it stores (lower-train.ts gradFolds). */
  gradFold?: GradEpilogue;
  /** Fusion is on: a conv / dense bias gradient rides in the weight-gradient kernel (fuse-backward.ts biasFold). */
  foldBias: boolean;
  id: KernelIdentity;
  shapeOf(value: string): number[];
  /** `<node>.<suffix>` when the node owns that parameter. */
  param(suffix: string): string | undefined;
  /** A parameter's row parts, and the names of a same-split tensor `base` (gradient, velocity). */
  parts(param: string): Part[];
  partNames(param: string, base: string): string[];
  add(name: string, shape: number[], role: PlanTensor["role"], extra?: Pick<PlanTensor, "dtype">): void;
  /** The bytes of a tensor declared so far (undefined when there is none of that name). */
  bytesOf(name: string): number | undefined;
  /** The tiles of a tunable kernel of this shape (lower.ts `tiles`: the tuning table, recorded). */
  tiles(kind: TunableKind, shape: TunableShape): Tiles;
  /** 3×3 stride-1 convolutions may run as Winograd F(2×2, 3×3) (the `winograd` option is not false). */
  winograd: boolean;
  maxBindingBytes: number;
  /** Conv weight part → the forward's Winograd V that holds every image's input transform (lower-train-winograd.ts). */
  wholeBatchV: Map<string, string>;
  emit(what: string, source: KernelSource | TrainKernelSource): void;
}

/** The backward step's tensors: ∂L/∂y, and ∂L/∂(first input) when that input needs a gradient. */
export interface BackwardTensors {
  dy: string;
  dx?: string;
  step: BackwardStep;
}

type AttrsOf<K extends OpKind> = NodeAttrs & { op: K };
type ForwardRule<K extends OpKind> = (attrs: AttrsOf<K>, c: OpContext) => void;
type BackwardRule<K extends OpKind> = (attrs: AttrsOf<K>, c: OpContext, t: BackwardTensors) => void;

function internal(message: string, node: Node): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, node.span));
}

const notLowered = (what: string) => (attrs: NodeAttrs, c: OpContext) => {
  throw internal(`\`${c.node.name}\` (${attrs.op}) ${what}`, c.node);
};

/** The mask-hash words of the node's dropout: its source layer and slice (autodiff.ts DropoutLayer). */
const dropoutSource = (c: OpContext) => {
  const { layer, perExample, offset, stride } = c.tg.dropout.find((d) => d.node === c.node.name)!;
  return { layer, perExample, offset, stride };
};

/** A conv node's kernel shape for one weight part (tuning.ts TunableShape). */
function convShape(attrs: AttrsOf<"conv">, c: OpContext, part: Part): TunableShape {
  return {
    ...{ batch: c.batch, input: c.inShape, output: c.node.shape, groups: attrs.groups },
    ...{ kernel: attrs.kernel, stride: attrs.stride, pad: attrs.pad },
    ...{ outBase: part.rowBase, outCount: part.rowCount },
  };
}

/** conv / dense: one kernel per weight part (each computes its rows of the output). */
function forwardGemm(attrs: AttrsOf<"conv"> | AttrsOf<"dense">, c: OpContext) {
  const weight = c.param("weight")!;
  const b = attrs.bias ? c.param("bias") : undefined;
  const parts = c.parts(weight);
  for (const [j, part] of parts.entries()) {
    const tensors = { x: c.x, w: part.tensor, b, y: c.y };
    if (attrs.op === "conv" && winogradForward(attrs, c, part, tensors, parts.length > 1 ? j : undefined))
      continue;
    c.emit(
      "fwd",
      attrs.op === "conv"
        ? convKernel(c.id, {
            ...convShape(attrs, c, part),
            ...c.tiles("conv", convShape(attrs, c, part)),
            tensors,
            activation: c.activation,
            dropout: c.dropout,
          })
        : denseKernel(c.id, {
            ...{ batch: c.batch, inFeatures: elementCount(c.inShape), outFeatures: c.node.shape[0] },
            ...{ groups: attrs.groups, rowBase: part.rowBase, rowCount: part.rowCount, tensors },
            activation: c.activation,
            dropout: c.dropout,
          }),
    );
  }
}

/** How each op runs in the training forward pass (views never get here: they have no kernel). */
export const trainForward = {
  conv: forwardGemm,
  dense: forwardGemm,
  relu: (a, c) => activation(a.op, c),
  tanh: (a, c) => activation(a.op, c),
  sigmoid: (a, c) => activation(a.op, c),
  lrn: (attrs, c) =>
    c.emit("fwd", lrnKernel(c.id, { batch: c.batch, shape: c.inShape, attrs, tensors: { x: c.x, y: c.y } })),
  maxpool: (a, c) => pool(a, c),
  avgpool: (a, c) => pool(a, c),
  dropout: (attrs, c) =>
    c.emit(
      "fwd",
      dropoutKernel(c.id, {
        ...{ direction: "forward", shape: [c.batch, ...c.inShape], p: attrs.p, ...dropoutSource(c) },
        tensors: { x: c.x, y: c.y, step: STEP_UNIFORM },
      }),
    ),
  batchnorm: (attrs, c) => {
    const [mean, invstd] = [`${c.node.name}:batch_mean`, `${c.node.name}:batch_invstd`];
    c.add(mean, [c.inShape[0]], "saved");
    c.add(invstd, [c.inShape[0]], "saved");
    const [runningMean, runningVar] = [c.param("running_mean"), c.param("running_var")];
    if (!runningMean || !runningVar) throw internal(`\`${c.node.name}\` lacks running statistics`, c.node);
    c.emit(
      "stats",
      batchNormStatsKernel(c.id, {
        ...{ batch: c.batch, shape: c.inShape, eps: attrs.eps, momentum: attrs.momentum },
        tensors: { x: c.x, mean, invstd, runningMean, runningVar },
      }),
    );
    const tensors = { x: c.x, mean, invstd, gamma: c.param("weight"), beta: c.param("bias"), y: c.y };
    c.emit("fwd", batchNormTrainKernel(c.id, { batch: c.batch, shape: c.inShape, tensors }));
  },
  concat: (_, c) => {
    let offset = 0;
    for (const input of c.node.inputs) {
      const shape = c.shapeOf(input);
      c.emit(
        "fwd",
        concatKernel(c.id, {
          ...{ batch: c.batch, input: shape, outChannels: c.node.shape[0], channelOffset: offset },
          tensors: { x: input, y: c.y },
        }),
      );
      offset += shape[0];
    }
  },
  softmax: (_, c) =>
    c.emit("fwd", softmaxKernel(c.id, { batch: c.batch, shape: c.inShape, tensors: { x: c.x, y: c.y } })),
  flatten: notLowered("is a view and needs no forward kernel"),
  softmax_cross_entropy: notLowered("is lowered as the loss"),
} satisfies { [K in OpKind]: ForwardRule<K> };

function activation(op: "relu" | "tanh" | "sigmoid", c: OpContext) {
  const tensors = { x: c.x, y: c.y };
  c.emit("fwd", activationKernel(c.id, { op, shape: [c.batch, ...c.inShape], tensors }));
}

function pool(attrs: AttrsOf<"maxpool"> | AttrsOf<"avgpool">, c: OpContext) {
  c.emit(
    "fwd",
    poolKernel(c.id, {
      ...{ op: attrs.op, batch: c.batch, input: c.inShape, output: c.node.shape },
      ...{ window: attrs.window, stride: attrs.stride, pad: attrs.pad, tensors: { x: c.x, y: c.y } },
    }),
  );
}

/**
 * conv / dense backward, per weight part j: dgrad (part 0 writes dx, later parts add to it, in
 * order) and wgrad into the gradient's part j. The bias gradient is the wgrad GEMM's column of
 * ones: with fusion each part's wgrad kernel also writes its rows of it; without, a kernel of its own.
 */
function backwardGemm(attrs: AttrsOf<"conv"> | AttrsOf<"dense">, c: OpContext, t: BackwardTensors) {
  const { dy, dx, step } = t;
  const weight = c.param("weight")!;
  const gradParts = c.partNames(weight, `grad:${weight}`);
  const trainsWeight = step.dparams.some((d) => d.param === weight);
  const bias = step.dparams.find((d) => d.param === c.param("bias"));
  const db = c.foldBias ? biasFold(step)?.biasGrad : undefined;
  const last = c.parts(weight).length - 1;
  c.parts(weight).forEach((part, j) => {
    const fold = j === last ? c.gradFold : undefined; // after every part has added its rows
    const wgrad = { x: c.x, dy, dw: gradParts[j], ...(db ? { db } : {}) };
    if (attrs.op === "conv") {
      const spec = convShape(attrs, c, part);
      const tensors = { dy, w: part.tensor, dx: dx! };
      if (dx && !winogradDataGrad(attrs, c, part, { dy, dx, fold })) {
        const dgrad = { ...spec, ...c.tiles("conv.dgrad", spec), accumulate: j > 0, fold, tensors };
        c.emit("dgrad", convDataGradKernel(c.id, dgrad));
      }
      if (trainsWeight && !winogradWeightGrad(attrs, c, part, wgrad))
        c.emit(
          "wgrad",
          convWeightGradKernel(c.id, { ...spec, ...c.tiles("conv.wgrad", spec), tensors: wgrad }),
        );
    } else {
      const spec = {
        ...{ batch: c.batch, inFeatures: elementCount(c.inShape), outFeatures: c.node.shape[0] },
        ...{ groups: attrs.groups, rowBase: part.rowBase, rowCount: part.rowCount },
      };
      const tensors = { dy, w: part.tensor, dx: dx! };
      if (dx) c.emit("dgrad", denseDataGradKernel(c.id, { ...spec, accumulate: j > 0, fold, tensors }));
      if (trainsWeight) c.emit("wgrad", denseWeightGradKernel(c.id, { ...spec, tensors: wgrad }));
    }
  });
  if (bias && !db) {
    const spec = { batch: c.batch, shape: c.node.shape, layer: c.node.name, op: `${attrs.op}.bgrad` };
    c.emit("bgrad", channelSumKernel(c.id, { ...spec, tensors: { dy, out: bias.grad } }));
  }
}

/** The kernels of each op's backward step (views — flatten, identity dropout — never get here). */
export const trainBackward = {
  conv: backwardGemm,
  dense: backwardGemm,
  relu: (a, c, t) => activationGrad(a.op, c, t),
  tanh: (a, c, t) => activationGrad(a.op, c, t),
  sigmoid: (a, c, t) => activationGrad(a.op, c, t),
  lrn: (attrs, c, { dy, dx }) =>
    c.emit(
      "grad",
      lrnGradKernel(c.id, {
        ...{ batch: c.batch, shape: c.inShape, attrs, fold: c.gradFold },
        tensors: { x: c.x, dy, dx: dx! },
      }),
    ),
  maxpool: (a, c, t) => poolGrad(a, c, t),
  avgpool: (a, c, t) => poolGrad(a, c, t),
  dropout: (attrs, c, { dy, dx }) =>
    c.emit(
      "grad",
      dropoutKernel(c.id, {
        ...{ direction: "backward", shape: [c.batch, ...c.inShape], p: attrs.p, ...dropoutSource(c) },
        tensors: { x: dy, y: dx!, step: STEP_UNIFORM },
        fold: c.gradFold,
      }),
    ),
  batchnorm: (_, c, { dy, dx, step }) => {
    const gamma = c.param("weight");
    const dgamma = step.dparams.find((d) => d.param === gamma)?.grad;
    const dbeta = step.dparams.find((d) => d.param === c.param("bias"))?.grad;
    // Σdy and Σdy·x̂ are dβ and dγ; without trainable β / γ they still feed dx, in scratch tensors.
    const sumDy = dbeta ?? `${c.node.name}:sum_dy`;
    const sumDyXhat = dgamma ?? `${c.node.name}:sum_dy_xhat`;
    if (!dbeta) c.add(sumDy, [c.inShape[0]], "gradient");
    if (!dgamma) c.add(sumDyXhat, [c.inShape[0]], "gradient");
    const [mean, invstd] = [`${c.node.name}:batch_mean`, `${c.node.name}:batch_invstd`];
    c.emit(
      "sums",
      channelSumKernel(c.id, {
        ...{ batch: c.batch, shape: c.inShape, layer: c.node.name, op: "batchnorm.sums" },
        tensors: { dy, out: sumDy },
        normalised: { x: c.x, mean, invstd, out: sumDyXhat },
      }),
    );
    const tensors = { x: c.x, dy, mean, invstd, gamma, sumDy, sumDyXhat, dx: dx! };
    if (dx) c.emit("grad", batchNormGradKernel(c.id, { batch: c.batch, shape: c.inShape, tensors }));
  },
  concat: (_, c, { dy, step }) => {
    let offset = 0;
    c.node.inputs.forEach((input, slot) => {
      const shape = c.shapeOf(input);
      const term = step.dx.find((d) => d.slot === slot);
      const spec = { batch: c.batch, input: shape, outChannels: c.node.shape[0], channelOffset: offset };
      if (term) c.emit("grad", concatGradKernel(c.id, { ...spec, tensors: { dy, dx: term.term } }));
      offset += shape[0];
    });
  },
  softmax: (_, c, { dy, dx }) =>
    c.emit(
      "grad",
      softmaxGradKernel(c.id, { batch: c.batch, shape: c.inShape, tensors: { y: c.y, dy, dx: dx! } }),
    ),
  softmax_cross_entropy: (_, c, { dx }) =>
    c.emit(
      "grad",
      softmaxCrossEntropyGradKernel(c.id, {
        ...{ batch: c.batch, classes: elementCount(c.inShape), lossBatch: c.lossBatch },
        tensors: { probs: `${c.node.name}:probs`, labels: c.tg.labels, dlogits: dx! },
      }),
    ),
  flatten: notLowered("has a view as its gradient and needs no backward kernel"),
} satisfies { [K in OpKind]: BackwardRule<K> };

function activationGrad(op: "relu" | "tanh" | "sigmoid", c: OpContext, { dy, dx }: BackwardTensors) {
  const tensors = { y: c.y, dy, dx: dx! };
  c.emit("grad", activationGradKernel(c.id, { op, shape: [c.batch, ...c.inShape], tensors }));
}

function poolGrad(attrs: AttrsOf<"maxpool"> | AttrsOf<"avgpool">, c: OpContext, { dy, dx }: BackwardTensors) {
  const shapes = { batch: c.batch, input: c.inShape, output: c.node.shape };
  const geometry = { window: attrs.window, stride: attrs.stride, pad: attrs.pad };
  if (attrs.op === "avgpool") {
    const spec = { op: attrs.op, ...shapes, ...geometry, fold: c.gradFold };
    c.emit("grad", poolGradKernel(c.id, { ...spec, tensors: { dy, dx: dx! } }));
    return;
  }
  // Max pooling: each window's arg-max is found once (one pass over the windows), so the gather
  // over the ≤ ⌈k/s⌉² windows covering an input reads an index each rather than rescanning them.
  const argmax = `${c.node.name}:argmax`;
  if (!c.argmaxSaved) {
    c.add(argmax, [c.batch, ...c.node.shape], "saved", { dtype: "u32" });
    c.emit("argmax", poolArgmaxKernel(c.id, { ...shapes, ...geometry, tensors: { x: c.x, argmax } }));
  }
  c.emit(
    "grad",
    poolGradKernel(c.id, {
      ...{ op: attrs.op, ...shapes, ...geometry, fold: c.gradFold },
      tensors: { argmax, dy, dx: dx! },
    }),
  );
}

/** Dispatches on the node's op (the tables' key types make the casts safe). */
export function lowerTrainForward(c: OpContext): void {
  (trainForward[c.node.attrs.op] as ForwardRule<OpKind>)(c.node.attrs as AttrsOf<OpKind>, c);
}

export function lowerTrainBackward(c: OpContext, t: BackwardTensors): void {
  (trainBackward[c.node.attrs.op] as BackwardRule<OpKind>)(c.node.attrs as AttrsOf<OpKind>, c, t);
}
