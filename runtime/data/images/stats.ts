// The training set's statistics at the preprocessed size, computed once and cached next to the data:
// the mean image the paper subtracts (§2), the per-channel mean, and the RGB covariance whose
// eigenvectors and eigenvalues drive its PCA lighting augmentation (§4.1). The same pass decodes
// every val image too, so a file that does not decode is found once, before training, not mid-epoch.
// The pass saves its progress as it goes (stats-partial.ts): a killed pass resumes where it was.
//
// Precision and determinism: pixels are integers, so every sum is kept as an exact integer: per
// pixel position in an f64 (≤ 255 × images, exact below 2^53) and the channel sums and sums of
// products as BigInts (ILSVRC-2012's Σ r·g is about 5·10^15, too near 2^53 for an f64 to stay exact
// on larger sets). The covariance then comes from (M·Σxy − Σx·Σy) / M², computed exactly before one
// rounding, so there is no catastrophic cancellation, and since integer sums do not depend on order,
// the statistics are bit-identical however the concurrent decodes happen to finish.
//
// The covariance is the population covariance over all M = images × size² pixels (÷M, not ÷(M−1)).
// Every returned number is rounded to f32, the precision the cache stores, so a run that computed the
// statistics and a run that read them back see the same values.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DiagnosticError, diag, type Diagnostic } from "../../../compiler/diagnostics.ts";
import { replaceFileAtomically } from "../../durable.ts";
import { ImageDecodeError, decodeFailureAlone, decodeImage } from "./decode.ts";
import { symmetricEigen3 } from "./eigen3.ts";
import {
  defaultStatsCachePath,
  fallbackStatsCachePath,
  fileListHash,
  readCache,
  encodeStats,
} from "./stats-file.ts";
import { partialPath, readPartial, removePartials, writePartial } from "./stats-partial.ts";
import type { Conversion, FolderIndex, ImageStats, SkippedFile } from "./types.ts";

type Vec3 = [number, number, number];

/** Running sums over training images; plain data, so workers can fill their own and merge them. */
export interface StatsAccumulator {
  size: number;
  count: number;
  /** 3 × size × size, CHW: per position and channel, the sum over images (exact integers). */
  pixelSum: Float64Array;
  /** Σr, Σg, Σb over all pixels. */
  channelSum: [bigint, bigint, bigint];
  /** Σrr, Σrg, Σrb, Σgg, Σgb, Σbb over all pixels. */
  productSum: bigint[];
}

/** The channel pairs of `productSum`, in order. */
const PRODUCT_ROW = [0, 0, 0, 1, 1, 2];
const PRODUCT_COL = [0, 1, 2, 1, 2, 2];

