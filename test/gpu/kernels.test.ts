// Every WGSL kernel against TF.js's CPU backend, on a real WebGPU device (lavapipe on CPU machines).
// Error measure: max|gpu − tf| / max|tf| over the whole output (relativeError), bound 1e-4.
// TF is NHWC with HWIO filters: the references transpose in and out. Sizes are odd and batches > 1 on
// purpose, so that index math cannot pass by symmetry.
import { afterAll, beforeAll, expect, it } from "vitest";
import type {
  ActivationOp,
  ConvAttrs,
  DenseAttrs,
  LrnAttrs,
  NodeAttrs,
  Padding2D,
  PoolAttrs,
} from "../../compiler/graph.ts";
import { useGpu } from "./adapter.ts";
import { oneNodeGraph, pad, random, randomParams, relativeError, runGraph } from "./one-node.ts";
import { nhwc, tf, tfAvgPool, tfConv, tfDense, tfLrn, tfMaxPool, toNchw } from "./tf-reference.ts";

const gpu = await useGpu();
const TOLERANCE = 1e-4;
const measured: Record<string, number> = {};

beforeAll(async () => {
  await tf.setBackend("cpu");
});
afterAll(() => {
  const rows = Object.entries(measured).map(([k, v]) => `  ${k.padEnd(44)} ${v.toExponential(2)}`);
  if (rows.length > 0) console.log(`max relative error per case (bound ${TOLERANCE}):\n${rows.join("\n")}`);
});

const nchwData = (t: tf.Tensor) => toNchw(t as tf.Tensor4D).dataSync() as Float32Array;

/** Runs one node on the GPU with random inputs/params and compares with `reference`. */
async function check(
  label: string,
  attrs: NodeAttrs,
  inputShapes: number[][],
  batch: number,
  reference: (xs: Float32Array[], params: Map<string, Float32Array>) => ArrayLike<number>,
  range: [number, number] = [-1, 1],
) {
  const graph = oneNodeGraph(attrs, inputShapes);
  const params = randomParams(graph, 1000);
  const xs = inputShapes.map((s, i) => random(batch * s.reduce((a, b) => a * b, 1), 7 + i, ...range));
  const inputs = Object.fromEntries(graph.inputs.map((inp, i) => [inp.name, xs[i]]));
  const { y, executor } = await runGraph(gpu.dev!, graph, { batch, params, inputs });
  executor.destroy();
  const want = tf.tidy(() => Float32Array.from(reference(xs, params)));
  const err = relativeError(y, want);
  measured[label] = err;
  expect(y.length).toBe(want.length);
  expect(err).toBeLessThanOrEqual(TOLERANCE);
}

const conv = (
  filters: number,
  kernel: [number, number],
  stride: [number, number],
  p: Padding2D,
  groups: number,
  bias = true,
): ConvAttrs => ({
  op: "conv",
  filters,
  kernel,
  stride,
  pad: p,
  round: "floor",
  towers: groups > 1 ? { kind: "local" } : { kind: "cross" },
  groups,
  bias,
});

gpu.describe("conv", () => {
  const cases: [string, number[], number, ConvAttrs][] = [
    ["grouped 2 towers, 3x3 pad 1, bias", [6, 9, 11], 2, conv(8, [3, 3], [1, 1], pad(1), 2)],
    ["strided 5x5 / 3, no pad, no bias", [3, 23, 23], 1, conv(5, [5, 5], [3, 3], pad(0), 1, false)],
    ["asymmetric pad (0,2,1,0), 3x2 / (2,1)", [4, 10, 7], 3, conv(6, [3, 2], [2, 1], pad(0, 2, 1, 0), 1)],
    ["conv1-like 11x11 / 4 pad 2", [3, 35, 35], 2, conv(8, [11, 11], [4, 4], pad(2), 1)],
    ["conv2-like grouped 5x5 pad 2, 4 groups", [8, 7, 7], 1, conv(12, [5, 5], [1, 1], pad(2), 4)],
  ];
  for (const [label, shape, batch, a] of cases) {
    it(label, () =>
      check(`conv ${label}`, a, [shape], batch, ([x], p) =>
        nchwData(tfConv(nhwc(x, [batch, ...shape]), p.get("y.weight")!, p.get("y.bias"), a)),
      ),
    );
  }
});

