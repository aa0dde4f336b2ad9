// TF.js (CPU backend) references for alexc's ops, in alexc's layouts: activations NCHW in and out,
// PyTorch-layout params. TF is NHWC with HWIO filters, so each reference transposes at its edges.
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import type { ConvAttrs, DenseAttrs, Graph, LrnAttrs, Padding2D, PoolAttrs } from "../../compiler/graph.ts";

export { tf };

type Shape4 = [number, number, number, number];
export const nhwc = (x: Float32Array, shape: number[]): tf.Tensor4D =>
  tf.transpose(tf.tensor4d(x, shape as Shape4), [0, 2, 3, 1]);
export const toNchw = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 3, 1, 2]);
const explicit = (p: Padding2D): [[number, number], [number, number], [number, number], [number, number]] => [
  [0, 0],
  [p.top, p.bottom],
  [p.left, p.right],
  [0, 0],
];

/** Grouped conv: split input channels and filters into groups, convolve each, concat. x is NHWC. */
export function tfConv(
  x: tf.Tensor4D,
  w: Float32Array,
  b: Float32Array | undefined,
  a: ConvAttrs,
): tf.Tensor4D {
  const c = x.shape[3];
  const hwio: tf.Tensor4D = tf.transpose(
    tf.tensor4d(w, [a.filters, c / a.groups, ...a.kernel]),
    [2, 3, 1, 0],
  );
  const xs = tf.split(x, a.groups, 3) as tf.Tensor4D[];
  const ws = tf.split(hwio, a.groups, 3) as tf.Tensor4D[];
  const y = tf.concat(
    xs.map((xi, g) => tf.conv2d(xi, ws[g], a.stride, explicit(a.pad)) as tf.Tensor4D),
    3,
  );
  return b ? tf.add(y, tf.tensor1d(b)) : y;
}

/** TF's LRN applies α to the plain sum over all channels: split per group and pass α' (÷ n for "mean"). */
export function tfLrn(x: tf.Tensor4D, a: LrnAttrs): tf.Tensor4D {
  const alpha = a.alphaOf === "mean" ? a.alpha / a.size : a.alpha;
  return tf.concat(
    (tf.split(x, a.groups, 3) as tf.Tensor4D[]).map(
      (t) => tf.localResponseNormalization(t, Math.floor(a.size / 2), a.k, alpha, a.beta) as tf.Tensor4D,
    ),
    3,
  );
}

/** Max over in-bounds elements: pad with −∞ so that padding never wins. */
export function tfMaxPool(x: tf.Tensor4D, a: PoolAttrs): tf.Tensor4D {
  return tf.maxPool(tf.pad(x, explicit(a.pad), -Infinity), a.window, a.stride, "valid");
}

/** Average over in-bounds elements: pooled zero-padded x over the pooled zero-padded count of ones. */
export function tfAvgPool(x: tf.Tensor4D, a: PoolAttrs): tf.Tensor4D {
  const sum = tf.avgPool(tf.pad(x, explicit(a.pad)), a.window, a.stride, "valid");
  const count = tf.avgPool(tf.pad(tf.onesLike(x), explicit(a.pad)), a.window, a.stride, "valid");
  return tf.div(sum, count);
}

/** y = x · wᵀ + b per group, x [batch, features] already flattened in CHW order. */
export function tfDense(
  x: tf.Tensor2D,
  w: Float32Array,
  b: Float32Array | undefined,
  a: DenseAttrs,
): tf.Tensor2D {
  const features = x.shape[1];
  const ws = tf.split(tf.tensor2d(w, [a.units, features / a.groups]), a.groups, 0);
  const y: tf.Tensor2D = tf.concat(
    tf.split(x, a.groups, 1).map((xi, g) => tf.matMul(xi, ws[g], false, true)),
    1,
  );
  return b ? tf.add(y, tf.tensor1d(b)) : y;
}

/**
 * Runs a forward-mode graph (conv, dense, activations, lrn, pools, dropout, flatten) in TF and returns
 * the logits as [batch, ...] row-major NCHW/flat data. Feature maps are kept NHWC between layers.
 */
export function tfForward(
  graph: Graph,
  params: Map<string, Float32Array>,
  input: Float32Array,
  batch: number,
): Float32Array {
  return tf.tidy(() => {
    const values = new Map<string, tf.Tensor>([
      [graph.inputs[0].name, nhwc(input, [batch, ...graph.inputs[0].shape])],
    ]);
    /** A dense input must be flattened in CHW order, so transpose a map back to NCHW first. */
    const flat = (t: tf.Tensor) =>
      (t.rank === 4 ? tf.reshape(toNchw(t as tf.Tensor4D), [batch, -1]) : t) as tf.Tensor2D;
    for (const node of graph.nodes) {
      const x = values.get(node.inputs[0])!;
      const a = node.attrs;
      const p = (s: string) => params.get(`${node.name}.${s}`);
      let y: tf.Tensor;
      switch (a.op) {
        case "conv":
          y = tfConv(x as tf.Tensor4D, p("weight")!, a.bias ? p("bias") : undefined, a);
          break;
        case "dense":
          y = tfDense(flat(x), p("weight")!, a.bias ? p("bias") : undefined, a);
          break;
        case "relu":
        case "tanh":
        case "sigmoid":
          y = tf[a.op](x);
          break;
        case "lrn":
          y = tfLrn(x as tf.Tensor4D, a);
          break;
        case "maxpool":
          y = tfMaxPool(x as tf.Tensor4D, a);
          break;
        case "avgpool":
          y = tfAvgPool(x as tf.Tensor4D, a);
          break;
        case "dropout":
          y = x;
          break;
        case "flatten":
          y = flat(x);
          break;
        case "softmax_cross_entropy":
          continue;
        default:
          throw new Error(`tfForward: ${a.op} not supported`);
      }
      values.set(node.name, y);
    }
    const logits = values.get(graph.logits)!;
    return (logits.rank === 4 ? toNchw(logits as tf.Tensor4D) : logits).dataSync() as Float32Array;
  });
}
