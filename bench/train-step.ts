// `npm run bench:train -- [MODEL.net] [--batch N] [--iters K]`: median time of one training step
// (forward, loss, backward, the paper's update) on this machine's WebGPU adapter, the slowest layers
// by GPU time, and what that means for an epoch of Fashion-MNIST (60,000 images less the data
// section's validation ones).
// Convolutions use this adapter's autotuned tiles when the cache has them (as `train.ts --autotune`
// does), else the templates' own. The same step with direct convolutions is measured too,
// for the Winograd ratio. Writes bench/results/<date>-train-step-<network>.json. Not a test:
// wall-clock numbers vary.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { compileSource } from "../compiler/frontend.ts";
import { defaultData } from "../compiler/check/recipe.ts";
import { lowerTraining } from "../compiler/lower-train.ts";
import type { TuningTable } from "../compiler/tuning.ts";
import { winogradApplies } from "../compiler/wgsl/winograd.ts";
import { adapterKey, loadTuning } from "../runtime/autotune.ts";
import { type OpenDevice, closeDevices, openDevices } from "../runtime/devices.ts";
import { fillNormal, initParams, paramStream } from "../runtime/init.ts";
import { createTrainer } from "../runtime/trainer.ts";

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const file = args.find((a) => a.endsWith(".net")) ?? "models/alexnet-fmnist.net";
const { graph, recipe, data } = compileSource(readFileSync(file, "utf8"));
if (!graph || !recipe) throw new Error(`${file} does not check clean`);
const batch = Number(flag("--batch") ?? recipe.batch);
const iters = Number(flag("--iters") ?? 3);
// An epoch as the model's runner trains it: Fashion-MNIST's 60,000 less those held out for validation
// (the default data section's for a network that does not read Fashion-MNIST).
const trainImages = 60_000 - (data?.dataset === "fashion_mnist" ? data : defaultData).validation;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median step time and GPU ms per layer of the training plan, with or without Winograd convolutions. */
async function measureStep(dev: OpenDevice, tuning: TuningTable | undefined, winograd: boolean) {
  const compiled = lowerTraining(graph!, {
    tuning,
    winograd,
    batch,
    maxBindingBytes: dev.maxBindingBytes,
    source: file,
    compilerVersion: "bench",
    momentum: recipe!.momentum,
    weightDecay: recipe!.weightDecay,
    activeDropout: recipe!.dropout,
  });
  const trainer = await createTrainer(dev, compiled);
  try {
    trainer.uploadParams(initParams(graph!, 1));
    const images = new Float32Array(batch * graph!.inputs[0].shape.reduce((a, b) => a * b, 1));
    fillNormal(images, 0, 1, paramStream(2, "bench-images"));
    trainer.writeBatch(
      images,
      Int32Array.from({ length: batch }, (_, i) => i % graph!.classes),
    );
    await trainer.step({ lr: recipe!.lr, seed: 1 }); // warm-up: lavapipe compiles shaders on first use
    const times: number[] = [];
    const byLayer = new Map<string, number>();
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      const r = await trainer.step({ lr: recipe!.lr, seed: 2 + i, timing: true });
      times.push(performance.now() - t0);
      for (const k of r.kernels ?? []) byLayer.set(k.layer, (byLayer.get(k.layer) ?? 0) + k.ms / iters);
    }
    return { times, ms: median(times), byLayer };
  } finally {
    trainer.destroy();
  }
}

const [dev] = await openDevices({ count: 1 });
try {
  const tuning = loadTuning(adapterKey(dev));
  // The plan as `train.ts` runs it (Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions' forward and
  // data gradient), and the same plan with direct convolutions, measured in this run for the ratio.
  const { times, ms, byLayer } = await measureStep(dev, tuning, true);
  const direct = await measureStep(dev, tuning, false);
  const macs = graph.nodes.reduce((s, n) => s + n.macs, 0);
  // Forward + data gradient + weight gradient ≈ 3× the forward multiply-adds, 2 FLOPs each.
  const gflops = (6 * macs * batch) / (ms * 1e6);
  const epochMinutes = ((trainImages / batch) * ms) / 60_000;
  const slowest = [...byLayer].sort((a, b) => b[1] - a[1]).slice(0, 6);
  const tiles = tuning
    ? "autotuned conv tiles (cached for this adapter)"
    : "the templates' conv tiles (no tuning cache)";
  // the layers whose forward Winograd can take (the lowering still decides whether it pays)
  const winogradLayers = graph.nodes
    .filter((n) => n.attrs.op === "conv" && winogradApplies(n.attrs) && byLayer.has(n.name))
    .map((n) => n.name);
  console.log(`${graph.name} training step, batch ${batch}, on ${dev.label}, ${tiles}`);
  console.log(
    `  median ${ms.toFixed(0)} ms over ${iters} steps = ${((batch * 1000) / ms).toFixed(1)} images/s ≈ ${gflops.toFixed(2)} GFLOP/s`,
  );
  console.log(
    `  with direct convolutions (winograd: false): ${direct.ms.toFixed(0)} ms; Winograd's step is ${(direct.ms / ms).toFixed(2)}× as fast`,
  );
  for (const l of winogradLayers)
    console.log(
      `    ${l} (forward and backward, GPU ms per step): ${byLayer.get(l)!.toFixed(0)} with Winograd, ${direct.byLayer.get(l)!.toFixed(0)} direct`,
    );
  console.log(
    `  slowest layers (GPU ms per step): ${slowest.map(([l, t]) => `${l} ${t.toFixed(0)}`).join(", ")}`,
  );
  console.log(
    `  one Fashion-MNIST epoch (${trainImages.toLocaleString("en")} images) would take ≈ ${epochMinutes.toFixed(1)} min`,
  );
  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const out = new URL(`./results/${date}-train-step-${graph.name}.json`, import.meta.url);
  const record = {
    date,
    command: `npm run bench:train -- ${file} --batch ${batch}`,
    adapter: dev.label,
    tiles,
    network: graph.name,
    batch,
    iters,
    stepMs: times,
    medianMs: ms,
    gflops,
    epochMinutes,
    epochImages: trainImages,
    slowestLayersMs: Object.fromEntries(slowest),
    directConvolutions: {
      stepMs: direct.times,
      medianMs: direct.ms,
      winogradSpeedup: direct.ms / ms,
      layersMs: Object.fromEntries(winogradLayers.map((l) => [l, direct.byLayer.get(l)])),
    },
  };
  writeFileSync(out, JSON.stringify(record, null, 2) + "\n");
  console.log(`wrote ${out.pathname}`);
} finally {
  closeDevices([dev]);
}
