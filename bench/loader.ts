// `npm run bench:loader -- [--images N] [--quick] [--loader-only] [--write]`: does the image loader keep the devices
// busy? On generated 500×375 JPEGs (ImageNet's typical size, varied content so JPEG decoding costs
// what it does on photos; made once and cached in the temp dir), it measures
//   - the loader's images/s for training batches of 128 (decode to 256, random 224 crop, flip, PCA
//     lighting, mean image), with 1 and 2 worker threads and two libuv threadpool sizes — each
//     configuration in a fresh process, since UV_THREADPOOL_SIZE is read once per process;
//   - one training step of models/alexnet.net on this machine's WebGPU adapter, as images/s;
//   - the paper's ten-crop evaluation per image: decode once, ten views, one forward pass of the
//     ten as a batch, softmax averaged.
// Prints a table; --write also saves bench/results/<date>-loader.txt and .json. Not a test.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { compileSource } from "../compiler/frontend.ts";
import { tenCropViews, trainAugmentation, type MeanSpec } from "../runtime/data/images/augment.ts";
import { ImageLoader } from "../runtime/data/images/loader.ts";
import { softmaxRows } from "../runtime/train/metrics.ts";
import type { ExampleRequest } from "../runtime/data/images/types.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { initParams } from "../runtime/init.ts";
import { Rng } from "../runtime/train/rng.ts";
import { lowerForBench } from "./measure.ts";

const SIZE = 256;
const CROP = 224;
const WIDTH = 500;
const HEIGHT = 375;
const RESULT = "RESULT ";
/** ImageNet's RGB PCA as fb.resnet.torch publishes it (√λ on 0–255: 55.46, 4.794, 1.148). */
const EIGENVALUES = [55.46 ** 2, 4.794 ** 2, 1.148 ** 2];
const EIGENVECTORS = [
  [-0.5675, -0.5808, -0.5836],
  [0.7192, -0.0045, -0.6948],
  [0.4009, -0.814, 0.4203],
];
/** A mean image near ImageNet's channel means, varied so the subtraction is not constant. */
function meanImage(): MeanSpec {
  const channel = [123.68, 116.78, 103.94];
  const plane = SIZE * SIZE;
  const image = Float32Array.from(
    { length: 3 * plane },
    (_, i) => channel[Math.floor(i / plane)] + ((i % 97) - 48) / 8,
  );
  return { mode: "image", image };
}

interface LoaderJob {
  dir: string;
  files: string[];
  workers: number;
  batch: number;
}
interface LoaderResult {
  workers: number;
  threadpool: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  cpuMsPerImage: number;
  sharpConcurrency: number;
}

// ---- child: one loader configuration -----------------------------------------------------------

