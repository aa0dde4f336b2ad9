// An independent float64 interpreter of a checked Graph, written from the op definitions in
// compiler/graph.ts and docs/language.md — not from alexc's kernels — so that it can referee them.
//
// Layout: every value is [batch, ...shape] row-major, i.e. NCHW for feature maps and [N, F] for
// vectors, the same as alexc's runtime tensors. Parameters are read in PyTorch layout (conv
// [out, in/groups, kh, kw], dense [out, in/groups]).
//
// Modes:
//  - "inference": dropout is the identity, batch norm uses its running statistics;
//  - "train": dropout multiplies by keep/(1 − p) with the keep masks passed in (a dropout node without
//    a mask is the identity, as with p = 0 or an inactive dropout), batch norm uses the batch's
//    statistics (biased variance in the normalisation).
// The loss is the batch mean of softmax cross-entropy against integer labels.
//
// `perturb` adds a delta to one element of a parameter, a graph input or a node output (right after
// it is computed): the hook finite differences use to differentiate w.r.t. anything in the graph.
import type {
  BatchNormAttrs,
  ConvAttrs,
  DenseAttrs,
  DropoutAttrs,
  Graph,
  LrnAttrs,
  Node,
  PoolAttrs,
} from "../../compiler/graph.ts";

export type Values = ReadonlyMap<string, ArrayLike<number>>;

export interface Perturbation {
  /** A parameter, graph-input or node name. */
  name: string;
  index: number;
  delta: number;
}

export interface Forward64Options {
  batch: number;
  mode: "train" | "inference";
  /** Keep masks (1 kept, 0 dropped) per dropout node, [batch, ...shape]; train mode only. */
  dropoutMasks?: Values;
  /** Integer class labels, one per example: the loss is computed when given. */
  labels?: ArrayLike<number>;
  perturb?: Perturbation;
}

