// Hand-built one-node Graphs (so kernel tests need not wait for the checker) and a runner that lowers
// and executes them. Shapes follow compiler/graph.ts: per example, batch excluded.
import type { Graph, Node, NodeAttrs, Padding2D, Param } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import type { OpenDevice } from "../../runtime/devices.ts";
import { type Executor, createExecutor } from "../../runtime/executor.ts";

export const SPAN = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };

export const pad = (top: number, bottom = top, left = top, right = bottom): Padding2D => ({
  top,
  bottom,
  left,
  right,
});

const out = (size: number, before: number, after: number, k: number, s: number) =>
  Math.floor((size + before + after - k) / s) + 1;

/** Output shape and owned parameters of a node with these attributes and input shapes. */
function infer(name: string, attrs: NodeAttrs, inputs: number[][]): { shape: number[]; params: Param[] } {
  const [x] = inputs;
  const param = (suffix: string, shape: number[], trainable = true): Param => ({
    name: `${name}.${suffix}`,
    shape,
    init: { kind: "constant", value: 0 },
    trainable,
    layer: name,
  });
  switch (attrs.op) {
    case "conv": {
      const [c, h, w] = x;
      const shape = [
        attrs.filters,
        out(h, attrs.pad.top, attrs.pad.bottom, attrs.kernel[0], attrs.stride[0]),
        out(w, attrs.pad.left, attrs.pad.right, attrs.kernel[1], attrs.stride[1]),
      ];
      const params = [param("weight", [attrs.filters, c / attrs.groups, ...attrs.kernel])];
      if (attrs.bias) params.push(param("bias", [attrs.filters]));
      return { shape, params };
    }
    case "dense": {
      const features = x.reduce((a, b) => a * b, 1);
      const params = [param("weight", [attrs.units, features / attrs.groups])];
      if (attrs.bias) params.push(param("bias", [attrs.units]));
      return { shape: [attrs.units], params };
    }
    case "maxpool":
    case "avgpool": {
      const [c, h, w] = x;
      return {
        shape: [
          c,
          out(h, attrs.pad.top, attrs.pad.bottom, attrs.window[0], attrs.stride[0]),
          out(w, attrs.pad.left, attrs.pad.right, attrs.window[1], attrs.stride[1]),
        ],
        params: [],
      };
    }
    case "batchnorm":
      return {
        shape: x,
        params: [
          param("weight", [x[0]]),
          param("bias", [x[0]]),
          param("running_mean", [x[0]], false),
          param("running_var", [x[0]], false),
        ],
      };
    case "concat":
      return { shape: [inputs.reduce((a, s) => a + s[0], 0), ...x.slice(1)], params: [] };
    case "flatten":
      return { shape: [x.reduce((a, b) => a * b, 1)], params: [] };
    default:
      return { shape: x, params: [] };
  }
}

/** One layer of a hand-built graph: name, attributes, input names. */
export type LayerSpec = [name: string, attrs: NodeAttrs, inputs: string[]];

/**
 * A graph from graph inputs and layers in order; shapes and params are inferred as the checker would
 * (floor rounding after explicit padding). The logits are the last layer's output, or the input of a
 * trailing softmax_cross_entropy.
 */
export function buildGraph(inputs: Record<string, number[]>, layers: LayerSpec[], name = "test"): Graph {
  const shapes = new Map(Object.entries(inputs));
  const nodes: Node[] = [];
  const params: Param[] = [];
  for (const [layer, attrs, ins] of layers) {
    const inShapes = ins.map((i) => {
      const s = shapes.get(i);
      if (!s) throw new Error(`buildGraph: unknown input ${i}`);
      return s;
    });
    const inferred =
      attrs.op === "softmax_cross_entropy" ? { shape: [], params: [] } : infer(layer, attrs, inShapes);
    shapes.set(layer, inferred.shape);
    params.push(...inferred.params);
    nodes.push({
      name: layer,
      attrs,
      inputs: ins,
      shape: inferred.shape,
      layout: { kind: "replicated" },
      params: inferred.params.map((p) => p.name),
      macs: 0,
      span: SPAN,
    });
  }
  const last = nodes[nodes.length - 1];
  const logits = last.attrs.op === "softmax_cross_entropy" ? last.inputs[0] : last.name;
  return {
    name,
    towers: 1,
    classes: shapes.get(logits)?.[0] ?? 1,
    inputs: Object.entries(inputs).map(([n, shape]) => ({ name: n, dtype: "f32", shape, span: SPAN })),
    nodes,
    params,
    logits,
    loss: last.attrs.op === "softmax_cross_entropy" ? last.name : "",
  };
}

