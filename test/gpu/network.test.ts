// Whole networks on a real WebGPU adapter against onnxruntime-node running alexc's own ONNX export
// with the same weights: max |alexc − ort| ≤ 1e-4 × max |logit|.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { elementCount, type Graph } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { exportOnnx } from "../../compiler/onnx.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { fillNormal, paramStream } from "../../runtime/init.ts";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.ts";
import { runOnnx } from "../helpers/ort.ts";
import { liveWeights, modelGraph } from "../helpers/model-weights.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

function randomInput(graph: Graph, batch: number, seed: number): Float32Array {
  const data = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(data, 0, 1, paramStream(seed, "input"));
  return data;
}

function compare(ours: Float32Array, reference: Float32Array) {
  expect(ours.length).toBe(reference.length);
  let maxAbs = 0;
  let maxErr = 0;
  for (let i = 0; i < ours.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(reference[i]));
    maxErr = Math.max(maxErr, Math.abs(ours[i] - reference[i]));
  }
  expect(maxAbs).toBeGreaterThan(0);
  return { maxErr, maxAbs, relative: maxErr / maxAbs };
}

gpu.describe("whole networks against onnxruntime-node", () => {
  it("alexnet-small.net (batch 3) through the CLI: `alexc run` equals ORT on `alexc export-onnx`", async () => {
    const graph = modelGraph("alexnet-small.net");
    const dir = mkdtempSync(join(tmpdir(), "alexc-net-"));
    const batch = 3;
    const weightsFile = join(dir, "w.safetensors");
    const weights = liveWeights(graph, 7);
    writeSafetensors(
      weightsFile,
      new Map(graph.params.map((p) => [p.name, { shape: p.shape, data: weights.get(p.name)! }])),
    );
    const input = randomInput(graph, batch, 8);
    writeSafetensors(
      join(dir, "x.safetensors"),
      new Map([["input", { shape: [batch, ...graph.inputs[0].shape], data: input }]]),
      undefined,
      "input",
    );
    const model = new URL("../../models/alexnet-small.net", import.meta.url).pathname;
    const io = { out: () => {}, err: () => {} };
    expect(
      await main(
        [
          "run",
          model,
          "--weights",
          weightsFile,
          "--input",
          join(dir, "x.safetensors"),
          "-o",
          join(dir, "y.safetensors"),
        ],
        io,
      ),
    ).toBe(0);
    expect(await main(["export-onnx", model, "--weights", weightsFile, "-o", join(dir, "m.onnx")], io)).toBe(
      0,
    );
    const ours = readSafetensors(join(dir, "y.safetensors"), "input").get("logits")!;
    expect(ours.shape).toEqual([batch, 10]);
    const reference = await runOnnx(readFileSync(join(dir, "m.onnx")), {
      image: { data: input, dims: [batch, ...graph.inputs[0].shape] },
    });
    const r = compare(ours.data, reference.logits);
    console.log(
      `alexnet-small batch ${batch}: max abs error ${r.maxErr.toExponential(2)}, max |logit| ${r.maxAbs.toFixed(3)}, relative ${r.relative.toExponential(2)}`,
    );
    expect(r.relative).toBeLessThanOrEqual(1e-4);
  });

  it("alexnet.net (batch 1) equals ORT on its ONNX export", async () => {
    const graph = modelGraph("alexnet.net");
    const dev = gpu.dev!;
    const weights = liveWeights(graph, 11);
    const input = randomInput(graph, 1, 12);
    const compiled = lower(graph, {
      batch: 1,
      maxBindingBytes: dev.maxBindingBytes,
      source: "alexnet.net",
      compilerVersion: "test",
    });
    // fc6's 151 MB weight does not fit one 128 MiB binding on lavapipe; the plan must have split it.
    if (dev.maxBindingBytes < 4096 * 9216 * 4)
      expect(compiled.plan.tensors.some((t) => t.partOf?.tensor === "fc6.weight")).toBe(true);
    const executor = await createExecutor(dev, compiled);
    executor.uploadParams(weights);
    executor.writeInput("image", input);
    const t0 = performance.now();
    const ours = (await executor.run()).logits;
    const forwardMs = performance.now() - t0;
    const reference = await runOnnx(exportOnnx(graph, weights, { batch: 1 }), {
      image: { data: input, dims: [1, 3, 224, 224] },
    });
    const r = compare(ours, reference.logits);
    console.log(
      `alexnet batch 1: forward ${forwardMs.toFixed(0)} ms on ${dev.label}; max abs error ${r.maxErr.toExponential(2)}, ` +
        `max |logit| ${r.maxAbs.toFixed(3)}, relative ${r.relative.toExponential(2)}`,
    );
    expect(r.relative).toBeLessThanOrEqual(1e-4);
  });
});
