// `npm run bench:figure1 -- [--lrs A,B,…] [--search-steps N] [--max-steps N] [--threshold E]`: the
// paper's Figure 1 experiment on Fashion-MNIST — the four-layer convolutional net with ReLU units
// against the same net with tanh units, same initial weights seed and data order — counting the
// training steps each needs until its training error (the batch's own predictions, averaged over
// the last `window` steps) first reaches the threshold (the paper's 25 %, and two stricter ones).
// As in the paper, "the learning rates for each network were chosen independently to make training
// as fast as possible": each network is first trained at every rate of `--lrs` to the first
// threshold, and the fastest rate is the one compared (with no weight decay in the models: "no
// regularization of any kind"); the grid is extended past its edge while the fastest rate is there.
// Prints the ratio and writes bench/results/<date>-figure1.{json,svg}. Not a test: it trains for
// minutes.
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
const searchSteps = Number(flag("--search-steps") ?? 400);
const lrs = (flag("--lrs") ?? "0.002,0.005,0.01,0.02,0.05").split(",").map(Number);
if (lrs.some((lr) => !(lr > 0))) throw new Error(`--lrs: expected positive numbers, got ${flag("--lrs")}`);
const thresholds = [Number(flag("--threshold") ?? 0.25), 0.2, 0.15];
const window = 20;
const data = loadFashionMnist(flag("--data"));
const models = { relu: "models/fig1-relu-fmnist.net", tanh: "models/fig1-tanh-fmnist.net" };

interface Run {
  network: string;
  lr: number;
  stepsTo: Record<string, number | null>;
  /** Steps trained: the last threshold reached, the step limit, or a non-finite loss. */
  steps: number;
  diverged: boolean;
  /** Smoothed training error every `window` steps, for the plot. */
  curve: { step: number; error: number; loss: number }[];
  seconds: number;
}

/** Trains `model` at rate `lr` until every one of `targets` is reached or `limit` steps have run. */
async function train(model: string, lr: number, targets: number[], limit: number): Promise<Run> {
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
    const stepsTo: Record<string, number | null> = Object.fromEntries(targets.map((t) => [String(t), null]));
    const curve: Run["curve"] = [];
    const perEpoch = Math.floor((data.train.count - 5000) / batch);
    let order = new Uint32Array(0);
    let step = 0;
    let diverged = false;
    for (; step < limit; step++) {
      if (step % perEpoch === 0) {
        // The same order for both networks and every rate: it depends on the seed and the epoch only.
        const all = Uint32Array.from({ length: data.train.count - 5000 }, (_, i) => i);
        order = Rng.derive(recipe.seed, `order/${step / perEpoch}`).shuffle(all);
      }
      const indices = order.subarray((step % perEpoch) * batch, ((step % perEpoch) + 1) * batch);
      toFloatBatch(data.train, indices, images, { mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD });
      for (let i = 0; i < batch; i++) labels[i] = data.train.labels[indices[i]];
      trainer.writeBatch(images, labels);
      const { loss, logits } = await trainer.step({ lr, seed: step });
      if (!Number.isFinite(loss)) {
        diverged = true;
        break;
      }
      errors.push(topKErrors(logits, labels, graph.classes, [1]).rate[0]);
      losses.push(loss);
      if (errors.length < window) continue;
      const smoothed = errors.slice(-window).reduce((a, b) => a + b, 0) / window;
      for (const t of targets)
        if (stepsTo[String(t)] === null && smoothed <= t) stepsTo[String(t)] = step + 1;
      if ((step + 1) % window === 0) {
        curve.push({
          step: step + 1,
          error: smoothed,
          loss: losses.slice(-window).reduce((a, b) => a + b, 0) / window,
        });
        console.log(
          `${graph.name} lr ${lr}: step ${step + 1}, training error ${(smoothed * 100).toFixed(1)} %, loss ${curve.at(-1)!.loss.toFixed(3)}`,
        );
      }
      if (targets.every((t) => stepsTo[String(t)] !== null)) {
        step++;
        break;
      }
    }
    trainer.destroy();
    const seconds = (performance.now() - started) / 1000;
    return { network: graph.name, lr, stepsTo, steps: step, diverged, curve, seconds };
  } finally {
    closeDevices([dev]);
  }
}

interface Trial {
  lr: number;
  /** Steps to the first threshold; null when not reached within `stoppedAt` steps. */
  steps: number | null;
  stoppedAt: number;
  diverged: boolean;
  seconds: number;
}

