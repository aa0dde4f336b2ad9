import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../../../compiler/diagnostics.ts";
import { scanImageFolder } from "../../../../runtime/data/images/folder.ts";
import {
  accumulateImage,
  createStatsAccumulator,
  defaultStatsCachePath,
  fallbackStatsCachePath,
  fileListHash,
  finishStats,
  loadOrComputeStats,
  mergeStatsAccumulators,
  readStatsFile,
} from "../../../../runtime/data/images/stats.ts";
import {
  emptyFile,
  grayscale,
  makeImageFolder,
  pattern,
  solid,
  truncatedJpeg,
  TRUNCATED_JPEG,
  type FileSpec,
  type Rgb,
} from "../../../helpers/image-folder.ts";

function expectClose(actual: number[], expected: number[], digits = 9): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a, `element ${i}`).toBeCloseTo(expected[i], digits));
}

// ---- accumulation ----------------------------------------------------------------------------------

/** A size × size HWC image whose pixel (x, y) is colour(x, y). */
function image(size: number, colour: (x: number, y: number) => Rgb): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) out.set(colour(x, y), (y * size + x) * 3);
  return out;
}

describe("accumulating statistics in memory", () => {
  it("merging per-worker accumulators equals one accumulator; order does not change a bit", () => {
    const images = Array.from({ length: 9 }, (_, k) =>
      image(5, (x, y) => [(x * 37 + k * 11) % 256, (y * 53 + k) % 256, (x * y * k) % 256]),
    );
    const one = createStatsAccumulator(5);
    for (const im of images) accumulateImage(one, im);
    const a = createStatsAccumulator(5);
    const b = createStatsAccumulator(5);
    images.forEach((im, k) => accumulateImage(k % 2 === 0 ? a : b, im));
    mergeStatsAccumulators(b, a);
    const reversed = createStatsAccumulator(5);
    for (const im of [...images].reverse()) accumulateImage(reversed, im);
    const s1 = finishStats(one, { fileListHash: "h" });
    expect(finishStats(b, { fileListHash: "h" })).toEqual(s1);
    expect(finishStats(reversed, { fileListHash: "h" })).toEqual(s1);
  });

  it("stays exact where f64 moments cancel: 2^40 pixels of 255 and one of 254", () => {
    // 2^24 images of 256² (13 × ImageNet): the variance is exactly (M − 1)/M² with M = 2^40, while
    // f64 sums would hold Σx² ≈ 7·10^16 to the nearest 16 and E[x²] − E[x]² would come out 0.
    const size = 256;
    const n = 2 ** 24;
    const white = new Uint8Array(size * size * 3).fill(255);
    const rest = createStatsAccumulator(size);
    accumulateImage(rest, white);
    // The sums of n − 1 identical images are n − 1 times one image's sums.
    for (let i = 0; i < rest.pixelSum.length; i++) rest.pixelSum[i] *= n - 1;
    rest.channelSum = rest.channelSum.map((s) => s * BigInt(n - 1)) as typeof rest.channelSum;
    rest.productSum = rest.productSum.map((s) => s * BigInt(n - 1));
    rest.count = n - 1;
    const acc = createStatsAccumulator(size);
    accumulateImage(acc, white.slice().fill(254, 0, 3));
    mergeStatsAccumulators(acc, rest);
    const m = 2 ** 40;
    const variance = (m - 1) / m ** 2;
    const naive = (65025 * m - 509) / m - ((255 * m - 1) / m) ** 2;
    expect(naive).toBe(0);
    const stats = finishStats(acc, { fileListHash: "h" });
    expect(stats.count).toBe(n);
    expect(stats.covariance).toEqual(new Array(9).fill(Math.fround(variance)));
    expect(stats.channelMean).toEqual([
      Math.fround(255 - 1 / m),
      Math.fround(255 - 1 / m),
      Math.fround(255 - 1 / m),
    ]);
  });

  it("needs at least one image, and images of its size", () => {
    const acc = createStatsAccumulator(2);
    expect(() => finishStats(acc, { fileListHash: "h" })).toThrow(/at least one image/);
    expect(() => accumulateImage(acc, new Uint8Array(11))).toThrow(/has 12 bytes, got 11/);
  });
});

// ---- the statistics pass over a folder --------------------------------------------------------------

