// f16 storage (compiler/wgsl/f16-storage.ts) on a real adapter against onnxruntime-node in f32 with
// the same weights. Storing every activation and weight as f16 rounds each to 11 significant bits
// (relative 2^-11 ≈ 4.9e-4), so the logits may differ from f32 by a few 1e-3 of their range; the
// bound below is 1e-2 of max |logit|, and each example's top class must agree.
import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { elementCount } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { exportOnnx } from "../../compiler/onnx.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { fillNormal, paramStream } from "../../runtime/init.ts";
import type { OpenDevice } from "../../runtime/devices.ts";
import { runOnnx } from "../helpers/ort.ts";
import { liveWeights, modelGraph } from "../helpers/model-weights.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

function argmaxRows(values: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / classes; r++) {
    const row = values.subarray(r * classes, (r + 1) * classes);
    out.push(row.indexOf(Math.max(...row)));
  }
  return out;
}

async function compareWithOrt(model: string, batch: number, seed: number) {
  const graph = modelGraph(model);
  const dev = gpu.dev!;
  const weights = liveWeights(graph, seed);
  const input = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(input, 0, 1, paramStream(seed + 1, "input"));
  const compiled = lower(graph, {
    batch,
    maxBindingBytes: dev.maxBindingBytes,
    source: model,
    compilerVersion: "test",
    storage: "f16",
  });
  const executor = await createExecutor(dev, compiled);
  executor.uploadParams(weights);
  executor.writeInput(graph.inputs[0].name, input);
  const ours = (await executor.run()).logits;
  executor.destroy();
  const reference = (
    await runOnnx(exportOnnx(graph, weights, { batch }), {
      [graph.inputs[0].name]: { data: input, dims: [batch, ...graph.inputs[0].shape] },
    })
  ).logits;
  let maxAbs = 0;
  let maxErr = 0;
  for (let i = 0; i < ours.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(reference[i]));
    maxErr = Math.max(maxErr, Math.abs(ours[i] - reference[i]));
  }
  console.log(
    `${model} batch ${batch}, f16 storage: max |Δ| ${maxErr.toExponential(2)} of max |logit| ${maxAbs.toFixed(3)} = ${(maxErr / maxAbs).toExponential(2)}`,
  );
  return { graph, compiled, ours, reference, relative: maxErr / maxAbs, maxAbs };
}

gpu.describe("f16 storage against onnxruntime-node (f32)", () => {
  it(
    "alexnet.net at batch 2: stores f16, fc6 fits one binding, logits within 1e-2, same top-1",
    { timeout: 300_000 },
    async () => {
      if (!gpu.dev!.device.features.has("shader-f16")) throw new Error("the adapter lacks shader-f16");
      const r = await compareWithOrt("alexnet.net", 2, 21);
      const { plan } = r.compiled;
      expect(plan.tensors.every((t) => t.dtype === "f16")).toBe(true);
      // fc6's weight is 151 MB in f32 (split in two on lavapipe's 128 MiB bindings) and 75.5 MB in f16.
      const fc6 = plan.tensors.find((t) => t.name === "fc6.weight")!;
      expect(fc6.bytes).toBe(4096 * 9216 * 2);
      expect(plan.tensors.some((t) => t.partOf?.tensor === "fc6.weight")).toBe(false);
      expect(r.maxAbs).toBeGreaterThan(0);
      expect(r.relative).toBeLessThanOrEqual(1e-2);
      expect(argmaxRows(r.ours, r.graph.classes)).toEqual(argmaxRows(r.reference, r.graph.classes));
    },
  );

  it(
    "alexnet-small.net at batch 3 (odd element counts, padded uploads): logits within 1e-2",
    { timeout: 300_000 },
    async () => {
      const r = await compareWithOrt("alexnet-small.net", 3, 5);
      expect(r.relative).toBeLessThanOrEqual(1e-2);
      expect(argmaxRows(r.ours, r.graph.classes)).toEqual(argmaxRows(r.reference, r.graph.classes));
    },
  );
});

describe("f16 storage without shader-f16", () => {
  it("is refused before anything is allocated (AX4008), naming the device and the way out", async () => {
    const graph = modelGraph("alexnet-small.net");
    const compiled = lower(graph, {
      batch: 1,
      maxBindingBytes: 2 ** 27,
      source: "alexnet-small.net",
      compilerVersion: "test",
      storage: "f16",
    });
    // A device record whose device has no features: createExecutor must stop at the check.
    const dev = { label: "device 0 (no f16)", index: 0, device: { features: new Set<string>() } };
    const error = await createExecutor(dev as unknown as OpenDevice, compiled).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiagnosticError);
    const d = (error as DiagnosticError).diagnostics[0];
    expect(d.code).toBe("AX4008");
    expect(d.message).toContain("device 0 (no f16) lacks the WebGPU feature `shader-f16`");
    expect(d.help).toContain("f32 storage");
  });
});