/**
 * The rate of `lrs` that reaches the first threshold in the fewest steps (ties: the one tried
 * first). A trial stops once it cannot beat the best so far, so a slow rate costs no more than the
 * fastest one found.
 */
async function fastestRate(model: string): Promise<{ lr: number; trials: Trial[] }> {
  const trials: Trial[] = [];
  let best: { lr: number; steps: number } | undefined;
  // Nearest the model file's own rate first: a good first bound makes the pruning pay.
  const own = compileSource(readFileSync(model, "utf8")).recipe?.lr ?? lrs[0];
  const distance = (lr: number) => Math.abs(Math.log(lr / own));
  const tryRate = async (lr: number) => {
    const run = await train(model, lr, [thresholds[0]], best ? best.steps - 1 : searchSteps);
    const steps = run.stepsTo[String(thresholds[0])];
    trials.push({ lr, steps, stoppedAt: run.steps, diverged: run.diverged, seconds: run.seconds });
    console.log(
      `${run.network} lr ${lr}: ${steps !== null ? `${(thresholds[0] * 100).toFixed(0)} % after ${steps} steps` : run.diverged ? `diverged at step ${run.steps + 1}` : `not reached in ${run.steps} steps`}`,
    );
    if (steps !== null && (!best || steps < best.steps)) best = { lr, steps };
  };
  for (const lr of [...lrs].sort((a, b) => distance(a) - distance(b))) await tryRate(lr);
  // A best rate at the grid's edge may not be the fastest: extend the grid past it (×½ or ×2, six
  // times at most) until the best has a slower rate on both sides.
  for (let extra = 0; best && extra < 6; extra++) {
    const tried = trials.map((t) => t.lr);
    const edge =
      best.lr === Math.min(...tried) ? best.lr / 2 : best.lr === Math.max(...tried) ? best.lr * 2 : undefined;
    if (edge === undefined) break;
    await tryRate(edge);
  }
  if (!best)
    throw new Error(
      `${model}: no rate of ${lrs.join(", ")} reached ${thresholds[0]} in ${searchSteps} steps`,
    );
  return { lr: best.lr, trials };
}

const search = { relu: await fastestRate(models.relu), tanh: await fastestRate(models.tanh) };
const relu = await train(models.relu, search.relu.lr, thresholds, maxSteps);
const tanh = await train(models.tanh, search.tanh.lr, thresholds, maxSteps);
const ratios = Object.fromEntries(
  thresholds.map((t) => {
    const [r, h] = [relu.stepsTo[String(t)], tanh.stepsTo[String(t)]];
    return [String(t), r && h ? h / r : null];
  }),
);
console.log(`fastest rates: ReLU ${relu.lr}, tanh ${tanh.lr} (of ${lrs.join(", ")})`);
for (const t of thresholds) {
  const [r, h] = [relu.stepsTo[String(t)], tanh.stepsTo[String(t)]];
  const ratio = ratios[String(t)];
  console.log(
    `training error ≤ ${t * 100} %: ReLU after ${r ?? `> ${maxSteps}`} steps, tanh after ${h ?? `> ${maxSteps}`} steps` +
      (ratio
        ? ratio >= 1
          ? ` — ReLU ${ratio.toFixed(1)}× faster`
          : ` — tanh ${(1 / ratio).toFixed(1)}× faster`
        : ""),
  );
}

// Each run's smoothed error as "train", plotted per `window` steps.
const asRecords = (run: Run): EpochRecord[] =>
  run.curve.map((c, i) => ({
    epoch: i + 1,
    trainLoss: c.loss,
    trainTop1: c.error,
    trainTop5: NaN,
    valTop1: null,
    valTop5: null,
    lr: run.lr,
    seconds: 0,
  }));
const date = new Date().toISOString().slice(0, 10);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
for (const run of [relu, tanh]) {
  writeFileSync(
    new URL(`./results/${date}-figure1-${run.network}.svg`, import.meta.url),
    plotCurves(asRecords(run), {
      title: `${run.network}, lr ${run.lr}: training error per ${window} steps (x: ${window}-step buckets)`,
    }),
  );
}
const out = new URL(`./results/${date}-figure1.json`, import.meta.url);
writeFileSync(
  out,
  JSON.stringify(
    {
      date,
      command: `npm run bench:figure1 -- --lrs ${lrs.join(",")} --search-steps ${searchSteps} --max-steps ${maxSteps}`,
      window,
      thresholds,
      search,
      relu,
      tanh,
      ratios,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out.pathname}`);
