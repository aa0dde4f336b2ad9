// The gradient-check cases shared by the CPU self-test of the references (test/helpers/
// references.test.ts) and the GPU gradient tests (test/gpu/gradients.test.ts): one tiny graph per op,
// `x → op → (dense to classes) → softmax_cross_entropy`, on odd sizes with strides, asymmetric
// padding and groups; plus a tiny two-tower network written in the language itself.
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, type NodeAttrs, elementCount } from "../../compiler/graph.ts";
import { type LayerSpec, buildGraph, pad, random } from "../gpu/one-node.ts";

export interface GradCase {
  name: string;
  graph: Graph;
  batch: number;
  /** The node under test and the value it reads (a graph input: its gradient needs `inputGradients`). */
  op: string;
  opInput: string;
  inputs: Map<string, Float32Array>;
  params: Map<string, Float32Array>;
  labels: Int32Array;
  /** Dropout layers applied in training (keep masks needed for a reference). */
  activeDropout: string[];
  /**
   * Lower with fusion (compiler/fuse.ts, gradient folds). Off for single-op cases, whose point is the
   * op's own kernels (a fused plan would store ∂L/∂y of an activation nowhere); on for networks.
   */
  fuse?: boolean;
  /** A binding limit below the adapter's, to force Winograd's batch passes (or its fallbacks). */
  maxBindingBytes?: number;
}

const CLASSES = 3;

const convAttrs = (
  filters: number,
  kernel: [number, number],
  stride: [number, number],
  padding: ReturnType<typeof pad>,
  groups: number,
  bias: boolean,
): NodeAttrs => ({
  op: "conv",
  filters,
  kernel,
  stride,
  pad: padding,
  round: "floor",
  towers: groups > 1 ? { kind: "local" } : { kind: "cross" },
  groups,
  bias,
});

const denseAttrs = (units: number, groups = 1, bias = true): NodeAttrs => ({
  op: "dense",
  units,
  towers: groups > 1 ? { kind: "local" } : { kind: "cross" },
  groups,
  bias,
});

/**
 * Parameters that keep a tiny net in its sensitive range: weights uniform with variance 1/fan-in
 * (so logits stay O(1) and softmax does not saturate), biases uniform in [−0.5, 0.5), batch-norm γ
 * in [0.5, 1.5), running variances positive.
 */
export function testParams(graph: Graph, seed: number): Map<string, Float32Array> {
  return new Map(
    graph.params.map((p, i) => {
      const n = elementCount(p.shape);
      const s = seed * 101 + i;
      if (p.name.endsWith("running_var")) return [p.name, random(n, s, 0.5, 2)];
      if (p.name.endsWith("running_mean")) return [p.name, random(n, s, -0.5, 0.5)];
      if (p.layer && graph.nodes.find((q) => q.name === p.layer)?.attrs.op === "batchnorm")
        return [p.name, p.name.endsWith(".weight") ? random(n, s, 0.5, 1.5) : random(n, s, -0.5, 0.5)];
      if (p.shape.length === 1) return [p.name, random(n, s, -0.5, 0.5)];
      const bound = Math.sqrt(3 / elementCount(p.shape.slice(1)));
      return [p.name, random(n, s, -bound, bound)];
    }),
  );
}

export function randomLabels(batch: number, classes: number, seed: number): Int32Array {
  return Int32Array.from(random(batch, seed, 0, classes), (v) => Math.min(classes - 1, Math.floor(v)));
}

interface OpSpec {
  name: string;
  x: number[];
  attrs: NodeAttrs;
  batch?: number;
  /** Input range (LRN wants a wider one so that its normaliser matters). */
  range?: number;
  /** The op's output is the logits (dense → CE); otherwise a cross dense head maps it to classes. */
  isLogits?: boolean;
}

