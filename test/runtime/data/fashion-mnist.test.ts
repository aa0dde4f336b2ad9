import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../../compiler/diagnostics.ts";
import {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  drawAugmentation,
  loadFashionMnist,
  pixelStats,
  toFloatBatch,
  type ImageSet,
} from "../../../runtime/data/fashion-mnist.ts";
import { Rng } from "../../../runtime/train/rng.ts";

/** An IDX file of unsigned bytes: big-endian magic 0x000008DD, DD big-endian sizes, the data. */
function idx(dims: number[], data: Uint8Array, magic = 0x0800 | dims.length): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** n images whose pixel (r, c) of image i is (i + r·28 + c) mod 256, labels i mod 10. */
function images(n: number): Uint8Array {
  const data = new Uint8Array(n * 784);
  for (let i = 0; i < data.length; i++) data[i] = (Math.floor(i / 784) + (i % 784)) % 256;
  return idx([n, 28, 28], data);
}
function labels(n: number, label = (i: number) => i % 10): Uint8Array {
  return idx(
    [n],
    Uint8Array.from({ length: n }, (_, i) => label(i)),
  );
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-fmnist-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const NAMES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

function writeSet(files: Partial<Record<keyof typeof NAMES, Uint8Array | null>> = {}, gzip = false): void {
  const contents: Record<keyof typeof NAMES, Uint8Array | null> = {
    trainImages: images(12),
    trainLabels: labels(12),
    testImages: images(5),
    testLabels: labels(5),
    ...files,
  };
  for (const [key, bytes] of Object.entries(contents) as [keyof typeof NAMES, Uint8Array | null][]) {
    if (bytes === null) continue;
    const name = NAMES[key] + (gzip ? ".gz" : "");
    fs.writeFileSync(path.join(dir, name), gzip ? zlib.gzipSync(bytes) : bytes);
  }
}

function failure(fn: () => unknown): { message: string; notes: string[]; help: string } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DiagnosticError);
    const d = (error as DiagnosticError).diagnostics[0];
    expect(d.code).toBe("AX4101");
    return { message: d.message, notes: d.notes, help: d.help ?? "" };
  }
  throw new Error("expected a diagnostic");
}

describe("loadFashionMnist on generated IDX files", () => {
  it.each([false, true])("reads plain and gzipped files (gzip: %s)", (gzip) => {
    writeSet({}, gzip);
    const data = loadFashionMnist(dir);
    expect(data.train.count).toBe(12);
    expect(data.test.count).toBe(5);
    expect(data.train.rows).toBe(28);
    expect(data.train.cols).toBe(28);
    expect(data.train.images.length).toBe(12 * 784);
    expect(data.train.images[784 * 3 + 28 * 2 + 5]).toBe((3 + 28 * 2 + 5) % 256);
    expect([...data.test.labels]).toEqual([0, 1, 2, 3, 4]);
    expect(data.classes).toEqual(FASHION_MNIST_CLASSES);
  });

  it("decides on gzip by content, and accepts a mix of plain and .gz files", () => {
    writeSet({ trainImages: null });
    // An already-gunzipped file that kept its .gz name.
    fs.writeFileSync(path.join(dir, "train-images-idx3-ubyte.gz"), images(12));
    expect(loadFashionMnist(dir).train.count).toBe(12);
  });

  it("accepts any consistent count", () => {
    writeSet({ trainImages: images(1), trainLabels: labels(1) });
    expect(loadFashionMnist(dir).train.count).toBe(1);
  });

  it("a missing directory says where it looked and how to get the data", () => {
    const { message, notes, help } = failure(() => loadFashionMnist(path.join(dir, "nope")));
    expect(message).toMatch(/nope`: the data directory does not exist/);
    expect(notes[0]).toContain("looked in");
    expect(help).toContain("npm run setup");
    expect(help).toContain("dataset-fashion-mnist");
    expect(help).toContain("--data DIR");
  });

  it("names every missing file at once", () => {
    writeSet({ trainLabels: null, testImages: null });
    const { message } = failure(() => loadFashionMnist(dir));
    expect(message).toContain("missing `train-labels-idx1-ubyte` (or `train-labels-idx1-ubyte.gz`)");
    expect(message).toContain("`t10k-images-idx3-ubyte`");
  });

  const cases: [string, Partial<Record<keyof typeof NAMES, Uint8Array>>, RegExp][] = [
    [
      "images magic",
      { trainImages: idx([12, 28, 28], new Uint8Array(12 * 784), 0x0801) },
      /train-images.*magic number is 0x00000801, expected 0x00000803/,
    ],
    [
      "labels magic (images given as labels)",
      { testLabels: images(5) },
      /t10k-labels.*magic number is 0x00000803, expected 0x00000801/,
    ],
    [
      "a header cut short",
      { trainLabels: new Uint8Array([0, 0, 8, 1, 0]) },
      /5 bytes long, too short for the 8-byte IDX labels header/,
    ],
    [
      "truncated images",
      { trainImages: images(12).subarray(0, 16 + 784 * 11 + 100) },
      /is truncated: the header declares 12×28×28 = 9408 bytes of images, found 8724/,
    ],
    ["trailing bytes", { testLabels: new Uint8Array([...labels(5), 7]) }, /1 bytes after the 5 labels/],
    [
      "wrong image size",
      { testImages: idx([5, 32, 32], new Uint8Array(5 * 1024)) },
      /images are 32×32 pixels; Fashion-MNIST images are 28×28/,
    ],
    [
      "count mismatch",
      { trainLabels: labels(11) },
      /holds 11 labels but `train-images-idx3-ubyte` holds 12 images/,
    ],
    [
      "label out of range",
      { testLabels: labels(5, (i) => (i === 3 ? 10 : 0)) },
      /label 3 is 10, outside the classes 0–9/,
    ],
    [
      "zero images",
      { testImages: idx([0, 28, 28], new Uint8Array(0)), testLabels: labels(0) },
      /declares 0 images/,
    ],
  ];
  it.each(cases)("rejects %s", (_, files, pattern) => {
    writeSet(files);
    expect(failure(() => loadFashionMnist(dir)).message).toMatch(pattern);
  });

  it("rejects a truncated gzip stream", () => {
    writeSet({}, true);
    const file = path.join(dir, "train-images-idx3-ubyte.gz");
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    expect(failure(() => loadFashionMnist(dir)).message).toMatch(
      /train-images-idx3-ubyte\.gz`: the gzip stream is truncated/,
    );
  });

  it("rejects a corrupt gzip stream", () => {
    writeSet({}, true);
    const file = path.join(dir, "t10k-labels-idx1-ubyte.gz");
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 6] ^= 0xff; // inside the CRC-32
    fs.writeFileSync(file, bytes);
    expect(failure(() => loadFashionMnist(dir)).message).toMatch(
      /gzip stream is corrupt \(incorrect data check\)/,
    );
  });
});

