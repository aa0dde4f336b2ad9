// Fused and unfused plans compute the same numbers (issue: within 1e-5 relative; every fused piece is
// the very expression of the kernel it replaces, so in practice the forward values agree bit for bit):
// forward logits, and whole training steps with dropout on — loss, logits, weights and momentum after
// them — on one device, micro-batched, and placed (hybrid: the dropout epilogue's example indices).
// The training-mode forward values and the data gradients of the first step are compared bitwise:
// the LRN + max-pool kernel's outputs and arg-max, the dropout epilogue's output, and the gradients
// whose relu derivative now reads the dropout's output.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lowerTrainingHybrid } from "../../compiler/lower-hybrid.ts";
import { lower } from "../../compiler/lower.ts";
import { type TrainLowerOptions, lowerTraining } from "../../compiler/lower-train.ts";
import type { CompiledPlan } from "../../compiler/plan.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { fillNormal, initParams, paramStream } from "../../runtime/init.ts";
import { createPlacedTrainer } from "../../runtime/placed.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { useGpus } from "./adapter.ts";

const gpu = await useGpus(2);
const SLOW = 600_000; // two plans' pipelines compile on lavapipe, on a shared 2-core machine

const graphOf = (path: string): Graph => {
  const r = compileSource(readFileSync(new URL(`../../${path}`, import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
};
const common = (batch: number, fuse: boolean) => ({
  batch,
  fuse,
  maxBindingBytes: gpu.dev!.maxBindingBytes,
  source: "test.net",
  compilerVersion: "alexc test",
});

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

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

const images = (graph: Graph, batch: number) => {
  const x = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(x, 0, 1, paramStream(5, "fusion-images"));
  return x;
};

const SMALL = "models/alexnet-small.net";
const TINY = "test/fixtures/tiny-fmnist.net";

gpu.describe("fused vs unfused plans", () => {
  for (const file of [SMALL, "models/fig1-tanh-fmnist.net", TINY]) {
    it(`${file}: fused and unfused forward logits agree`, { timeout: SLOW }, async () => {
      const graph = graphOf(file);
      const params = initParams(graph, 2);
      const x = images(graph, 3);
      const logits: Float32Array[] = [];
      for (const fuse of [true, false]) {
        const compiled = lower(graph, common(3, fuse));
        // an LRN rides in its max-pool's kernel: its output is never a tensor
        if (fuse)
          for (const n of graph.nodes.filter((m) => m.attrs.op === "lrn"))
            expect(compiled.plan.tensors.some((t) => t.name === n.name)).toBe(false);
        const ex = await createExecutor(gpu.dev!, compiled);
        ex.uploadParams(params);
        ex.writeInput(graph.inputs[0].name, x);
        logits.push((await ex.run()).logits);
        ex.destroy();
      }
      const err = relError(logits[0], logits[1]);
      console.log(`${file} forward, fused vs unfused: max relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-5);
    });
  }

  it(
    "alexnet-small: a fused training step (dropout on) equals the unfused one; its forward values bitwise",
    { timeout: SLOW },
    async () => {
      const { fused, unfused } = await compareSteps(graphOf(SMALL), {
        batch: 4,
        activeDropout: ["drop6", "drop7"],
        // what the fused kernels write instead of the LRN outputs and relu6/relu7, and the data
        // gradients whose relu derivative reads the dropout's output
        bitwise: [
          "stage1.pool",
          "stage1.pool:argmax",
          "stage2.pool",
          "stage2.pool:argmax",
          "drop6",
          "drop7",
          "grad:fc6",
          "grad:fc7",
          "grad:conv1",
          "grad:conv2",
        ],
      });
      expect(fused.kernels).toBeLessThan(unfused.kernels);
    },
  );

  it(
    "tiny-fmnist: a fused training step (dropout p = 0.25) equals the unfused one",
    { timeout: SLOW },
    async () => {
      await compareSteps(graphOf(TINY), {
        batch: 6,
        activeDropout: ["drop3"],
        bitwise: ["pool1", "pool1:argmax", "drop3", "grad:fc3", "grad:conv1"],
      });
    },
  );

  it(
    "alexnet-small micro-batched (4 = 4 × 1, dropout on): fused and unfused steps agree",
    { timeout: SLOW },
    async () => {
      // conv1's output is 12×32×32 f32 = 49,152 bytes per example: a 60 kB binding holds one
      await compareSteps(graphOf(SMALL), {
        batch: 4,
        activeDropout: ["drop6", "drop7"],
        maxBindingBytes: 60_000,
        microBatch: 1,
      });
    },
  );

  it(
    "alexnet-small hybrid on two devices, micro-batched (dropout on): fused and unfused steps agree",
    { timeout: SLOW },
    async () => {
      // the head's dense kernels apply the dropout masks of both devices' chunks (withSplitExamples)
      await compareSteps(graphOf(SMALL), {
        batch: 4,
        activeDropout: ["drop6", "drop7"],
        maxBindingBytes: 60_000,
        microBatch: 1,
        hybrid: true,
      });
    },
  );
});

interface StepCase {
  batch: number;
  activeDropout: string[];
  /** Tensors compared bit for bit after the first step (one-device plans only). */
  bitwise?: string[];
  maxBindingBytes?: number;
  /** The micro-batch both plans must use. */
  microBatch?: number;
  hybrid?: boolean;
}

/** Two steps (seeds 1, 2) of the fused and the unfused plan from the same weights and batch. */
async function compareSteps(graph: Graph, c: StepCase) {
  const x = images(graph, c.batch);
  const labels = Int32Array.from({ length: c.batch }, (_, i) => (7 * i + 2) % graph.classes);
  const params = initParams(graph, 3);
  const runs = [];
  for (const fuse of [true, false]) {
    const opts: TrainLowerOptions = {
      ...common(c.batch, fuse),
      ...(c.maxBindingBytes ? { maxBindingBytes: c.maxBindingBytes } : {}),
      momentum: 0.9,
      weightDecay: 5e-4,
      activeDropout: c.activeDropout,
    };
    const compiled: CompiledPlan = c.hybrid ? lowerTrainingHybrid(graph, opts) : lowerTraining(graph, opts);
    expect(compiled.plan.microBatch).toBe(c.microBatch);
    if (fuse) {
      const ops = compiled.plan.kernels.map((k) => k.op);
      expect(ops).not.toContain("dropout.train");
      expect(ops).not.toContain("lrn");
    }
    const t = c.hybrid
      ? await createPlacedTrainer(gpu.devs!, compiled)
      : await createTrainer(gpu.dev!, compiled);
    t.uploadParams(params);
    t.writeBatch(x, labels);
    const first = await t.step({ lr: 0.01, seed: 1 });
    const early = new Map<string, Float32Array>();
    for (const name of c.bitwise ?? []) early.set(name, await t.readTensor(name));
    const step = await t.step({ lr: 0.01, seed: 2 });
    runs.push({
      kernels: compiled.plan.kernels.length,
      first,
      early,
      step,
      params: await t.readParams(),
      velocities: await t.readVelocities(),
    });
    t.destroy();
  }
  const [fused, unfused] = runs;
  for (const [name, values] of fused.early)
    expect(bits(values), `${name} after step 1`).toEqual(bits(unfused.early.get(name)!));
  expect(bits(fused.first.logits)).toEqual(bits(unfused.first.logits));
  expect(Math.abs(fused.step.loss - unfused.step.loss)).toBeLessThanOrEqual(
    1e-5 * Math.abs(unfused.step.loss),
  );
  let worst = relError(fused.step.logits, unfused.step.logits);
  expect(worst).toBeLessThanOrEqual(1e-5);
  for (const [a, b] of [
    [fused.params, unfused.params],
    [fused.velocities, unfused.velocities],
  ] as const)
    for (const [name, values] of a) {
      const err = relError(values, b.get(name)!);
      expect(err, name).toBeLessThanOrEqual(1e-5);
      worst = Math.max(worst, err);
    }
  const what = `${c.hybrid ? "hybrid " : ""}batch ${c.batch}${c.microBatch ? ` in micro-batches of ${c.microBatch}` : ""}`;
  console.log(
    `${graph.name} training, ${what}, fused (${fused.kernels} kernels) vs unfused (${unfused.kernels}): ` +
      `first step's logits${fused.early.size ? ` and ${fused.early.size} forward/gradient tensors` : ""} bitwise equal; ` +
      `after two steps max relative error ${worst.toExponential(2)} (logits, weights, momentum)`,
  );
  return { fused, unfused };
}
