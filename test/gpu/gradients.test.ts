// Gradient verification of the training plan on a real WebGPU adapter.
//
// (a) every op's backward against tf.grads (TF.js CPU, f32) on tiny graphs `x → op → dense → CE`
//     with odd sizes, strides, asymmetric padding and groups: ∂L/∂(params), ∂L/∂(op input),
//     ∂L/∂(op output), plus the forward values and loss. Tolerance: max|ours − tf|/max|tf| ≤ 1e-3
//     per tensor (two f32 computations of the same math, which measure ~1e-6 apart when right).
// (b) the same gradients against float64 central differences on reference64, on sampled
//     coordinates (the 4 largest |ours| plus a seeded sample), for every op and a tiny two-tower
//     network. Tolerance 1e-3 of the sampled reference's max: the FD values are exact to ~1e-7
//     (test/helpers/references.test.ts measures tf.grads vs FD at ≤ 2e-7), an f32 kernel summing at
//     most a few hundred terms is off by ≲ 1e-5, while any real defect (a wrong index, window or
//     scale, a missing term) is off by 1e-2 or more.
//     Max-pool ties (not differentiable, so neither reference covers them) are checked against the
//     rule itself: each window's gradient goes to its first maximum in row-major order.
// (c) one full training step of models/alexnet-small.net (batch 4, dropout off, momentum 0.9, weight
//     decay 5e-4, non-zero velocities) against the same step in JS: f64 forward, tf.grads
//     gradients, the update v ← μv − λεw − εg, w ← w + v in f64. Weights and velocities after the
//     step within 1e-4 relative per tensor.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Graph, type NodeAttrs, elementCount } from "../../compiler/graph.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { fillNormal, paramStream } from "../../runtime/init.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { expectClose, measure, measured, report } from "../helpers/compare.ts";
import { finiteDiff, largestIndices, sampleIndices } from "../helpers/finite-diff.ts";
import {
  type GradCase,
  graphFromSource,
  opCases,
  randomLabels,
  testParams,
  tinyNetworkCase,
  winogradPathCase,
} from "../helpers/grad-cases.ts";
import { forward64, sgdStep } from "../helpers/reference64.ts";
import { tfGradients, useTfCpu } from "../helpers/tf-graph.ts";
import { buildGraph, pad, random } from "./one-node.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();
beforeAll(useTfCpu);
const started = performance.now();
afterAll(() => {
  if (measured.length)
    console.log(
      `gradient tests (${((performance.now() - started) / 1000).toFixed(1)} s), measured errors:\n${report()}`,
    );
});

const MOMENTUM = 0.9;
const WEIGHT_DECAY = 5e-4;
const TF_RTOL = 1e-3;
const FD_RTOL = 1e-3;
const STEP_RTOL = 1e-4;

/** What one training step on the adapter produced, for comparing. */
interface Ran {
  loss: number;
  logits: Float32Array;
  /** ∂L/∂w per trainable parameter. */
  gradients: Map<string, Float32Array>;
  /** Forward values and value gradients by name (`x`, `y`, `grad:x`, `grad:y`, …). */
  tensors: Map<string, Float32Array>;
  /** Keep masks of the active dropout layers, read back as y ≠ 0 (inputs are never exactly 0). */
  dropoutMasks: Map<string, Float32Array>;
  params: Map<string, Float32Array>;
}

function stepOptions(c: GradCase) {
  return {
    batch: c.batch,
    source: c.name,
    compilerVersion: "alexc test",
    momentum: MOMENTUM,
    weightDecay: WEIGHT_DECAY,
    activeDropout: c.activeDropout,
    inputGradients: true,
    fuse: c.fuse ?? false,
  };
}

/**
 * Lowers `c` for training (input gradients on), runs one step with lr 0 (so the update leaves the
 * weights as they were) and reads back everything the comparisons need.
 */
