// An ImageNet-style folder as the training runner's dataset (runtime/data/source.ts): the scan,
// the cached statistics pass (which also finds every file that does not decode), the paper's
// augmentation drawn per (seed, epoch, image), batches decoded ahead by the worker loader, and the
// paper's evaluation — top-1/top-5 with the central crop, or the ten-crop average of softmax outputs.
//
// A folder without val/ gives up `validation` training images to validation: a fixed choice (seed 0,
// not the run's seed) so that runs with different seeds are validated on the same images. They
// remain in the mean image and the PCA statistics, which are computed over train/ before the choice
// (the choice is made among the files that decode); with thousands of images the leak is negligible.
import * as path from "node:path";
import type { ImageFolderData } from "../../../compiler/check/recipe.ts";
import { replaceFileAtomically } from "../../durable.ts";
import { renderDiagnostic } from "../../../compiler/render.ts";
import { averagedScores, topKErrors } from "../../train/metrics.ts";
import { EpochProgress } from "../../train/progress.ts";
import { Rng } from "../../train/rng.ts";
import {
  DataUsageError,
  epochOrder,
  type Batch,
  type Classify,
  type EpochRequest,
  type EvalViews,
  type Evaluation,
  type OpenOptions,
  type TrainingData,
  paddedChunk,
} from "../source.ts";
import { centreView, tenCropViews, trainAugmentation } from "./augment.ts";
import { folderWarnings, scanImageFolder } from "./folder.ts";
import { ImageLoader, type FailedSlot } from "./loader.ts";
import { encodeStats, loadOrComputeStats } from "./stats.ts";
import type { Conversion, ExampleRequest, ImageEntry } from "./types.ts";

/** Where the statistics used for training are copied, so infer.ts needs no dataset. */
export const INFERENCE_STATS_FILE = "data-stats.safetensors";

/** What the `ten-crop` evaluation averages here: always the paper's ten distinct crops. */
const TEN_CROPS = "ten crops";