describe("toFloatBatch", () => {
  // A 4×4 "image" keeps the expected values readable.
  const set: ImageSet = {
    images: Uint8Array.from({ length: 32 }, (_, i) => i % 16),
    labels: new Uint8Array([0, 1]),
    count: 2,
    rows: 4,
    cols: 4,
  };
  const identity = { mean: 0, std: 1 / 255 }; // value = pixel

  it("normalises (pixel/255 − mean)/std", () => {
    const out = new Float32Array(16);
    toFloatBatch(set, [1], out, { mean: 0.5, std: 0.25 });
    expect(out[3]).toBeCloseTo((3 / 255 - 0.5) / 0.25, 6);
  });

  it("crops from a zero-padded image and flips, deterministically", () => {
    const out = new Float32Array(32);
    expect(
      toFloatBatch(set, [0, 1], out, {
        ...identity,
        pad: 1,
        crop: [
          { x: 0, y: 0 },
          { x: 2, y: 1 },
        ],
      }),
    ).toBe(32);
    // Offset (0, 0) in the padded image moves content down-right by one; padding reads as pixel 0.
    expect([...out.subarray(0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 1, 2]);
    // (2, 1): left by one, rows unchanged, the right column is padding.
    expect([...out.subarray(16, 20)]).toEqual([1, 2, 3, 0]);
    toFloatBatch(set, [0], out, { ...identity, flip: true });
    expect([...out.subarray(0, 4)]).toEqual([3, 2, 1, 0]);
    // Padding is background after normalisation too, not 0.0.
    toFloatBatch(set, [0], out, { mean: 0.5, std: 0.5, pad: 2, crop: { x: 0, y: 0 } });
    expect(out[0]).toBeCloseTo(-1, 6);
  });

  it("rejects bad offsets, indices and sizes", () => {
    const out = new Float32Array(16);
    expect(() => toFloatBatch(set, [0], out, { ...identity, pad: 1, crop: { x: 3, y: 0 } })).toThrow(
      RangeError,
    );
    expect(() => toFloatBatch(set, [2], out, identity)).toThrow(/outside 0..1/);
    expect(() => toFloatBatch(set, [0, 1], out, identity)).toThrow(/needs 32/);
  });

  it("augmentation choices replay from the same stream state", () => {
    const a = drawAugmentation(Rng.derive(1, "augment"), 50, 2);
    const b = drawAugmentation(Rng.derive(1, "augment"), 50, 2);
    expect(a).toEqual(b);
    expect(a.crop.every((c) => c.x >= 0 && c.x <= 4 && c.y >= 0 && c.y <= 4)).toBe(true);
    expect(new Set(a.flip).size).toBe(2);
  });
});

describe.skipIf(!fs.existsSync(DEFAULT_FASHION_MNIST_DIR))("the real Fashion-MNIST", () => {
  it("has 60,000 / 10,000 examples, 6,000 of each class for training", () => {
    const data = loadFashionMnist();
    expect(data.train.count).toBe(60_000);
    expect(data.test.count).toBe(10_000);
    const histogram = (labels: Uint8Array) => {
      const h = new Array(10).fill(0);
      for (const l of labels) h[l]++;
      return h;
    };
    expect(histogram(data.train.labels)).toEqual(new Array(10).fill(6000));
    expect(histogram(data.test.labels)).toEqual(new Array(10).fill(1000));
    const stats = pixelStats(data.train);
    expect(stats.mean).toBeCloseTo(0.286, 3);
    expect(stats.std).toBeCloseTo(0.353, 3);
  });
});
