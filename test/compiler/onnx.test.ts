// The ONNX exporter, checked end to end: hand-built graphs are exported, run in onnxruntime, and
// compared with an independent forward pass written against TF.js's CPU kernels (NHWC, its own
// conv/pool/LRN implementations), so a convention slip on either side shows up as a mismatch.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import onnxProto from "onnx-proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import type { Graph, Init, Node, NodeAttrs, Padding2D, Param } from "../../compiler/graph.ts";
import { elementCount } from "../../compiler/graph.ts";
import { ONNX_IR_VERSION, ONNX_OPSET, exportOnnx } from "../../compiler/onnx.ts";
import { fillNormal, initParams, paramStream } from "../../runtime/init.ts";
import { runOnnx } from "../helpers/ort.ts";

const { onnx } = onnxProto;
const TOLERANCE = 1e-4;
const measured: string[] = [];

beforeAll(async () => {
  await tf.setBackend("cpu");
});
afterAll(() => {
  console.info(`max relative error, onnxruntime vs TF.js:\n  ${measured.join("\n  ")}`);
});

// ---- hand-built graphs -----------------------------------------------------------------------------

const span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };
const pads = (top: number, bottom = top, left = top, right = left): Padding2D => ({
  top,
  bottom,
  left,
  right,
});
const out = (size: number, k: number, s: number, before: number, after: number) =>
  Math.floor((size + before + after - k) / s) + 1;

/** Fills Node/Param records the way compiler/check does, computing output shapes. */
class Net {
  readonly nodes: Node[] = [];
  readonly params: Param[] = [];
  private readonly shapes = new Map<string, number[]>();
  private readonly input: string;

  constructor(input: string, shape: number[]) {
    this.input = input;
    this.shapes.set(input, shape);
  }

  shapeOf(name: string): number[] {
    return this.shapes.get(name)!;
  }

  add(
    name: string,
    attrs: NodeAttrs,
    inputs: string[],
    shape: number[],
    params: [string, number[], Init][] = [],
  ): string {
    for (const [suffix, pshape, init] of params) {
      this.params.push({
        name: `${name}.${suffix}`,
        shape: pshape,
        init,
        trainable: !suffix.startsWith("running"),
        layer: name,
      });
    }
    this.nodes.push({
      name,
      attrs,
      inputs,
      shape,
      layout: { kind: "replicated" },
      params: params.map(([suffix]) => `${name}.${suffix}`),
      macs: 0,
      span,
    });
    this.shapes.set(name, shape);
    return name;
  }

  conv(
    name: string,
    x: string,
    o: {
      filters: number;
      kernel: number | [number, number];
      stride?: number;
      pad?: Padding2D;
      groups?: number;
      bias?: boolean;
    },
  ): string {
    const [c, h, w] = this.shapeOf(x);
    const kernel: [number, number] = typeof o.kernel === "number" ? [o.kernel, o.kernel] : o.kernel;
    const s = o.stride ?? 1;
    const pad = o.pad ?? pads(0);
    const groups = o.groups ?? 1;
    const bias = o.bias ?? true;
    const fanIn = (c / groups) * kernel[0] * kernel[1];
    return this.add(
      name,
      {
        op: "conv",
        filters: o.filters,
        kernel,
        stride: [s, s],
        pad,
        round: "floor",
        towers: groups > 1 ? { kind: "local" } : { kind: "cross" },
        groups,
        bias,
      },
      [x],
      [o.filters, out(h, kernel[0], s, pad.top, pad.bottom), out(w, kernel[1], s, pad.left, pad.right)],
      [
        [
          "weight",
          [o.filters, c / groups, ...kernel],
          { kind: "normal", mean: 0, std: Math.sqrt(2 / fanIn) },
        ],
        ...(bias
          ? [["bias", [o.filters], { kind: "normal", mean: 0.1, std: 0.2 }] as [string, number[], Init]]
          : []),
      ],
    );
  }