export function createStatsAccumulator(size: number): StatsAccumulator {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer ≥ 1, got ${size}`);
  return {
    size,
    count: 0,
    pixelSum: new Float64Array(3 * size * size),
    channelSum: [0n, 0n, 0n],
    productSum: [0n, 0n, 0n, 0n, 0n, 0n],
  };
}

/** Adds one decoded image (size × size × 3 bytes, HWC) to `acc`. */
export function accumulateImage(acc: StatsAccumulator, pixels: Uint8Array): void {
  const plane = acc.size * acc.size;
  if (pixels.length !== 3 * plane)
    throw new RangeError(`an image of size ${acc.size} has ${3 * plane} bytes, got ${pixels.length}`);
  const sum = acc.pixelSum;
  // Per image every sum is an integer below 2^53 (65536 pixels × 255² ≈ 4·10^9), so numbers are exact.
  const s = new Float64Array(9); // Σr Σg Σb Σrr Σrg Σrb Σgg Σgb Σbb
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    const r = pixels[i];
    const g = pixels[i + 1];
    const b = pixels[i + 2];
    sum[p] += r;
    sum[plane + p] += g;
    sum[2 * plane + p] += b;
    s[0] += r;
    s[1] += g;
    s[2] += b;
    s[3] += r * r;
    s[4] += r * g;
    s[5] += r * b;
    s[6] += g * g;
    s[7] += g * b;
    s[8] += b * b;
  }
  for (let c = 0; c < 3; c++) acc.channelSum[c] += BigInt(s[c]);
  for (let k = 0; k < 6; k++) acc.productSum[k] += BigInt(s[3 + k]);
  acc.count++;
}

/** Adds `from`'s sums into `into` (same size). */
export function mergeStatsAccumulators(into: StatsAccumulator, from: StatsAccumulator): void {
  if (into.size !== from.size) throw new RangeError(`cannot merge sizes ${into.size} and ${from.size}`);
  for (let i = 0; i < into.pixelSum.length; i++) into.pixelSum[i] += from.pixelSum[i];
  for (let c = 0; c < 3; c++) into.channelSum[c] += from.channelSum[c];
  for (let k = 0; k < 6; k++) into.productSum[k] += from.productSum[k];
  into.count += from.count;
}

/** The statistics of the accumulated images; needs at least one. */
export function finishStats(
  acc: StatsAccumulator,
  extras: {
    fileListHash: string;
    unreadable?: SkippedFile[];
    conversions?: Partial<Record<Conversion, number>>;
  },
): ImageStats {
  if (acc.count === 0) throw new RangeError("statistics need at least one image");
  const f = Math.fround;
  const meanImage = new Float32Array(acc.pixelSum.length);
  for (let i = 0; i < meanImage.length; i++) meanImage[i] = acc.pixelSum[i] / acc.count;
  const m = BigInt(acc.count) * BigInt(acc.size * acc.size);
  const mm = Number(m) * Number(m);
  const s = acc.channelSum;
  const covariance = new Array<number>(9);
  for (let k = 0; k < 6; k++) {
    const [i, j] = [PRODUCT_ROW[k], PRODUCT_COL[k]];
    const c = Number(m * acc.productSum[k] - s[i] * s[j]) / mm;
    covariance[3 * i + j] = covariance[3 * j + i] = c;
  }
  const { values, vectors } = symmetricEigen3(covariance);
  return {
    size: acc.size,
    count: acc.count,
    fileListHash: extras.fileListHash,
    meanImage,
    channelMean: s.map((x) => f(Number(x) / Number(m))) as Vec3,
    covariance: covariance.map(f),
    eigenvalues: values.map(f) as Vec3,
    eigenvectors: vectors.map((v) => v.map(f) as Vec3),
    unreadable: extras.unreadable ?? [],
    conversions: extras.conversions ?? {},
  };
}

export {
  defaultStatsCachePath,
  encodeStats,
  fallbackStatsCachePath,
  fileListHash,
  readStatsFile,
} from "./stats-file.ts";

// ---- the pass -------------------------------------------------------------------------------------

export interface StatsOptions {
  size: number;
  /** Default: defaultStatsCachePath(root, size); the user's cache when that cannot be written. */
  cacheFile?: string;
  /** Called after each decoded file (train and val), and once with 0 at the start. */
  progress?: (done: number, total: number) => void;
  /** Decodes in flight; default twice the cores (libuv's threadpool bounds the real parallelism). */
  concurrency?: number;
  /**
   * How often the pass saves its progress next to the cache (`<cache>.partial`), so a killed pass
   * resumes where it was; default every 60 s. Checked after every `chunk` files (default 512).
   */
  saveEveryMs?: number;
  chunk?: number;
}

export interface StatsResult {
  stats: ImageStats;
  cached: boolean;
  /** Where the statistics were read from or written to; "" when neither place could be written. */
  cachePath: string;
  /** AX4106: a damaged cache recomputed, the fallback cache used, or no cache written, and why. */
  warnings: Diagnostic[];
}

/** Reads the statistics from the cache, or computes them over the folder and caches them. */
export async function loadOrComputeStats(index: FolderIndex, opts: StatsOptions): Promise<StatsResult> {
  const { size } = opts;
  const root = `\`${index.root}\``;
  const warnings: Diagnostic[] = [];
  const hash = fileListHash(index, size);
  const primary = path.resolve(opts.cacheFile ?? defaultStatsCachePath(index.root, size));
  const fallback = fallbackStatsCachePath(hash);
  for (const file of [primary, fallback]) {
    const found = readCache(file, hash, size);
    if (typeof found !== "string") return { stats: found, cached: true, cachePath: file, warnings };
    if (found !== "absent" && found !== "stale") {
      const problem = `the statistics cache \`${file}\` cannot be used (${found}); computing the statistics again`;
      warnings.push(diag("AX4106", { root, problem }, undefined));
    }
  }

  const partials = [partialPath(primary), partialPath(fallback)];
  const stats = await computeStats(index, size, hash, opts, partials);
  const bytes = encodeStats(stats);
  removePartials(partials);
  try {
    replaceFileAtomically(primary, bytes);
    return { stats, cached: false, cachePath: primary, warnings };
  } catch (first) {
    const why = ioReason(first);
    try {
      fs.mkdirSync(path.dirname(fallback), { recursive: true });
      replaceFileAtomically(fallback, bytes);
      const problem = `cannot write the statistics cache \`${primary}\` (${why}); cached them in \`${fallback}\` instead`;
      warnings.push(diag("AX4106", { root, problem }, undefined));
      return { stats, cached: false, cachePath: fallback, warnings };
    } catch (second) {
      const problem = `cannot write the statistics cache to \`${primary}\` (${why}) or \`${fallback}\` (${ioReason(second)}); they will be computed again next time`;
      warnings.push(diag("AX4106", { root, problem }, undefined));
      return { stats, cached: false, cachePath: "", warnings };
    }
  }
}

