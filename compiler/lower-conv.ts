// The forward kernels of one conv weight part: Winograd F(2×2, 3×3) where it applies, pays and fits a
// binding, otherwise the direct kernel with the tuned tiles for its shape. compiler/lower.ts declares
// the tensors and emits the kernels this returns.
import type { Node } from "./graph.ts";
import type { PlanTensor } from "./plan.ts";
import type { Tiles, TunableKind, TunableShape } from "./tuning.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelIdentity } from "./wgsl/common.ts";
import { type ConvSpec, convKernel } from "./wgsl/conv.ts";
import type { ConvGeometry } from "./wgsl/conv-geometry.ts";
import { winogradApplies } from "./wgsl/winograd.ts";
import { winogradPlan } from "./wgsl/winograd-plan.ts";
import type { WeightPart } from "./weight-split.ts";

/** Winograd only where a convolution has at least this many output tiles per run (batch × tiles). */
const WINOGRAD_MIN_TILES = 16;

/**
 * Whether Winograd pays for a convolution with this output ([C, OH, OW]) at this batch. Too few 2×2
 * tiles and the transforms' dispatches cost more than the GEMM saves (measured on lavapipe:
 * alexnet-67's 3×3 maps at batch 1, 4 tiles, ran slower than the direct kernel; at batch 8, 32
 * tiles, faster).
 */
export function winogradPays(batch: number, output: readonly number[]): boolean {
  const [, oh, ow] = output;
  return batch * Math.ceil(oh / 2) * Math.ceil(ow / 2) >= WINOGRAD_MIN_TILES;
}

/** The tensors a Winograd forward of kernel `name` on weight part `weight` names U, V and M. */
function winogradScratchNames(name: string, weight: string) {
  return { u: `${weight}.winograd`, v: `${name}.winograd_v`, m: `${name}.winograd_m` };
}

type ConvAttrs = Extract<Node["attrs"], { op: "conv" }>;

/** What a conv part's lowering sees of the forward lowering in progress (lower.ts). */
export interface ConvContext {
  batch: number;
  maxBindingBytes: number;
  /** Winograd is allowed: the `winograd` option is not false and tensors are stored as f32. */
  winograd: boolean;
  /** The node's input, per example. */
  input: number[];
  /** The tiles of a tunable kernel of this shape (lower.ts `tiles`: the tuning table, recorded). */
  tiles(kind: TunableKind, shape: TunableShape): Tiles;
}

/** A conv part's kernels in order, and the tensors they need besides the node's own. */
export interface ConvKernels {
  /** Winograd's transformed weights U (`derived`), and its step-local scratch V and M. */
  tensors: Omit<PlanTensor, "device">[];
  /** Winograd's V when one pass transformed every image: after the forward it holds the whole batch's Bᵀ x B. */
  wholeBatchV?: string;
  kernels: {
    name: string;
    source: TrainKernelSource;
    /** The direct convolution's FLOPs a kernel stands for, for effective rates. */
    equivalentFlops?: number;
    /** Run once per parameter upload (the plan's `prepare`), outside the schedule. */
    once?: boolean;
  }[];
}

/** A conv node's forward kernels for one weight part. */
export function convKernels(
  c: ConvContext,
  id: KernelIdentity,
  node: Node,
  attrs: ConvAttrs,
  part: WeightPart,
  rest: Pick<ConvSpec, "tensors" | "activation">,
): ConvKernels {
  return (
    winogradConv(c, id, node, attrs, part, rest) ?? {
      tensors: [],
      kernels: [{ name: id.name, source: directConv(c, id, node, attrs, part, rest) }],
    }
  );
}

/** A conv node's forward kernel for one weight part, with the tuned tiles for its shape. */
function directConv(
  c: ConvContext,
  id: KernelIdentity,
  node: Node,
  attrs: ConvAttrs,
  part: WeightPart,
  rest: Pick<ConvSpec, "tensors" | "activation">,
): TrainKernelSource {
  const shape = convGeometry(c, node, attrs, part);
  return convKernel(id, { ...shape, ...c.tiles("conv", shape), ...rest });
}

/** A conv node's geometry for one weight part: what its forward kernels compute. */
function convGeometry(c: ConvContext, node: Node, attrs: ConvAttrs, part: WeightPart): ConvGeometry {
  return {
    ...{ batch: c.batch, input: c.input, output: node.shape },
    ...{ kernel: attrs.kernel, stride: attrs.stride, pad: attrs.pad, groups: attrs.groups },
    ...{ outBase: part.rowBase, outCount: part.rowCount },
  };
}

/**
 * Lowers one conv weight part with Winograd F(2×2, 3×3) when it applies: the transformed weights U
 * become a `derived` tensor made by a prepare kernel, V and M step-local scratch. Undefined when it
 * does not apply or its scratch would not fit a binding: the direct kernel then.
 */
function winogradConv(
  c: ConvContext,
  id: KernelIdentity,
  node: Node,
  attrs: ConvAttrs,
  part: WeightPart,
  rest: Pick<ConvSpec, "tensors" | "activation">,
): ConvKernels | undefined {
  if (!c.winograd) return undefined;
  const scratch = winogradScratchNames(id.name, part.tensor);
  const spec = {
    ...convGeometry(c, node, attrs, part),
    activation: rest.activation,
    tensors: { ...rest.tensors, ...scratch },
  };
  if (!winogradApplies(spec)) return undefined;
  if (!winogradPays(c.batch, node.shape)) return undefined;
  let planned;
  try {
    planned = winogradPlan(id, spec, { maxBindingBytes: c.maxBindingBytes });
  } catch {
    return undefined; // one image's scratch exceeds a binding: the direct kernel needs none
  }
  const { directFlops, passes } = planned;
  return {
    tensors: planned.scratch.map((s) => ({
      name: s.name,
      shape: [s.bytes / 4],
      dtype: "f32" as const,
      role: s.lifetime === "weights" ? ("derived" as const) : ("activation" as const),
      bytes: s.bytes,
    })),
    kernels: planned.kernels.map((k) => ({
      name: k.id.name,
      source: k.source,
      // the direct convolution's FLOPs, spread over the passes' GEMMs, for effective rates
      equivalentFlops: k.stage === "gemm" ? directFlops / passes : 0,
      once: k.once,
    })),
    wholeBatchV: passes === 1 ? scratch.v : undefined,
  };
}