async function runStep(c: GradCase, read: string[]): Promise<Ran> {
  const dev = gpu.dev!;
  const compiled = lowerTraining(c.graph, {
    ...stepOptions(c),
    maxBindingBytes: c.maxBindingBytes ?? dev.maxBindingBytes,
  });
  const trainer = await createTrainer(dev, compiled);
  try {
    trainer.uploadParams(c.params);
    trainer.uploadVelocities(
      new Map(
        c.graph.params
          .filter((p) => p.trainable)
          .map((p) => [p.name, new Float32Array(elementCount(p.shape))]),
      ),
    );
    trainer.writeBatch(c.inputs.get(c.graph.inputs[0].name)!, c.labels);
    const { loss, logits } = await trainer.step({ lr: 0, seed: 4242 });
    const gradients = await trainer.readGradients();
    const tensors = new Map<string, Float32Array>();
    for (const name of read) tensors.set(name, await trainer.readTensor(name));
    const dropoutMasks = new Map<string, Float32Array>();
    for (const name of c.activeDropout) {
      const y = await trainer.readTensor(name);
      dropoutMasks.set(
        name,
        Float32Array.from(y, (v) => (v !== 0 ? 1 : 0)),
      );
    }
    const params = await trainer.readParams();
    return { loss, logits, gradients, tensors, dropoutMasks, params };
  } finally {
    trainer.destroy();
  }
}

/** (a) and (b) for one case: ours vs tf.grads on whole tensors, ours vs FD on sampled coordinates. */
async function checkCase(c: GradCase, fdSamples: number, values: string[]) {
  const ran = await runStep(c, [c.opInput, c.op, `grad:${c.opInput}`, ...values.map((v) => `grad:${v}`)]);
  const dropoutMasks = ran.dropoutMasks;
  for (const [name, keep] of dropoutMasks) {
    // The mask is a Bernoulli(1 − p) draw: a kept fraction far from 1 − p means a broken hash.
    const p = (c.graph.nodes.find((n) => n.name === name)!.attrs as { p: number }).p;
    const kept = keep.reduce((a, b) => a + b, 0) / keep.length;
    const sd = Math.sqrt((p * (1 - p)) / keep.length);
    expect(Math.abs(kept - (1 - p)), `${c.name}: kept fraction ${kept} for p ${p}`).toBeLessThan(
      4 * sd + 1e-9,
    );
  }
  const problem = { ...c, dropoutMasks };
  const tf = tfGradients(problem);
  const ref = forward64(c.graph, c.params, c.inputs, {
    batch: c.batch,
    mode: "train",
    dropoutMasks,
    labels: c.labels,
  });

  // Forward of the training step: the op's output and the loss, against the f64 reference.
  expectClose(`${c.name}: forward ${c.op}`, ran.tensors.get(c.op)!, ref.values.get(c.op)!, { rtol: 1e-5 });
  expect(Math.abs(ran.loss - ref.loss), `${c.name}: loss ${ran.loss} vs ${ref.loss}`).toBeLessThanOrEqual(
    1e-5 * Math.abs(ref.loss),
  );

  // (a) against tf.grads, whole tensors.
  const ours = new Map<string, Float32Array>(ran.gradients);
  for (const v of [c.opInput, ...values]) ours.set(v, ran.tensors.get(`grad:${v}`)!);
  const tfOf = (name: string) => tf.params.get(name) ?? tf.inputs.get(name) ?? tf.activations.get(name);
  for (const [name, g] of ours) {
    const r = tfOf(name);
    expect(r, `${c.name}: no tf.grads reference for ${name}`).toBeDefined();
    expectClose(`${c.name}: tf ∂L/∂${name}`, g, r!, { rtol: TF_RTOL });
  }
  // Every trainable parameter has a gradient.
  for (const p of c.graph.params.filter((q) => q.trainable))
    expect(ran.gradients.has(p.name), `${c.name}: no gradient for ${p.name}`).toBe(true);

  // (b) against float64 finite differences, sampled coordinates.
  let kinks = 0;
  for (const [name, g] of ours) {
    const indices = sampleIndices(g.length, fdSamples, name.length * 7919 + 3, largestIndices(g, 4));
    const fd = finiteDiff(problem, name, indices);
    kinks += fd.kinks.length;
    const keep = indices.map((_, k) => k).filter((k) => !Number.isNaN(fd.gradient[k]));
    expectClose(
      `${c.name}: FD ∂L/∂${name}`,
      keep.map((k) => g[indices[k]]),
      keep.map((k) => fd.gradient[k]),
      { rtol: FD_RTOL },
    );
  }
  expect(kinks, `${c.name}: coordinates straddling a kink`).toBeLessThanOrEqual(1);
  return { ran, ref };
}