  dense(name: string, x: string, units: number, groups = 1, bias = true): string {
    const inFeatures = elementCount(this.shapeOf(x));
    return this.add(
      name,
      { op: "dense", units, towers: groups > 1 ? { kind: "local" } : { kind: "cross" }, groups, bias },
      [x],
      [units],
      [
        ["weight", [units, inFeatures / groups], { kind: "normal", mean: 0, std: Math.sqrt(1 / inFeatures) }],
        ...(bias
          ? [["bias", [units], { kind: "normal", mean: 0, std: 0.3 }] as [string, number[], Init]]
          : []),
      ],
    );
  }

  unary(name: string, op: "relu" | "tanh" | "sigmoid" | "flatten" | "softmax", x: string): string {
    const shape = op === "flatten" ? [elementCount(this.shapeOf(x))] : this.shapeOf(x);
    return this.add(name, { op }, [x], shape);
  }

  lrn(
    name: string,
    x: string,
    o: {
      size?: number;
      k?: number;
      alpha?: number;
      beta?: number;
      alphaOf?: "sum" | "mean";
      groups?: number;
    } = {},
  ): string {
    return this.add(
      name,
      {
        op: "lrn",
        size: o.size ?? 5,
        k: o.k ?? 2,
        alpha: o.alpha ?? 1e-4,
        beta: o.beta ?? 0.75,
        alphaOf: o.alphaOf ?? "sum",
        groups: o.groups ?? 1,
      },
      [x],
      this.shapeOf(x),
    );
  }

  pool(
    name: string,
    op: "maxpool" | "avgpool",
    x: string,
    window: number,
    stride: number,
    pad = pads(0),
  ): string {
    const [c, h, w] = this.shapeOf(x);
    return this.add(
      name,
      { op, window: [window, window], stride: [stride, stride], pad, round: "floor" },
      [x],
      [c, out(h, window, stride, pad.top, pad.bottom), out(w, window, stride, pad.left, pad.right)],
    );
  }

  batchnorm(name: string, x: string): string {
    const c = this.shapeOf(x)[0];
    const stat = (mean: number): Init => ({ kind: "normal", mean, std: 0.2 });
    return this.add(name, { op: "batchnorm", eps: 1e-5, momentum: 0.1 }, [x], this.shapeOf(x), [
      ["weight", [c], stat(1)],
      ["bias", [c], stat(0)],
      ["running_mean", [c], stat(0)],
      ["running_var", [c], stat(1)],
    ]);
  }

  graph(logits: string, towers = 1): Graph {
    const loss = this.add("loss", { op: "softmax_cross_entropy" }, [logits], []);
    return {
      name: "test",
      towers,
      classes: this.shapeOf(logits)[0],
      inputs: [{ name: this.input, dtype: "f32", shape: this.shapeOf(this.input), span }],
      nodes: this.nodes,
      params: this.params,
      logits,
      loss,
    };
  }
}

// ---- the independent reference: TF.js CPU, NHWC ------------------------------------------------

const toNhwc = (x: tf.Tensor) => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
const toNchw = (x: tf.Tensor) => tf.transpose(x, [0, 3, 1, 2]) as tf.Tensor4D;
const channels = (x: tf.Tensor, groups: number, axis: number) =>
  groups === 1 ? [x] : tf.split(x, groups, axis);

interface RefOptions {
  /** Deliberately wrong variants, to prove the comparison can tell conventions apart. */
  lrnAcrossTowers?: boolean;
  lrnAlphaDividedByN?: boolean;
}

