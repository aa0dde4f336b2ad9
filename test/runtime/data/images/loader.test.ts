import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  tenCropViews,
  toNetworkInput,
  trainAugmentation,
  type MeanSpec,
} from "../../../../runtime/data/images/augment.ts";
import { decodeImage } from "../../../../runtime/data/images/decode.ts";
import { ImageLoader, type TrainBatch } from "../../../../runtime/data/images/loader.ts";
import type { ExampleRequest, View } from "../../../../runtime/data/images/types.ts";

const SIZE = 32;
const CROP = 24;
const STRIDE = 3 * CROP * CROP;
const COUNT = 12;

let root: string;
const files: string[] = [];
const mean: MeanSpec = {
  mode: "image",
  image: Float32Array.from({ length: 3 * SIZE * SIZE }, (_, i) => 100 + (i % 61) * 0.75),
};

/** Image i: w × h with distinct content per image, JPEG or PNG alternately. */
async function writeImage(i: number): Promise<string> {
  const w = 40 + 7 * i;
  const h = 30 + 5 * (i % 4);
  const raw = Buffer.alloc(w * h * 3);
  for (let p = 0; p < w * h; p++) {
    const x = p % w;
    const y = Math.floor(p / w);
    raw[p * 3] = (x * 5 + i * 31) % 256;
    raw[p * 3 + 1] = (y * 9 + i * 17) % 256;
    raw[p * 3 + 2] = ((x ^ y) * 3 + i * 7) % 256;
  }
  const name = `train/c${i % 3}/img${String(i).padStart(2, "0")}.${i % 2 === 0 ? "jpg" : "png"}`;
  const image = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
  await (i % 2 === 0 ? image.jpeg({ quality: 85 }) : image.png()).toFile(path.join(root, name));
  return name;
}

const CORRUPT = "train/c0/corrupt.jpg";

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-loader-"));
  for (let i = 0; i < COUNT; i++) files.push(await writeImage(i));
  // A JPEG cut in half after its header: libvips reads the size but fails on the data.
  const whole = fs.readFileSync(path.join(root, files[0]));
  fs.writeFileSync(path.join(root, CORRUPT), whole.subarray(0, Math.floor(whole.length / 3)));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const eig = {
  eigenvalues: [2000, 40, 3],
  eigenvectors: [
    [0.58, 0.58, 0.57],
    [-0.7, 0.0, 0.71],
    [0.41, -0.81, 0.41],
  ],
};

/** Batches of training requests over `files`, with the paper's augmentation drawn per image. */
function requests(batchSizes: number[], epoch = 0): ExampleRequest[][] {
  let next = 0;
  return batchSizes.map((n) =>
    Array.from({ length: n }, () => {
      const index = next++ % COUNT;
      const { view, shift } = trainAugmentation(9, epoch, index, {
        ...{ size: SIZE, crop: CROP, flip: true, lighting: 0.1 },
        ...eig,
      });
      return { path: files[index], label: index % 3, view, shift };
    }),
  );
}

/** The same batch computed here, on the main thread, image by image. */
async function reference(
  batch: readonly { path: string; view: View; shift: number[] }[],
): Promise<Float32Array> {
  const out = new Float32Array(batch.length * STRIDE);
  for (let i = 0; i < batch.length; i++) {
    const image = await decodeImage(path.join(root, batch[i].path), SIZE);
    toNetworkInput(image.pixels, SIZE, batch[i].view, CROP, mean, batch[i].shift, out, i * STRIDE);
  }
  return out;
}

const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function collect(loader: ImageLoader, batches: ExampleRequest[][]): Promise<TrainBatch[]> {
  const out: TrainBatch[] = [];
  for await (const b of loader.train(batches)) out.push(b);
  return out;
}

const open = (workers: number, prefetch = 2) =>
  ImageLoader.open({ root, size: SIZE, crop: CROP, mean, workers, prefetch });

