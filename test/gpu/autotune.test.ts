// The autotuner (runtime/autotune.ts) on a real adapter: it measures tile candidates per kernel
// shape, caches the winners per adapter, measures nothing the cache already holds, and a plan lowered
// with any tiles computes the same bits as the templates' own choice.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import {
  type TunableKind,
  type TunableShape,
  type TuningTable,
  tileCandidates,
  tuningKey,
} from "../../compiler/tuning.ts";
import { convDataGradKernel } from "../../compiler/wgsl/backward/conv.ts";
import { convKernel } from "../../compiler/wgsl/conv.ts";
import { adapterKey, autotune, collectTunables, loadTuning, saveTuning } from "../../runtime/autotune.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { fillNormal, initParams, paramStream } from "../../runtime/init.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

const graph: Graph = (() => {
  const r = compileSource(readFileSync(new URL("../../models/alexnet-small.net", import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
})();
const common = (batch: number) => ({ batch, source: "alexnet-small.net", compilerVersion: "alexc test" });

gpu.describe("autotune", () => {
  it("collects every conv kernel shape of a training plan: forward, data and weight gradient", () => {
    const counts = (winograd: boolean) => {
      const found = collectTunables((onTunable) =>
        lowerTraining(graph, {
          ...common(4),
          maxBindingBytes: gpu.dev!.maxBindingBytes,
          momentum: 0.9,
          weightDecay: 5e-4,
          winograd,
          onTunable,
        }),
      );
      const kinds = (k: string) => found.filter((f) => f.kind === k).length;
      return [kinds("conv"), kinds("conv.dgrad"), kinds("conv.wgrad")];
    };
    // 5 convolutions (training and eval forward at the same batch: one shape each); conv1 reads the
    // image, so it has no data gradient
    expect(counts(false)).toEqual([5, 4, 5]);
    // Winograd computes conv3–conv5's forward and both gradients (no tiles to tune)
    expect(counts(true)).toEqual([2, 1, 2]);
  });

  it("measures candidates, caches the winners per adapter, and measures nothing twice", async () => {
    const dev = gpu.dev!;
    const wanted = collectTunables((onTunable) =>
      lower(graph, { ...common(2), maxBindingBytes: dev.maxBindingBytes, onTunable }),
    ).slice(1, 3); // two forward shapes keep the test short
    const starts: string[] = [];
    const table = await autotune(dev, wanted, undefined, {
      reps: 1,
      progress: (_, __, key) => starts.push(key),
    });
    expect(starts).toEqual(wanted.map((w) => tuningKey(w.kind, w.shape)));
    expect(table.adapter).toBe(adapterKey(dev));
    for (const w of wanted) {
      const e = table.entries[tuningKey(w.kind, w.shape)];
      expect(e.ms).toBeGreaterThan(0);
      expect(Number.isFinite(e.defaultMs)).toBe(true);
      expect(e.ms).toBeLessThanOrEqual(e.defaultMs);
    }
    const dir = mkdtempSync(join(tmpdir(), "alexc-tuning-"));
    const file = saveTuning(table, dir);
    expect(file.startsWith(dir)).toBe(true);
    expect(loadTuning(table.adapter, dir)).toEqual(table);
    const again: string[] = [];
    await autotune(dev, wanted, table, { progress: (_, __, key) => again.push(key) });
    expect(again).toEqual([]);
  });

  it("a plan lowered with other tiles computes the same bits", async () => {
    const dev = gpu.dev!;
    const opts = { ...common(2), maxBindingBytes: dev.maxBindingBytes };
    const shapes = collectTunables((onTunable) => lower(graph, { ...opts, onTunable }));
    // every forward conv forced to 2 channels × 4 pixels per invocation, 32 lanes
    const forced: TuningTable = {
      format: "alexc-tuning",
      version: 1,
      adapter: "test",
      entries: Object.fromEntries(
        shapes.map((s) => [
          tuningKey(s.kind, s.shape),
          {
            tiles: { channelsPerInvocation: 2, pixelsPerInvocation: 4, workgroupSize: 32 },
            ms: 1,
            defaultMs: 1,
          },
        ]),
      ),
    };
    const x = new Float32Array(2 * elementCount(graph.inputs[0].shape));
    fillNormal(x, 0, 1, paramStream(1, "autotune-test"));
    const params = initParams(graph, 6);
    const logits: Float32Array[] = [];
    const sources: string[] = [];
    for (const tuning of [undefined, forced]) {
      const compiled = lower(graph, { ...opts, tuning });
      sources.push(Object.values(compiled.wgsl).join("\n"));
      const ex = await createExecutor(dev, compiled);
      ex.uploadParams(params);
      ex.writeInput("image", x);
      logits.push((await ex.run()).logits);
      ex.destroy();
    }
    expect(sources[1]).not.toBe(sources[0]); // the table was honoured
    expect(new Uint32Array(logits[1].buffer)).toEqual(new Uint32Array(logits[0].buffer));
  });

  it("a training step with each shape's largest candidate blocks computes the same bits", async () => {
    // The candidate with the most accumulators per lane (up to 16 channels × a whole row) that the
    // template accepts, for every forward and data-gradient convolution: neither changes any sum's order.
    const dev = gpu.dev!;
    // direct kernels throughout: Winograd's convolutions take no tuned tiles
    const opts = {
      ...common(2),
      ...{ maxBindingBytes: dev.maxBindingBytes, momentum: 0.9, weightDecay: 5e-4, winograd: false },
    };
    const id = { name: "probe", layer: "test", group: ["test"] };
    const accepts = (kind: TunableKind, shape: TunableShape, tiles: object) => {
      try {
        if (kind === "conv") convKernel(id, { ...shape, ...tiles, tensors: { x: "x", w: "w", y: "y" } });
        else
          convDataGradKernel(id, {
            ...shape,
            ...tiles,
            accumulate: false,
            tensors: { dy: "dy", w: "w", dx: "dx" },
          });
        return true;
      } catch {
        return false;
      }
    };
    const shapes = collectTunables((onTunable) => lowerTraining(graph, { ...opts, onTunable }));
    const entries: TuningTable["entries"] = {};
    for (const { kind, shape } of shapes) {
      if (kind === "conv.wgrad") continue;
      const size = (t: { channelsPerInvocation?: number; pixelsPerInvocation?: number }) =>
        (t.channelsPerInvocation ?? 0) * (t.pixelsPerInvocation ?? 0);
      const largest = tileCandidates(kind, shape)
        .filter((t) => size(t) > 0 && accepts(kind, shape, t))
        .sort((a, b) => size(b) - size(a))[0];
      if (largest) entries[tuningKey(kind, shape)] = { tiles: largest, ms: 1, defaultMs: 1 };
    }
    expect(Object.keys(entries).length).toBeGreaterThanOrEqual(8);
    const x = new Float32Array(2 * elementCount(graph.inputs[0].shape));
    fillNormal(x, 0, 1, paramStream(2, "autotune-test"));
    const params = initParams(graph, 6);
    const runs: { wgsl: string; grads: Map<string, Float32Array> }[] = [];
    for (const tuning of [
      undefined,
      { format: "alexc-tuning", version: 1, adapter: "test", entries } as const,
    ]) {
      const compiled = lowerTraining(graph, { ...opts, tuning });
      const t = await createTrainer(dev, compiled);
      t.uploadParams(params);
      t.writeBatch(x, Int32Array.from([1, 3]));
      await t.step({ lr: 0.01, seed: 5 });
      runs.push({ wgsl: Object.values(compiled.wgsl).join("\n"), grads: await t.readGradients() });
      t.destroy();
    }
    expect(runs[1].wgsl).not.toBe(runs[0].wgsl); // the table was honoured
    for (const [name, g] of runs[0].grads)
      expect(new Uint32Array(runs[1].grads.get(name)!.buffer), name).toEqual(new Uint32Array(g.buffer));
  });
});