function reference(
  graph: Graph,
  weights: Map<string, Float32Array>,
  input: Float32Array,
  batch: number,
  opts: RefOptions = {},
): Float32Array {
  return tf.tidy(() => {
    const p = (name: string) => {
      const param = graph.params.find((q) => q.name === name)!;
      return tf.tensor(weights.get(name)!, param.shape);
    };
    const values = new Map<string, tf.Tensor>([
      [graph.inputs[0].name, tf.tensor(input, [batch, ...graph.inputs[0].shape])],
    ]);
    for (const node of graph.nodes) {
      if (node.name === graph.loss) continue;
      const x = values.get(node.inputs[0])!;
      const a = node.attrs;
      let y: tf.Tensor;
      switch (a.op) {
        case "conv": {
          const w = p(`${node.name}.weight`); // OIHW → per group HWIO
          const xs = channels(toNhwc(x), a.groups, 3);
          const ws = channels(w, a.groups, 0);
          const padding = [
            [0, 0],
            [a.pad.top, a.pad.bottom],
            [a.pad.left, a.pad.right],
            [0, 0],
          ] as [[number, number], [number, number], [number, number], [number, number]];
          const ys = xs.map((xg, g) =>
            tf.conv2d(xg as tf.Tensor4D, tf.transpose(ws[g], [2, 3, 1, 0]) as tf.Tensor4D, a.stride, padding),
          );
          let z = ys.length === 1 ? ys[0] : tf.concat(ys, 3);
          if (a.bias) z = tf.add(z, p(`${node.name}.bias`));
          y = toNchw(z);
          break;
        }
        case "dense": {
          const flat = tf.reshape(x, [batch, -1]);
          const w = p(`${node.name}.weight`);
          const xs = channels(flat, a.groups, 1);
          const ws = channels(w, a.groups, 0);
          const ys = xs.map((xg, g) => tf.matMul(xg as tf.Tensor2D, ws[g] as tf.Tensor2D, false, true));
          y = ys.length === 1 ? ys[0] : tf.concat(ys, 1);
          if (a.bias) y = tf.add(y, p(`${node.name}.bias`));
          break;
        }
        case "relu":
          y = tf.relu(x);
          break;
        case "tanh":
          y = tf.tanh(x);
          break;
        case "sigmoid":
          y = tf.sigmoid(x);
          break;
        case "lrn": {
          // TF sums over d ± depthRadius and does not divide alpha by the window size.
          const perTerm = a.alphaOf === "sum" && !opts.lrnAlphaDividedByN ? a.alpha : a.alpha / a.size;
          const xs = channels(toNhwc(x), opts.lrnAcrossTowers ? 1 : a.groups, 3);
          const ys = xs.map((xg) =>
            tf.localResponseNormalization(xg as tf.Tensor4D, Math.floor(a.size / 2), a.k, perTerm, a.beta),
          );
          y = toNchw(ys.length === 1 ? ys[0] : tf.concat(ys, 3));
          break;
        }
        case "maxpool":
        case "avgpool": {
          const padding = [
            [0, 0],
            [a.pad.top, a.pad.bottom],
            [a.pad.left, a.pad.right],
            [0, 0],
          ] as [number, number][];
          const xn = toNhwc(x);
          if (a.op === "maxpool") {
            y = toNchw(
              tf.maxPool(tf.pad(xn, padding, -Infinity) as tf.Tensor4D, a.window, a.stride, "valid"),
            );
          } else {
            // Average over the real pixels only: window sums of x over window sums of a 0/1 mask.
            const sum = tf.avgPool(tf.pad(xn, padding, 0) as tf.Tensor4D, a.window, a.stride, "valid");
            const count = tf.avgPool(
              tf.pad(tf.onesLike(xn), padding, 0) as tf.Tensor4D,
              a.window,
              a.stride,
              "valid",
            );
            y = toNchw(tf.div(sum, count));
          }
          break;
        }
        case "batchnorm": {
          const shape = x.rank === 4 ? [1, -1, 1, 1] : [1, -1];
          const get = (s: string) => tf.reshape(p(`${node.name}.${s}`), shape);
          y = tf.add(
            tf.mul(
              tf.div(tf.sub(x, get("running_mean")), tf.sqrt(tf.add(get("running_var"), a.eps))),
              get("weight"),
            ),
            get("bias"),
          );
          break;
        }
        case "flatten":
          y = tf.reshape(x, [batch, -1]);
          break;
        case "concat":
          y = tf.concat(
            node.inputs.map((i) => values.get(i)!),
            1,
          );
          break;
        case "softmax":
          y = tf.softmax(x);
          break;
        case "dropout":
          y = x;
          break;
        default:
          throw new Error(`reference: no ${a.op}`);
      }
      values.set(node.name, y);
    }
    return values.get(graph.logits)!.dataSync() as Float32Array;
  });
}