export async function openImageFolderData(spec: ImageFolderData, opts: OpenOptions): Promise<TrainingData> {
  const dir = opts.dir || spec.dir;
  if (!dir)
    throw new DataUsageError("no image folder given: pass --data DIR or set `dir` in the data section");
  const index = scanImageFolder(dir, spec.valLabels ? { valLabels: spec.valLabels } : {});
  const [channels, crop, width] = opts.input;
  if (channels !== 3 || crop !== width || crop > spec.resize)
    throw new DataUsageError(
      `${opts.network} takes [${opts.input.join(", ")}] inputs; an image folder with resize ${spec.resize} gives RGB squares of at most ${spec.resize}`,
    );
  if (index.classes.length !== opts.classes)
    throw new DataUsageError(
      `${opts.network} has ${opts.classes} classes but ${path.join(index.root, "train")} has ${index.classes.length} class folders; ` +
        `set \`classes: ${index.classes.length}\` in the network, or point --data at a folder with ${opts.classes}`,
    );

  let bar: EpochProgress | undefined;
  const { stats, cached, cachePath, warnings } = await loadOrComputeStats(index, {
    size: spec.resize,
    progress: (done, total) => {
      if (!bar) {
        if (done > 0) console.error(`statistics: resuming an interrupted pass at ${done} of ${total} files`);
        bar = new EpochProgress({
          epoch: 1,
          epochs: 1,
          label: "statistics",
          steps: total,
          startStep: done,
          batchSize: 1,
        });
      }
      bar.update(done, NaN);
    },
  });
  if (!cached) bar?.finish(`cached in ${cachePath || "(nowhere: not writable)"}`);
  else console.error(`statistics: ${stats.count} training images, read from ${cachePath}`);
  for (const w of warnings) console.error(renderDiagnostic(w, index.root, ""));

  const unreadable = new Set(stats.unreadable.map((f) => f.path));
  let train = index.train.filter((e) => !unreadable.has(e.path));
  let val = index.val.filter((e) => !unreadable.has(e.path));
  if (index.valSource === "none") {
    if (spec.validation >= train.length)
      throw new DataUsageError(
        `${index.root} has no val/ and ${train.length} training images: too few to hold out ${spec.validation} (data section \`validation\`)`,
      );
    const order = Rng.derive(0, "holdout").permutation(train.length);
    const held = new Set(order.subarray(0, spec.validation));
    val = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
  }
  if (opts.limit > 0 && opts.limit < train.length) {
    const keep = Rng.derive(0, "limit").permutation(train.length).subarray(0, opts.limit).sort();
    train = Array.from(keep, (i) => train[i]);
  }

  const mean = { mode: spec.mean, image: stats.meanImage, channel: stats.channelMean };
  const loader = await ImageLoader.open({
    root: index.root,
    size: spec.resize,
    crop,
    mean,
    workers: opts.workers ?? 2,
    // A worker prepares one whole batch at a time: fewer batches ahead than workers idles some.
    prefetch: opts.prefetch ?? Math.max(3, opts.workers ?? 2),
  });
  const failures: FailedSlot[] = [];
  const trainIndices = Uint32Array.from({ length: train.length }, (_, i) => i);
  const augment = {
    size: spec.resize,
    crop,
    flip: spec.flip,
    lighting: spec.lighting,
    eigenvalues: stats.eigenvalues,
    eigenvectors: stats.eigenvectors,
  };

  const example = (r: EpochRequest, i: number): ExampleRequest => ({
    ...train[i],
    ...trainAugmentation(r.seed, r.epoch, i, augment),
  });

  function* requests(r: EpochRequest, order: Uint32Array): Generator<ExampleRequest[]> {
    for (let step = r.from; step < r.steps; step++) {
      yield Array.from(order.subarray(step * r.batch, (step + 1) * r.batch), (i) => example(r, i));
    }
  }

  async function* batches(r: EpochRequest): AsyncGenerator<Batch> {
    const order = epochOrder(r.seed, r.epoch, trainIndices);
    let step = r.from;
    for await (let b of loader.train(requests(r, order))) {
      failures.push(...b.failed);
      // No file of the batch decoded (they changed after the statistics pass): take the batches
      // that follow in the epoch's order instead, a deterministic choice, so the step still runs.
      for (let shift = 1; b.failed.length === r.batch && b.failed[0].from < 0; shift++) {
        if (shift > 3)
          throw new DataUsageError(
            `no image of training step ${step + 1}'s batch, nor of the next three, could be read (${b.failed[0].path}: ${b.failed[0].detail}); the folder changed after the statistics pass: delete ${cachePath} to recompute them`,
          );
        const start = (step + shift) * r.batch;
        const standIn = Array.from({ length: r.batch }, (_, k) =>
          example(r, order[(start + k) % order.length]),
        );
        for await (const again of loader.train([standIn])) b = again;
        failures.push(...b.failed);
      }
      step++;
      yield { images: b.images, labels: b.labels };
    }
  }

  async function evaluate(
    classify: Classify,
    set: "val" | "test",
    batch: number,
    views: EvalViews = "centre",
  ): Promise<Evaluation> {
    if (set === "test")
      throw new DataUsageError("an image folder has no test set; its val/ is the evaluation set");
    const cuts = views === "ten-crop" ? tenCropViews(spec.resize, crop) : [centreView(spec.resize, crop)];
    const chunks: ImageEntry[][] = [];
    for (let start = 0; start < val.length; start += batch) chunks.push(paddedChunk(val, start, batch));
    let counted = 0;
    const wrong = [0, 0];
    let start = 0;
    // Ten views of a batch of 128 are 770 MB: prepare one such batch ahead, not several.
    for await (const b of loader.evaluate(chunks, cuts, cuts.length > 1 ? 1 : undefined)) {
      const count = Math.min(batch, val.length - start);
      start += batch;
      // Padding repeats the chunk's last file: report each failed file once.
      failures.push(...b.failed.filter((f) => f.slot < count));
      const scores = await averagedScores(classify, b.views, opts.classes);
      // A slot whose file failed holds another image's input: leave it out of the count.
      const skip = new Set(b.failed.map((f) => f.slot));
      const rows: number[] = [];
      for (let i = 0; i < count; i++) if (!skip.has(i)) rows.push(i);
      const picked = new Float32Array(rows.length * opts.classes);
      rows.forEach((row, j) =>
        picked.set(scores.subarray(row * opts.classes, (row + 1) * opts.classes), j * opts.classes),
      );
      const errors = topKErrors(
        picked,
        rows.map((row) => b.labels[row]),
        opts.classes,
        [1, 5],
      );
      wrong[0] += errors.wrong[0];
      wrong[1] += errors.wrong[1];
      counted += rows.length;
    }
    const n = Math.max(1, counted);
    return { top1: wrong[0] / n, top5: wrong[1] / n, count: counted };
  }

  function report(): string[] {
    // Flat lines under the runner's "data:" heading; the root is named once, in the description.
    const lines = folderWarnings(index, stats.unreadable).flatMap((d) => [
      d.message.replace(/^image folder `[^`]*`: /, ""),
      ...d.notes.map((n) => `  ${n}`),
      ...(d.help ? [`  help: ${d.help}`] : []),
    ]);
    const conversions = Object.entries(stats.conversions) as [Conversion, number][];
    if (conversions.length > 0)
      lines.push(`converted while decoding: ${conversions.map(([what, n]) => `${n} ${what}`).join(", ")}`);
    if (failures.length > 0) {
      const named = [...new Map(failures.map((f) => [f.path, f])).values()];
      lines.push(
        `${named.length} file(s) failed to load during the run (${failures.length} time(s); changed after the statistics pass): ` +
          "training filled their slots with another image of the batch, evaluation left them out of its counts",
        ...named.slice(0, 5).map((f) => `  ${f.path}: ${f.detail ?? ""}`),
        ...(named.length > 5 ? [`  … and ${named.length - 5} more files`] : []),
      );
    }
    return lines;
  }

  return {
    description: `image folder ${index.root}`,
    classes: index.classes,
    trainCount: train.length,
    valCount: val.length,
    viewsName: TEN_CROPS,
    finalEvaluations: [
      { label: "val (centre crop)", set: "val", views: "centre" },
      { label: `val (${TEN_CROPS})`, set: "val", views: "ten-crop" },
    ],
    batches,
    evaluate,
    report,
    // What a resumed run must see again: the same files (the hash covers paths, sizes and mtimes)
    // and the same training list, since augmentation and order are keyed by the index in it.
    identity: `${stats.fileListHash}/${train.length}/${opts.limit}`,
    writeInferenceFiles(dir: string) {
      replaceFileAtomically(path.join(dir, INFERENCE_STATS_FILE), encodeStats(stats));
    },
    close: () => loader.close(),
  };
}
