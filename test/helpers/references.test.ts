// Self-tests of the gradient tests' references, on the CPU only:
//  - reference64's inference forward equals onnxruntime on alexc's ONNX export (≤ 1e-5 relative);
//  - the TF.js model of a graph (tf-graph.ts) computes the same forward and loss as reference64;
//  - tf.grads on the TF model equals float64 central differences on reference64 for every op case
//    and a tiny two-tower network: two independently written references agreeing on gradients.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { exportOnnx } from "../../compiler/onnx.ts";
import { fillNormal, paramStream } from "../../runtime/init.ts";
import { buildGraph, pad, random } from "../gpu/one-node.ts";
import { expectClose, measured, report } from "./compare.ts";
import { finiteDiff, largestIndices, sampleIndices } from "./finite-diff.ts";
import { type GradCase, graphFromSource, opCases, tinyNetworkCase } from "./grad-cases.ts";
import { runOnnx } from "./ort.ts";
import { forward64, sgdStep } from "./reference64.ts";
import { tfGradients, useTfCpu } from "./tf-graph.ts";

beforeAll(useTfCpu);
afterAll(() => {
  if (measured.length) console.log(`reference self-tests, measured errors:\n${report()}`);
});

function alexnetSmall(): Graph {
  return graphFromSource(readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"));
}

/** He-style weights so that activations stay alive through every layer. */
function liveWeights(graph: Graph, seed: number): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  for (const p of graph.params) {
    const data = new Float32Array(elementCount(p.shape));
    if (p.name.endsWith("running_var")) data.set(random(data.length, seed, 0.5, 2));
    else {
      const fanIn = p.shape.length > 1 ? elementCount(p.shape.slice(1)) : 0;
      fillNormal(data, 0, fanIn ? Math.sqrt(2 / fanIn) : 0.1, paramStream(seed, p.name));
    }
    weights.set(p.name, data);
  }
  return weights;
}