export interface Forward64 {
  /** Every graph input and node output (except the loss), [batch, ...shape] row-major. */
  values: Map<string, Float64Array>;
  logits: Float64Array;
  /** Batch-mean softmax cross-entropy (NaN without labels). */
  loss: number;
  /** Train-mode batch norm: the batch mean and the biased variance per channel. */
  batchStats: Map<string, { mean: Float64Array; variance: Float64Array }>;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function toF64(x: ArrayLike<number>, p: Perturbation | undefined, name: string): Float64Array {
  const out = Float64Array.from(x);
  if (p && p.name === name) {
    if (!(p.index >= 0 && p.index < out.length)) throw new Error(`perturb ${name}[${p.index}] out of range`);
    out[p.index] += p.delta;
  }
  return out;
}

/** Runs `graph` in float64. `inputs` are keyed by graph input name, `params` by parameter name. */
export function forward64(graph: Graph, params: Values, inputs: Values, opts: Forward64Options): Forward64 {
  const { batch, perturb } = opts;
  const values = new Map<string, Float64Array>();
  const shapes = new Map<string, number[]>();
  for (const input of graph.inputs) {
    const data = inputs.get(input.name);
    if (!data) throw new Error(`reference64: no data for input ${input.name}`);
    if (data.length !== batch * count(input.shape))
      throw new Error(`reference64: input ${input.name} has ${data.length} values`);
    values.set(input.name, toF64(data, perturb, input.name));
    shapes.set(input.name, input.shape);
  }
  const param = (node: Node, suffix: string, expected: number): Float64Array => {
    const name = `${node.name}.${suffix}`;
    const data = params.get(name);
    if (!data) throw new Error(`reference64: no values for parameter ${name}`);
    if (data.length !== expected)
      throw new Error(`reference64: ${name} has ${data.length} values, expected ${expected}`);
    return toF64(data, perturb, name);
  };
  const batchStats = new Map<string, { mean: Float64Array; variance: Float64Array }>();
  let loss = Number.NaN;
  for (const node of graph.nodes) {
    const a = node.attrs;
    const xs = node.inputs.map((name) => {
      const v = values.get(name);
      if (!v) throw new Error(`reference64: ${node.name} reads ${name}, which is not computed`);
      return v;
    });
    const inShapes = node.inputs.map((name) => shapes.get(name)!);
    const [x] = xs;
    const [xShape] = inShapes;
    let y: Float64Array;
    let shape: number[];
    switch (a.op) {
      case "conv":
        ({ y, shape } = conv(x, xShape, batch, a, node, param));
        break;
      case "dense":
        ({ y, shape } = dense(x, count(xShape), batch, a, node, param));
        break;
      case "relu":
        y = x.map((v) => (v > 0 ? v : 0));
        shape = xShape;
        break;
      case "tanh":
        y = x.map(Math.tanh);
        shape = xShape;
        break;
      case "sigmoid":
        y = x.map((v) => 1 / (1 + Math.exp(-v)));
        shape = xShape;
        break;
      case "lrn":
        y = lrn(x, xShape, batch, a);
        shape = xShape;
        break;
      case "maxpool":
      case "avgpool":
        ({ y, shape } = pool(x, xShape, batch, a));
        break;
      case "dropout":
        y = dropout(x, a, opts.mode === "train" ? opts.dropoutMasks?.get(node.name) : undefined);
        shape = xShape;
        break;
      case "batchnorm": {
        const r = batchnorm(x, xShape, batch, a, node, param, opts.mode);
        y = r.y;
        if (r.stats) batchStats.set(node.name, r.stats);
        shape = xShape;
        break;
      }
      case "flatten":
        y = Float64Array.from(x);
        shape = [count(xShape)];
        break;
      case "concat":
        ({ y, shape } = concat(xs, inShapes, batch));
        break;
      case "softmax":
        y = softmax(x, xShape, batch);
        shape = xShape;
        break;
      case "softmax_cross_entropy":
        if (opts.labels) loss = crossEntropy(x, count(xShape), batch, opts.labels);
        continue;
      default:
        throw new Error(`reference64: op ${(a as { op: string }).op} not supported`);
    }
    if (!sameShape(shape, node.shape))
      throw new Error(`reference64: ${node.name} computes [${shape}], the graph says [${node.shape}]`);
    if (perturb && perturb.name === node.name) y[perturb.index] += perturb.delta;
    values.set(node.name, y);
    shapes.set(node.name, shape);
  }
  const logits = values.get(graph.logits);
  if (!logits) throw new Error(`reference64: logits ${graph.logits} not computed`);
  if (opts.labels && Number.isNaN(loss))
    loss = crossEntropy(logits, count(shapes.get(graph.logits)!), batch, opts.labels);
  return { values, logits, loss, batchStats };
}

/** Batch mean of −log softmax(z)[label], by log-sum-exp with the max subtracted. */
export function crossEntropy(
  logits: ArrayLike<number>,
  classes: number,
  batch: number,
  labels: ArrayLike<number>,
): number {
  let total = 0;
  for (let n = 0; n < batch; n++) {
    const label = labels[n];
    if (!(Number.isInteger(label) && label >= 0 && label < classes))
      throw new Error(`reference64: label ${label} of example ${n} is not a class index`);
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[n * classes + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[n * classes + c] - m);
    total += m + Math.log(s) - logits[n * classes + label];
  }
  return total / batch;
}

type ParamOf = (node: Node, suffix: string, expected: number) => Float64Array;

const outSize = (size: number, before: number, after: number, k: number, s: number) =>
  Math.floor((size + before + after - k) / s) + 1;

/** y[n,f,i,j] = b[f] + Σ_{c in f's group, u, v} w[f, c − g·Cg, u, v] · x[n, c, i·s − pt + u, j·s − pl + v]. */
function conv(x: Float64Array, xShape: number[], batch: number, a: ConvAttrs, node: Node, param: ParamOf) {
  const [c, h, wd] = xShape;
  const [kh, kw] = a.kernel;
  const [sh, sw] = a.stride;
  const g = a.groups;
  const cg = c / g;
  const fg = a.filters / g;
  if (!Number.isInteger(cg) || !Number.isInteger(fg))
    throw new Error(`reference64: ${node.name}: channels do not split into ${g} groups`);
  const oh = outSize(h, a.pad.top, a.pad.bottom, kh, sh);
  const ow = outSize(wd, a.pad.left, a.pad.right, kw, sw);
  const w = param(node, "weight", a.filters * cg * kh * kw);
  const b = a.bias ? param(node, "bias", a.filters) : undefined;
  const y = new Float64Array(batch * a.filters * oh * ow);
  for (let n = 0; n < batch; n++)
    for (let f = 0; f < a.filters; f++) {
      const group = Math.floor(f / fg);
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = b ? b[f] : 0;
          for (let ci = 0; ci < cg; ci++) {
            const ch = group * cg + ci;
            for (let u = 0; u < kh; u++) {
              const r = i * sh - a.pad.top + u;
              if (r < 0 || r >= h) continue;
              for (let v = 0; v < kw; v++) {
                const q = j * sw - a.pad.left + v;
                if (q < 0 || q >= wd) continue;
                s += w[((f * cg + ci) * kh + u) * kw + v] * x[((n * c + ch) * h + r) * wd + q];
              }
            }
          }
          y[((n * a.filters + f) * oh + i) * ow + j] = s;
        }
    }
  return { y, shape: [a.filters, oh, ow] };
}