if (process.argv[2] === "--child") {
  const job = JSON.parse(process.argv[3]) as LoaderJob;
  const loader = await ImageLoader.open({
    ...{ root: job.dir, size: SIZE, crop: CROP, mean: meanImage() },
    ...{ workers: job.workers, prefetch: 2 },
  });
  const order = Rng.derive(1, "order/0").permutation(job.files.length);
  const batches: ExampleRequest[][] = [];
  for (let b = 0; b + job.batch <= order.length; b += job.batch) {
    batches.push(
      Array.from(order.subarray(b, b + job.batch), (i) => ({
        path: job.files[i],
        label: i % 8,
        ...trainAugmentation(1, 0, i, {
          ...{ size: SIZE, crop: CROP, flip: true, lighting: 0.1 },
          ...{ eigenvalues: EIGENVALUES, eigenvectors: EIGENVECTORS },
        }),
      })),
    );
  }
  // Timed from the first request to the last batch, every batch counted. (Starting the clock at the
  // first batch instead would flatter several workers: their other batches are mostly done by then.)
  // The files are in the page cache: the dataset was just written or read.
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let timed = 0;
  for await (const b of loader.train(batches)) {
    if (b.failed.length > 0) throw new Error(`${b.failed.length} images failed: ${b.failed[0].detail}`);
    timed += b.labels.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await loader.close();
  const result: LoaderResult = {
    workers: job.workers,
    threadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    images: timed,
    seconds,
    imagesPerSecond: timed / seconds,
    cpuMsPerImage: (cpu.user + cpu.system) / 1000 / timed,
    sharpConcurrency: sharp.concurrency(),
  };
  console.log(RESULT + JSON.stringify(result));
  process.exit(0);
}

// ---- parent ------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes("--quick");
const loaderOnly = args.includes("--loader-only");
const write = args.includes("--write");
const count = Number(flag("--images") ?? (quick ? 64 : 512));
const batch = quick ? 16 : 128;
const trainBatch = quick ? 2 : 8;
const trainIters = quick ? 1 : 3;
const evalImages = quick ? 1 : 8;
const configs = quick
  ? [
      { workers: 1, threadpool: 4 },
      { workers: 2, threadpool: 4 },
    ]
  : [
      { workers: 1, threadpool: 4 },
      { workers: 2, threadpool: 4 },
      { workers: 1, threadpool: 2 },
      { workers: 2, threadpool: 2 },
    ];
if (!Number.isInteger(count) || count < 4 * batch) throw new Error(`--images must be at least ${4 * batch}`);
const started = new Date();
const log = (s: string) => console.error(s);

/**
 * Generated JPEGs, cached by parameters: gradients, waves, blobs, texture and noise, different per
 * image, at quality 90. The noise is tuned so files average ~105 KiB, about ILSVRC-2012's average
 * JPEG, since decode time follows the entropy-coded size.
 */
async function dataset(n: number): Promise<{ dir: string; files: string[] }> {
  const dir = path.join(tmpdir(), `alexc-bench-loader-v2-${n}x${WIDTH}x${HEIGHT}`);
  const files = Array.from({ length: n }, (_, i) => `train/c${i % 8}/img${String(i).padStart(5, "0")}.jpg`);
  if (fs.existsSync(path.join(dir, "complete"))) return { dir, files };
  log(`generating ${n} ${WIDTH}×${HEIGHT} JPEGs in ${dir} (once)…`);
  const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let i = 0; i < n; i++) {
    const rng = Rng.derive(i, "bench-loader-image");
    const f = Array.from({ length: 12 }, () => rng.float());
    const blobs = Array.from({ length: 6 }, () => [
      rng.float() * WIDTH,
      rng.float() * HEIGHT,
      20 + rng.float() * 90,
      rng.float() * 255,
    ]);
    for (let y = 0; y < HEIGHT; y++)
      for (let x = 0; x < WIDTH; x++) {
        let blob = 0;
        for (const [bx, by, r, v] of blobs) if ((x - bx) ** 2 + (y - by) ** 2 < r * r) blob = v;
        const wave = 40 * Math.sin(x * f[2] * 0.1 + y * f[3] * 0.05);
        const texture = 30 * Math.sin(x * (0.3 + f[8])) * Math.sin(y * (0.2 + f[9]));
        const base = (x * f[0] + y * f[1]) / 4 + wave + texture;
        const o = (y * WIDTH + x) * 3;
        for (let c = 0; c < 3; c++) {
          const noise = (rng.nextUint32() & 127) * (0.3 + 0.7 * f[4 + c]);
          raw[o + c] = Math.max(0, Math.min(255, 0.6 * base + 0.4 * blob + noise + f[7] * 60 * c));
        }
      }
    const file = path.join(dir, files[i]);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(file);
  }
  fs.writeFileSync(path.join(dir, "complete"), "");
  return { dir, files };
}

function runChild(job: LoaderJob, threadpool: number): Promise<LoaderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", JSON.stringify(job)], {
      env: { ...process.env, UV_THREADPOOL_SIZE: String(threadpool) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT));
      if (line) resolve(JSON.parse(line.slice(RESULT.length)) as LoaderResult);
      else reject(new Error(`loader child exited ${code}: ${out.slice(-500)}`));
    });
  });
}

const data = await dataset(count);
const bytes = data.files.reduce((s, f) => s + fs.statSync(path.join(data.dir, f)).size, 0);
const loaderResults: LoaderResult[] = [];
for (const c of configs) {
  log(`loader: ${c.workers} worker(s), UV_THREADPOOL_SIZE=${c.threadpool}, batches of ${batch}…`);
  loaderResults.push(await runChild({ ...data, workers: c.workers, batch }, c.threadpool));
}