/** A graph with inputs `x0, x1, …` (or just `x`) and one node `y` computing `attrs`, whose output are the logits. */
export function oneNodeGraph(attrs: NodeAttrs, inputShapes: number[][], name = "y"): Graph {
  const inputNames = inputShapes.length === 1 ? ["x"] : inputShapes.map((_, i) => `x${i}`);
  return buildGraph(
    Object.fromEntries(inputNames.map((n, i) => [n, inputShapes[i]])),
    [[name, attrs, inputNames]],
    `one_${attrs.op}`,
  );
}

/** Deterministic uniform values in [lo, hi) (mulberry32), so failures reproduce. */
export function random(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const outArr = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    outArr[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return outArr;
}

/** Random parameters for every param of `graph` (variances kept positive). */
export function randomParams(graph: Graph, seed: number): Map<string, Float32Array> {
  return new Map(
    graph.params.map((p, i) => {
      const count = p.shape.reduce((a, b) => a * b, 1);
      return [
        p.name,
        p.name.endsWith("running_var") ? random(count, seed + i, 0.1, 2) : random(count, seed + i),
      ];
    }),
  );
}

export interface RunOptions {
  batch: number;
  maxBindingBytes?: number;
  params?: Map<string, Float32Array>;
  inputs: Record<string, Float32Array>;
  /** Winograd for 3×3 stride-1 convolutions (lower's default: true). */
  winograd?: boolean;
}

/** Lowers and runs `graph` on `dev`; returns the logits and the (still open) executor for inspection. */
export async function runGraph(
  dev: OpenDevice,
  graph: Graph,
  opts: RunOptions,
): Promise<{ y: Float32Array; executor: Executor }> {
  const compiled = lower(graph, {
    batch: opts.batch,
    maxBindingBytes: opts.maxBindingBytes ?? dev.maxBindingBytes,
    source: "test",
    compilerVersion: "alexc test",
    winograd: opts.winograd,
  });
  const executor = await createExecutor(dev, compiled);
  executor.uploadParams(opts.params ?? new Map());
  for (const [name, data] of Object.entries(opts.inputs)) executor.writeInput(name, data);
  const { logits } = await executor.run();
  return { y: logits, executor };
}

/** max|a − b| / max|b|: the error relative to the reference's scale (robust where b crosses 0). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** The paper's AlexNet (models/alexnet.net) as hand-built layers: grouped where a layer is `towers: local`. */
export function alexnetGraph(): Graph {
  const p = pad;
  const conv = (filters: number, k: number, stride: number, padding: number, groups: number): NodeAttrs => ({
    op: "conv",
    filters,
    kernel: [k, k],
    stride: [stride, stride],
    pad: p(padding),
    round: "floor",
    towers: groups > 1 ? { kind: "local" } : { kind: "cross" },
    groups,
    bias: true,
  });
  const lrn: NodeAttrs = { op: "lrn", size: 5, k: 2, alpha: 1e-4, beta: 0.75, alphaOf: "sum", groups: 2 };
  const pool: NodeAttrs = { op: "maxpool", window: [3, 3], stride: [2, 2], pad: p(0), round: "floor" };
  const dense = (units: number): NodeAttrs => ({
    op: "dense",
    units,
    towers: { kind: "cross" },
    groups: 1,
    bias: true,
  });
  const drop: NodeAttrs = { op: "dropout", p: 0.5 };
  const relu: NodeAttrs = { op: "relu" };
  const graph = buildGraph(
    { image: [3, 224, 224] },
    [
      ["conv1", conv(96, 11, 4, 2, 1), ["image"]],
      ["relu1", relu, ["conv1"]],
      ["norm1", lrn, ["relu1"]],
      ["pool1", pool, ["norm1"]],
      ["conv2", conv(256, 5, 1, 2, 2), ["pool1"]],
      ["relu2", relu, ["conv2"]],
      ["norm2", lrn, ["relu2"]],
      ["pool2", pool, ["norm2"]],
      ["conv3", conv(384, 3, 1, 1, 1), ["pool2"]],
      ["relu3", relu, ["conv3"]],
      ["conv4", conv(384, 3, 1, 1, 2), ["relu3"]],
      ["relu4", relu, ["conv4"]],
      ["conv5", conv(256, 3, 1, 1, 2), ["relu4"]],
      ["relu5", relu, ["conv5"]],
      ["pool5", pool, ["relu5"]],
      ["fc6", dense(4096), ["pool5"]],
      ["relu6", relu, ["fc6"]],
      ["drop6", drop, ["relu6"]],
      ["fc7", dense(4096), ["drop6"]],
      ["relu7", relu, ["fc7"]],
      ["drop7", drop, ["relu7"]],
      ["fc8", dense(1000), ["drop7"]],
      ["loss", { op: "softmax_cross_entropy" }, ["fc8"]],
    ],
    "alexnet",
  );
  return { ...graph, towers: 2 };
}
