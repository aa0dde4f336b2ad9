// The FLOP counts behind placement analysis (place.ts), per node and example: what a layer costs,
// apart from where it runs.
//
// FLOPs per training step (a multiply-add is 2 FLOPs; transcendental functions count as 1):
//  - conv/dense forward 2·MACs + 1 per output element for the bias; backward = data gradient 2·MACs
//    (only when the input needs a gradient: none for the first layer) + weight gradient 2·MACs + bias
//    gradient 1 per output element.
//  - per element (forward / backward): relu 1/1 · tanh, sigmoid 1/3 · dropout 1/1 (the mask multiply;
//    every dropout layer is counted as active, as in a training step) · LRN size+4 / size+6 (square,
//    window sum, scale, power, divide; backward as Caffe's sliding window) · batchnorm 7/10 ·
//    flatten, concat 0/0. Per output element: max-pool window−1 comparisons / 1 add routing the
//    gradient; avg-pool window / window. Per example over C classes: softmax 5C/4C, softmax +
//    cross-entropy 5C/2C. A node's backward runs only when its input needs a gradient.
//  - update: the paper's momentum SGD, 6 FLOPs per trainable parameter held, plus 1 per parameter to
//    add the gradients received in a gradient sum.
import { elementCount, type Node } from "./graph.ts";

/** v ← 0.9·v − λε·w − ε·g; w ← w + v: three multiplies, two subtractions, one addition. */
export const UPDATE_FLOPS = 6;

export function forwardFlops(node: Node, byName: Map<string, Node>): number {
  const a = node.attrs;
  const out = node.shape.length ? elementCount(node.shape) : 0;
  const inShape = byName.get(node.inputs[0])?.shape ?? [];
  switch (a.op) {
    case "conv":
    case "dense":
      return 2 * node.macs + (a.bias ? out : 0);
    case "relu":
    case "tanh":
    case "sigmoid":
    case "dropout":
      return out;
    case "lrn":
      return (a.size + 4) * out;
    case "batchnorm":
      return 7 * out;
    case "maxpool":
      return (a.window[0] * a.window[1] - 1) * out;
    case "avgpool":
      return a.window[0] * a.window[1] * out;
    case "softmax":
    case "softmax_cross_entropy":
      return 5 * elementCount(inShape);
    case "flatten":
    case "concat":
      return 0;
  }
}

export function backwardFlops(node: Node, byName: Map<string, Node>, needsGrad: Set<string>): number {
  const a = node.attrs;
  const out = node.shape.length ? elementCount(node.shape) : 0;
  const inputGrad = node.inputs.some((x) => needsGrad.has(x));
  if (a.op === "conv" || a.op === "dense")
    return (inputGrad ? 2 * node.macs : 0) + 2 * node.macs + (a.bias ? out : 0);
  if (!inputGrad) return 0;
  switch (a.op) {
    case "relu":
    case "dropout":
      return out;
    case "tanh":
    case "sigmoid":
      return 3 * out;
    case "lrn":
      return (a.size + 6) * out;
    case "batchnorm":
      return 10 * out;
    case "maxpool":
      return out;
    case "avgpool":
      return a.window[0] * a.window[1] * out;
    case "softmax":
      return 4 * elementCount(byName.get(node.inputs[0])?.shape ?? []);
    case "softmax_cross_entropy":
      return 2 * elementCount(byName.get(node.inputs[0])?.shape ?? []);
    case "flatten":
    case "concat":
      return 0;
  }
}
