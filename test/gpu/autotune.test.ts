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
import { type TuningTable, tuningKey } from "../../compiler/tuning.ts";
import { adapterKey, autotune, collectTunables, loadTuning, saveTuning } from "../../runtime/autotune.ts";
import { createExecutor } from "../../runtime/executor.ts";
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
    const found = collectTunables((onTunable) =>
      lowerTraining(graph, {
        ...common(4),
        maxBindingBytes: gpu.dev!.maxBindingBytes,
        momentum: 0.9,
        weightDecay: 5e-4,
        onTunable,
      }),
    );
    const kinds = (k: string) => found.filter((f) => f.kind === k).length;
    // 5 convolutions (training and eval forward at the same batch: one shape each); conv1 reads the
    // image, so it has no data gradient
    expect([kinds("conv"), kinds("conv.dgrad"), kinds("conv.wgrad")]).toEqual([5, 4, 5]);
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
});