// ---- comparison ------------------------------------------------------------------------------------

function relError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

function randomInput(graph: Graph, batch: number, scale = 1): Float32Array {
  const x = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(x, 0, scale, paramStream(99, "input"));
  return x;
}

/** Exports, runs in onnxruntime and in the TF.js reference; asserts and records the error. */
async function compare(
  label: string,
  graph: Graph,
  batch: number,
  opts: { scale?: number; exportBatch?: number } = {},
) {
  const weights = initParams(graph, 7);
  const x = randomInput(graph, batch, opts.scale);
  const model = exportOnnx(graph, weights, { batch: opts.exportBatch ?? "dynamic" });
  const result = await runOnnx(model, {
    [graph.inputs[0].name]: { data: x, dims: [batch, ...graph.inputs[0].shape] },
  });
  expect(Object.keys(result)).toEqual(["logits"]);
  const expected = reference(graph, weights, x, batch);
  const error = relError(result.logits, expected);
  measured.push(`${label}: ${error.toExponential(2)}`);
  expect(error).toBeLessThanOrEqual(TOLERANCE);
  return { weights, x, logits: result.logits, expected, model };
}

// ---- tests -----------------------------------------------------------------------------------------

describe("exportOnnx matches TF.js through onnxruntime", () => {
  it("grouped convolutions and padded, strided, asymmetric convolutions", async () => {
    const n = new Net("image", [4, 13, 11]);
    let x = n.conv("conv1", "image", { filters: 6, kernel: [3, 4], stride: 2, pad: pads(1, 2, 0, 1) });
    x = n.unary("relu1", "relu", x);
    x = n.conv("conv2", x, { filters: 8, kernel: 3, pad: pads(1), groups: 2 });
    x = n.conv("conv3", x, { filters: 4, kernel: [2, 1], stride: 1, groups: 2, bias: false });
    await compare("conv (groups, pads, strides)", n.graph(n.dense("fc", x, 5)), 2);
  });

  it("the paper's LRN over two towers, and only the right conventions agree", async () => {
    const n = new Net("image", [3, 17, 17]);
    let x = n.conv("conv1", "image", { filters: 16, kernel: 5, stride: 2, pad: pads(2) });
    x = n.unary("relu1", "relu", x);
    x = n.lrn("norm1", x, { groups: 2, alpha: 1e-3 });
    x = n.pool("pool1", "maxpool", x, 3, 2, pads(0, 1, 0, 1)); // round: ceil resolved as bottom/right pad
    x = n.conv("conv2", x, { filters: 12, kernel: 3, pad: pads(1), groups: 2 });
    x = n.unary("relu2", "relu", x);
    x = n.lrn("norm2", x, { groups: 2 }); // the paper's k 2, n 5, α 1e-4, β 0.75
    const graph = n.graph(n.dense("fc", x, 10));
    const {
      logits,
      weights,
      x: input,
    } = await compare("LRN, paper conventions, 2 towers", graph, 2, { scale: 20 });
    // The test has teeth: LRN across the tower boundary, or α divided by n, would be caught.
    expect(relError(logits, reference(graph, weights, input, 2, { lrnAcrossTowers: true }))).toBeGreaterThan(
      100 * TOLERANCE,
    );
    expect(
      relError(logits, reference(graph, weights, input, 2, { lrnAlphaDividedByN: true })),
    ).toBeGreaterThan(100 * TOLERANCE);
  });

  it("LRN with α as a mean (Caffe/ONNX) and an even size", async () => {
    const n = new Net("image", [7, 5, 5]);
    let x = n.lrn("norm_even", "image", { size: 4, alpha: 0.5, alphaOf: "mean", k: 1, beta: 0.6 });
    x = n.lrn("norm_odd", x, { size: 3, alpha: 0.3, alphaOf: "mean", k: 1.5, beta: 0.9 });
    await compare("LRN, mean convention, sizes 4 and 3", n.graph(n.unary("flat", "flatten", x)), 3, {
      scale: 2,
    });
  });

  it("max and average pools with padding (average over real pixels only)", async () => {
    const n = new Net("image", [3, 12, 10]);
    let x = n.pool("pool1", "maxpool", "image", 3, 2, pads(1, 2, 1, 1));
    x = n.pool("pool2", "avgpool", x, 3, 2, pads(1, 2, 2, 1));
    x = n.pool("pool3", "avgpool", x, 2, 1);
    await compare("max/avg pool", n.graph(n.unary("flat", "flatten", x)), 2);
  });

  it("dense (flattening CHW, tower-local), activations, dropout, concat, batch norm, softmax", async () => {
    const n = new Net("image", [4, 6, 6]);
    const a = n.unary("act_a", "tanh", n.conv("conv_a", "image", { filters: 4, kernel: 3, pad: pads(1) }));
    const b = n.unary("act_b", "sigmoid", n.conv("conv_b", "image", { filters: 2, kernel: 3, pad: pads(1) }));
    let x = n.add("cat", { op: "concat" }, [a, b], [6, 6, 6]);
    x = n.batchnorm("bn", x);
    x = n.dense("fc1", x, 16);
    x = n.add("drop1", { op: "dropout", p: 0.5 }, [x], [16]);
    x = n.dense("fc2", n.unary("relu", "relu", x), 8, 2); // block-diagonal over two towers
    x = n.batchnorm("bn2", x);
    x = n.dense("fc3", x, 5, 1, false);
    await compare("dense/concat/batchnorm/softmax", n.graph(n.unary("prob", "softmax", x)), 4);
  });

  it("a small two-tower AlexNet, dynamic and fixed batch", async () => {
    const n = new Net("image", [3, 35, 35]);
    let x = n.conv("conv1", "image", { filters: 8, kernel: 5, stride: 2, pad: pads(2) });
    x = n.pool(
      "pool1",
      "maxpool",
      n.lrn("norm1", n.unary("relu1", "relu", x), { groups: 2 }),
      3,
      2,
      pads(0, 1, 0, 1),
    );
    x = n.conv("conv2", x, { filters: 12, kernel: 3, pad: pads(1), groups: 2 });
    x = n.pool(
      "pool2",
      "maxpool",
      n.lrn("norm2", n.unary("relu2", "relu", x), { groups: 2 }),
      3,
      2,
      pads(0, 1, 0, 1),
    );
    x = n.unary("relu3", "relu", n.conv("conv3", x, { filters: 16, kernel: 3, pad: pads(1) }));
    x = n.unary("relu4", "relu", n.conv("conv4", x, { filters: 16, kernel: 3, pad: pads(1), groups: 2 }));
    x = n.unary("relu5", "relu", n.conv("conv5", x, { filters: 12, kernel: 3, pad: pads(1), groups: 2 }));
    x = n.pool("pool5", "maxpool", x, 3, 2, pads(0, 1, 0, 1));
    x = n.add("drop6", { op: "dropout", p: 0.5 }, [n.unary("relu6", "relu", n.dense("fc6", x, 32))], [32]);
    x = n.add("drop7", { op: "dropout", p: 0.5 }, [n.unary("relu7", "relu", n.dense("fc7", x, 32))], [32]);
    const graph = n.graph(n.dense("fc8", x, 10), 2);
    await compare("mini AlexNet, batch 3, dynamic", graph, 3, { scale: 20 });
    await compare("mini AlexNet, batch 2, fixed", graph, 2, { scale: 20, exportBatch: 2 });
  });
});

