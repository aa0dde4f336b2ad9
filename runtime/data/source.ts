// What the generated training runner asks of a dataset, whichever the `data` section names:
// batches of an epoch in a seeded order, top-1/top-5 evaluation of a held-out set, and a report of
// what was skipped or converted. Fashion-MNIST lives in memory and is augmented on the calling
// thread; an image folder (runtime/data/images/dataset.ts) decodes ahead in worker threads.
//
// Reproducibility: an epoch's order comes from (seed, epoch) alone. Fashion-MNIST's crops and
// flips draw from the run's `augment` stream, which checkpoints save, so its batches are made
// lazily — one per step actually taken — and the stream's state always matches the steps done.
import type { DataSpec } from "../../compiler/check/recipe.ts";
import { averagedScores, topKErrors } from "../train/metrics.ts";
import { Rng, type RngStreams } from "../train/rng.ts";
import {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  drawAugmentation,
  loadFashionMnist,
  testViews,
  toFloatBatch,
  type ImageSet,
} from "./fashion-mnist.ts";

export interface Batch {
  /** batch × C × H × W, the network's input layout. */
  images: Float32Array;
  labels: Int32Array;
}

export interface EpochRequest {
  epoch: number;
  /** First step to produce (a run resumed mid-epoch starts there). */
  from: number;
  steps: number;
  batch: number;
  seed: number;
  /** The run's streams; Fashion-MNIST draws its augmentation from `augment`. */
  rng: RngStreams;
}

/** How a held-out image becomes network inputs: one central crop, or the paper's ten crops. */
export type EvalViews = "centre" | "ten-crop";

export interface Evaluation {
  top1: number;
  top5: number;
  count: number;
}

/** Runs the network in inference mode on one full batch of inputs and returns its logits. */
export type Classify = (images: Float32Array) => Promise<Float32Array>;

export interface TrainingData {
  /** For messages: "Fashion-MNIST" or "image folder /data/imagenet". */
  readonly description: string;
  /** Class names by label. */
  readonly classes: readonly string[];
  readonly trainCount: number;
  readonly valCount: number;
  /**
   * What a `ten-crop` evaluation averages, for labels: "ten crops", or "2 views" for Fashion-MNIST
   * trained without crops (the image and its mirror: the ten views less the repeats).
   */
  readonly viewsName: string;
  /** The evaluations a finished run reports, e.g. the test set, or val with centre and ten crops. */
  readonly finalEvaluations: readonly { label: string; set: "val" | "test"; views: EvalViews }[];
  batches(request: EpochRequest): AsyncIterable<Batch>;
  evaluate(classify: Classify, set: "val" | "test", batch: number, views?: EvalViews): Promise<Evaluation>;
  /**
   * What, beyond the data section, fixes the examples a resumed run sees (an image folder's file
   * list); part of the checkpoints' training identity. Undefined for a dataset that cannot change.
   */
  readonly identity?: string;
  /** Writes what infer.ts needs besides the weights (an image folder's mean image), into `dir`. */
  writeInferenceFiles?(dir: string): void;
  /** Lines for the end of the run: files skipped or converted, with counts and the first few named. */
  report(): string[];
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The network's name, for messages. */
  network: string;
  /** The folder to read (the runner's --data, else the section's `dir`, else the dataset's default). */
  dir?: string;
  /** The network's input [C, H, W] and class count; a dataset that cannot feed them throws. */
  input: readonly number[];
  classes: number;
  /** Train on the first `limit` training examples only (0: all). */
  limit: number;
  seed: number;
  /** Loader threads and batches decoded ahead (image folders). */
  workers?: number;
  prefetch?: number;
}

export class DataUsageError extends Error {}

export async function openTrainingData(spec: DataSpec, opts: OpenOptions): Promise<TrainingData> {
  if (spec.dataset === "image_folder") {
    const { openImageFolderData } = await import("./images/dataset.ts");
    return openImageFolderData(spec, opts);
  }
  return openFashionMnist(spec, opts);
}

/** The epoch's example order: a permutation from (seed, epoch) alone, the same after a resume. */
export function epochOrder(seed: number, epoch: number, indices: Uint32Array): Uint32Array {
  return Rng.derive(seed, `order/${epoch}`).shuffle(indices.slice());
}

/**
 * Items [start, start + batch) of `items`, a final partial chunk padded by repeating its last item,
 * so every batch the network runs is full (the padding's results are not counted).
 */
export function paddedChunk<T>(items: ArrayLike<T>, start: number, batch: number): T[] {
  const count = Math.min(batch, items.length - start);
  return Array.from({ length: batch }, (_, i) => items[start + Math.min(i, count - 1)]);
}

