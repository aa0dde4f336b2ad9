// onnxruntime-web in Node: its WebGPU execution provider (peer `ort-webgpu`: the
// `onnxruntime-web/webgpu` bundle, on Dawn through navigator.gpu, the same adapter as alexc) and its
// WebAssembly CPU provider (peer `ort-wasm`: SIMD, one worker thread per core). The model is alexc's ONNX export:
// the identical network and weights. onnxruntime-web has no training API, so training rows are n/a.
import { availableParallelism } from "node:os";
import { exportOnnx } from "../../compiler/onnx.ts";
import { check, installNavigatorGpu, loadProblem, peerMain, readReference, timeRuns } from "./common.ts";
import type { PeerResult } from "./common.ts";

const peer = JSON.parse(process.argv[2] ?? "{}").peer === "ort-wasm" ? "ort-wasm" : "ort-webgpu";

await peerMain(peer, async (job): Promise<PeerResult> => {
  if (job.mode === "train")
    return { peer, status: "n/a", settings: [], note: "onnxruntime-web has no training API" };
  await installNavigatorGpu();
  // The WebGPU provider is in the `webgpu` bundle, which in Node runs the wasm part single-threaded
  // (its worker start-up fetches a URL, which Node cannot); the package's Node build runs the wasm
  // provider with worker threads, one per core.
  const ort = (await import(
    peer === "ort-wasm" ? "onnxruntime-web" : "onnxruntime-web/webgpu"
  )) as typeof import("onnxruntime-web/webgpu");
  ort.env.wasm.numThreads = peer === "ort-wasm" ? availableParallelism() : 1;
  ort.env.logLevel = "error";
  const p = loadProblem(job);
  const reference = readReference(job.reference);
  const model = exportOnnx(p.graph, p.params, { batch: job.batch });
  const ep = peer === "ort-wasm" ? "wasm" : "webgpu";
  // Settings tried in order until the outputs match the reference.
  const candidates: { label: string; options: Record<string, unknown> }[] =
    ep === "wasm"
      ? [{ label: `wasm, ${ort.env.wasm.numThreads} threads`, options: { executionProviders: ["wasm"] } }]
      : [
          { label: "webgpu, default options (NHWC layout)", options: { executionProviders: ["webgpu"] } },
          {
            label: "webgpu, preferredLayout NCHW",
            options: { executionProviders: [{ name: "webgpu", preferredLayout: "NCHW" }] },
          },
        ];
  const checks: NonNullable<PeerResult["checks"]> = [];
  for (const c of candidates) {
    const session = await ort.InferenceSession.create(model, c.options);
    const feeds = { [p.graph.inputs[0].name]: new ort.Tensor("float32", p.images, p.inputDims) };
    const run = async () => {
      const out = await session.run(feeds);
      const data = (await out.logits.getData()) as Float32Array;
      for (const t of Object.values(out)) t.dispose();
      return data;
    };
    const result = check(await run(), reference);
    checks.push({ settings: c.label, check: result });
    if (!result.ok) {
      await session.release();
      continue;
    }
    const timed = await timeRuns(job, run);
    await session.release();
    const settings = checks.map((k) => `${k.settings}: ${k.check.ok ? "outputs match" : "WRONG outputs"}`);
    return { peer, status: "timed", settings, checks, ...timed };
  }
  return { peer, status: "wrong", settings: checks.map((k) => k.settings), checks };
});