describe("exportOnnx model structure", () => {
  const n = new Net("image", [4, 8, 8]);
  let x = n.conv("conv1", "image", { filters: 4, kernel: 3, pad: pads(1) });
  x = n.lrn("norm1", x, { groups: 2 });
  x = n.add("drop", { op: "dropout", p: 0.5 }, [n.dense("fc", x, 3)], [3]);
  const graph = n.graph(x);
  const weights = initParams(graph, 1);
  // Plain-object view of the decoded protobuf: int64 as numbers, enums as names.
  type Obj = { [key: string]: any };
  const decode = (bytes: Uint8Array): Obj =>
    onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, enums: String, defaults: true });
  const dims = (value: Obj) => value.type.tensorType.shape.dim.map((d: Obj) => d.dimParam || d.dimValue);

  it("is opset 13, IR 7, with the graph input, a symbolic batch, `logits` and PyTorch-named initializers", () => {
    const model = decode(exportOnnx(graph, weights));
    expect(model.irVersion).toBe(ONNX_IR_VERSION);
    expect(model.opsetImport).toEqual([{ domain: "", version: ONNX_OPSET }]);
    const g = model.graph;
    expect(g.input.map((i: Obj) => i.name)).toEqual(["image"]);
    expect(dims(g.input[0])).toEqual(["N", 4, 8, 8]);
    expect(g.output.map((o: Obj) => o.name)).toEqual(["logits"]);
    expect(dims(g.output[0])).toEqual(["N", 3]);
    expect(g.initializer.map((t: Obj) => [t.name, t.dims])).toEqual([
      ["conv1.weight", [4, 4, 3, 3]],
      ["conv1.bias", [4]],
      ["fc.weight", [3, 256]],
      ["fc.bias", [3]],
    ]);
    expect(new Float32Array(Uint8Array.from(g.initializer[0].rawData).buffer)).toEqual(
      weights.get("conv1.weight"),
    );
    // No loss; the tower-split LRN; the dropout as the output becomes an Identity named `logits`.
    expect(g.node.map((node: Obj) => node.opType)).toEqual([
      "Conv",
      "Split",
      "LRN",
      "LRN",
      "Concat",
      "Flatten",
      "Gemm",
      "Identity",
    ]);
    const lrn = g.node[2].attribute;
    expect(Object.fromEntries(lrn.map((a: Obj) => [a.name, a.type === "INT" ? a.i : a.f]))).toEqual({
      size: 5,
      alpha: Math.fround(5e-4), // ONNX divides α by size, the paper does not
      beta: 0.75,
      bias: 2,
    });
  });

  it("fixes the batch dimension on request", () => {
    const model = decode(exportOnnx(graph, weights, { batch: 16 }));
    expect(dims(model.graph.input[0])).toEqual([16, 4, 8, 8]);
  });

  const problem = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(DiagnosticError);
      expect((error as DiagnosticError).diagnostics[0].code).toBe("AX4007");
      return (error as DiagnosticError).diagnostics[0].message;
    }
    throw new Error("expected AX4007");
  };

  it("reports missing or mis-sized weights", () => {
    const missing = new Map(weights);
    missing.delete("fc.weight");
    expect(problem(() => exportOnnx(graph, missing))).toBe(
      "cannot export `fc` to ONNX: no weights given for `fc.weight`",
    );
    const short = new Map(weights).set("conv1.bias", new Float32Array(3));
    expect(problem(() => exportOnnx(graph, short))).toMatch(
      /`conv1\.bias` has 3 values, its shape \[4\] needs 4/,
    );
  });

  it("reports what ONNX or onnxruntime cannot express", () => {
    const unknown = structuredClone(graph);
    (unknown.nodes[1].attrs as { op: string }).op = "swish";
    expect(problem(() => exportOnnx(unknown, weights))).toMatch(
      /`norm1`.*layer kind `swish` has no ONNX mapping/,
    );
    const p = new Net("image", [1, 4, 4]);
    const wide = p.graph(
      p.unary("flat", "flatten", p.pool("pool", "maxpool", "image", 2, 2, pads(0, 2, 0, 0))),
    );
    expect(problem(() => exportOnnx(wide, new Map()))).toMatch(/`pool`.*not smaller than the 2×2 window/);
    expect(problem(() => exportOnnx(graph, weights, { batch: 0 }))).toMatch(
      /batch size must be a positive integer/,
    );
  });
});