function openFashionMnist(
  spec: Extract<DataSpec, { dataset: "fashion_mnist" }>,
  opts: OpenOptions,
): TrainingData {
  const data = loadFashionMnist(opts.dir ?? spec.dir ?? DEFAULT_FASHION_MNIST_DIR);
  const [channels, height, width] = opts.input;
  if (channels !== 1 || height !== data.train.rows || width !== data.train.cols) {
    throw new DataUsageError(
      `${opts.network} takes [${opts.input.join(", ")}] inputs but Fashion-MNIST images are [1, ${data.train.rows}, ${data.train.cols}]; ` +
        "compile a network whose input is f32[1, 28, 28] (e.g. models/alexnet-fmnist.net)",
    );
  }
  if (opts.classes !== FASHION_MNIST_CLASSES.length)
    throw new DataUsageError(`${opts.network} has ${opts.classes} classes; Fashion-MNIST has 10`);
  // The validation set is the last `validation` training examples, the same in every run.
  const trainCount = Math.min(data.train.count - spec.validation, opts.limit || Infinity);
  const trainIndices = Uint32Array.from({ length: trainCount }, (_, i) => i);
  const valIndices = Uint32Array.from(
    { length: spec.validation },
    (_, i) => data.train.count - spec.validation + i,
  );
  const norm = { mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD };
  const pixels = data.train.rows * data.train.cols;

  async function* batches(r: EpochRequest): AsyncGenerator<Batch> {
    const order = epochOrder(r.seed, r.epoch, trainIndices);
    const augment = r.rng.get("augment");
    for (let step = r.from; step < r.steps; step++) {
      const indices = order.subarray(step * r.batch, (step + 1) * r.batch);
      const images = new Float32Array(r.batch * pixels);
      const labels = new Int32Array(r.batch);
      const choices =
        spec.crop > 0 || spec.flip ? drawAugmentation(augment, r.batch, spec.crop, spec.flip) : undefined;
      toFloatBatch(data.train, indices, images, { ...norm, pad: spec.crop, ...choices });
      for (let i = 0; i < r.batch; i++) labels[i] = data.train.labels[indices[i]];
      yield { images, labels };
    }
  }

  // Ten-crop evaluation cuts the corners and centre of the padded image (and mirrors them when
  // training flips): the crops and reflections the network saw, as the paper's test did.
  const viewsOf = (views: EvalViews) =>
    views === "ten-crop"
      ? testViews(spec.crop, spec.flip)
      : [{ crop: { x: spec.crop, y: spec.crop }, flip: false }];

  async function evaluateSet(
    classify: Classify,
    set: ImageSet,
    indices: Uint32Array,
    batch: number,
    views: EvalViews,
  ): Promise<Evaluation> {
    const cuts = viewsOf(views);
    // One input array per view, refilled for every batch (classify copies them to the device).
    const inputs = cuts.map(() => new Float32Array(batch * pixels));
    const wrong = [0, 0];
    for (let start = 0; start < indices.length; start += batch) {
      const count = Math.min(batch, indices.length - start);
      const chunk = paddedChunk(indices, start, batch);
      cuts.forEach((v, i) =>
        toFloatBatch(set, chunk, inputs[i], { ...norm, pad: spec.crop, crop: v.crop, flip: v.flip }),
      );
      const scores = await averagedScores(classify, inputs, 10);
      const labels = chunk.slice(0, count).map((i) => set.labels[i]);
      const errors = topKErrors(scores.subarray(0, count * 10), labels, 10, [1, 5]);
      wrong[0] += errors.wrong[0];
      wrong[1] += errors.wrong[1];
    }
    const n = Math.max(1, indices.length);
    return { top1: wrong[0] / n, top5: wrong[1] / n, count: indices.length };
  }
  const testIndices = Uint32Array.from({ length: data.test.count }, (_, i) => i);
  const tenCrop = testViews(spec.crop, spec.flip).length;
  const viewsName = tenCrop === 10 ? "ten crops" : tenCrop === 1 ? "1 view" : `${tenCrop} views`;

  return {
    description: "Fashion-MNIST",
    classes: FASHION_MNIST_CLASSES,
    trainCount,
    valCount: valIndices.length,
    viewsName,
    finalEvaluations: [
      { label: "test", set: "test", views: "centre" },
      ...(tenCrop > 1
        ? [
            {
              label: `test (${viewsName})`,
              set: "test" as const,
              views: "ten-crop" as const,
            },
          ]
        : []),
    ],
    batches,
    evaluate: (classify, set, batch, views = "centre") =>
      set === "val"
        ? evaluateSet(classify, data.train, valIndices, batch, views)
        : evaluateSet(classify, data.test, testIndices, batch, views),
    report: () => [],
    close: async () => {},
  };
}
