// The memory plan at run time: a trainer whose tensors share arena memory (compiler/memory.ts via
// compiler/memory-bind.ts, runtime/arenas.ts) computes bit for bit what one buffer per tensor
// computes — two training steps with dropout, an evaluation, the weights, momentum and gradients —
// while allocating the plan's liveness peak instead of the sum of its tensors.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { withMemoryPlan } from "../../compiler/memory-bind.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { fillNormal, initParams, paramStream } from "../../runtime/init.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

const graphOf = (file: string): Graph => {
  const r = compileSource(readFileSync(new URL(`../../models/${file}`, import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
};

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

const cases = [
  { file: "alexnet-small.net", batch: 4, dropout: ["drop6", "drop7"], maxBindingBytes: undefined },
  // a binding limit that micro-batches the plan (2 micro-steps): state carried across runs stays put
  { file: "alexnet-small.net", batch: 4, dropout: ["drop6", "drop7"], maxBindingBytes: 120_000 },
];

gpu.describe("memory-planned trainer", () => {
  for (const c of cases) {
    it(`${c.file} batch ${c.batch}${c.maxBindingBytes ? " (micro-batched)" : ""}: arenas give the same bits as one buffer per tensor`, async () => {
      const graph = graphOf(c.file);
      const maxBindingBytes = c.maxBindingBytes ?? gpu.dev!.maxBindingBytes;
      const compiled = lowerTraining(graph, {
        batch: c.batch,
        maxBindingBytes,
        source: c.file,
        compilerVersion: "alexc test",
        momentum: 0.9,
        weightDecay: 5e-4,
        activeDropout: c.dropout,
      });
      const planned = withMemoryPlan(compiled, { maxBindingBytes, maxBufferBytes: gpu.dev!.maxBufferBytes });
      if (c.maxBindingBytes) expect(planned.plan.microBatch).toBe(c.batch / 2);
      const x = new Float32Array(c.batch * elementCount(graph.inputs[0].shape));
      fillNormal(x, 0, 1, paramStream(3, "memory-test"));
      const labels = Int32Array.from({ length: c.batch }, (_, i) => (5 * i + 1) % graph.classes);
      const params = initParams(graph, 4);
      const runs = [];
      for (const p of [compiled, planned]) {
        const t = await createTrainer(gpu.dev!, p);
        t.uploadParams(params);
        t.writeBatch(x, labels);
        const first = await t.step({ lr: 0.01, seed: 1 });
        const second = await t.step({ lr: 0.01, seed: 2 });
        runs.push({
          shares: t.sharesMemory,
          bytes: t.allocatedBytes!,
          losses: [first.loss, second.loss],
          logits: second.logits,
          evalLogits: await t.evaluate(x),
          params: await t.readParams(),
          velocities: await t.readVelocities(),
          grads: await t.readGradients(),
        });
        t.destroy();
      }
      const [plain, arena] = runs;
      expect([plain.shares, arena.shares]).toEqual([false, true]);
      expect(arena.losses).toEqual(plain.losses);
      expect(bits(arena.logits)).toEqual(bits(plain.logits));
      expect(bits(arena.evalLogits)).toEqual(bits(plain.evalLogits));
      for (const key of ["params", "velocities", "grads"] as const)
        for (const [name, values] of plain[key])
          expect(bits(arena[key].get(name)!), `${key} ${name}`).toEqual(bits(values));
      const peak = planned.plan.memory!.devices[0].stats.peakBytes;
      expect(arena.bytes).toBeLessThan(plain.bytes);
      expect(arena.bytes).toBeLessThanOrEqual(peak + 4 * 3); // the arenas (empty ones take 4 bytes)
      console.log(
        `${c.file} batch ${c.batch}: ${plain.bytes.toLocaleString("en-US")} B with a buffer per tensor, ` +
          `${arena.bytes.toLocaleString("en-US")} B in arenas (${((100 * arena.bytes) / plain.bytes).toFixed(0)} %)`,
      );
    });
  }
});