const OPS: OpSpec[] = [
  {
    name: "conv grouped k3x2 s2x3 asym-pad",
    x: [4, 7, 9],
    attrs: convAttrs(6, [3, 2], [2, 3], pad(1, 0, 2, 1), 2, true),
  },
  {
    name: "conv cross k5 s2 pad2 no-bias",
    x: [3, 9, 9],
    attrs: convAttrs(4, [5, 5], [2, 2], pad(2), 1, false),
  },
  // 3×3 stride 1 with ≥ 16 output tiles: Winograd forward, data and weight gradients
  // (lower-train-winograd.ts); 7×9 has partial tiles, the second case 18 tiles (a masked vec4 tail)
  {
    name: "conv grouped k3 s1 pad1 (Winograd)",
    x: [4, 7, 9],
    attrs: convAttrs(6, [3, 3], [1, 1], pad(1), 2, true),
  },
  {
    name: "conv k3 s1 asym-pad 0/2/2/1 no-bias (Winograd)",
    x: [3, 6, 5],
    attrs: convAttrs(4, [3, 3], [1, 1], pad(0, 2, 2, 1), 1, false),
  },
  { name: "dense grouped on a map (CHW flatten)", x: [4, 3, 3], attrs: denseAttrs(6, 2, true) },
  { name: "dense+bias → softmax CE", x: [7], attrs: denseAttrs(5, 1, true), batch: 3, isLogits: true },
  // The register blocks of wgsl/dense.ts and backward/dense.ts at their largest: 16 examples × 8 rows
  // forward, 16 examples (dgrad) or rows (wgrad) × 8 features, groups, and features past one block.
  {
    name: "dense grouped, batch 32 (largest blocks)",
    x: [4, 5, 7],
    attrs: denseAttrs(32, 2, true),
    batch: 32,
  },
  {
    name: "dense 300 features, batch 16 (three feature blocks)",
    x: [300],
    attrs: denseAttrs(24, 1, false),
    batch: 16,
  },
  { name: "relu", x: [3, 5, 5], attrs: { op: "relu" } },
  { name: "tanh", x: [2, 3, 5], attrs: { op: "tanh" }, range: 2 },
  { name: "sigmoid", x: [2, 3, 5], attrs: { op: "sigmoid" }, range: 3 },
  {
    name: "lrn paper constants per tower",
    x: [10, 3, 3],
    attrs: { op: "lrn", size: 5, k: 2, alpha: 1e-4, beta: 0.75, alphaOf: "sum", groups: 2 },
    range: 4,
  },
  {
    name: "lrn sum strong per tower",
    x: [10, 3, 3],
    attrs: { op: "lrn", size: 5, k: 1, alpha: 0.2, beta: 0.75, alphaOf: "sum", groups: 2 },
    range: 2,
  },
  {
    name: "lrn mean size3 per tower",
    x: [8, 3, 2],
    attrs: { op: "lrn", size: 3, k: 1, alpha: 0.6, beta: 0.5, alphaOf: "mean", groups: 2 },
    range: 2,
  },
  {
    name: "lrn mean even size4 one group",
    x: [7, 2, 3],
    attrs: { op: "lrn", size: 4, k: 2, alpha: 1, beta: 0.75, alphaOf: "mean", groups: 1 },
    range: 2,
  },
  {
    name: "maxpool 3/2 overlapping",
    x: [3, 9, 9],
    attrs: { op: "maxpool", window: [3, 3], stride: [2, 2], pad: pad(0), round: "floor" },
  },
  {
    name: "maxpool 3/2 asym-pad",
    x: [2, 8, 7],
    attrs: { op: "maxpool", window: [3, 3], stride: [2, 2], pad: pad(1, 1, 0, 1), round: "floor" },
  },
  {
    name: "avgpool 3/2 asym-pad",
    x: [2, 7, 8],
    attrs: { op: "avgpool", window: [3, 3], stride: [2, 2], pad: pad(1, 0, 1, 1), round: "floor" },
  },
  {
    name: "avgpool 2x3 s1x2",
    x: [3, 5, 7],
    attrs: { op: "avgpool", window: [2, 3], stride: [1, 2], pad: pad(0), round: "floor" },
  },
  { name: "dropout p0.5", x: [3, 4, 4], attrs: { op: "dropout", p: 0.5 }, batch: 3 },
  { name: "dropout p0.3", x: [20], attrs: { op: "dropout", p: 0.3 }, batch: 3 },
  {
    name: "batchnorm train map",
    x: [3, 4, 5],
    attrs: { op: "batchnorm", eps: 1e-5, momentum: 0.1 },
    batch: 3,
  },
  { name: "batchnorm train vector", x: [6], attrs: { op: "batchnorm", eps: 1e-3, momentum: 0.1 }, batch: 4 },
];

/** The per-op cases: input `x`, node `y` under test, then (unless y is the logits) dense head `head`. */
export function opCases(): GradCase[] {
  return OPS.map((s, k) => {
    const layers: LayerSpec[] = [["y", s.attrs, ["x"]]];
    if (!s.isLogits) layers.push(["head", denseAttrs(CLASSES), ["y"]]);
    layers.push(["loss", { op: "softmax_cross_entropy" }, [s.isLogits ? "y" : "head"]]);
    const graph = buildGraph({ x: s.x }, layers, `grad_${k}`);
    const batch = s.batch ?? 2;
    const r = s.range ?? 1;
    return {
      name: s.name,
      graph,
      batch,
      op: "y",
      opInput: "x",
      inputs: new Map([["x", random(batch * elementCount(s.x), 1000 + k, -r, r)]]),
      params: testParams(graph, 7 + k),
      labels: randomLabels(batch, graph.classes, 500 + k),
      activeDropout: s.attrs.op === "dropout" ? ["y"] : [],
    };
  });
}