async function computeStats(
  index: FolderIndex,
  size: number,
  hash: string,
  opts: StatsOptions,
  partials: readonly string[],
) {
  const jobs = [
    ...index.train.map((e) => ({ path: e.path, train: true })),
    ...index.val.map((e) => ({ path: e.path, train: false })),
  ];
  const total = jobs.length;
  // A pass killed earlier over the same files resumes at its watermark.
  const resumed = partials.map((f) => readPartial(f, hash, size)).find((p) => p !== undefined);
  const acc = resumed?.acc ?? createStatsAccumulator(size);
  const unreadable: SkippedFile[] = resumed?.unreadable ?? [];
  const conversions: Partial<Record<Conversion, number>> = resumed?.conversions ?? {};
  const concurrency = Math.max(1, Math.min(total, opts.concurrency ?? 2 * os.availableParallelism()));
  const chunk = Math.max(1, opts.chunk ?? 512);
  const saveEveryMs = opts.saveEveryMs ?? 60_000;
  let next = resumed?.done ?? 0;
  let done = next;
  let lastSave = performance.now();
  let saveTo = [...partials];
  opts.progress?.(done, total);
  // Each runner takes the next file of the chunk when its decode finishes, so `concurrency` decodes
  // stay in flight; between chunks every earlier file is done, which is when progress can be saved.
  const runner = async (end: number): Promise<void> => {
    while (next < end) {
      const job = jobs[next++];
      try {
        const image = await decodeImage(path.join(index.root, job.path), size);
        for (const c of image.conversions) conversions[c] = (conversions[c] ?? 0) + 1;
        if (job.train) accumulateImage(acc, image.pixels);
      } catch (error) {
        if (!(error instanceof ImageDecodeError)) throw error;
        unreadable.push({ path: job.path, reason: "unreadable", detail: error.reason });
      }
      opts.progress?.(++done, total);
    }
  };
  while (next < total) {
    const end = Math.min(total, next + chunk);
    await Promise.all(Array.from({ length: concurrency }, () => runner(end)));
    if (end < total && performance.now() - lastSave >= saveEveryMs) {
      const snapshot = { hash, size, done: end, acc, unreadable, conversions };
      // The first place that takes it; none (both read-only) means no resume, not an error.
      const target = saveTo.find((f) => writePartial(f, snapshot));
      saveTo = target === undefined ? [] : [target];
      lastSave = performance.now();
    }
  }
  unreadable.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // The cache records each file's own message, not what concurrent decodes left in libvips' buffer.
  for (const f of unreadable)
    f.detail = (await decodeFailureAlone(path.join(index.root, f.path), size)) ?? f.detail;

  if (acc.count === 0) {
    const shown = unreadable.slice(0, 5).map((f) => `${f.path}: ${f.detail}`);
    throw new DiagnosticError(
      diag(
        "AX4105",
        { root: `\`${index.root}\``, problem: `none of its ${index.train.length} training images decodes` },
        undefined,
        { notes: shown, help: "check that train/ holds JPEG or PNG photos (and that alexc may read them)" },
      ),
    );
  }
  return finishStats(acc, { fileListHash: hash, unreadable, conversions: sortedKeys(conversions) });
}

/** Keys in a fixed order, so the cached JSON does not depend on which decode finished first. */
function sortedKeys(counts: Partial<Record<Conversion, number>>): Partial<Record<Conversion, number>> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function ioReason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
