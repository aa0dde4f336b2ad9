// `npm run bench`: front-end and forward-pass timings of alexnet.net on this machine's WebGPU adapter,
// with onnxruntime-node's CPU run of the same exported model as the native reference in the same run.
// Prints a table and writes bench/results/<date>-forward.json. Not a test: wall-clock numbers vary.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { compileSource } from "../compiler/frontend.ts";
import { lower } from "../compiler/lower.ts";
import { exportOnnx } from "../compiler/onnx.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { createExecutor } from "../runtime/executor.ts";
import { fillNormal, initParams, paramStream } from "../runtime/init.ts";
import * as ort from "onnxruntime-node";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const args = process.argv.slice(2);
const iters = Number(args[args.indexOf("--iters") + 1]) || 5;
const batches = [1, 8];

const source = readFileSync(new URL("../models/alexnet.net", import.meta.url), "utf8");
compileSource(source); // warm the parser
const frontMs: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  compileSource(source);
  frontMs.push(performance.now() - t0);
}
const graph = compileSource(source).graph!;
console.log(`parse + check alexnet.net: median ${median(frontMs).toFixed(2)} ms over ${frontMs.length} runs`);

const weights = initParams(graph, 1);
const [dev] = await openDevices({ count: 1 });
const rows: Record<string, unknown>[] = [];
try {
  for (const batch of batches) {
    const input = new Float32Array(batch * 3 * 224 * 224);
    fillNormal(input, 0, 1, paramStream(2, "bench-input"));
    const t0 = performance.now();
    const compiled = lower(graph, {
      batch,
      maxBindingBytes: dev.maxBindingBytes,
      source: "alexnet.net",
      compilerVersion: "bench",
    });
    const lowerMs = performance.now() - t0;
    const executor = await createExecutor(dev, compiled, { timing: true });
    executor.uploadParams(weights);
    executor.writeInput("image", input);
    await executor.run(); // warm-up: lavapipe compiles shaders at the first dispatch
    const times: number[] = [];
    let kernels: { kernel: string; layer: string; ms: number }[] = [];
    for (let i = 0; i < iters; i++) {
      const r = await executor.run();
      times.push(r.wallMs);
      kernels = r.kernels ?? kernels;
    }
    executor.destroy();

    const session = await ort.InferenceSession.create(exportOnnx(graph, weights, { batch }), {
      executionProviders: ["cpu"],
    });
    const feeds = { image: new ort.Tensor("float32", input, [batch, 3, 224, 224]) };
    await session.run(feeds);
    const ortTimes: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t1 = performance.now();
      await session.run(feeds);
      ortTimes.push(performance.now() - t1);
    }
    await session.release();

    const ms = median(times);
    const ortMs = median(ortTimes);
    console.log(
      `forward batch ${batch}: alexc ${ms.toFixed(0)} ms (${((batch * 1000) / ms).toFixed(1)} img/s), ` +
        `onnxruntime-node CPU ${ortMs.toFixed(0)} ms, ratio alexc/ort ${(ms / ortMs).toFixed(2)}; lower ${lowerMs.toFixed(0)} ms`,
    );
    const byLayer = new Map<string, number>();
    for (const k of kernels) byLayer.set(k.layer, (byLayer.get(k.layer) ?? 0) + k.ms);
    const top = [...byLayer].sort((a, b) => b[1] - a[1]).slice(0, 6);
    console.log(`  slowest layers: ${top.map(([l, t]) => `${l} ${t.toFixed(0)} ms`).join(", ")}`);
    rows.push({ batch, alexcMs: ms, alexcRuns: times, ortCpuMs: ortMs, ortRuns: ortTimes, lowerMs, kernels });
  }
} finally {
  closeDevices([dev]);
}

const date = new Date().toISOString().slice(0, 10);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const out = new URL(`./results/${date}-forward.json`, import.meta.url);
writeFileSync(
  out,
  JSON.stringify(
    {
      date,
      adapter: dev.label,
      iters,
      frontEndMedianMs: median(frontMs),
      forward: rows,
      command: "npm run bench",
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out.pathname}`);
