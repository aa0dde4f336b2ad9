// `npm run bench:figure1 -- [--max-steps N] [--threshold E]`: the paper's Figure 1 experiment on
// Fashion-MNIST — the four-layer convolutional net with ReLU units against the same net with tanh
// units, same initial weights seed, data order and recipe — counting the training steps each needs
// until its training error (the batch's own predictions, averaged over the last `window` steps)
// first reaches the threshold (the paper's 25 %, and two stricter ones). Prints the ratio and writes
// bench/results/<date>-figure1.{json,svg}. Not a test: it trains for minutes.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { compileSource } from "../compiler/frontend.ts";
import { lowerTraining } from "../compiler/lower-train.ts";
import {
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  loadFashionMnist,
  toFloatBatch,
} from "../runtime/data/fashion-mnist.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { initParams } from "../runtime/init.ts";
import { topKErrors, type EpochRecord } from "../runtime/train/metrics.ts";
import { plotCurves } from "../runtime/train/plot.ts";
import { Rng } from "../runtime/train/rng.ts";
import { createTrainer } from "../runtime/trainer.ts";

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const maxSteps = Number(flag("--max-steps") ?? 1500);
const thresholds = [Number(flag("--threshold") ?? 0.25), 0.2, 0.15];
const window = 20;
const data = loadFashionMnist(flag("--data"));

interface Run {
  network: string;
  stepsTo: Record<string, number | null>;
  /** Smoothed training error every `window` steps, for the plot. */
  curve: { step: number; error: number; loss: number }[];
  seconds: number;
}

async function train(model: string): Promise<Run> {
  const { graph, recipe } = compileSource(readFileSync(model, "utf8"));
  if (!graph || !recipe) throw new Error(`${model} does not check clean`);
  const [dev] = await openDevices({ count: 1 });
  const started = performance.now();
  try {
    const batch = recipe.batch;
    const trainer = await createTrainer(
      dev,
      lowerTraining(graph, {
        batch,
        maxBindingBytes: dev.maxBindingBytes,
        source: model,
        compilerVersion: "bench",
        momentum: recipe.momentum,
        weightDecay: recipe.weightDecay,
      }),
    );
    trainer.uploadParams(initParams(graph, recipe.seed));
    const images = new Float32Array(batch * 28 * 28);
    const labels = new Int32Array(batch);
    const errors: number[] = [];
    const losses: number[] = [];
    const stepsTo: Record<string, number | null> = Object.fromEntries(
      thresholds.map((t) => [String(t), null]),
    );
    const curve: Run["curve"] = [];
    const perEpoch = Math.floor((data.train.count - 5000) / batch);
    let order = new Uint32Array(0);
    for (let step = 0; step < maxSteps; step++) {
      if (step % perEpoch === 0) {
        // The same order for both networks: it depends on the seed and the epoch only.
        const all = Uint32Array.from({ length: data.train.count - 5000 }, (_, i) => i);
        order = Rng.derive(recipe.seed, `order/${step / perEpoch}`).shuffle(all);
      }
      const indices = order.subarray((step % perEpoch) * batch, ((step % perEpoch) + 1) * batch);
      toFloatBatch(data.train, indices, images, { mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD });
      for (let i = 0; i < batch; i++) labels[i] = data.train.labels[indices[i]];
      trainer.writeBatch(images, labels);
      const { loss, logits } = await trainer.step({ lr: recipe.lr, seed: step });
      errors.push(topKErrors(logits, labels, graph.classes, [1]).rate[0]);
      losses.push(loss);
      if (errors.length < window) continue;
      const smoothed = errors.slice(-window).reduce((a, b) => a + b, 0) / window;
      for (const t of thresholds)
        if (stepsTo[String(t)] === null && smoothed <= t) stepsTo[String(t)] = step + 1;
      if ((step + 1) % window === 0) {
        curve.push({
          step: step + 1,
          error: smoothed,
          loss: losses.slice(-window).reduce((a, b) => a + b, 0) / window,
        });
        console.log(
          `${graph.name}: step ${step + 1}, training error ${(smoothed * 100).toFixed(1)} %, loss ${curve.at(-1)!.loss.toFixed(3)}`,
        );
      }
      if (thresholds.every((t) => stepsTo[String(t)] !== null)) break;
    }
    trainer.destroy();
    return { network: graph.name, stepsTo, curve, seconds: (performance.now() - started) / 1000 };
  } finally {
    closeDevices([dev]);
  }
}

const relu = await train("models/fig1-relu-fmnist.net");
const tanh = await train("models/fig1-tanh-fmnist.net");
const ratios = Object.fromEntries(
  thresholds.map((t) => {
    const [r, h] = [relu.stepsTo[String(t)], tanh.stepsTo[String(t)]];
    return [String(t), r && h ? h / r : null];
  }),
);
for (const t of thresholds) {
  const [r, h] = [relu.stepsTo[String(t)], tanh.stepsTo[String(t)]];
  console.log(
    `training error ≤ ${t * 100} %: ReLU after ${r ?? `> ${maxSteps}`} steps, tanh after ${h ?? `> ${maxSteps}`} steps` +
      (ratios[String(t)] ? ` — ReLU ${ratios[String(t)]!.toFixed(1)}× faster` : ""),
  );
}

// Both curves on one plot: each run's smoothed error as "train", plotted per `window` steps.
const asRecords = (run: Run): EpochRecord[] =>
  run.curve.map((c, i) => ({
    epoch: i + 1,
    trainLoss: c.loss,
    trainTop1: c.error,
    trainTop5: NaN,
    valTop1: null,
    valTop5: null,
    lr: 0.01,
    seconds: 0,
  }));
const date = new Date().toISOString().slice(0, 10);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
for (const run of [relu, tanh]) {
  writeFileSync(
    new URL(`./results/${date}-figure1-${run.network}.svg`, import.meta.url),
    plotCurves(asRecords(run), {
      title: `${run.network}: training error per ${window} steps (x: ${window}-step buckets)`,
    }),
  );
}
const out = new URL(`./results/${date}-figure1.json`, import.meta.url);
writeFileSync(
  out,
  JSON.stringify(
    {
      date,
      command: `npm run bench:figure1 -- --max-steps ${maxSteps}`,
      window,
      thresholds,
      relu,
      tanh,
      ratios,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out.pathname}`);