gpu.describe("lrn", () => {
  const lrn = (size: number, alpha: number, alphaOf: "sum" | "mean", groups: number): LrnAttrs => ({
    op: "lrn",
    size,
    k: 2,
    alpha,
    beta: 0.75,
    alphaOf,
    groups,
  });
  const cases: [string, number[], number, LrnAttrs][] = [
    ["paper (sum), per-tower groups of 5", [10, 5, 3], 2, lrn(5, 0.1, "sum", 2)],
    ["paper (sum), one group, odd channels", [7, 3, 4], 3, lrn(5, 0.05, "sum", 1)],
    ["mean convention, size 3, 3 groups", [9, 2, 5], 1, lrn(3, 0.3, "mean", 3)],
  ];
  for (const [label, shape, batch, a] of cases) {
    it(label, () =>
      check(
        `lrn ${label}`,
        a,
        [shape],
        batch,
        ([x]) => nchwData(tfLrn(nhwc(x, [batch, ...shape]), a)),
        [-3, 3],
      ),
    );
  }
});

gpu.describe("pooling", () => {
  const pool = (
    op: "maxpool" | "avgpool",
    window: number,
    stride: number,
    p: Padding2D,
    round: "floor" | "ceil" = "floor",
  ): PoolAttrs => ({
    op,
    window: [window, window],
    stride: [stride, stride],
    pad: p,
    round,
  });
  const tfMax = (x: Float32Array, s: number[], a: PoolAttrs) => nchwData(tfMaxPool(nhwc(x, s), a));
  const tfAvg = (x: Float32Array, s: number[], a: PoolAttrs) => nchwData(tfAvgPool(nhwc(x, s), a));
  it("overlapping max-pool 3/2", () => {
    const a = pool("maxpool", 3, 2, pad(0));
    return check("maxpool 3/2 [5,13,13]", a, [[5, 13, 13]], 2, ([x]) => tfMax(x, [2, 5, 13, 13], a));
  });
  it("max-pool 3/2 in ceil mode, all inputs negative (padding never wins)", () => {
    const a = pool("maxpool", 3, 2, pad(0, 1, 0, 1), "ceil"); // 14 → 7 rather than 6
    return check(
      "maxpool 3/2 ceil [3,14,14] negative",
      a,
      [[3, 14, 14]],
      3,
      ([x]) => tfMax(x, [3, 3, 14, 14], a),
      [-2, -1],
    );
  });
  it("average pool 3/2 with padding 1 (count excludes padding)", () => {
    const a = pool("avgpool", 3, 2, pad(1));
    return check("avgpool 3/2 pad 1 [4,9,9]", a, [[4, 9, 9]], 2, ([x]) => tfAvg(x, [2, 4, 9, 9], a));
  });
  it("average pool 2/2 without padding", () => {
    const a = pool("avgpool", 2, 2, pad(0));
    return check("avgpool 2/2 [3,7,5]", a, [[3, 7, 5]], 1, ([x]) => tfAvg(x, [1, 3, 7, 5], a));
  });
});

gpu.describe("dense", () => {
  const dense = (units: number, groups = 1, bias = true): DenseAttrs => ({
    op: "dense",
    units,
    towers: { kind: "cross" },
    groups,
    bias,
  });
  const ref = (
    x: Float32Array,
    batch: number,
    features: number,
    p: Map<string, Float32Array>,
    a: DenseAttrs,
  ) =>
    tfDense(
      tf.tensor2d(x, [batch, features]),
      p.get("y.weight")!,
      a.bias ? p.get("y.bias") : undefined,
      a,
    ).dataSync();
  it("from a [4,3,5] map (CHW flatten), batch 3", () =>
    check("dense 60→7 batch 3", dense(7), [[4, 3, 5]], 3, ([x], p) => ref(x, 3, 60, p, dense(7))));
  it("grouped (2 towers), no bias", () =>
    check("dense grouped 10→6", dense(6, 2, false), [[10]], 2, ([x], p) =>
      ref(x, 2, 10, p, dense(6, 2, false)),
    ));
  it("batch 16: the tiled form (16 examples × 1 row per invocation), long rows", () =>
    check("dense 300→33 batch 16", dense(33), [[300]], 16, ([x], p) => ref(x, 16, 300, p, dense(33))));
  it("tiled form, grouped (2 towers of 12: 4 rows per invocation), batch 8", () =>
    check("dense grouped 130→24 batch 8", dense(24, 2), [[130]], 8, ([x], p) =>
      ref(x, 8, 130, p, dense(24, 2)),
    ));
  it("tiled form, 2 rows per invocation (rows per group 2 mod 4), batch 6", () =>
    check("dense 70→10 batch 6", dense(10), [[70]], 6, ([x], p) => ref(x, 6, 70, p, dense(10))));
  it("batch 1: the reduction form, 4 output rows per workgroup, grouped (2 towers of 12)", () =>
    check("dense grouped 130→24 batch 1", dense(24, 2), [[130]], 1, ([x], p) =>
      ref(x, 1, 130, p, dense(24, 2)),
    ));
  it("batch 1: the reduction form, 2 output rows per workgroup (rows per group 2 mod 4)", () =>
    check("dense 70→10 batch 1", dense(10), [[70]], 1, ([x], p) => ref(x, 1, 70, p, dense(10))));
  it("tiled form, 3 groups of 16 rows (8 rows per invocation), batch 32", () =>
    check("dense grouped 99→48 batch 32", dense(48, 3), [[99]], 32, ([x], p) =>
      ref(x, 32, 99, p, dense(48, 3)),
    ));
});

