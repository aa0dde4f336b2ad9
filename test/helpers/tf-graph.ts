// A TF.js (CPU backend, float32) model of a whole Graph, differentiated by `tf.grads`: the reference
// gradients for parameters, inputs and every activation.
//
// Layouts: everything crossing this module's boundary is alexc's — activations NCHW / [N, F], params
// in PyTorch layout. Inside, feature maps are NHWC (TF's only conv layout): inputs and probes are
// transposed on the way in, parameters reshaped/transposed inside the differentiated function, so
// `tf.grads` hands gradients back in the caller's layouts with no post-processing.
//
// Activation gradients: each node output y gets a zero "probe" p added (y + p); ∂L/∂p = ∂L/∂y.
//
// Op mapping (the conventions the graph defines, not TF's defaults):
//  - grouped conv: split channels and filters into groups, conv2d each with explicit padding, concat;
//  - LRN per tower: split channels into `groups`, tf.localResponseNormalization(⌊n/2⌋, k, α', β) each
//    (α' = α for "sum", α/n for "mean"), concat;
//  - max-pool: pad with −∞ then "valid"; avg-pool: padded sum over padded count (in-bounds mean);
//  - dense: a map is transposed back to NCHW before flattening (alexc flattens CHW); groups are
//    contiguous runs of the flattened input;
//  - batch norm: batch mean and biased variance over N(,H,W) in training, running stats otherwise;
//  - dropout: × keep/(1 − p) with the given keep masks (identity without one, or at inference);
//  - loss: batch mean of −Σ onehot·logSoftmax(logits).
//
// This module uses the @tensorflow/tfjs umbrella package: @tensorflow/tfjs-core alone registers no
// gradient functions. Call `useTfCpu()` before use: the umbrella also registers WebGL, unusable here.
import * as tf from "@tensorflow/tfjs";
import type { ConvAttrs, DenseAttrs, Graph, LrnAttrs, Padding2D, PoolAttrs } from "../../compiler/graph.ts";

export { tf };

/** Selects TF.js's CPU backend (float32, deterministic). */
export async function useTfCpu(): Promise<void> {
  if (!(await tf.setBackend("cpu"))) throw new Error("TF.js CPU backend unavailable");
  await tf.ready();
}

/**
 * `groups` equal parts along `axis`. One group is the tensor itself: TF.js's SplitV gradient breaks on
 * a one-output split (it hands concat a bare tensor).
 */
const split = <T extends tf.Tensor>(t: T, groups: number, axis: number): T[] =>
  groups === 1 ? [t] : (tf.split(t, groups, axis) as T[]);

const toNchw = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 3, 1, 2]);
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];
const explicit = (p: Padding2D): Pad4 => [
  [0, 0],
  [p.top, p.bottom],
  [p.left, p.right],
  [0, 0],
];

/** Per tower group: TF's LRN applies its alpha to the plain sum, so pass α' (÷ n for "mean"). */
function lrn(x: tf.Tensor4D, a: LrnAttrs): tf.Tensor4D {
  const alpha = a.alphaOf === "mean" ? a.alpha / a.size : a.alpha;
  const parts = split(x, a.groups, 3).map((t) =>
    tf.localResponseNormalization(t, Math.floor(a.size / 2), a.k, alpha, a.beta),
  );
  return parts.length === 1 ? parts[0] : tf.concat(parts, 3);
}

/** Padding never wins: pad with −∞, then a valid max-pool. */
const maxPool = (x: tf.Tensor4D, a: PoolAttrs): tf.Tensor4D =>
  tf.maxPool(tf.pad(x, explicit(a.pad), -Infinity), a.window, a.stride, "valid");

/** Mean over in-bounds elements: pooled zero-padded x over the pooled zero-padded count of ones. */
function avgPool(x: tf.Tensor4D, a: PoolAttrs): tf.Tensor4D {
  const sum = tf.avgPool(tf.pad(x, explicit(a.pad)), a.window, a.stride, "valid");
  const ones = tf.avgPool(tf.pad(tf.onesLike(x), explicit(a.pad)), a.window, a.stride, "valid");
  return tf.div(sum, ones);
}