// The devices: one training step, and the ten-crop evaluation, of models/alexnet.net.
const root = fileURLToPath(new URL("..", import.meta.url));
const netFile = "models/alexnet.net";

interface DeviceResult {
  adapter: string;
  trainMs: number[];
  evalMs: { load: number; forward: number; total: number }[];
}

async function measureDevices(): Promise<DeviceResult> {
  const { graph, recipe } = compileSource(fs.readFileSync(path.join(root, netFile), "utf8"));
  if (!graph || !recipe) throw new Error(`${netFile} does not check clean`);
  const meta = { source: netFile, compilerVersion: "bench" };
  const [dev] = await openDevices({ count: 1 });
  const loader = await ImageLoader.open({
    ...{ root: data.dir, size: SIZE, crop: CROP, mean: meanImage() },
    ...{ workers: 1, prefetch: 1 },
  });
  const result: DeviceResult = { adapter: dev.label, trainMs: [], evalMs: [] };
  try {
    log(`training step: alexnet, batch ${trainBatch}, ${trainIters} timed after 1 warm-up…`);
    const shape = { batch: trainBatch, placement: "none" as const, maxBindingBytes: dev.maxBindingBytes };
    const { createTrainer } = await import("../runtime/trainer.ts");
    const trainer = await createTrainer(dev, lowerForBench(graph, recipe, { mode: "train", ...shape }, meta));
    trainer.uploadParams(initParams(graph, 1));
    // A real loader batch goes to the trainer as it comes.
    const lighting = { lighting: 0.1, eigenvalues: EIGENVALUES, eigenvectors: EIGENVECTORS };
    const requests = data.files.slice(0, trainBatch).map((p, i) => ({
      ...{ path: p, label: i % graph.classes },
      ...trainAugmentation(1, 0, i, { size: SIZE, crop: CROP, flip: true, ...lighting }),
    }));
    for await (const b of loader.train([requests])) trainer.writeBatch(b.images, b.labels);
    for (let i = 0; i <= trainIters; i++) {
      const t0 = performance.now();
      await trainer.step({ lr: recipe.lr, seed: 1 + i, step: 1 + i });
      if (i > 0) result.trainMs.push(performance.now() - t0);
    }
    trainer.destroy();

    log(`ten-crop evaluation: ${evalImages} image(s) after 1 warm-up…`);
    const views = tenCropViews(SIZE, CROP);
    const { createExecutor } = await import("../runtime/executor.ts");
    const forward = lowerForBench(graph, recipe, { mode: "forward", ...shape, batch: views.length }, meta);
    const ex = await createExecutor(dev, forward);
    ex.uploadParams(initParams(graph, 1));
    const input = new Float32Array(views.length * 3 * CROP * CROP);
    for (let i = 0; i <= evalImages; i++) {
      const t0 = performance.now();
      const entry = { path: data.files[(i * 7) % count], label: 0 };
      for await (const b of loader.evaluate([[entry]], views))
        b.views.forEach((v, k) => input.set(v, k * v.length));
      const t1 = performance.now();
      ex.writeInput(graph.inputs[0].name, input);
      const { logits } = await ex.run();
      averageSoftmax(logits, views.length, graph.classes);
      const t2 = performance.now();
      if (i > 0) result.evalMs.push({ load: t1 - t0, forward: t2 - t1, total: t2 - t0 });
    }
    ex.destroy();
  } finally {
    await loader.close();
    closeDevices([dev]);
  }
  return result;
}

/** The paper's test-time rule: the mean of the views' softmax outputs, with the runner's softmax. */
function averageSoftmax(logits: Float32Array, rows: number, classes: number): Float64Array {
  const probs = softmaxRows(logits.subarray(0, rows * classes), classes);
  const mean = new Float64Array(classes);
  for (let i = 0; i < probs.length; i++) mean[i % classes] += probs[i] / rows;
  return mean;
}