gpu.describe("backward of every op vs tf.grads and float64 finite differences", () => {
  for (const c of opCases())
    it(c.name, async () => {
      const { ran, ref } = await checkCase(c, 24, [c.op]);
      const bn = c.graph.nodes.find((n) => n.name === c.op && n.attrs.op === "batchnorm");
      if (bn && bn.attrs.op === "batchnorm") {
        // Running statistics move towards the batch's (PyTorch: unbiased variance for the running one).
        const m = bn.attrs.momentum;
        const stats = ref.batchStats.get(bn.name)!;
        const count = (c.batch * elementCount(bn.shape)) / bn.shape[0];
        const rm = c.params.get(`${bn.name}.running_mean`)!;
        const rv = c.params.get(`${bn.name}.running_var`)!;
        expectClose(
          `${c.name}: running_mean after the step`,
          ran.params.get(`${bn.name}.running_mean`)!,
          Array.from(rm, (v, i) => (1 - m) * v + m * stats.mean[i]),
          { rtol: 1e-5 },
        );
        expectClose(
          `${c.name}: running_var after the step (unbiased)`,
          ran.params.get(`${bn.name}.running_var`)!,
          Array.from(rv, (v, i) => (1 - m) * v + m * stats.variance[i] * (count / (count - 1))),
          { rtol: 1e-5 },
        );
      }
    });

  it("max-pool ties: the gradient goes to the first maximum in row-major window order", async () => {
    // Inputs on 3 levels, so most windows hold tied maxima, shared across overlapping windows.
    const pool: NodeAttrs = {
      op: "maxpool",
      window: [3, 3],
      stride: [2, 2],
      pad: pad(1, 1, 1, 0),
      round: "floor",
    };
    const graph = buildGraph({ x: [2, 7, 6] }, [
      ["y", pool, ["x"]],
      ["head", { op: "dense", units: 3, towers: { kind: "cross" }, groups: 1, bias: true }, ["y"]],
      ["loss", { op: "softmax_cross_entropy" }, ["head"]],
    ]);
    const batch = 2;
    const x = Float32Array.from(random(batch * 2 * 7 * 6, 71, 0, 3), (v) => Math.floor(v) - 1);
    const c: GradCase = {
      name: "maxpool ties",
      graph,
      batch,
      op: "y",
      opInput: "x",
      inputs: new Map([["x", x]]),
      params: testParams(graph, 72),
      labels: randomLabels(batch, 3, 73),
      activeDropout: [],
    };
    const ran = await runStep(c, ["grad:y", "grad:x"]);
    const dy = ran.tensors.get("grad:y")!;
    const [, oh, ow] = graph.nodes[0].shape;
    const [ch, h, w] = [2, 7, 6];
    const expected = new Float64Array(x.length);
    let tiedWindows = 0;
    for (let nc = 0; nc < batch * ch; nc++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let best = -1;
          let ties = 0;
          for (let u = 0; u < 3; u++)
            for (let v = 0; v < 3; v++) {
              const r = i * 2 - 1 + u;
              const q = j * 2 - 1 + v;
              if (r < 0 || r >= h || q < 0 || q >= w) continue;
              const k = (nc * h + r) * w + q;
              if (best < 0 || x[k] > x[best]) [best, ties] = [k, 0];
              else if (x[k] === x[best]) ties++;
            }
          if (ties > 0) tiedWindows++;
          expected[best] += dy[(nc * oh + i) * ow + j];
        }
    expect(tiedWindows).toBeGreaterThan((batch * ch * oh * ow) / 2);
    expectClose("maxpool ties: ∂L/∂x (first maximum)", ran.tensors.get("grad:x")!, expected, { rtol: 1e-6 });
  });

  it("tiny two-tower network (local + cross layers, LRN, overlapping pools)", async () => {
    const c = tinyNetworkCase(3);
    await checkCase(c, 12, ["conv1", "pool1", "conv3"]); // ∂L/∂relu3 is folded into conv4's dgrad, never stored
  });

  for (const passes of [false, true])
    it(`Winograd paths: ${passes ? "batch passes (forward, data gradient with a fold)" : "fused dropout, V reused, bias in the GEMM"}`, async () => {
      const c = winogradPathCase(passes);
      // The paths this case is for must be the ones lowered (see winogradPathCase).
      const { plan } = lowerTraining(c.graph, {
        ...stepOptions(c),
        maxBindingBytes: c.maxBindingBytes ?? gpu.dev!.maxBindingBytes, // as runStep lowers it
      });
      const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
      const step = plan.schedule.flatMap((s) => (s.kind === "dispatch" ? [kernels.get(s.kernel)!] : []));
      const ops = (layer: string) => step.filter((k) => k.layer === layer).map((k) => k.op);
      const passCount = (layer: string, op: string) => ops(layer).filter((o) => o === op).length;
      expect(ops("conv1")).toContain("conv+relu+dropout");
      expect(passCount("conv3", "conv.dgrad.winograd.output+relu.grad")).toBe(passes ? 3 : 1);
      expect(passCount("conv2", "conv.winograd.output+relu")).toBe(passes ? 3 : 1);
      if (passes) {
        for (const layer of ["conv1", "conv2", "conv3"]) expect(ops(layer)).toContain("conv.wgrad+bias");
      } else {
        expect(ops("conv1")).toContain("conv.wgrad.winograd.input"); // its forward left no V
        expect(ops("conv2")).not.toContain("conv.wgrad.winograd.input"); // reads the forward's
        for (const layer of ["conv1", "conv2", "conv3"])
          expect(ops(layer)).toContain("conv.wgrad.winograd.gemm+bias");
      }
      await checkCase(c, 12, ["conv3", "conv2", "drop1", "conv1"]);
    });
});

