// `npm run bench:placement -- [MODEL.net] [--batch N] [--iters K] [--link-gbps G]`: a training step on
// one device and on two for each placement strategy, on this machine's WebGPU adapter(s): step time,
// bytes moved, the share of transfer time hidden behind compute, and the speed-up two real GPUs would
// get, modelled from the measured single-device kernel times, compiler/place.ts's per-device FLOPs and
// a stated link bandwidth. On one CPU adapter two devices share the same cores, so two cannot beat one
// here; the model says what the split is worth on hardware where they do not.
// Writes bench/results/<date>-placement-<network>.json. Not a test: wall-clock numbers vary.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { compileSource } from "../compiler/frontend.ts";
import { lowerTraining, type TrainLowerOptions } from "../compiler/lower-train.ts";
import { lowerTrainingHybrid } from "../compiler/lower-hybrid.ts";
import { lowerTrainingData, lowerTrainingPlaced } from "../compiler/lower-placed.ts";
import { placeNetwork, type Strategy } from "../compiler/place.ts";
import type { Graph } from "../compiler/graph.ts";
import type { CompiledPlan } from "../compiler/plan.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { fillNormal, initParams, paramStream } from "../runtime/init.ts";
import { createPlacedTrainer } from "../runtime/placed.ts";
import { createTrainer, type Trainer } from "../runtime/trainer.ts";

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const file = args.find((a) => a.endsWith(".net")) ?? "models/alexnet-small.net";
const iters = Number(flag("--iters") ?? 3);
// GTX 580s talked over PCIe 2.0 x16: 8 GB/s per direction in theory, ~6 GB/s in practice.
const linkGBps = Number(flag("--link-gbps") ?? 6);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { graph, recipe } = compileSource(readFileSync(file, "utf8"));
if (!graph || !recipe) throw new Error(`${file} does not check clean`);
const batch = Number(flag("--batch") ?? Math.min(recipe.batch, 32));
const options: TrainLowerOptions = {
  batch,
  maxBindingBytes: 134_217_728,
  source: file,
  compilerVersion: "bench",
  momentum: recipe.momentum,
  weightDecay: recipe.weightDecay,
  activeDropout: [], // dropout masks depend on the slicing; the timing does not
};
const images = new Float32Array(batch * graph.inputs[0].shape.reduce((a, b) => a * b, 1));
fillNormal(images, 0, 1, paramStream(3, "bench-images"));
const labels = Int32Array.from({ length: batch }, (_, i) => i % graph.classes);

interface Measured {
  wallMs: number;
  gpuMs: number;
  transferBytes: number;
  transferMs: number;
}

async function measure(trainer: Trainer): Promise<Measured> {
  trainer.uploadParams(initParams(graph!, 1));
  trainer.writeBatch(images, labels);
  await trainer.step({ lr: recipe!.lr, seed: 1 }); // warm-up: shaders compile on first use
  const walls: number[] = [];
  let gpuMs = 0;
  let transferBytes = 0;
  let transferMs = 0;
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    const r = (await trainer.step({ lr: recipe!.lr, seed: 2 + i, timing: true })) as Awaited<
      ReturnType<Trainer["step"]>
    > & {
      transfers?: { bytes: number; ms: number }[];
    };
    walls.push(performance.now() - t0);
    gpuMs += (r.kernels ?? []).reduce((s, k) => s + k.ms, 0) / iters;
    transferBytes = (r.transfers ?? []).reduce((s, t) => s + t.bytes, 0);
    transferMs += (r.transfers ?? []).reduce((s, t) => s + t.ms, 0) / iters;
  }
  trainer.destroy();
  return { wallMs: median(walls), gpuMs, transferBytes, transferMs };
}

const lowerings: [Strategy, (g: Graph, o: TrainLowerOptions) => CompiledPlan][] = [
  ["model", lowerTrainingPlaced],
  ["data", lowerTrainingData],
  ["hybrid", lowerTrainingHybrid],
];

const devices = await openDevices({ count: 2 });
const rows: Record<string, unknown>[] = [];
try {
  const single = await measure(await createTrainer(devices[0], lowerTraining(graph, options)));
  console.log(
    `${graph.name}, training step at batch ${batch}, ${iters} timed steps, on ${devices.map((d) => d.label).join(" + ")}`,
  );
  console.log(`  one device: ${single.wallMs.toFixed(0)} ms (kernels ${single.gpuMs.toFixed(0)} ms)`);
  rows.push({ strategy: "one device", ...single });
  for (const [strategy, lowerFor] of lowerings) {
    if (devices.length < 2) break;
    const measured = await measure(await createPlacedTrainer(devices, lowerFor(graph, options)));
    // Transfer time not added to the step: the single device's kernel time stands for the same work.
    const exposed = Math.max(0, measured.wallMs - single.gpuMs);
    const hidden = measured.transferMs > 0 ? Math.min(1, Math.max(0, 1 - exposed / measured.transferMs)) : 1;
    // Two real GPUs: each runs its share of the FLOPs at the measured single-device rate; transfers
    // cross a link of linkGBps, not overlapped (a conservative bound).
    const placement = placeNetwork(graph, strategy, { batch });
    const total = placement.totals.flops.total;
    const busiest = Math.max(...placement.devices.map((d) => d.flops.total));
    const linkMs = (Math.max(...placement.devices.map((d) => d.sent.total)) / (linkGBps * 1e9)) * 1e3;
    const modelledMs = (single.gpuMs * busiest) / total + linkMs;
    const speedup = single.gpuMs / modelledMs;
    console.log(
      `  ${strategy.padEnd(6)} two devices: ${measured.wallMs.toFixed(0)} ms; ${measured.transferBytes.toLocaleString("en-US")} B moved ` +
        `in ${measured.transferMs.toFixed(0)} ms, ${(hidden * 100).toFixed(0)} % hidden; modelled on two GPUs at ${linkGBps} GB/s: ` +
        `${modelledMs.toFixed(0)} ms, ${speedup.toFixed(2)}× one GPU`,
    );
    rows.push({
      strategy,
      ...measured,
      hiddenFraction: hidden,
      modelled: { linkGBps, busiestShare: busiest / total, linkMs, stepMs: modelledMs, speedup },
    });
  }
} finally {
  closeDevices(devices);
}

const date = new Date().toISOString().slice(0, 10);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const out = new URL(`./results/${date}-placement-${graph.name}.json`, import.meta.url);
const command = `npm run bench:placement -- ${file} --batch ${batch} --iters ${iters} --link-gbps ${linkGBps}`;
writeFileSync(
  out,
  JSON.stringify({ date, command, adapters: devices.map((d) => d.label), batch, rows }, null, 2) + "\n",
);
console.log(`wrote ${out.pathname}`);