/** A tiny two-tower AlexNet: local and cross layers, LRN both conventions, overlapping pools, dropout. */
export const TINY_TWO_TOWER = `
network tiny_two_tower {
  input image: f32[3, 11, 11]
  classes: 5
  towers: 2
  conv1 = conv(image, filters: 6, kernel: 3, stride: 1, pad: 1, towers: cross, bias: 0)
  relu1 = relu(conv1)
  norm1 = lrn(relu1, size: 3, k: 1, alpha: 0.5, beta: 0.75)
  pool1 = maxpool(norm1, window: 3, stride: 2)
  conv2 = conv(pool1, filters: 8, kernel: 3, pad: 1, towers: local, bias: 1)
  relu2 = relu(conv2)
  norm2 = lrn(relu2, size: 5, k: 2, alpha: 1e-2, beta: 0.75, alpha_of: mean)
  pool2 = maxpool(norm2, window: 3, stride: 2)
  conv3 = conv(pool2, filters: 8, kernel: 3, pad: 1, towers: cross)
  relu3 = relu(conv3)
  conv4 = conv(relu3, filters: 4, kernel: 3, pad: 1, towers: local)
  relu4 = relu(conv4)
  fc5 = dense(relu4, units: 8, towers: cross)
  relu5 = relu(fc5)
  drop5 = dropout(relu5, p: 0.5)
  fc6 = dense(drop5, units: classes, towers: on(0))
  loss = softmax_cross_entropy(fc6)
}
`;

export function graphFromSource(source: string): Graph {
  const result = compileSource(source);
  if (!result.graph) throw new Error(result.diagnostics.map((d) => d.message).join("; "));
  return result.graph;
}

export function tinyNetworkCase(batch = 3): GradCase {
  const graph = graphFromSource(TINY_TWO_TOWER);
  return {
    name: "tiny two-tower network",
    graph,
    batch,
    op: "relu1", // written by the fused conv1+relu1 kernel (conv1 itself is never stored)
    opInput: "image",
    inputs: new Map([["image", random(batch * elementCount(graph.inputs[0].shape), 77, -1, 1)]]),
    params: testParams(graph, 5),
    labels: randomLabels(batch, graph.classes, 78),
    activeDropout: [],
    fuse: true,
  };
}

/**
 * Winograd's paths a plain op case does not reach, on a fused net: conv1's forward carries a fused
 * dropout (no Winograd output epilogue for it), so its weight gradient transforms x itself; conv2's
 * reads the forward's V and folds the bias into a GEMM of 1 × 1 channel blocks (5 filters) over 27
 * tiles (a masked vec4 tail), conv3's into 4 × 1 blocks; conv3's data gradient folds relu2's
 * derivative into its store. `passes`: a binding limit that splits the forwards and data gradients
 * into batch passes, which leaves the weight gradients (all images at once) to the direct kernels.
 */
export const WINOGRAD_PATHS = `
network winograd_paths {
  input image: f32[3, 6, 6]
  classes: 3
  conv1 = conv(image, filters: 5, kernel: 3, pad: 1, towers: cross, bias: 0.1)
  relu1 = relu(conv1)
  drop1 = dropout(relu1, p: 0.3)
  conv2 = conv(drop1, filters: 5, kernel: 3, pad: 1, towers: cross, bias: 0.1)
  relu2 = relu(conv2)
  conv3 = conv(relu2, filters: 4, kernel: 3, pad: 1, towers: cross, bias: 0.1)
  relu3 = relu(conv3)
  fc4 = dense(relu3, units: classes, towers: cross)
  loss = softmax_cross_entropy(fc4)
}
`;

export function winogradPathCase(passes: boolean): GradCase {
  const graph = graphFromSource(WINOGRAD_PATHS);
  const batch = 3;
  return {
    name: passes ? "Winograd paths in batch passes" : "Winograd paths (fused dropout, V reuse, bias fold)",
    graph,
    batch,
    op: "relu2", // written by the fused conv2+relu2 kernel
    opInput: "image",
    inputs: new Map([["image", random(batch * elementCount(graph.inputs[0].shape), 91, -1, 1)]]),
    // conv1's bias 3 keeps relu1 > 0, so the dropout masks read back as drop1 ≠ 0 are the real ones
    params: new Map([...testParams(graph, 92), ["conv1.bias", new Float32Array(5).fill(3)]]),
    labels: randomLabels(batch, graph.classes, 93),
    activeDropout: ["drop1"],
    fuse: true,
    // conv2's V for all 3 images is 8960 bytes, for one image 3840
    maxBindingBytes: passes ? 6000 : undefined,
  };
}
