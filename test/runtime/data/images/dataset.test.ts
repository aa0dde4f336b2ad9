// An image folder as the runner's dataset, without a device: the counts after the scan and the
// statistics pass, a training batch whose files all vanished replaced by the next images of the
// epoch (so the step still runs, deterministically), evaluation counting with padded and failed
// slots left out, and the report naming what was skipped.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultImageFolder } from "../../../../compiler/check/recipe.ts";
import {
  epochOrder,
  openTrainingData,
  type Batch,
  type TrainingData,
} from "../../../../runtime/data/source.ts";
import { RngStreams } from "../../../../runtime/train/rng.ts";
import { corruptJpeg, makeImageFolder, solid, text, type FileSpec } from "../../../helpers/image-folder.ts";

const root = mkdtempSync(join(tmpdir(), "alexc-dataset-"));
const spec = { ...defaultImageFolder, resize: 16, lighting: 0.1 };
const opts = { network: "t", input: [3, 12, 12], classes: 2, limit: 0, seed: 4, workers: 1 };
let data: TrainingData;

beforeAll(async () => {
  const files: Record<string, FileSpec> = {};
  for (let i = 0; i < 4; i++) {
    files[`train/a/${i}.png`] = solid(20, 16, [200, 10 * i, 0], "png");
    files[`train/b/${i}.png`] = solid(16, 24, [0, 10 * i, 200], "png");
  }
  files["train/b/broken.JPEG"] = corruptJpeg();
  files["train/a/readme.txt"] = text("hello");
  files["val/a/v.png"] = solid(16, 16, [210, 0, 0], "png");
  files["val/b/v.png"] = solid(16, 16, [0, 0, 210], "png");
  files["val/b/w.png"] = solid(16, 16, [0, 5, 220], "png");
  await makeImageFolder(root, files);
  data = await openTrainingData(spec, { ...opts, dir: root });
});

afterAll(() => data?.close());

async function epoch(d: TrainingData, batch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  const r = {
    epoch: 0,
    from: 0,
    steps: Math.floor(d.trainCount / batch),
    batch,
    seed: 4,
    rng: new RngStreams(4),
  };
  for await (const b of d.batches(r)) out.push({ images: b.images.slice(), labels: b.labels.slice() });
  return out;
}

describe("an image folder as the training runner's dataset", () => {
  it("counts the images that decode and names the classes in sorted order", () => {
    expect(data.classes).toEqual(["a", "b"]);
    expect([data.trainCount, data.valCount]).toEqual([8, 3]);
    expect(data.identity).toMatch(/^[0-9a-f]{64}\/8\/0$/);
  });

  it("evaluates top-1/top-5 with padded rows and failed files left out of the count", async () => {
    // A classifier that always says class 0 (`a`): right on val/a, wrong on both val/b images.
    const classify = async (images: Float32Array) => {
      const n = images.length / (3 * 12 * 12);
      return Float32Array.from({ length: n * 2 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    };
    expect(await data.evaluate(classify, "val", 2)).toEqual({ top1: 2 / 3, top5: 0, count: 3 });
    expect(await data.evaluate(classify, "val", 4, "ten-crop")).toEqual({ top1: 2 / 3, top5: 0, count: 3 });
  });

  it("replaces a training batch whose every file vanished by the next images of the epoch's order", async () => {
    const before = await epoch(data, 1);
    // One file changes after the statistics pass: its step now gets the following step's image.
    const second = await openTrainingData(spec, { ...opts, dir: root });
    try {
      const r = { epoch: 0, from: 0, steps: 8, batch: 1, seed: 4, rng: new RngStreams(4) };
      // The training list is sorted by (class, path); step 2 of epoch 0 reads order[2] of it.
      const order = epochOrder(
        4,
        0,
        Uint32Array.from({ length: 8 }, (_, i) => i),
      );
      const names = ["a/0.png", "a/1.png", "a/2.png", "a/3.png", "b/0.png", "b/1.png", "b/2.png", "b/3.png"];
      writeFileSync(join(root, "train", names[order[2]]), "not an image any more");
      const after: Batch[] = [];
      for await (const b of second.batches(r))
        after.push({ images: b.images.slice(), labels: b.labels.slice() });
      expect(after).toHaveLength(8);
      expect(Buffer.from(after[2].images.buffer)).toEqual(Buffer.from(before[3].images.buffer));
      expect(after[2].labels).toEqual(before[3].labels);
      for (const i of [0, 1, 3, 4, 5, 6, 7]) expect(after[i].images).toEqual(before[i].images);
      expect(second.report().join("\n")).toMatch(
        new RegExp(`1 file\\(s\\) failed to load during the run[^\\n]*\\n\\s+train/${names[order[2]]}`),
      );
    } finally {
      await second.close();
    }
  });

  it("reports the files the scan and the statistics pass left out", () => {
    const report = data.report().join("\n");
    expect(report).toMatch(/1 file left out: not \.JPEG.*\n\s+train\/a\/readme\.txt/);
    expect(report).toMatch(/1 file left out: could not be read or decoded\n\s+train\/b\/broken\.JPEG/);
  });
});