/** Block-diagonal over groups: unit u of group g reads the g-th contiguous run of the CHW-flattened input. */
function dense(x: Float64Array, features: number, batch: number, a: DenseAttrs, node: Node, param: ParamOf) {
  const g = a.groups;
  const fg = features / g;
  const ug = a.units / g;
  if (!Number.isInteger(fg) || !Number.isInteger(ug))
    throw new Error(`reference64: ${node.name}: features do not split into ${g} groups`);
  const w = param(node, "weight", a.units * fg);
  const b = a.bias ? param(node, "bias", a.units) : undefined;
  const y = new Float64Array(batch * a.units);
  for (let n = 0; n < batch; n++)
    for (let u = 0; u < a.units; u++) {
      const base = Math.floor(u / ug) * fg;
      let s = b ? b[u] : 0;
      for (let k = 0; k < fg; k++) s += w[u * fg + k] * x[n * features + base + k];
      y[n * a.units + u] = s;
    }
  return { y, shape: [a.units] };
}

/** b_c = a_c / (k + α' Σ_{j ∈ [c − ⌊n/2⌋, c + ⌊n/2⌋] ∩ group(c)} a_j²)^β at every position. */
function lrn(x: Float64Array, xShape: number[], batch: number, a: LrnAttrs): Float64Array {
  const [c, ...rest] = xShape;
  const inner = count(rest);
  const cg = c / a.groups;
  if (!Number.isInteger(cg)) throw new Error(`reference64: lrn: ${c} channels in ${a.groups} groups`);
  const alpha = a.alphaOf === "sum" ? a.alpha : a.alpha / a.size;
  const half = Math.floor(a.size / 2);
  const y = new Float64Array(x.length);
  for (let n = 0; n < batch; n++)
    for (let ch = 0; ch < c; ch++) {
      const lo = Math.floor(ch / cg) * cg;
      const hi = lo + cg - 1;
      for (let p = 0; p < inner; p++) {
        let s = 0;
        for (let j = Math.max(lo, ch - half); j <= Math.min(hi, ch + half); j++) {
          const v = x[(n * c + j) * inner + p];
          s += v * v;
        }
        const i = (n * c + ch) * inner + p;
        y[i] = x[i] / Math.pow(a.k + alpha * s, a.beta);
      }
    }
  return y;
}

/** Max or mean over the in-bounds part of each window (padding never wins, nor counts). */
function pool(x: Float64Array, xShape: number[], batch: number, a: PoolAttrs) {
  const [c, h, wd] = xShape;
  const [kh, kw] = a.window;
  const [sh, sw] = a.stride;
  const oh = outSize(h, a.pad.top, a.pad.bottom, kh, sh);
  const ow = outSize(wd, a.pad.left, a.pad.right, kw, sw);
  const y = new Float64Array(batch * c * oh * ow);
  for (let nc = 0; nc < batch * c; nc++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let m = -Infinity;
        let s = 0;
        let k = 0;
        for (let u = 0; u < kh; u++) {
          const r = i * sh - a.pad.top + u;
          if (r < 0 || r >= h) continue;
          for (let v = 0; v < kw; v++) {
            const q = j * sw - a.pad.left + v;
            if (q < 0 || q >= wd) continue;
            const val = x[(nc * h + r) * wd + q];
            m = Math.max(m, val);
            s += val;
            k++;
          }
        }
        if (k === 0) throw new Error(`reference64: a ${a.op} window sees only padding`);
        y[(nc * oh + i) * ow + j] = a.op === "maxpool" ? m : s / k;
      }
  return { y, shape: [c, oh, ow] };
}

function dropout(x: Float64Array, a: DropoutAttrs, keep: ArrayLike<number> | undefined): Float64Array {
  if (!keep) return Float64Array.from(x);
  if (keep.length !== x.length) throw new Error(`reference64: dropout mask has ${keep.length} values`);
  const scale = 1 / (1 - a.p);
  return x.map((v, i) => {
    if (keep[i] !== 0 && keep[i] !== 1) throw new Error(`reference64: dropout mask value ${keep[i]}`);
    return keep[i] * v * scale;
  });
}