gpu.describe("element-wise", () => {
  for (const op of ["relu", "tanh", "sigmoid"] as ActivationOp[]) {
    it(op, () => check(op, { op }, [[3, 5, 7]], 2, ([x]) => tf[op](tf.tensor1d(x)).dataSync(), [-12, 12]));
  }
  it("relu over 5M elements: more than 65,535 workgroups, folded into a 2-D grid", async () => {
    const graph = oneNodeGraph({ op: "relu" }, [[5, 1000, 1000]]);
    const x = random(5_000_000, 11);
    const { y, executor } = await runGraph(gpu.dev!, graph, { batch: 1, inputs: { x } });
    expect(executor.kernels[0].dispatch[1]).toBeGreaterThan(1);
    executor.destroy();
    measured["relu 5M (2-D grid)"] = relativeError(
      y,
      x.map((v) => Math.max(v, 0)),
    );
    expect(measured["relu 5M (2-D grid)"]).toBe(0);
  });
  it("tanh at extreme inputs stays finite", () =>
    check(
      "tanh extreme",
      { op: "tanh" },
      [[9]],
      1,
      ([x]) => tf.tanh(tf.tensor1d(x)).dataSync(),
      [-200, 200],
    ));
});

gpu.describe("softmax", () => {
  it("over classes, batch 3", () =>
    check(
      "softmax [11] batch 3",
      { op: "softmax" },
      [[11]],
      3,
      ([x]) => tf.softmax(tf.tensor2d(x, [3, 11])).dataSync(),
      [-20, 20],
    ));
  it("over channels of a map", () =>
    check("softmax over C of [4,2,3]", { op: "softmax" }, [[4, 2, 3]], 2, ([x]) =>
      nchwData(tf.softmax(nhwc(x, [2, 4, 2, 3]))),
    ));
});

gpu.describe("batchnorm (inference)", () => {
  const bn = (x: Float32Array, shape: number[], p: Map<string, Float32Array>, eps: number) => {
    const c = shape[1];
    const t = shape.length === 4 ? nhwc(x, shape) : tf.tensor2d(x, [shape[0], c]);
    const y = tf.batchNorm(
      t,
      p.get("y.running_mean")!,
      p.get("y.running_var")!,
      p.get("y.bias")!,
      p.get("y.weight")!,
      eps,
    );
    return shape.length === 4 ? nchwData(y) : y.dataSync();
  };
  it("feature map", () =>
    check("batchnorm [5,4,3]", { op: "batchnorm", eps: 1e-5, momentum: 0.1 }, [[5, 4, 3]], 2, ([x], p) =>
      bn(x, [2, 5, 4, 3], p, 1e-5),
    ));
  it("vector, large eps", () =>
    check("batchnorm [7] eps 0.1", { op: "batchnorm", eps: 0.1, momentum: 0.1 }, [[7]], 3, ([x], p) =>
      bn(x, [3, 7], p, 0.1),
    ));
});

gpu.describe("concat", () => {
  it("along channels", () =>
    check(
      "concat [2,3,4]+[3,3,4]",
      { op: "concat" },
      [
        [2, 3, 4],
        [3, 3, 4],
      ],
      2,
      ([a, b]) => tf.concat([tf.tensor4d(a, [2, 2, 3, 4]), tf.tensor4d(b, [2, 3, 3, 4])], 1).dataSync(),
    ));
});