export interface TfProblem {
  graph: Graph;
  params: ReadonlyMap<string, Float32Array>;
  inputs: ReadonlyMap<string, Float32Array>;
  labels: Int32Array;
  batch: number;
  mode?: "train" | "inference";
  /** Keep masks (1/0) per dropout node, NCHW / [N, F]. */
  dropoutMasks?: ReadonlyMap<string, ArrayLike<number>>;
}

export interface TfGradients {
  loss: number;
  /** Node outputs and inputs in alexc layout (NCHW / [N, F]). */
  values: Map<string, Float32Array>;
  /** ∂L/∂w for every trainable parameter, PyTorch layout. */
  params: Map<string, Float32Array>;
  /** ∂L/∂x for every graph input, NCHW. */
  inputs: Map<string, Float32Array>;
  /** ∂L/∂y for every node output (the loss excluded), NCHW / [N, F]. */
  activations: Map<string, Float32Array>;
}

/** NCHW (or [N, F]) tensor → the internal layout: NHWC for maps, unchanged for vectors. */
const inward = (t: tf.Tensor): tf.Tensor => (t.rank === 4 ? tf.transpose(t, [0, 2, 3, 1]) : t);
const outward = (t: tf.Tensor): tf.Tensor => (t.rank === 4 ? toNchw(t as tf.Tensor4D) : t);
const full = (batch: number, shape: number[]) => [batch, ...shape];

function conv(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor | undefined, a: ConvAttrs): tf.Tensor4D {
  const hwio = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
  const xs = split(x, a.groups, 3);
  const ws = split(hwio, a.groups, 3);
  const parts = xs.map((xi, g) => tf.conv2d(xi, ws[g], a.stride, explicit(a.pad)));
  const y = (parts.length === 1 ? parts[0] : tf.concat(parts, 3)) as tf.Tensor4D;
  return b ? tf.add(y, b) : y;
}