let tmp: string;
let serial = 0;
const savedXdg = process.env.XDG_CACHE_HOME;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-stats-"));
  process.env.XDG_CACHE_HOME = path.join(tmp, "xdg-cache");
});
afterEach(() => {
  for (const dir of fs.readdirSync(tmp)) fs.chmodSync(path.join(tmp, dir), 0o755);
});
afterAll(() => {
  if (savedXdg === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedXdg;
  fs.rmSync(tmp, { recursive: true, force: true });
});
const folder = (spec: Record<string, FileSpec>) => makeImageFolder(path.join(tmp, `f${++serial}`), spec);

const D: Rgb = [200, 100, 60];
/**
 * Three 4 × 4 PNGs decoded at size 4 (no resampling): A all black, B all D, C D on its left half.
 * By hand: 24 pixels are D and 24 black, so the channel mean is D/2 = (100, 50, 30) and the
 * covariance is ¼ D Dᵀ: rank one, eigenvalue ¼|D|² = 13400 along D/|D|. The mean image is 2D/3 on
 * the left half (x < 2) and D/3 on the right.
 */
const handSpec = (): Record<string, FileSpec> => ({
  "train/a/black.png": solid(4, 4, [0, 0, 0], "png"),
  "train/a/full.png": solid(4, 4, D, "png"),
  "train/b/half.png": pattern(4, 4, (x) => (x < 2 ? D : [0, 0, 0]), "png"),
  "train/b/zero.png": emptyFile(),
  "val/a/gray.png": grayscale(4, 4, 77, "png"),
  "val/b/cut.JPEG": truncatedJpeg(),
});

describe("loadOrComputeStats", () => {
  it("matches the hand computation on three known images; lists every file that does not decode", async () => {
    const root = await folder(handSpec());
    const index = scanImageFolder(root);
    const calls: [number, number][] = [];
    const { stats, cached, cachePath, warnings } = await loadOrComputeStats(index, {
      size: 4,
      progress: (done, total) => calls.push([done, total]),
    });
    expect([cached, cachePath, warnings]).toEqual([false, defaultStatsCachePath(root, 4), []]);
    expect(stats.size).toBe(4);
    expect(stats.count).toBe(3);
    expect(stats.channelMean).toEqual([100, 50, 30]);
    expect(stats.covariance).toEqual([10000, 5000, 3000, 5000, 2500, 1500, 3000, 1500, 900]);
    expectClose(stats.eigenvalues, [13400, 0, 0], 3);
    const norm = Math.hypot(...D);
    expectClose(
      stats.eigenvectors[0],
      D.map((c) => c / norm),
      6,
    );
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 4; x++) {
          const expected = (D[c] * (x < 2 ? 2 : 1)) / 3;
          expect(stats.meanImage[c * 16 + y * 4 + x]).toBeCloseTo(expected, 4);
        }
      }
    }
    expect(stats.unreadable).toEqual([
      { path: "train/b/zero.png", reason: "unreadable", detail: "is empty (0 bytes)" },
      {
        path: "val/b/cut.JPEG",
        reason: "unreadable",
        detail: expect.stringMatching(TRUNCATED_JPEG),
      },
    ]);
    // Val images are decoded (and counted) but not averaged: the gray one would change the mean.
    expect(stats.conversions).toEqual({ grayscale: 1 });
    expect(stats.fileListHash).toBe(fileListHash(index, 4));
    expect(calls[0]).toEqual([0, 6]);
    expect(calls.at(-1)).toEqual([6, 6]);
    expect(calls.map(([done]) => done)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("reads the cache next to the data the second time, with identical numbers", async () => {
    const root = await folder(handSpec());
    const index = scanImageFolder(root);
    const first = await loadOrComputeStats(index, { size: 4, concurrency: 1 });
    const second = await loadOrComputeStats(index, { size: 4 });
    expect([first.cached, second.cached]).toEqual([false, true]);
    expect(second.cachePath).toBe(path.join(root, ".alexc-stats-4.safetensors"));
    expect(second.stats).toEqual(first.stats);
    // Another size is another cache.
    expect((await loadOrComputeStats(index, { size: 2 })).cached).toBe(false);
  });

  it("readStatsFile reads a copied cache whatever its hash, and refuses a damaged one or another size", async () => {
    const root = await folder(handSpec());
    const { stats, cachePath } = await loadOrComputeStats(scanImageFolder(root), { size: 4 });
    const copy = path.join(tmp, "copied-stats.safetensors");
    fs.copyFileSync(cachePath, copy);
    expect(readStatsFile(copy, 4)).toEqual(stats);
    const refusal = (size: number) => {
      const error = (() => {
        try {
          readStatsFile(copy, size);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(DiagnosticError);
      const [d] = (error as DiagnosticError).diagnostics;
      expect(d.code).toBe("AX4006");
      return d.message;
    };
    expect(refusal(8)).toBe(`input file \`${copy}\`: holds statistics at size 4, not 8`);
    fs.writeFileSync(copy, "garbage");
    expect(refusal(4)).toMatch(/^input file .*copied-stats.safetensors/);
  });

  it("the file-list hash changes when a file is added, removed or rewritten, and with the size", async () => {
    const root = await folder({
      "train/a/x.png": solid(4, 4, [1, 2, 3], "png"),
      "val/a/y.png": solid(4, 4, [1, 2, 3], "png"),
    });
    const hash = () => fileListHash(scanImageFolder(root), 4);
    const h0 = hash();
    expect(hash()).toBe(h0);
    expect(fileListHash(scanImageFolder(root), 8)).not.toBe(h0);
    fs.writeFileSync(path.join(root, "train/a/z.png"), fs.readFileSync(path.join(root, "train/a/x.png")));
    const added = hash();
    expect(added).not.toBe(h0);
    fs.rmSync(path.join(root, "train/a/z.png"));
    expect(hash()).toBe(h0);
    // Same bytes, new mtime.
    const y = path.join(root, "val/a/y.png");
    fs.utimesSync(y, new Date(2001, 1, 1), new Date(2001, 1, 1));
    const touched = hash();
    expect(touched).not.toBe(h0);
    // Same mtime, new size.
    fs.appendFileSync(y, "x");
    fs.utimesSync(y, new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(hash()).not.toBe(touched);
  });

  it("a changed folder invalidates the cache", async () => {
    const root = await folder(handSpec());
    await loadOrComputeStats(scanImageFolder(root), { size: 4 });
    fs.copyFileSync(path.join(root, "train/a/full.png"), path.join(root, "train/a/full2.png"));
    const again = await loadOrComputeStats(scanImageFolder(root), { size: 4 });
    expect(again.cached).toBe(false);
    expect(again.stats.count).toBe(4);
  });

  it("a damaged cache (cut short, or not safetensors) is recomputed with a warning, never trusted", async () => {
    const root = await folder(handSpec());
    const index = scanImageFolder(root);
    const { stats, cachePath } = await loadOrComputeStats(index, { size: 4 });
    const good = fs.readFileSync(cachePath);
    for (const damage of [good.subarray(0, good.length - 10), Buffer.from("not a safetensors file at all")]) {
      fs.writeFileSync(cachePath, damage);
      const result = await loadOrComputeStats(index, { size: 4 });
      expect(result.cached).toBe(false);
      expect(result.stats).toEqual(stats);
      expect(result.warnings.map((w) => w.code)).toEqual(["AX4106"]);
      expect(result.warnings[0].message).toMatch(
        /statistics cache .* cannot be used \(input file .*\); computing the statistics again/,
      );
      expect(fs.readFileSync(cachePath).equals(good)).toBe(true);
    }
  });

  it("when the cache next to the data cannot be written, it goes to $XDG_CACHE_HOME/alexc/datasets, and is read from there", async () => {
    const root = await folder(handSpec());
    const index = scanImageFolder(root);
    // A folder where the cache file should be: no user, root included, can write that file.
    fs.mkdirSync(path.join(defaultStatsCachePath(root, 4), "blocker"), { recursive: true });
    const first = await loadOrComputeStats(index, { size: 4 });
    const fallback = fallbackStatsCachePath(first.stats.fileListHash);
    expect(fallback).toBe(
      path.join(tmp, "xdg-cache", "alexc", "datasets", `${first.stats.fileListHash}.safetensors`),
    );
    expect([first.cached, first.cachePath]).toEqual([false, fallback]);
    expect(first.warnings.map((w) => w.message).join("\n")).toMatch(
      /cannot write the statistics cache .* cached them in .*xdg-cache/,
    );
    const second = await loadOrComputeStats(index, { size: 4 });
    expect([second.cached, second.cachePath]).toEqual([true, fallback]);
  });

  it.skipIf(process.getuid?.() === 0)("a read-only data folder falls back to the user's cache", async () => {
    const root = await folder(handSpec());
    const index = scanImageFolder(root);
    fs.chmodSync(root, 0o555);
    const result = await loadOrComputeStats(index, { size: 4 });
    expect(result.cachePath).toBe(fallbackStatsCachePath(result.stats.fileListHash));
    expect(result.warnings[0].message).toMatch(/EACCES/);
  });

  it("a folder where no training image decodes is an AX4105 error listing them", async () => {
    const root = await folder({ "train/a/zero.png": emptyFile(), "train/a/cut.JPEG": truncatedJpeg() });
    const error = await loadOrComputeStats(scanImageFolder(root), { size: 4 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiagnosticError);
    const [d] = (error as DiagnosticError).diagnostics;
    expect(d.code).toBe("AX4105");
    expect(d.message).toMatch(/none of its 2 training images decodes/);
    expect(d.notes).toEqual([
      expect.stringMatching(new RegExp(`^train/a/cut.JPEG: .*(${TRUNCATED_JPEG.source})`)),
      "train/a/zero.png: is empty (0 bytes)",
    ]);
  });
});
