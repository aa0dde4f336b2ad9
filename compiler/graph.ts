// The checked Graph IR: plain, serialisable data produced by compiler/check from the AST.
// Every later stage (autodiff, fuse, place, memory, wgsl, onnx export) reads this and never the AST.
//
// Conventions:
//  - Shapes exclude the batch dimension: feature maps are [C, H, W], vectors are [N].
//  - Physical activation layout at runtime is NCHW with the batch first (see compiler/plan.ts).
//  - Towers: a tensor's channel dimension (dim 0) may be split evenly over the towers; tower t
//    holds channels [t·C/T, (t+1)·C/T). The full tensor is the concatenation of the tower slices.
import type { Span } from "../grammar/ast.ts";

/** Where a tensor's values live across the towers. */
export type TowerLayout =
  /** The whole tensor is available to every tower (the network input). */
  | { kind: "replicated" }
  /** Channel dimension split evenly over `towers` towers. */
  | { kind: "split"; towers: number }
  /** The whole tensor lives on one tower only (the paper's fc8 on GPU 0). */
  | { kind: "on"; tower: number };

/**
 * How a conv/dense layer uses the towers:
 *  - `local`: reads only its own tower's slice of a split input (grouped, groups = towers);
 *  - `cross`: reads all towers' maps, output split over the towers;
 *  - `on`: reads all towers' maps, output whole on one tower.
 */
export type TowerMode = { kind: "local" } | { kind: "cross" } | { kind: "on"; tower: number };

/** Padding in pixels per side, after resolving `round: ceil` into extra bottom/right padding. */
export interface Padding2D {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

export type Init = { kind: "normal"; mean: number; std: number } | { kind: "constant"; value: number };

export interface ConvAttrs {
  op: "conv";
  filters: number;
  kernel: [number, number];
  stride: [number, number];
  pad: Padding2D;
  round: "floor" | "ceil";
  towers: TowerMode;
  /** Derived from `towers`: 1 for cross/on, T for local. */
  groups: number;
  bias: boolean;
}

export interface DenseAttrs {
  op: "dense";
  units: number;
  towers: TowerMode;
  groups: number;
  bias: boolean;
}

export interface PoolAttrs {
  op: "maxpool" | "avgpool";
  window: [number, number];
  stride: [number, number];
  pad: Padding2D;
  round: "floor" | "ceil";
}

/**
 * Local response normalisation over adjacent channels at the same position, within each tower:
 *   b_c = a_c / (k + α' Σ_{j=max(lo, c−⌊n/2⌋)}^{min(hi, c+⌊n/2⌋)} a_j²)^β
 * where [lo, hi] is the channel range of c's tower (`groups` = towers for a split input), and
 * α' = α (paper, `alphaOf: "sum"`) or α/n (Caffe/ONNX/PyTorch, `alphaOf: "mean"`).
 */
export interface LrnAttrs {
  op: "lrn";
  size: number;
  k: number;
  alpha: number;
  beta: number;
  alphaOf: "sum" | "mean";
  groups: number;
}

export interface DropoutAttrs {
  op: "dropout";
  /** Probability of dropping. Inverted dropout: training scales kept units by 1/(1−p); inference is the identity. */
  p: number;
}

export interface BatchNormAttrs {
  op: "batchnorm";
  eps: number;
  momentum: number;
}

export type ActivationOp = "relu" | "tanh" | "sigmoid";

export type NodeAttrs =
  | ConvAttrs
  | DenseAttrs
  | PoolAttrs
  | LrnAttrs
  | DropoutAttrs
  | BatchNormAttrs
  | { op: ActivationOp }
  | { op: "flatten" }
  /** Concatenation along the channel dimension (dim 0), inputs in order. */
  | { op: "concat" }
  | { op: "softmax" }
  /** Softmax + cross-entropy against the integer labels of the batch; output is the scalar mean loss. */
  | { op: "softmax_cross_entropy" };

export type OpKind = NodeAttrs["op"];

export interface Node {
  /** Unique binding name, e.g. `conv1` or `stem.conv` for a layer inside block instance `stem`. */
  name: string;
  attrs: NodeAttrs;
  /** Names of the producing nodes or graph inputs, in order. */
  inputs: string[];
  /** Output shape without batch: [C, H, W] or [N]; [] for the scalar loss. */
  shape: number[];
  layout: TowerLayout;
  /** Parameter names this node owns, e.g. [`conv1.weight`, `conv1.bias`]. */
  params: string[];
  /** Multiply-adds per example. */
  macs: number;
  span: Span;
}

export interface Param {
  /** `<layer>.weight`, `<layer>.bias`, `<layer>.running_mean`, … */
  name: string;
  /** PyTorch layout with full channel counts: conv [out, in/groups, kh, kw], dense [out, in]. */
  shape: number[];
  init: Init;
  /** Learned by the optimizer (false for batch-norm running statistics). */
  trainable: boolean;
  layer: string;
}

export interface GraphInput {
  name: string;
  dtype: "f32";
  shape: number[];
  span: Span;
}

export interface Graph {
  name: string;
  towers: number;
  classes: number;
  inputs: GraphInput[];
  /** Topological order (the source order after block expansion). */
  nodes: Node[];
  params: Param[];
  /** The node whose output are the logits (the loss's input). */
  logits: string;
  /** The loss node's name. */
  loss: string;
}

export function nodeByName(graph: Graph, name: string): Node | undefined {
  return graph.nodes.find((n) => n.name === name);
}

/** Per-tower shape of a tensor with the given full shape and layout. */
export function towerShape(shape: readonly number[], layout: TowerLayout): number[] {
  if (layout.kind !== "split" || shape.length === 0) return [...shape];
  return [shape[0] / layout.towers, ...shape.slice(1)];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