function dense(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor | undefined, a: DenseAttrs): tf.Tensor2D {
  const xs = split(x, a.groups, 1);
  const ws = split(w, a.groups, 0);
  const parts = xs.map((xi, g) => tf.matMul(xi, ws[g] as tf.Tensor2D, false, true));
  const y = (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor2D;
  return b ? tf.add(y, b) : y;
}

/**
 * Forward (in `mode`, default "train"), loss, and tf.grads of the loss w.r.t. every trainable
 * parameter, every graph input and every node output. Float32 throughout (TF.js CPU).
 */
export function tfGradients(p: TfProblem): TfGradients {
  const { graph, batch } = p;
  const mode = p.mode ?? "train";
  const trainable = graph.params.filter((q) => q.trainable);
  const constants = graph.params.filter((q) => !q.trainable);
  const probed = graph.nodes.filter((n) => n.attrs.op !== "softmax_cross_entropy");
  const values = new Map<string, Float32Array>();
  let lossValue = Number.NaN;

  const result = tf.tidy(() => {
    const paramTensors = trainable.map((q) => {
      const data = p.params.get(q.name);
      if (!data) throw new Error(`tfGradients: no values for ${q.name}`);
      return tf.tensor(data, q.shape);
    });
    const constTensors = new Map(
      constants.map((q) => {
        const data = p.params.get(q.name);
        if (!data) throw new Error(`tfGradients: no values for ${q.name}`);
        return [q.name, tf.tensor(data, q.shape)] as const;
      }),
    );
    const inputTensors = graph.inputs.map((i) => {
      const data = p.inputs.get(i.name);
      if (!data) throw new Error(`tfGradients: no data for input ${i.name}`);
      return tf.tensor(data, full(batch, i.shape));
    });
    const probes = probed.map((n) => tf.zeros(full(batch, n.shape)));
    const labels = tf.oneHot(tf.tensor1d(p.labels, "int32"), graph.classes);

    const lossFn = (...args: tf.Tensor[]): tf.Scalar => {
      const paramOf = new Map<string, tf.Tensor>(trainable.map((q, i) => [q.name, args[i]]));
      for (const [name, t] of constTensors) paramOf.set(name, t);
      const get = (node: string, suffix: string) => {
        const t = paramOf.get(`${node}.${suffix}`);
        if (!t) throw new Error(`tfGradients: ${node} has no parameter ${suffix}`);
        return t;
      };
      const env = new Map<string, tf.Tensor>();
      graph.inputs.forEach((i, k) => {
        const t = args[trainable.length + k];
        env.set(i.name, inward(t));
        values.set(i.name, t.dataSync() as Float32Array);
      });
      const probeOf = new Map(
        probed.map((n, k) => [n.name, args[trainable.length + graph.inputs.length + k]]),
      );
      /** A value flattened in CHW order to [N, F]. */
      const flat = (t: tf.Tensor) => (t.rank === 4 ? tf.reshape(outward(t), [batch, -1]) : t) as tf.Tensor2D;
      let loss: tf.Scalar | undefined;
      for (const node of graph.nodes) {
        const a = node.attrs;
        const xs = node.inputs.map((i) => {
          const t = env.get(i);
          if (!t) throw new Error(`tfGradients: ${node.name} reads ${i}, not computed`);
          return t;
        });
        const [x] = xs;
        let y: tf.Tensor;
        switch (a.op) {
          case "conv":
            y = conv(
              x as tf.Tensor4D,
              get(node.name, "weight"),
              a.bias ? get(node.name, "bias") : undefined,
              a,
            );
            break;
          case "dense":
            y = dense(flat(x), get(node.name, "weight"), a.bias ? get(node.name, "bias") : undefined, a);
            break;
          case "relu":
            y = tf.relu(x);
            break;
          case "tanh":
            y = tf.tanh(x);
            break;
          case "sigmoid":
            y = tf.sigmoid(x);
            break;
          case "lrn":
            y = lrn(x as tf.Tensor4D, a);
            break;
          case "maxpool":
            y = maxPool(x as tf.Tensor4D, a);
            break;
          case "avgpool":
            y = avgPool(x as tf.Tensor4D, a);
            break;
          case "dropout": {
            const keep = mode === "train" ? p.dropoutMasks?.get(node.name) : undefined;
            y = keep
              ? tf.mul(
                  x,
                  inward(
                    tf.tensor(
                      Float32Array.from(keep, (k) => k / (1 - a.p)),
                      full(batch, node.shape),
                    ),
                  ),
                )
              : x;
            break;
          }
          case "batchnorm": {
            const axes = x.rank === 4 ? [0, 1, 2] : [0];
            let mean: tf.Tensor;
            let variance: tf.Tensor;
            if (mode === "train") ({ mean, variance } = tf.moments(x, axes));
            else {
              mean = get(node.name, "running_mean");
              variance = get(node.name, "running_var");
            }
            y = tf.add(
              tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, a.eps))), get(node.name, "weight")),
              get(node.name, "bias"),
            );
            break;
          }
          case "flatten":
            y = flat(x);
            break;
          case "concat":
            y = tf.concat(xs, x.rank === 4 ? 3 : 1);
            break;
          case "softmax":
            y = tf.softmax(x);
            break;
          case "softmax_cross_entropy": {
            const logits = flat(x);
            loss = tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
            continue;
          }
          default:
            throw new Error(`tfGradients: op ${(a as { op: string }).op} not supported`);
        }
        y = tf.add(y, inward(probeOf.get(node.name)!));
        env.set(node.name, y);
        values.set(node.name, outward(y).dataSync() as Float32Array);
      }
      if (!loss) {
        const logits = flat(env.get(graph.logits)!);
        loss = tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
      }
      lossValue = loss.dataSync()[0];
      return loss;
    };
    const grads = tf.grads(lossFn)([...paramTensors, ...inputTensors, ...probes]);
    return grads.map((g) => g.dataSync() as Float32Array);
  });

  const params = new Map(trainable.map((q, i) => [q.name, result[i]]));
  const inputs = new Map(graph.inputs.map((q, i) => [q.name, result[trainable.length + i]]));
  const activations = new Map(
    probed.map((n, i) => [n.name, result[trainable.length + graph.inputs.length + i]]),
  );
  return { loss: lossValue, values, params, inputs, activations };
}

/** Logits (NCHW / [N, F]) of the TF model without gradients, for forward checks. */
export function tfLogits(p: TfProblem): Float32Array {
  return tfGradients(p).values.get(p.graph.logits)!;
}