// A hang is a failure: well under the suite's default two minutes.
describe("ImageLoader", { timeout: 20_000 }, () => {
  it("writes what decodeImage + toNetworkInput give on the main thread, bitwise, in request order, for 1 and 2 workers", async () => {
    const batches = requests([5, 4, 7, 3]);
    const want = await Promise.all(batches.map((b) => reference(b)));
    for (const workers of [1, 2]) {
      const loader = await open(workers);
      try {
        const got = await collect(loader, batches);
        expect(got.length).toBe(batches.length);
        got.forEach((b, k) => {
          expect(b.failed).toEqual([]);
          expect(Array.from(b.labels)).toEqual(batches[k].map((r) => r.label));
          expect(bytes(b.images)).toEqual(bytes(want[k]));
          // A plain ArrayBuffer: the trainer hands `images.buffer` to writeBuffer, which refuses shared memory.
          expect(b.images.buffer).toBeInstanceOf(ArrayBuffer);
        });
      } finally {
        await loader.close();
      }
    }
  });

  it("keeps request order when later batches finish first", async () => {
    // One large batch first, then single images that finish long before it.
    const batches = [
      requests([COUNT])[0],
      ...requests([1, 1, 1, 1]).map((b, i) => b.map((r) => ({ ...r, label: 100 + i }))),
    ];
    const loader = await open(2, 5);
    try {
      const got = await collect(loader, batches);
      expect(got.map((b) => b.labels.length)).toEqual([COUNT, 1, 1, 1, 1]);
      expect(got.slice(1).map((b) => b.labels[0])).toEqual([100, 101, 102, 103]);
    } finally {
      await loader.close();
    }
  });

  it("fills a file that fails to decode with the next decoded example of its batch and reports libvips' message", async () => {
    const [good] = requests([3]);
    const middle = [good[0], { ...good[1], path: CORRUPT, label: 2 }, good[2]];
    const last = [good[0], good[2], { ...good[1], path: CORRUPT, label: 2 }]; // wraps to slot 0
    const loader = await open(2);
    try {
      const [a, b] = await collect(loader, [middle, last]);
      const ref = await reference([good[0], good[2]]);
      const slot = (x: Float32Array, i: number) => bytes(x.subarray(i * STRIDE, (i + 1) * STRIDE));
      expect(slot(a.images, 1)).toEqual(slot(ref, 1));
      expect(slot(a.images, 2)).toEqual(slot(ref, 1));
      expect(Array.from(a.labels)).toEqual([good[0].label, good[2].label, good[2].label]);
      expect(a.failed).toEqual([
        { path: CORRUPT, reason: "unreadable", detail: expect.any(String), slot: 1, from: 2 },
      ]);
      expect(a.failed[0].detail!.length).toBeGreaterThan(0);
      expect(slot(b.images, 2)).toEqual(slot(ref, 0));
      expect(b.failed.map((f) => [f.slot, f.from])).toEqual([[2, 0]]);
      // A batch where nothing decodes has nothing to substitute: every slot is reported, from −1,
      // and the loader goes on with the next batch.
      const none = await collect(loader, [
        [
          { ...good[0], path: CORRUPT },
          { ...good[1], path: CORRUPT },
        ],
        [good[0]],
      ]);
      expect(none[0].failed.map((f) => [f.path, f.slot, f.from])).toEqual([
        [CORRUPT, 0, -1],
        [CORRUPT, 1, -1],
      ]);
      expect(none[1].failed).toEqual([]);
    } finally {
      await loader.close();
    }
  });

  it("prepares at most `prefetch` batches ahead of the consumer", async () => {
    const all = requests(Array(8).fill(2));
    let pulled = 0;
    function* lazily() {
      for (const b of all) {
        pulled++;
        yield b;
      }
    }
    const loader = await open(1, 2);
    try {
      const it = loader.train(lazily());
      await it.next();
      await new Promise((r) => setTimeout(r, 300));
      // The one taken plus two ahead.
      expect(pulled).toBe(3);
      await it.next();
      expect(pulled).toBe(4);
      await it.return(undefined);
    } finally {
      await loader.close();
    }
  });

  it("cuts each evaluation image, decoded once, into every view", async () => {
    const views = tenCropViews(SIZE, CROP);
    const entries = files.slice(0, 4).map((p, i) => ({ path: p, label: i }));
    const loader = await open(2);
    try {
      const got = [];
      for await (const b of loader.evaluate([entries.slice(0, 3), entries.slice(3)], views)) got.push(b);
      expect(got.map((b) => b.views.length)).toEqual([10, 10]);
      for (const [k, slice] of [entries.slice(0, 3), entries.slice(3)].entries()) {
        expect(Array.from(got[k].labels)).toEqual(slice.map((e) => e.label));
        for (const [v, view] of views.entries()) {
          const want = await reference(slice.map((e) => ({ path: e.path, view, shift: [0, 0, 0] })));
          expect(bytes(got[k].views[v])).toEqual(bytes(want));
        }
      }
    } finally {
      await loader.close();
    }
  });

  it("rejects pending work when closed, and refuses new work after", async () => {
    const loader = await open(1);
    const it = loader.train(requests([COUNT, COUNT]));
    // The expectation is attached before closing, so the rejection is never unhandled.
    const pending = expect(it.next()).rejects.toThrow(/image loader closed/);
    await loader.close();
    await pending;
    await expect(loader.train(requests([1])).next()).rejects.toThrow(/image loader closed/);
  });

  it("rejects pending work with a message naming the worker that died", async () => {
    const loader = await open(1);
    try {
      const it = loader.train(requests([COUNT, COUNT]));
      const pending = expect(it.next()).rejects.toThrow(/image loader worker 0 exited unexpectedly/);
      await loader.workers[0].terminate();
      await pending;
    } finally {
      await loader.close();
    }
  });

  it("rejects a batch it cannot cut, naming the worker and the problem, and stops", async () => {
    const loader = await open(1);
    try {
      const [batch] = requests([2]);
      const outside = [batch[0], { ...batch[1], view: { x: SIZE - CROP + 1, y: 0, flip: false } }];
      await expect(loader.train([outside]).next()).rejects.toThrow(
        /worker 0 failed on a batch: RangeError: view \(9, 0\)/,
      );
      await expect(loader.train([batch]).next()).rejects.toThrow(/worker 0 failed/);
    } finally {
      await loader.close();
    }
  });

  it("refuses options it cannot honour", async () => {
    await expect(
      ImageLoader.open({ root, size: SIZE, crop: CROP, mean, workers: 0, prefetch: 1 }),
    ).rejects.toThrow(/workers/);
    await expect(
      ImageLoader.open({ root, size: SIZE, crop: CROP, mean: { mode: "image" }, workers: 1, prefetch: 1 }),
    ).rejects.toThrow(/mean image/);
  });
});
