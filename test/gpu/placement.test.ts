// Two-device execution: the paper's model-parallel placement of alexnet-small (two towers on two
// WebGPU devices, explicit transfers at the cross-tower edges) computes what one device computes —
// the forward logits and one full training step (weights and momentum after it).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import {
  lowerPlaced,
  lowerTrainingData,
  lowerTrainingPlaced,
  transferBytes,
} from "../../compiler/lower-placed.ts";
import { lowerTrainingHybrid } from "../../compiler/lower-hybrid.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { type Strategy, placeNetwork } from "../../compiler/place.ts";
import { type CompiledPlan, type ScheduleStep } from "../../compiler/plan.ts";
import { withMemoryPlan } from "../../compiler/memory-bind.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { initParams } from "../../runtime/init.ts";
import { createPlacedExecutor, createPlacedTrainer } from "../../runtime/placed.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { useGpus } from "./adapter.ts";
import { random } from "./one-node.ts";

const gpu = await useGpus(2);

const graph: Graph = (() => {
  const r = compileSource(readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
})();

const BATCH = 2;
const images = random(BATCH * elementCount(graph.inputs[0].shape), 5, 0, 1);
const labels = Int32Array.from([3, 7]);
const common = () => ({
  batch: BATCH,
  maxBindingBytes: gpu.devs![0].maxBindingBytes,
  source: "alexnet-small.net",
  compilerVersion: "alexc test",
});
const training = { momentum: 0.9, weightDecay: 5e-4, activeDropout: [] as string[] };

/** max |a − b| / max(max |b|, tiny): the relative error of `a` against the reference `b`. */
function relError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

gpu.describe("model placement on two devices", () => {
  it("forward logits equal one device's", async () => {
    const params = initParams(graph, 3);
    const one = await createExecutor(gpu.devs![0], lower(graph, common()));
    one.uploadParams(params);
    one.writeInput("image", images);
    const want = (await one.run()).logits;
    one.destroy();

    const placed = lowerPlaced(graph, common());
    const two = await createPlacedExecutor(gpu.devs!, placed);
    two.uploadParams(params);
    two.writeInput("image", images);
    const got = await two.run();
    two.destroy();
    const err = relError(got.logits, want);
    console.log(`forward logits: max relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-5);
    // Both devices ran kernels, and the transfers moved what the plan says.
    expect(new Set(two.kernels.map((k) => k.device))).toEqual(new Set([0, 1]));
    expect(got.transfers.reduce((a, t) => a + t.bytes, 0)).toBe(transferBytes(placed.plan.schedule));
  });

  it("micro-batches a forward batch whose tower activations exceed the binding limit", async () => {
    const params = initParams(graph, 4);
    const batch = 4;
    const x = random(batch * elementCount(graph.inputs[0].shape), 8, 0, 1);
    const one = await createExecutor(gpu.devs![0], lower(graph, { ...common(), batch }));
    one.uploadParams(params);
    one.writeInput("image", x);
    const want = (await one.run()).logits;
    one.destroy();
    const placed = lowerPlaced(graph, { ...common(), batch, maxBindingBytes: 60_000 });
    expect(placed.plan.microBatch).toBe(2);
    const two = await createPlacedExecutor(gpu.devs!, placed);
    two.uploadParams(params);
    two.writeInput("image", x);
    const got = await two.run();
    two.destroy();
    expect(relError(got.logits, want)).toBeLessThanOrEqual(1e-5);
    expect(got.transfers.reduce((a, t) => a + t.bytes, 0)).toBe(2 * transferBytes(placed.plan.schedule));
  });

  it("one training step: loss, logits, weights and momentum equal one device's", async () => {
    await compareStep("model");
  });

  it("one training step with dropout (p = 0.5) equals one device's: the same masks per slice", async () => {
    await compareStep("model", true);
  });

  it("micro-batches a batch whose tower activations exceed the binding limit: same step as one device", async () => {
    // conv1's tower slice is 6×32×32 f32 = 24,576 bytes per example: a 60 kB limit holds two
    await compareStep("model", true, { batch: 4, maxBindingBytes: 60_000, microBatch: 2 });
  });

  it("a timed training step times every kernel once, on its device, and still records the transfers", async () => {
    const placed = lowerTrainingPlaced(graph, { ...common(), ...training });
    const t = await createPlacedTrainer(gpu.devs!, placed);
    t.uploadParams(initParams(graph, 9));
    t.writeBatch(images, labels);
    const step = await t.step({ lr: 0.01, seed: 1, timing: true });
    t.destroy();
    expect(byDirection(step.transfers)).toEqual(byDirection(transfersOf(placed.plan.schedule)));
    if (!gpu.devs!.every((d) => d.timestamps)) {
      expect(step.kernels).toBeUndefined();
      return;
    }
    const dispatched = placed.plan.schedule.flatMap((s) => (s.kind === "dispatch" ? [s.kernel] : []));
    const byName = new Map(placed.plan.kernels.map((k) => [k.name, k]));
    expect(step.kernels?.map((k) => [k.kernel, k.layer, k.device])).toEqual(
      dispatched.map((name) => [name, byName.get(name)!.layer, byName.get(name)!.device]),
    );
    for (const k of step.kernels!) expect(k.ms >= 0 && k.ms < 60_000, `${k.kernel} ${k.ms} ms`).toBe(true);
    for (const k of step.kernels!)
      expect(Number.isFinite(k.ms) && k.ms >= 0, `${k.kernel} ${k.ms}`).toBe(true);
    expect(new Set(step.kernels!.map((k) => k.device))).toEqual(new Set([0, 1]));
    console.log(
      `timed model step: ${step.kernels!.length} kernels, ` +
        [0, 1]
          .map(
            (d) =>
              `device ${d} ${step
                .kernels!.filter((k) => k.device === d)
                .reduce((a, k) => a + k.ms, 0)
                .toFixed(1)} ms`,
          )
          .join(", "),
    );
  });
});

gpu.describe("data placement on two devices", () => {
  it("one training step on half a batch each equals one device on the whole batch", async () => {
    await compareStep("data");
  });

  it("with dropout (p = 0.5) too: each half draws its examples' masks of the whole batch", async () => {
    await compareStep("data", true);
  });

  it("micro-batches each device's half when it exceeds the binding limit: same step as one device", async () => {
    // conv1 is 12×32×32 f32 = 49,152 bytes per example: a 60 kB limit holds one of a device's two
    await compareStep("data", true, { batch: 4, maxBindingBytes: 60_000, microBatch: 1 });
  });
});

gpu.describe("hybrid placement on two devices", () => {
  it("one training step (data-parallel convs, model-parallel dense layers) equals one device's", async () => {
    await compareStep("hybrid");
  });

  it("with dropout (p = 0.5) too: the same masks as one device", async () => {
    await compareStep("hybrid", true);
  });

  it("micro-batches each device's half when it exceeds the binding limit: same step as one device", async () => {
    // each head run holds device 0's chunk and then device 1's, with those examples' dropout masks
    await compareStep("hybrid", true, { batch: 4, maxBindingBytes: 60_000, microBatch: 1 });
  });
  it("splits at a fused activation (fc6 reads relu5, no pool5): the trunk applies relu5's derivative", async () => {
    // conv5+relu5 is one fused group and the fold of relu5's derivative into fc6's backward would
    // leave no grad:relu5 for the head to send back (lowerTrainingHybrid keeps it: keepGradients)
    const text = readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8")
      .replace(/^\s*pool5 = maxpool\(relu5.*$/m, "")
      .replace("fc6 = dense(pool5,", "fc6 = dense(relu5,");
    const r = compileSource(text);
    if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
    expect(r.graph.nodes.find((n) => n.name === "fc6")?.inputs).toEqual(["relu5"]);
    await compareStep("hybrid", true, undefined, r.graph);
  });
});

const lowerings = { model: lowerTrainingPlaced, data: lowerTrainingData, hybrid: lowerTrainingHybrid };

gpu.describe("placed plans with a memory plan (arenas per device)", () => {
  for (const strategy of ["model", "data", "hybrid"] as const)
    it(`${strategy}: two steps give the same bits as one buffer per tensor, in less memory`, async () => {
      const params = initParams(graph, 9);
      const placed = lowerings[strategy](graph, { ...common(), ...withDropout, batch: BATCH });
      const limits = {
        maxBindingBytes: gpu.devs![0].maxBindingBytes,
        maxBufferBytes: gpu.devs![0].maxBufferBytes,
      };
      const run = async (plan: CompiledPlan) => {
        const t = await createPlacedTrainer(gpu.devs!, plan);
        t.uploadParams(params);
        t.writeBatch(images, labels);
        const losses = [
          (await t.step({ lr: 0.01, seed: 1 })).loss,
          (await t.step({ lr: 0.01, seed: 2 })).loss,
        ];
        const out = {
          losses,
          params: await t.readParams(),
          velocities: await t.readVelocities(),
          evalLogits: await t.evaluate(images),
          bytes: t.allocatedBytes!,
          shared: t.sharesMemory,
        };
        t.destroy();
        return out;
      };
      const plain = await run(placed);
      const planned = await run(withMemoryPlan(placed, limits));
      expect([plain.shared, planned.shared]).toEqual([false, true]);
      expect(planned.losses).toEqual(plain.losses);
      expect(new Uint32Array(planned.evalLogits.buffer)).toEqual(new Uint32Array(plain.evalLogits.buffer));
      for (const [what, got, want] of [
        ["params", planned.params, plain.params],
        ["velocities", planned.velocities, plain.velocities],
      ] as const)
        for (const [name, w] of want)
          expect(new Uint32Array(got.get(name)!.buffer), `${what} ${name}`).toEqual(
            new Uint32Array(w.buffer),
          );
      expect(planned.bytes).toBeLessThan(plain.bytes);
      console.log(
        `${strategy}: ${plain.bytes.toLocaleString("en-US")} B with a buffer per tensor, ${planned.bytes.toLocaleString("en-US")} B in arenas`,
      );
    });
});

/** Bytes moved per direction (`from->to`). */
function byDirection(moves: readonly { from: number; to: number; bytes: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of moves) out[`${m.from}->${m.to}`] = (out[`${m.from}->${m.to}`] ?? 0) + m.bytes;
  return out;
}
const transfersOf = (steps: readonly ScheduleStep[]) =>
  steps.flatMap((s) => (s.kind === "transfer" ? [s] : []));

describe("placement report against the executed plans", () => {
  for (const strategy of ["model", "data", "hybrid"] as const) {
    it(`${strategy}: the training step's transfers move what placeNetwork reports, per direction`, () => {
      for (const batch of [2, 6]) {
        const plan = lowerings[strategy](graph, { ...common(), ...training, batch }).plan;
        const executed = byDirection(transfersOf(plan.schedule));
        const reported = byDirection(placeNetwork(graph, strategy as Strategy, { batch }).transfers);
        expect(executed, `${strategy} batch ${batch}`).toEqual(reported);
        if (batch === 2)
          console.log(`${strategy} batch ${batch}: bytes per direction ${JSON.stringify(executed)}`);
      }
    });
  }
});

/** Training options with alexnet-small's dropout layers (drop6, drop7: p = 0.5) active. */
const withDropout = { ...training, activeDropout: ["drop6", "drop7"] };

/**
 * One training step (and an evaluation) placed vs on one device. `micro`: a larger batch and a binding
 * limit that forces the placed plan to micro-batch (the one-device reference is not micro-batched).
 */
async function compareStep(
  strategy: "model" | "data" | "hybrid",
  dropout = false,
  micro?: { batch: number; maxBindingBytes: number; microBatch: number },
  g: Graph = graph,
) {
  const params = initParams(g, 9);
  const batch = micro?.batch ?? BATCH;
  const batchImages = micro ? random(batch * elementCount(g.inputs[0].shape), 6, 0, 1) : images;
  const batchLabels = micro ? Int32Array.from({ length: batch }, (_, i) => (3 * i + 1) % g.classes) : labels;
  const opts = { ...(dropout ? withDropout : training), batch };
  if (dropout)
    for (const d of opts.activeDropout)
      expect(g.nodes.find((n) => n.name === d)?.attrs).toMatchObject({ op: "dropout", p: 0.5 });
  const run = async (placedRun: boolean) => {
    const limit = placedRun && micro ? { maxBindingBytes: micro.maxBindingBytes } : {};
    const placed = placedRun ? lowerings[strategy](g, { ...common(), ...opts, ...limit }) : undefined;
    const t = placed
      ? await createPlacedTrainer(gpu.devs!, placed)
      : await createTrainer(gpu.devs![0], lowerTraining(g, { ...common(), ...opts }));
    t.uploadParams(params);
    t.writeBatch(batchImages, batchLabels);
    const step = await t.step({ lr: 0.01, seed: 1 });
    if (placed) {
      expect(placed.plan.microBatch).toBe(micro?.microBatch);
      // every transfer step of the plan ran (once per micro-step), moving the bytes it names
      const moved = (step as { transfers?: { from: number; to: number; bytes: number }[] }).transfers ?? [];
      const k = micro ? batch / (strategy === "model" ? 1 : 2) / micro.microBatch : 1;
      const planned = Object.entries(byDirection(transfersOf(placed.plan.schedule)));
      expect(byDirection(moved)).toEqual(Object.fromEntries(planned.map(([d, b]) => [d, k * b])));
    }
    if (placedRun && strategy !== "model") {
      // both replicas applied the same update: bitwise equal parameters and momentum
      const replicated =
        strategy === "data"
          ? ["conv3.weight", "fc7.bias", "velocity:fc6.weight"]
          : ["conv1.weight", "conv3.weight", "velocity:conv5.bias"];
      // (a tensor split into parts under a small binding limit is checked through the others)
      const present = replicated.filter((name) => placed!.plan.tensors.some((x) => x.name === name));
      expect(present.length).toBeGreaterThan(0);
      for (const name of present) {
        const [a, b] = [await t.readTensor(name), await t.readTensor(`${name}@dev1`)];
        expect(new Uint32Array(b.buffer), name).toEqual(new Uint32Array(a.buffer));
      }
    }
    const state = {
      step,
      params: await t.readParams(),
      velocities: await t.readVelocities(),
      grads: await t.readGradients(),
      evalLogits: await t.evaluate(batchImages),
    };
    t.destroy();
    return state;
  };
  const one = await run(false);
  const two = await run(true);
  expect(Math.abs(two.step.loss - one.step.loss) / one.step.loss).toBeLessThanOrEqual(1e-5);
  const worst: Record<string, number> = {};
  worst.logits = relError(two.step.logits, one.step.logits);
  worst.evalLogits = relError(two.evalLogits, one.evalLogits);
  for (const [kind, a, b] of [
    ["weight", two.params, one.params],
    ["velocity", two.velocities, one.velocities],
    // a micro-batched plan's gradient tensors hold the last micro-step's share only (lower-train.ts)
    ...(micro ? [] : [["gradient", two.grads, one.grads] as const]),
  ] as const) {
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [name, values] of a) {
      const err = relError(values, b.get(name)!);
      worst[kind] = Math.max(worst[kind] ?? 0, err);
      expect(err, `${kind} ${name}`).toBeLessThanOrEqual(1e-5);
    }
  }
  console.log(
    `${strategy} training step${dropout ? " (dropout p = 0.5)" : ""}${micro ? `, batch ${batch} in micro-batches of ${micro.microBatch} per device` : ""}, max relative error: ${JSON.stringify(worst)}`,
  );
  expect(worst.logits).toBeLessThanOrEqual(1e-5);
  expect(worst.evalLogits).toBeLessThanOrEqual(1e-5);
  const moved = (two.step as { transfers?: { bytes: number; ms: number }[] }).transfers ?? [];
  console.log(
    `${strategy}: transfers per step: ${moved.length}, ${moved.reduce((a, t) => a + t.bytes, 0)} bytes, ` +
      `host time submit → written: sum ${moved.reduce((a, t) => a + t.ms, 0).toFixed(1)} ms, ` +
      `max ${Math.max(0, ...moved.map((t) => t.ms)).toFixed(1)} ms`,
  );
}