const devices = loaderOnly ? undefined : await measureDevices();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stepMs = devices && median(devices.trainMs);
const stepRate = stepMs && (trainBatch * 1000) / stepMs;
const evalMedian = devices && {
  load: median(devices.evalMs.map((e) => e.load)),
  forward: median(devices.evalMs.map((e) => e.forward)),
  total: median(devices.evalMs.map((e) => e.total)),
};
const best = Math.max(...loaderResults.map((r) => r.imagesPerSecond));
const command = `npm run bench:loader${args.length ? ` -- ${args.join(" ")}` : ""}`;
const host = `${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, Node ${process.version}, ${process.platform} ${process.arch}`;
const pad = (s: string, n: number) => s.padEnd(n);
const deviceLines =
  devices && stepMs !== undefined && stepRate !== undefined && evalMedian !== undefined
    ? [
        `  ${pad(`training step, alexnet, batch ${trainBatch}`, 58)} ${stepRate.toFixed(2).padStart(9)}  ` +
          `median ${stepMs.toFixed(0)} ms/step of ${devices.trainMs.length}`,
        `  ${pad("ten-crop evaluation, per image", 58)} ${(1000 / evalMedian.total).toFixed(2).padStart(9)}  ` +
          `${evalMedian.total.toFixed(0)} ms = load ${evalMedian.load.toFixed(0)} ` +
          `+ forward b10 and softmax mean ${evalMedian.forward.toFixed(0)}`,
        "",
        best > stepRate
          ? `the loader's best (${best.toFixed(1)}/s) is ${(best / stepRate).toFixed(1)}× what a training step ` +
            "consumes: the device does not wait for data"
          : `the loader's best (${best.toFixed(1)}/s) is below the training step's ${stepRate.toFixed(1)}/s: ` +
            "the device would wait for data",
        "(on a CPU adapter the loader and the adapter share the same cores: while training they compete)",
      ]
    : ["  (devices not measured: --loader-only)"];
const lines = [
  `alexc image loader benchmark — ${started.toISOString()} — ${command}`,
  `host: ${host}; adapter: ${devices?.adapter ?? "(not opened)"}; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
  `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), libvips threads per image ` +
    `${loaderResults[0].sharpConcurrency}`,
  `data: ${count} generated ${WIDTH}×${HEIGHT} JPEGs, ${(bytes / count / 1024).toFixed(0)} KiB each on ` +
    `average, in ${data.dir}`,
  `loader: decode to ${SIZE}², random ${CROP}² crop, flip, PCA lighting σ 0.1, mean image, prefetch 2; ` +
    "timed from the first request; CPU ms = all threads of the loader's process",
  "",
  `  ${pad("what", 58)} ${pad("images/s", 9)}  detail`,
  ...loaderResults.map(
    (r) =>
      `  ${pad(`loader, ${r.workers} worker${r.workers > 1 ? "s" : ""}, UV_THREADPOOL_SIZE=${r.threadpool}, batch ${batch}`, 58)} ` +
      `${r.imagesPerSecond.toFixed(1).padStart(9)}  ${r.cpuMsPerImage.toFixed(1)} CPU ms/image over ${r.images} images`,
  ),
  ...deviceLines,
];
const text = lines.join("\n");
console.log(text);
if (write) {
  const stamp = started.toISOString().slice(0, 10);
  const out = path.join(root, "bench/results", `${stamp}-loader`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const record = {
    ...{
      date: started.toISOString(),
      command,
      host,
      loadAverage: loadavg(),
      sharp: { sharp: sharp.versions.sharp, vips: sharp.versions.vips },
    },
    ...{ images: count, imageSize: [WIDTH, HEIGHT], averageBytes: bytes / count, size: SIZE, crop: CROP },
    loader: loaderResults.map((r) => ({ ...r, batch })),
    ...(devices && {
      adapter: devices.adapter,
      trainStep: {
        network: netFile,
        batch: trainBatch,
        stepsMs: devices.trainMs,
        medianMs: stepMs,
        imagesPerSecond: stepRate,
      },
      tenCrop: { images: devices.evalMs.length, perImageMs: devices.evalMs, medianMs: evalMedian },
    }),
  };
  fs.writeFileSync(`${out}.json`, JSON.stringify(record, null, 2) + "\n");
  fs.writeFileSync(`${out}.txt`, text + "\n");
  console.log(`wrote ${out}.json and ${out}.txt`);
}
