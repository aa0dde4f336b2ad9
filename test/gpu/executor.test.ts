// The runtime end to end: device diagnostics, error reporting by kernel and layer, timing, and the
// full paper AlexNet at batch 1 against TF.js.
import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { lower } from "../../compiler/lower.ts";
import { openDevices } from "../../runtime/devices.ts";
import { createExecutor } from "../../runtime/executor.ts";
import { useGpu } from "./adapter.ts";
import { alexnetGraph, oneNodeGraph, random, randomParams, relativeError } from "./one-node.ts";
import { tf, tfForward } from "./tf-reference.ts";

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<DiagnosticError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof DiagnosticError) return e;
    throw e;
  }
  throw new Error("expected a DiagnosticError");
}

const compileOpts = (batch: number, maxBindingBytes: number) => ({
  batch,
  maxBindingBytes,
  source: "test",
  compilerVersion: "alexc test",
});

describe("devices", () => {
  it("gives AX4004 with the lavapipe install hint when there is no adapter", async () => {
    const e = await rejection(openDevices({ gpu: { requestAdapter: async () => null } }));
    expect(e.diagnostics[0].code).toBe("AX4004");
    expect(e.diagnostics[0].message).toBe("no WebGPU adapter found");
    expect(e.diagnostics[0].help).toContain("npm run setup");
  });
});

const gpu = await useGpu();

gpu.describe("executor diagnostics", () => {
  const relu = () =>
    lower(oneNodeGraph({ op: "relu" }, [[3, 4, 5]]), compileOpts(2, gpu.dev!.maxBindingBytes));

  it("turns a rejected kernel into AX4001 naming kernel, layer and the WGSL line", async () => {
    const compiled = relu();
    compiled.wgsl.k00_y = compiled.wgsl.k00_y.replaceAll("max(v, 0.0)", "max(v, undefined_name)");
    const e = await rejection(createExecutor(gpu.dev!, compiled));
    expect(e.diagnostics[0].code).toBe("AX4001");
    expect(e.diagnostics[0].message).toMatch(
      /^WebGPU rejected kernel `k00_y` of layer `y`: kernels\/k00_y\.wgsl:\d+:\d+: .*undefined_name/,
    );
  });

  it("checks parameters (AX4005) and inputs (AX4006)", async () => {
    const dense = lower(
      oneNodeGraph({ op: "dense", units: 3, towers: { kind: "cross" }, groups: 1, bias: true }, [[4]]),
      compileOpts(1, gpu.dev!.maxBindingBytes),
    );
    const executor = await createExecutor(gpu.dev!, dense);
    expect((await rejection(() => executor.uploadParams(new Map()))).diagnostics[0].message).toContain(
      "missing parameter `y.weight`",
    );
    expect((await rejection(() => executor.writeInput("x", new Float32Array(5)))).diagnostics[0].code).toBe(
      "AX4006",
    );
    executor.destroy();
  });

  it("runs a micro-batched plan chunk by chunk: the same logits as the whole batch", async () => {
    // 60 values (240 B) per example: a 500-byte limit fits 2, so batch 6 runs as 3 micro-batches of 2.
    const graph = oneNodeGraph({ op: "dense", units: 5, towers: { kind: "cross" }, groups: 1, bias: true }, [
      [3, 4, 5],
    ]);
    const params = randomParams(graph, 3);
    const input = random(6 * 60, 2);
    const logitsAt = async (maxBindingBytes: number) => {
      const compiled = lower(graph, compileOpts(6, maxBindingBytes));
      const executor = await createExecutor(gpu.dev!, compiled);
      executor.uploadParams(params);
      executor.writeInput("x", input);
      const { logits } = await executor.run();
      executor.destroy();
      return { microBatch: compiled.plan.microBatch, logits };
    };
    const whole = await logitsAt(gpu.dev!.maxBindingBytes);
    const micro = await logitsAt(500);
    expect(whole.microBatch).toBeUndefined();
    expect(micro.microBatch).toBe(2);
    expect(micro.logits).toHaveLength(30);
    expect(relativeError(micro.logits, whole.logits)).toBeLessThanOrEqual(1e-6);
  });

  it("times every kernel with timestamp queries when asked", async () => {
    const executor = await createExecutor(gpu.dev!, relu(), { timing: true });
    executor.writeInput("x", random(120, 1));
    const result = await executor.run();
    if (gpu.dev!.timestamps) {
      expect(result.kernels?.map((k) => k.kernel)).toEqual(["k00_y"]);
      // end − begin of the kernel's own pass: begin and end swapped or mixed up with another pass give < 0 or junk
      for (const k of result.kernels!)
        expect(k.ms >= 0 && k.ms < 60_000, `${k.kernel} ${k.ms} ms`).toBe(true);
    }
    expect(result.logits).toHaveLength(120);
    executor.destroy();
  });
});

/** He-uniform weights keep ReLU activations O(1) through eight layers, so the comparison means something. */
function heParams(graph: ReturnType<typeof alexnetGraph>): Map<string, Float32Array> {
  return new Map(
    graph.params.map((p, i) => {
      const count = p.shape.reduce((a, b) => a * b, 1);
      const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = p.name.endsWith(".bias") ? 0.1 : Math.sqrt(6 / fanIn);
      return [p.name, random(count, 100 + i, -bound, bound)];
    }),
  );
}

gpu.describe("AlexNet (paper, 2 towers as groups) at batch 1", () => {
  it("runs in well under a minute and matches TF.js", async () => {
    const graph = alexnetGraph();
    const params = heParams(graph);
    const image = random(3 * 224 * 224, 42);
    const compiled = lower(graph, compileOpts(1, gpu.dev!.maxBindingBytes));
    const t0 = performance.now();
    const executor = await createExecutor(gpu.dev!, compiled, { timing: true });
    executor.uploadParams(params);
    executor.writeInput("image", image);
    const loadMs = performance.now() - t0;
    await executor.run(); // the first run pays lavapipe's lazy shader compilation
    const { logits, wallMs, kernels } = await executor.run();
    executor.destroy();
    const tf0 = performance.now();
    await tf.setBackend("cpu");
    const want = tfForward(graph, params, image, 1);
    const tfMs = performance.now() - tf0;
    const err = relativeError(logits, want);
    const times = (kernels ?? []).map((k) => `${k.kernel} ${k.ms.toFixed(1)}`).join(", ");
    console.log(
      `AlexNet batch 1: load ${loadMs.toFixed(0)} ms, run ${wallMs.toFixed(0)} ms (TF.js CPU ${tfMs.toFixed(0)} ms), max rel err ${err.toExponential(2)}\n  per kernel (ms): ${times}`,
    );
    expect(logits).toHaveLength(1000);
    expect(err).toBeLessThanOrEqual(1e-4);
    expect(wallMs).toBeLessThan(60_000);
  });
});
