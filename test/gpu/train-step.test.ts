// Training on the real adapter: loss goes down, steps are bitwise reproducible, the update rule is
// the paper's exactly, a split weight trains bitwise like an unsplit one, dropout's mask is the host
// mirror's, and non-finite values are traced to their layer. Networks are alexnet-small at batch 4.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, type NodeAttrs, elementCount } from "../../compiler/graph.ts";
import { type TrainLowerOptions, lowerTraining } from "../../compiler/lower-train.ts";
import { dropoutKeep } from "../../compiler/wgsl/backward/util.ts";
import { initParams } from "../../runtime/init.ts";
import { type Trainer, createTrainer } from "../../runtime/trainer.ts";
import { useGpu } from "./adapter.ts";
import { buildGraph, pad, random } from "./one-node.ts";

const gpu = await useGpu();

const graph: Graph = (() => {
  const r = compileSource(readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
})();

const BATCH = 4;
const images = random(BATCH * elementCount(graph.inputs[0].shape), 11, 0, 1);
const labels = Int32Array.from([3, 1, 4, 1]);

async function trainer(opts: Partial<TrainLowerOptions> = {}): Promise<Trainer> {
  const compiled = lowerTraining(graph, {
    batch: BATCH,
    maxBindingBytes: gpu.dev!.maxBindingBytes,
    source: "alexnet-small.net",
    compilerVersion: "alexc test",
    momentum: 0.9,
    weightDecay: 5e-4,
    ...opts,
  });
  const t = await createTrainer(gpu.dev!, compiled);
  t.uploadParams(initParams(graph, 7));
  t.writeBatch(images, labels);
  return t;
}

/** The batch-mean softmax cross-entropy of `logits` against `labels`, in float64 on the host. */
function crossEntropy(logits: Float32Array): number {
  let total = 0;
  for (let n = 0; n < BATCH; n++) {
    const row = [...logits.subarray(n * graph.classes, (n + 1) * graph.classes)];
    const max = Math.max(...row);
    const sum = row.reduce((a, z) => a + Math.exp(z - max), 0);
    total += Math.log(sum) - (row[labels[n]] - max);
  }
  return total / BATCH;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function expectBitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  expect([...a.keys()]).toEqual([...b.keys()]);
  // The first differing word, not the arrays: a diff of two large arrays takes vitest minutes to print.
  for (const [name, values] of a) {
    const [x, y] = [bits(values), bits(b.get(name)!)];
    const at = x.findIndex((v, i) => v !== y[i]);
    expect({ name, length: y.length, firstDifference: at }).toEqual({
      name,
      length: x.length,
      firstDifference: -1,
    });
  }
}

gpu.describe("training steps on the adapter", () => {
  it("lowers the loss on a fixed batch over 20 steps, and evaluates", async () => {
    const t = await trainer();
    const before = crossEntropy(await t.evaluate(images));
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) losses.push((await t.step({ lr: 0.001, seed: 100 + step })).loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[0]).toBeGreaterThan(2); // ≈ ln 10 at the paper's initialisation
    // Dropout makes single steps noisy: compare the mean of the last five with the first.
    const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(last).toBeLessThan(0.75 * losses[0]);
    // The inference schedule shares the trained parameters.
    const after = crossEntropy(await t.evaluate(images));
    expect(after).toBeLessThan(before - 0.3);
    t.destroy();
  });

  it("regenerates the host's dropout mask and scales kept units by 1/(1 − p), fused into fc6 too", async () => {
    // the unfused plan stores relu6, the dropout kernel's input; the fused plan applies the mask in
    // fc6's kernel and never stores relu6 (compiler/fuse.ts)
    let relu6: Float32Array = new Float32Array();
    const drops: Float32Array[] = [];
    for (const fuse of [false, true]) {
      const t = await trainer({ fuse });
      await t.step({ lr: 0, seed: 1234 });
      if (!fuse) relu6 = await t.readTensor("relu6");
      drops.push(await t.readTensor("drop6"));
      t.destroy();
    }
    const layer = graph.nodes.findIndex((n) => n.name === "drop6");
    for (const drop6 of drops) {
      let kept = 0;
      for (let i = 0; i < relu6.length; i++) {
        const keep = dropoutKeep(1234, layer, i, 0.5);
        expect(drop6[i]).toBe(keep ? Math.fround(relu6[i] * 2) : 0);
        if (keep) kept++;
      }
      expect(kept / relu6.length).toBeGreaterThan(0.4);
      expect(kept / relu6.length).toBeLessThan(0.6);
    }
  });

  it("is bitwise reproducible: two fresh trainers agree after 3 steps", async () => {
    const run = async () => {
      const t = await trainer();
      const losses = [];
      for (let step = 0; step < 3; step++) losses.push((await t.step({ lr: 0.01, seed: step })).loss);
      const state = { losses, params: await t.readParams(), velocities: await t.readVelocities() };
      t.destroy();
      return state;
    };
    const [a, b] = [await run(), await run()];
    expect(a.losses).toEqual(b.losses);
    expectBitwiseEqual(a.params, b.params);
    expectBitwiseEqual(a.velocities, b.velocities);
  });

  it("applies v ← μ·v − λ·ε·w − ε·g; w ← w + v exactly", async () => {
    // μ, λ, ε and every w, v a multiple of 2⁻⁸ below 1: every product and sum is exact in f32, so
    // the check is exact whether or not the driver contracts a·b + c into an fma.
    const [mu, decay, lr] = [0.5, 0.5, 0.25];
    const t = await trainer({ momentum: mu, weightDecay: decay });
    const grid = (count: number, seed: number, lo: number, hi: number) =>
      random(count, seed, lo, hi).map((x) => Math.round(x * 256) / 256);
    // conv1 all negative on a positive image: relu1 is 0 everywhere, so conv1's gradient is exactly 0.
    const params = initParams(graph, 7);
    params.set("conv1.weight", grid(elementCount([12, 3, 5, 5]), 1, -1, -1 / 256));
    params.set("conv1.bias", grid(12, 2, -1, -1 / 256));
    const v0 = new Map([...params].map(([name, w], i) => [name, grid(w.length, 50 + i, -1, 1)]));
    t.uploadParams(params);
    t.uploadVelocities(v0);
    await t.step({ lr, seed: 0 });
    const [g, w1, v1] = [await t.readGradients(), await t.readParams(), await t.readVelocities()];
    for (const name of ["conv1.weight", "conv1.bias"]) {
      expect(g.get(name)!.every((x) => x === 0)).toBe(true);
      const [w, v] = [params.get(name)!, v0.get(name)!];
      const vNext = v.map((vi, i) => mu * vi - decay * lr * w[i]);
      expect(v1.get(name)).toEqual(vNext);
      expect(w1.get(name)).toEqual(w.map((wi, i) => wi + vNext[i]));
    }
    // Everywhere else, the same rule with the gradient the step read back (to f32 rounding).
    for (const [name, gradient] of g) {
      const [w, v] = [params.get(name)!, v0.get(name)!];
      const vNext = v.map((vi, i) => Math.fround(mu * vi - decay * lr * w[i] - lr * gradient[i]));
      const got = v1.get(name)!;
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - vNext[i])).toBeLessThanOrEqual(1e-6);
    }
    t.destroy();
  });

  it("trains a split fc weight bitwise like the unsplit one", async () => {
    const run = async (maxBindingBytes?: number) => {
      const t = await trainer(maxBindingBytes ? { maxBindingBytes } : {});
      const split = t.plan.tensors.filter((x) => x.partOf?.tensor === "fc6.weight").length;
      for (let step = 0; step < 2; step++) await t.step({ lr: 0.01, seed: step });
      const state = { split, params: await t.readParams(), grads: await t.readGradients() };
      t.destroy();
      return state;
    };
    const whole = await run();
    // fc6.weight is 512×288 f32 = 589,824 bytes: a 400 kB limit splits it (and fc7's) in row parts.
    const parts = await run(400_000);
    expect(whole.split).toBe(0);
    expect(parts.split).toBe(2);
    expectBitwiseEqual(whole.params, parts.params);
    expectBitwiseEqual(whole.grads, parts.grads);
  });

  it("trains a split fc weight bitwise like the unsplit one at batch 16 (the largest dense blocks)", async () => {
    // alexnet-small cannot split fc6 at batch 16 without also micro-batching conv1, so a dense-only
    // network: fc1.weight is 64×288 f32 = 73,728 bytes; a 40 kB limit splits it in two row parts.
    const dense = compileSource(`
network dense_split {
  input x: f32[8, 6, 6]
  classes: 10
  towers: 2
  fc1 = dense(x, units: 64, towers: cross, bias: 0.1)
  relu1 = relu(fc1)
  drop1 = dropout(relu1, p: 0.5)
  fc2 = dense(drop1, units: classes, towers: on(0))
  loss = softmax_cross_entropy(fc2)
}`).graph!;
    const run = async (maxBindingBytes: number) => {
      const compiled = lowerTraining(dense, {
        ...{ batch: 16, maxBindingBytes, source: "dense_split", compilerVersion: "alexc test" },
        ...{ momentum: 0.9, weightDecay: 5e-4 },
      });
      const t = await createTrainer(gpu.dev!, compiled);
      t.uploadParams(initParams(dense, 7));
      t.writeBatch(
        random(16 * 288, 12, 0, 1),
        Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 10),
      );
      for (let step = 0; step < 2; step++) await t.step({ lr: 0.01, seed: step });
      const split = t.plan.tensors.filter((x) => x.partOf?.tensor === "fc1.weight").length;
      const state = {
        split,
        micro: t.plan.microBatch,
        params: await t.readParams(),
        grads: await t.readGradients(),
      };
      t.destroy();
      return state;
    };
    const whole = await run(gpu.dev!.maxBindingBytes);
    const parts = await run(40_000);
    expect([whole.split, parts.split, parts.micro]).toEqual([0, 2, undefined]);
    expectBitwiseEqual(whole.params, parts.params);
    expectBitwiseEqual(whole.grads, parts.grads);
  });

  for (const dropout of [false, true])
    it(`micro-batches a batch over the binding limit and trains like the whole batch (dropout ${dropout ? "p = 0.5" : "off"})`, async () => {
      // conv1's output is 12×32×32 f32 = 49,152 bytes per example: a 60 kB limit fits one example, so
      // the batch of 4 runs as 4 micro-steps (first, two middle, last). With dropout (drop6, drop7 at
      // p = 0.5) every micro-step draws the whole batch's masks: the step's seed, global examples.
      // Compared after two steps: weights and momentum within 1e-5 relative, logits and loss equal.
      const run = async (maxBindingBytes?: number) => {
        const t = await trainer({
          ...(dropout ? {} : { activeDropout: [] }),
          ...(maxBindingBytes ? { maxBindingBytes } : {}),
        });
        const evalBefore = await t.evaluate(images);
        const { loss, logits } = await t.step({ lr: 0.01, seed: 3 });
        await t.step({ lr: 0.01, seed: 4 }); // a second step: the momentum term μ·v enters too
        const state = {
          plan: t.plan,
          loss,
          logits,
          evalBefore,
          params: await t.readParams(),
          velocities: await t.readVelocities(),
        };
        t.destroy();
        return state;
      };
      const whole = await run();
      const micro = await run(60_000);
      expect(whole.plan.microBatch).toBeUndefined();
      expect(micro.plan).toMatchObject({ batch: BATCH, microBatch: 1 });
      expect(micro.plan.tensors.find((x) => x.name === "relu1")?.shape[0]).toBe(1); // conv1+relu1's output
      const rel = (a: Float32Array, b: Float32Array) => {
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < a.length; i++) {
          diff = Math.max(diff, Math.abs(a[i] - b[i]));
          scale = Math.max(scale, Math.abs(b[i]));
        }
        return diff / (scale || 1);
      };
      const worst = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
        expect([...a.keys()]).toEqual([...b.keys()]);
        return Math.max(...[...a].map(([name, values]) => rel(values, b.get(name)!)));
      };
      const errors = {
        evalLogits: rel(micro.evalBefore, whole.evalBefore),
        trainLogits: rel(micro.logits, whole.logits),
        loss: Math.abs(micro.loss - whole.loss) / Math.abs(whole.loss),
        params: worst(micro.params, whole.params),
        velocities: worst(micro.velocities, whole.velocities),
      };
      console.log(`micro-batching vs whole batch (dropout ${dropout}), max relative error:`, errors);
      expect(micro.evalBefore.length).toBe(whole.evalBefore.length);
      expect(micro.logits.length).toBe(whole.logits.length);
      expect(errors.evalLogits).toBeLessThanOrEqual(1e-6);
      expect(errors.trainLogits).toBeLessThanOrEqual(1e-6);
      expect(errors.loss).toBeLessThanOrEqual(1e-6);
      expect(errors.params).toBeLessThanOrEqual(1e-5);
      expect(errors.velocities).toBeLessThanOrEqual(1e-5);
    });

  it("finds the first layer with a non-finite activation", async () => {
    const t = await trainer();
    expect(await t.findNonFinite()).toBeUndefined();
    const params = initParams(graph, 7);
    // (a NaN before a ReLU may vanish: WGSL's max(NaN, 0) is allowed to return 0)
    params.get("fc8.weight")![5] = Number.NaN;
    t.uploadParams(params);
    const { loss } = await t.step({ lr: 0.01, seed: 0 });
    expect(Number.isNaN(loss)).toBe(true);
    expect(await t.findNonFinite()).toEqual({ layer: "fc8", kind: "activation" });
    t.destroy();
  });

  it("matches central finite differences through every op", async () => {
    // Grouped strided padded conv, batch norm, tanh, padded average pool, grouped LRN (mean α),
    // padded max pool, a value read by two layers and one layer reading a value twice, flatten,
    // grouped dense, active dropout (a fixed seed fixes the mask), softmax. Large α and random
    // weights so that every op matters. With lr = 0 a step changes no parameter, so it is a pure
    // function evaluation.
    const conv: NodeAttrs = {
      ...{ op: "conv", filters: 6, kernel: [3, 3], stride: [2, 2], pad: pad(1), round: "floor" },
      ...{ towers: { kind: "cross" }, groups: 2, bias: true },
    };
    const dense = (units: number, groups: number): NodeAttrs => ({
      ...{ op: "dense", units, towers: { kind: "cross" }, groups, bias: true },
    });
    const g = buildGraph({ x: [4, 9, 9] }, [
      ["c1", conv, ["x"]],
      ["bn", { op: "batchnorm", eps: 1e-5, momentum: 0.1 }, ["c1"]],
      ["t", { op: "tanh" }, ["bn"]],
      ["ap", { op: "avgpool", window: [2, 2], stride: [1, 1], pad: pad(1, 0), round: "floor" }, ["t"]],
      ["n", { op: "lrn", size: 3, k: 1, alpha: 0.8, beta: 0.75, alphaOf: "mean", groups: 2 }, ["ap"]],
      ["mp", { op: "maxpool", window: [3, 3], stride: [2, 2], pad: pad(1), round: "floor" }, ["n"]],
      ["sg", { op: "sigmoid" }, ["mp"]],
      ["r", { op: "relu" }, ["mp"]],
      ["cat", { op: "concat" }, ["sg", "r", "sg"]],
      ["fl", { op: "flatten" }, ["cat"]],
      ["d1", dense(8, 2), ["fl"]],
      ["dr", { op: "dropout", p: 0.3 }, ["d1"]],
      ["sm", { op: "softmax" }, ["dr"]],
      ["d2", dense(5, 1), ["sm"]],
      ["loss", { op: "softmax_cross_entropy" }, ["d2"]],
    ]);
    const batch = 3;
    const compiled = lowerTraining(g, {
      ...{ batch, maxBindingBytes: gpu.dev!.maxBindingBytes, source: "fd", compilerVersion: "alexc test" },
      ...{ momentum: 0.9, weightDecay: 0, inputGradients: true },
    });
    const t = await createTrainer(gpu.dev!, compiled);
    const params = new Map(
      g.params.map((p, i) => {
        const n = elementCount(p.shape);
        return [
          p.name,
          p.name.endsWith("running_var") ? random(n, 9 + i, 0.5, 1.5) : random(n, 9 + i, -0.6, 0.6),
        ];
      }),
    );
    const x = random(batch * 4 * 81, 5, -2, 2);
    const y = Int32Array.from([1, 4, 2]);
    const lossAt = async (ps: Map<string, Float32Array>, input: Float32Array) => {
      t.uploadParams(ps);
      t.writeBatch(input, y);
      return (await t.step({ lr: 0, seed: 77 })).loss;
    };
    await lossAt(params, x);
    const grads = await t.readGradients();
    grads.set("x", await t.readTensor("grad:x"));
    const eps = 2e-3;
    for (const [name, grad] of grads) {
      // The three largest components of each gradient: where a wrong rule shows most.
      const top = [...grad.keys()].sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a])).slice(0, 3);
      for (const i of top) {
        const at = async (delta: number) => {
          const values = Float32Array.from(name === "x" ? x : params.get(name)!);
          values[i] += delta;
          return name === "x" ? lossAt(params, values) : lossAt(new Map([...params, [name, values]]), x);
        };
        const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
        // f32 loss differences carry ≈ 1e-7 / (2·eps) ≈ 3e-5 of noise: hence the absolute floor.
        const tolerance = 3e-2 * Math.abs(fd) + 1e-4;
        expect(Math.abs(fd - grad[i]), `${name}[${i}]: ${grad[i]} vs ${fd}`).toBeLessThanOrEqual(tolerance);
      }
    }
    t.destroy();
  });
});