/** Per channel (dim 0): (x − μ)/√(σ² + ε)·γ + β; μ, σ² of the batch (biased) in training, running ones otherwise. */
function batchnorm(
  x: Float64Array,
  xShape: number[],
  batch: number,
  a: BatchNormAttrs,
  node: Node,
  param: ParamOf,
  mode: "train" | "inference",
) {
  const [c, ...rest] = xShape;
  const inner = count(rest);
  const gamma = param(node, "weight", c);
  const beta = param(node, "bias", c);
  let mean: Float64Array;
  let variance: Float64Array;
  let stats: { mean: Float64Array; variance: Float64Array } | undefined;
  if (mode === "train") {
    mean = new Float64Array(c);
    variance = new Float64Array(c);
    const m = batch * inner;
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let n = 0; n < batch; n++) for (let p = 0; p < inner; p++) s += x[(n * c + ch) * inner + p];
      const mu = s / m;
      let v = 0;
      for (let n = 0; n < batch; n++)
        for (let p = 0; p < inner; p++) v += (x[(n * c + ch) * inner + p] - mu) ** 2;
      mean[ch] = mu;
      variance[ch] = v / m;
    }
    stats = { mean, variance };
  } else {
    mean = param(node, "running_mean", c);
    variance = param(node, "running_var", c);
  }
  const y = new Float64Array(x.length);
  for (let n = 0; n < batch; n++)
    for (let ch = 0; ch < c; ch++) {
      const scale = gamma[ch] / Math.sqrt(variance[ch] + a.eps);
      for (let p = 0; p < inner; p++) {
        const i = (n * c + ch) * inner + p;
        y[i] = (x[i] - mean[ch]) * scale + beta[ch];
      }
    }
  return { y, stats };
}

function concat(xs: Float64Array[], shapes: number[][], batch: number) {
  const sizes = shapes.map(count);
  const total = sizes.reduce((a, b) => a + b, 0);
  const y = new Float64Array(batch * total);
  for (let n = 0; n < batch; n++) {
    let offset = n * total;
    xs.forEach((x, k) => {
      y.set(x.subarray(n * sizes[k], (n + 1) * sizes[k]), offset);
      offset += sizes[k];
    });
  }
  return { y, shape: [shapes.reduce((a, s) => a + s[0], 0), ...shapes[0].slice(1)] };
}

/** Softmax over dim 0 of the per-example shape (classes, or channels at each position). */
function softmax(x: Float64Array, xShape: number[], batch: number): Float64Array {
  const [c, ...rest] = xShape;
  const inner = count(rest);
  const y = new Float64Array(x.length);
  for (let n = 0; n < batch; n++)
    for (let p = 0; p < inner; p++) {
      let m = -Infinity;
      for (let ch = 0; ch < c; ch++) m = Math.max(m, x[(n * c + ch) * inner + p]);
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += Math.exp(x[(n * c + ch) * inner + p] - m);
      for (let ch = 0; ch < c; ch++) {
        const i = (n * c + ch) * inner + p;
        y[i] = Math.exp(x[i] - m) / s;
      }
    }
  return y;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * One SGD step as the paper writes it, in float64: v ← μ·v − λ·ε·w − ε·g; w ← w + v, for every
 * trainable parameter (weights and biases alike). Returns new weights and velocities.
 */
export function sgdStep(
  weights: Values,
  velocities: Values,
  gradients: Values,
  opts: { lr: number; momentum: number; weightDecay: number },
): { weights: Map<string, Float64Array>; velocities: Map<string, Float64Array> } {
  const w2 = new Map<string, Float64Array>();
  const v2 = new Map<string, Float64Array>();
  for (const [name, g] of gradients) {
    const w = weights.get(name);
    const v = velocities.get(name);
    if (!w || !v) throw new Error(`sgdStep: no weights or velocity for ${name}`);
    const nv = new Float64Array(w.length);
    const nw = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      nv[i] = opts.momentum * v[i] - opts.weightDecay * opts.lr * w[i] - opts.lr * g[i];
      nw[i] = w[i] + nv[i];
    }
    v2.set(name, nv);
    w2.set(name, nw);
  }
  return { weights: w2, velocities: v2 };
}
