// Fused and unfused plans compute the same numbers (issue: within 1e-5 relative; the epilogue is the
// activation kernel's own expression, so in practice they agree bit for bit): forward logits, and a
// whole training step with dropout on — loss, logits, weights and momentum after it.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { fillNormal, initParams, paramStream } from "../../runtime/init.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

const graphOf = (file: string): Graph => {
  const r = compileSource(readFileSync(new URL(`../../models/${file}`, import.meta.url), "utf8"));
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

const images = (graph: Graph, batch: number) => {
  const x = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(x, 0, 1, paramStream(5, "fusion-images"));
  return x;
};

gpu.describe("fused vs unfused plans", () => {
  for (const file of ["alexnet-small.net", "fig1-tanh-fmnist.net"]) {
    it(`${file}: fused and unfused forward logits agree`, async () => {
      const graph = graphOf(file);
      const params = initParams(graph, 2);
      const x = images(graph, 3);
      const logits: Float32Array[] = [];
      for (const fuse of [true, false]) {
        const compiled = lower(graph, common(3, fuse));
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

  it("alexnet-small.net: a fused training step (dropout on) equals the unfused one", async () => {
    const graph = graphOf("alexnet-small.net");
    const batch = 4;
    const x = images(graph, batch);
    const labels = Int32Array.from({ length: batch }, (_, i) => (7 * i + 2) % graph.classes);
    const params = initParams(graph, 3);
    const runs = [];
    for (const fuse of [true, false]) {
      const compiled = lowerTraining(graph, {
        ...common(batch, fuse),
        momentum: 0.9,
        weightDecay: 5e-4,
        activeDropout: ["drop6", "drop7"],
      });
      const t = await createTrainer(gpu.dev!, compiled);
      t.uploadParams(params);
      t.writeBatch(x, labels);
      await t.step({ lr: 0.01, seed: 1 });
      const step = await t.step({ lr: 0.01, seed: 2 });
      runs.push({
        kernels: compiled.plan.kernels.length,
        step,
        params: await t.readParams(),
        velocities: await t.readVelocities(),
      });
      t.destroy();
    }
    const [fused, unfused] = runs;
    expect(fused.kernels).toBeLessThan(unfused.kernels);
    expect(Math.abs(fused.step.loss - unfused.step.loss)).toBeLessThanOrEqual(
      1e-5 * Math.abs(unfused.step.loss),
    );
    let worst = relError(fused.step.logits, unfused.step.logits);
    for (const [a, b] of [
      [fused.params, unfused.params],
      [fused.velocities, unfused.velocities],
    ] as const)
      for (const [name, values] of a) {
        const err = relError(values, b.get(name)!);
        expect(err, name).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, err);
      }
    console.log(`training step, fused vs unfused: max relative error ${worst.toExponential(2)}`);
  });
});