describe("reference64 forward", () => {
  it("alexnet-small.net inference equals onnxruntime on exportOnnx within 1e-5", async () => {
    const graph = alexnetSmall();
    const batch = 2;
    const weights = liveWeights(graph, 3);
    const image = new Float32Array(batch * elementCount(graph.inputs[0].shape));
    fillNormal(image, 0, 1, paramStream(4, "input"));
    const ours = forward64(graph, weights, new Map([["image", image]]), { batch, mode: "inference" }).logits;
    const ort = await runOnnx(exportOnnx(graph, weights, { batch }), {
      image: { data: image, dims: [batch, ...graph.inputs[0].shape] },
    });
    expectClose("reference64 vs ORT alexnet-small logits", ours, ort.logits, { rtol: 1e-5 });
  });

  it("batchnorm (running stats), avgpool, concat, tanh, sigmoid, softmax equal onnxruntime", async () => {
    const graph = buildGraph({ x: [3, 9, 8] }, [
      [
        "c",
        {
          op: "conv",
          filters: 4,
          kernel: [3, 3],
          stride: [2, 1],
          pad: pad(1, 2, 0, 1),
          round: "floor",
          towers: { kind: "cross" },
          groups: 1,
          bias: true,
        },
        ["x"],
      ],
      ["bn", { op: "batchnorm", eps: 1e-3, momentum: 0.1 }, ["c"]],
      ["t", { op: "tanh" }, ["bn"]],
      ["s", { op: "sigmoid" }, ["c"]],
      ["cat", { op: "concat" }, ["t", "s"]],
      [
        "ap",
        { op: "avgpool", window: [3, 3], stride: [2, 2], pad: pad(1, 0, 1, 1), round: "floor" },
        ["cat"],
      ],
      ["mp", { op: "maxpool", window: [2, 3], stride: [1, 2], pad: pad(0, 1, 1, 0), round: "floor" }, ["ap"]],
      ["fc", { op: "dense", units: 6, towers: { kind: "cross" }, groups: 1, bias: true }, ["mp"]],
      ["sm", { op: "softmax" }, ["fc"]],
    ]);
    const batch = 3;
    const weights = liveWeights(graph, 9);
    const x = random(batch * 3 * 9 * 8, 10);
    const ours = forward64(graph, weights, new Map([["x", x]]), { batch, mode: "inference" }).logits;
    const ort = await runOnnx(exportOnnx(graph, weights, { batch }), {
      x: { data: x, dims: [batch, 3, 9, 8] },
    });
    expectClose("reference64 vs ORT bn/avgpool/concat/softmax", ours, ort.logits, { rtol: 1e-5 });
  });

  it("the TF.js model computes reference64's logits and loss (train mode, dropout masks)", () => {
    const graph = alexnetSmall();
    const batch = 2;
    const params = liveWeights(graph, 21);
    const image = random(batch * elementCount(graph.inputs[0].shape), 22);
    const labels = Int32Array.from([3, 7]);
    const dropoutMasks = new Map(
      graph.nodes
        .filter((n) => n.attrs.op === "dropout")
        .map((n, k) => [
          n.name,
          Float32Array.from(random(batch * elementCount(n.shape), 30 + k), (v) => (v > 0 ? 1 : 0)),
        ]),
    );
    const inputs = new Map([["image", image]]);
    const ref = forward64(graph, params, inputs, { batch, mode: "train", dropoutMasks, labels });
    const ours = tfGradients({ graph, params, inputs, labels, batch, dropoutMasks });
    expectClose("tf-graph vs reference64 alexnet-small logits", ours.values.get(graph.logits)!, ref.logits, {
      rtol: 1e-5,
    });
    expect(Math.abs(ours.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
  });

  it("sgdStep follows v ← μv − λεw − εg; w ← w + v", () => {
    const r = sgdStep(new Map([["p", [1, -2]]]), new Map([["p", [0.5, 0]]]), new Map([["p", [0.25, 4]]]), {
      lr: 0.1,
      momentum: 0.9,
      weightDecay: 0.01,
    });
    expect([...r.velocities.get("p")!]).toEqual([
      0.9 * 0.5 - 0.01 * 0.1 * 1 - 0.1 * 0.25,
      0.01 * 0.1 * 2 - 0.1 * 4,
    ]);
    expect([...r.weights.get("p")!]).toEqual([1 + r.velocities.get("p")![0], -2 + r.velocities.get("p")![1]]);
  });
});

/** Random keep masks for a case's active dropout layers (the trainer's come from its hash). */
function masksFor(c: GradCase): Map<string, Float32Array> {
  return new Map(
    c.activeDropout.map((name, k) => {
      const node = c.graph.nodes.find((n) => n.name === name)!;
      return [
        name,
        Float32Array.from(random(c.batch * elementCount(node.shape), 90 + k), (v) => (v > 0 ? 1 : 0)),
      ];
    }),
  );
}

/**
 * tf.grads vs FD on the tensors of a case: every trainable parameter, the op's input and output.
 * Sampled coordinates: the 4 largest |tf gradient| plus a seeded sample, `n` in all.
 */
function crossCheck(c: GradCase, n: number, tensors?: string[]) {
  const dropoutMasks = masksFor(c);
  const tfg = tfGradients({ ...c, dropoutMasks });
  const problem = { ...c, dropoutMasks };
  const targets = tensors ?? [...tfg.params.keys(), c.opInput, c.op];
  let kinks = 0;
  let checked = 0;
  for (const name of targets) {
    const g = tfg.params.get(name) ?? tfg.inputs.get(name) ?? tfg.activations.get(name);
    if (!g) throw new Error(`${c.name}: no TF gradient for ${name}`);
    const indices = sampleIndices(g.length, n, name.length * 7919 + 1, largestIndices(g, 4));
    const fd = finiteDiff(problem, name, indices);
    kinks += fd.kinks.length;
    checked += indices.length;
    const keep = indices.map((_, k) => k).filter((k) => !Number.isNaN(fd.gradient[k]));
    expectClose(
      `${c.name}: tf.grads vs FD ∂L/∂${name}`,
      keep.map((k) => g[indices[k]]),
      keep.map((k) => fd.gradient[k]),
      { rtol: 1e-5 },
    );
  }
  // A handful of kinks (ReLU at 0, an argmax switch within ±h) is possible; many mean a broken FD.
  expect(kinks, `${c.name}: ${kinks} of ${checked} coordinates straddle a kink`).toBeLessThanOrEqual(
    Math.max(1, Math.floor(checked / 50)),
  );
}

describe("tf.grads (f32) equals float64 finite differences on reference64", () => {
  for (const c of opCases()) it(c.name, () => crossCheck(c, 24));
  it("tiny two-tower network", () => crossCheck(tinyNetworkCase(), 12));
});

describe("finite differences", () => {
  it("flags a coordinate whose ±h straddles a ReLU kink and differentiates the others", () => {
    const graph = buildGraph({ x: [4] }, [
      ["r", { op: "relu" }, ["x"]],
      ["fc", { op: "dense", units: 3, towers: { kind: "cross" }, groups: 1, bias: false }, ["r"]],
      ["loss", { op: "softmax_cross_entropy" }, ["fc"]],
    ]);
    const params = new Map([["fc.weight", random(12, 5)]]);
    const x = Float64Array.from([0.5, 0, -0.25, 1e-8]);
    const p = { graph, params, inputs: new Map([["x", x]]), labels: [2], batch: 1 };
    const fd = finiteDiff(p, "x", [0, 1, 2, 3]);
    expect(fd.kinks).toEqual([1, 3]);
    // ∂L/∂x_0 = Σ_u W[u,0]·(softmax − onehot)_u; x_2 < 0 has a zero gradient.
    const z = [0, 1, 2].map((u) => params.get("fc.weight")![u * 4] * 0.5);
    const e = z.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    const dz = e.map((v, u) => v / s - (u === 2 ? 1 : 0));
    const expected = dz.reduce((a, d, u) => a + d * params.get("fc.weight")![u * 4], 0);
    expect(fd.gradient[0]).toBeCloseTo(expected, 8);
    expect(fd.gradient[2]).toBe(0);
  });
});
