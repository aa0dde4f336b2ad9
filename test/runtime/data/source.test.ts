// The Fashion-MNIST adapter's evaluation: the central view, and the paper's ten views (four corner
// crops and the centre crop of the padded image, each mirrored), checked pixel by pixel against the
// stored images, with a classifier that records what it is given.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, testViews } from "../../../runtime/data/fashion-mnist.ts";
import { openTrainingData } from "../../../runtime/data/source.ts";

/** An unsigned-byte IDX file: magic 0x08 with the dimension count, big-endian sizes, the data. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Pixel (r, c) of image i: 1 + (7·i + 3·r + 5·c) mod 250, never the background 0. */
const pixel = (i: number, r: number, c: number) => 1 + ((7 * i + 3 * r + 5 * c) % 250);
const norm = (v: number) => Math.fround((v / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-source-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
function writeSet(name: string, n: number) {
  const data = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) data[i * 784 + r * 28 + c] = pixel(i, r, c);
  fs.writeFileSync(path.join(dir, `${name}-images-idx3-ubyte`), idx([n, 28, 28], data));
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  fs.writeFileSync(path.join(dir, `${name}-labels-idx1-ubyte`), idx([n], labels));
}
writeSet("train", 30);
writeSet("t10k", 7);

const open = (crop: number, flip: boolean) =>
  openTrainingData(
    { dataset: "fashion_mnist", validation: 10, crop, flip },
    { network: "net", dir, input: [1, 28, 28], classes: 10, limit: 0, seed: 1 },
  );

describe("Fashion-MNIST test views", () => {
  it("are the four corners and the centre of the padded image, each mirrored when training flips", () => {
    const views = testViews(2, true);
    expect(views).toHaveLength(10);
    expect(views.filter((v) => !v.flip).map((v) => v.crop)).toEqual([
      { x: 0, y: 0 },
      { x: 4, y: 0 },
      { x: 0, y: 4 },
      { x: 4, y: 4 },
      { x: 2, y: 2 },
    ]);
    expect(testViews(2, false)).toHaveLength(5);
    expect(testViews(0, true)).toEqual([
      { crop: { x: 0, y: 0 }, flip: false },
      { crop: { x: 0, y: 0 }, flip: true },
    ]);
  });

  it("a finished run reports the test set with the central view and, with crops, with ten views", async () => {
    expect((await open(2, true)).finalEvaluations.map((e) => [e.label, e.views])).toEqual([
      ["test", "centre"],
      ["test (ten crops)", "ten-crop"],
    ]);
    expect((await open(0, false)).finalEvaluations.map((e) => e.label)).toEqual(["test"]);
  });

  it("names the views it averages by what they are: without crops, the image and its mirror", async () => {
    const mirrored = await open(0, true);
    expect(mirrored.viewsName).toBe("2 views");
    expect(mirrored.finalEvaluations.map((e) => e.label)).toEqual(["test", "test (2 views)"]);
    expect((await open(2, true)).viewsName).toBe("ten crops");
    expect((await open(2, false)).viewsName).toBe("5 views");
  });

  it("ten-crop evaluation classifies each batch in ten views cut and mirrored from the stored images", async () => {
    const data = await open(2, true);
    const seen: Float32Array[] = [];
    const classify = async (images: Float32Array) => {
      seen.push(images.slice());
      return new Float32Array(4 * 10);
    };
    const r = await data.evaluate(classify, "test", 4, "ten-crop");
    expect(r.count).toBe(7);
    expect(seen).toHaveLength(2 * 10); // 7 images in batches of 4: two batches, ten views each
    // Batch 0, example 1 (test image 1), in each view: pixel (y, x) of the crop at offset (ox, oy)
    // is stored pixel (y + oy − 2, x + ox − 2), background outside; mirrored views read x from the right.
    const views = testViews(2, true);
    for (const [v, { crop, flip }] of views.entries()) {
      const img = seen[v].subarray(784, 2 * 784);
      for (const [y, x] of [
        [0, 0],
        [0, 27],
        [13, 5],
        [27, 27],
        [27, 1],
      ]) {
        const sx = (flip ? 27 - x : x) + crop.x - 2;
        const sy = y + crop.y - 2;
        const inside = sx >= 0 && sx < 28 && sy >= 0 && sy < 28;
        expect(img[y * 28 + x], `view ${v} (${y}, ${x})`).toBe(norm(inside ? pixel(1, sy, sx) : 0));
      }
    }
  });

  it("the central view is the stored image itself, as before ten-crop evaluation existed", async () => {
    const data = await open(2, true);
    const seen: Float32Array[] = [];
    await data.evaluate(
      async (images) => {
        seen.push(images.slice());
        return new Float32Array(8 * 10);
      },
      "val",
      8,
    );
    expect(seen).toHaveLength(2); // 10 validation images (the last 10 of train) in batches of 8
    for (let p = 0; p < 784; p += 37)
      expect(seen[0][3 * 784 + p]).toBe(norm(pixel(20 + 3, Math.floor(p / 28), p % 28)));
  });

  it("averages the views' softmax outputs: right in seven views beats confidently wrong in three", async () => {
    const data = await open(2, true);
    let call = 0;
    // Views 0-6 give the true class logit 5; views 7-9 (which include both centre views) give
    // class 9 logit 30. Softmax averaging picks the true class (≈ 0.66 against 0.3); averaging
    // logits (9 against 3.5) or the centre view alone would pick class 9 every time.
    const r = await data.evaluate(
      async () => {
        const view = call % 10;
        const batch = Math.floor(call / 10);
        call++;
        const logits = new Float32Array(4 * 10);
        for (let b = 0; b < 4; b++) {
          const image = Math.min(batch * 4 + b, 6); // the last batch is padded with image 6
          if (view < 7) logits[b * 10 + (image % 10)] = 5;
          else logits[b * 10 + 9] = 30;
        }
        return logits;
      },
      "test",
      4,
      "ten-crop",
    );
    expect(call).toBe(20);
    expect(r).toEqual({ top1: 0, top5: 0, count: 7 });
    call = 0;
    const centre = await data.evaluate(
      async () => {
        const logits = new Float32Array(4 * 10);
        for (let b = 0; b < 4; b++) logits[b * 10 + 9] = 30;
        return logits;
      },
      "test",
      4,
    );
    expect(centre.top1).toBe(1);
  });
});