/** He-style weights, small random biases: every layer's gradient matters. */
function liveWeights(graph: Graph, seed: number): Map<string, Float32Array> {
  return new Map(
    graph.params.map((p) => {
      const data = new Float32Array(elementCount(p.shape));
      const fanIn = p.shape.length > 1 ? elementCount(p.shape.slice(1)) : 0;
      fillNormal(data, 0, fanIn ? Math.sqrt(2 / fanIn) : 0.1, paramStream(seed, p.name));
      return [p.name, data];
    }),
  );
}

gpu.describe("one training step of alexnet-small.net", () => {
  it("weights and velocities after one step equal the f64 / tf.grads reference within 1e-4", async () => {
    const graph = graphFromSource(
      readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"),
    );
    const dev = gpu.dev!;
    const batch = 4;
    const lr = 0.01;
    const params = liveWeights(graph, 31);
    const image = new Float32Array(batch * elementCount(graph.inputs[0].shape));
    fillNormal(image, 0, 1, paramStream(32, "input"));
    const labels = Int32Array.from([1, 7, 3, 9]);
    const inputs = new Map([["image", image]]);

    // Reference: f64 forward for the loss, tf.grads for ∂L/∂w, the update in f64.
    const ref = forward64(graph, params, inputs, { batch, mode: "train", labels });
    const tf = tfGradients({ graph, params, inputs, labels, batch });
    // Velocities of the size of the step's own term, ε·max|g|, so that μv, λεw and εg all count.
    const velocities = new Map(
      [...tf.params].map(([name, g], k) => {
        const scale = lr * g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        return [name, Float32Array.from(random(g.length, 600 + k), (u) => u * scale)];
      }),
    );
    const expected = sgdStep(params, velocities, tf.params, {
      lr,
      momentum: MOMENTUM,
      weightDecay: WEIGHT_DECAY,
    });

    const compiled = lowerTraining(graph, {
      batch,
      maxBindingBytes: dev.maxBindingBytes,
      source: "alexnet-small.net",
      compilerVersion: "alexc test",
      momentum: MOMENTUM,
      weightDecay: WEIGHT_DECAY,
      activeDropout: [],
    });
    const trainer = await createTrainer(dev, compiled);
    try {
      trainer.uploadParams(params);
      trainer.uploadVelocities(velocities);
      trainer.writeBatch(image, labels);
      const t0 = performance.now();
      const { loss, logits } = await trainer.step({ lr, seed: 1 });
      const stepMs = performance.now() - t0;
      expectClose("alexnet-small step: logits", logits, ref.logits, { rtol: 1e-5 });
      expect(Math.abs(loss - ref.loss), `loss ${loss} vs ${ref.loss}`).toBeLessThanOrEqual(1e-5 * ref.loss);
      const grads = await trainer.readGradients();
      for (const [name, g] of tf.params)
        expectClose(`alexnet-small step: tf ∂L/∂${name}`, grads.get(name)!, g, { rtol: TF_RTOL });
      const w = await trainer.readParams();
      const v = await trainer.readVelocities();
      for (const [name, vExp] of expected.velocities)
        expectClose(`alexnet-small step: velocity ${name}`, v.get(name)!, vExp, { rtol: STEP_RTOL });
      for (const [name, wExp] of expected.weights)
        expectClose(`alexnet-small step: weight ${name}`, w.get(name)!, wExp, { rtol: STEP_RTOL });
      console.log(
        `alexnet-small training step (batch ${batch}) on ${dev.label}: ${stepMs.toFixed(0)} ms, loss ${loss.toFixed(5)}`,
      );
    } finally {
      trainer.destroy();
    }
  });

  it("transforms conv3–conv5's weights for Winograd every step and evaluation: each sees the last update", async () => {
    // (the forward's and the data gradient's: the latter is a 3×3 stride-1 conv with the weights
    // transposed per group and turned 180°, which tf.grads checks through conv1's and conv2's gradients)
    const graph = graphFromSource(
      readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"),
    );
    const dev = gpu.dev!;
    const batch = 4;
    const image = new Float32Array(batch * elementCount(graph.inputs[0].shape));
    fillNormal(image, 0, 1, paramStream(33, "input"));
    const labels = Int32Array.from([2, 0, 5, 8]);
    const inputs = new Map([["image", image]]);
    const compiled = lowerTraining(graph, {
      ...{ batch, maxBindingBytes: dev.maxBindingBytes, source: "alexnet-small.net" },
      ...{ compilerVersion: "alexc test", momentum: MOMENTUM, weightDecay: WEIGHT_DECAY, activeDropout: [] },
    });
    const layers = compiled.plan.kernels.filter((k) => k.op === "conv.winograd.weights").map((k) => k.layer);
    expect(layers).toEqual(["conv3", "conv4", "conv5", "conv3", "conv4", "conv5"]); // step, evaluation
    const dgrad = compiled.plan.kernels.filter((k) => k.op === "conv.dgrad.winograd.weights");
    expect(dgrad.map((k) => k.layer)).toEqual(["conv5", "conv4", "conv3"]);
    const trainer = await createTrainer(dev, compiled);
    try {
      const initial = liveWeights(graph, 34);
      trainer.uploadParams(initial);
      trainer.writeBatch(image, labels);
      await trainer.step({ lr: 0.05, seed: 1 });
      const updated = await trainer.readParams();
      const { logits } = await trainer.step({ lr: 0.05, seed: 2 });
      const ref = forward64(graph, updated, inputs, { batch, mode: "train", labels });
      expectClose("alexnet-small step 2: logits", logits, ref.logits, { rtol: 1e-5 });
      // Transformed weights left from step 1 would compute conv3–conv5 with the initial weights: far
      // outside that tolerance.
      const stale = new Map(
        [...updated].map(([name, w]) => [name, /^conv[345]\./.test(name) ? initial.get(name)! : w]),
      );
      const staleRef = forward64(graph, stale, inputs, { batch, mode: "train", labels });
      const apart = measure("stale conv3–conv5 weights", staleRef.logits, ref.logits, { rtol: 0 });
      expect(apart.relative, "logits with conv3–conv5's step-1 weights").toBeGreaterThan(1e-3);
      // step 2's gradients below conv3 pass through conv3–conv5's data gradients, with the new weights
      const grads = await trainer.readGradients();
      const tf = tfGradients({ graph, params: updated, inputs, labels, batch });
      for (const name of ["conv1.weight", "conv2.weight"])
        expectClose(`alexnet-small step 2: tf ∂L/∂${name}`, grads.get(name)!, tf.params.get(name)!, {
          rtol: 1e-5,
        });
      // the evaluation schedule (Winograd too) transforms the weights it finds: step 2's update
      const after = await trainer.readParams();
      const evaluated = forward64(graph, after, inputs, { batch, mode: "inference" });
      expectClose("alexnet-small evaluation after step 2", await trainer.evaluate(image), evaluated.logits, {
        rtol: 1e-5,
      });
    } finally {
      trainer.destroy();
    }
  });
});
