// A statistics pass that is killed part-way resumes from the progress it saved next to the cache and
// ends with statistics bit-identical to an uninterrupted pass; a partial pass of another file list is
// ignored; a finished pass leaves no partial file behind.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { scanImageFolder } from "../../../../runtime/data/images/folder.ts";
import { partialPath, readPartial } from "../../../../runtime/data/images/stats-partial.ts";
import { fileListHash, loadOrComputeStats } from "../../../../runtime/data/images/stats.ts";
import type { ImageStats } from "../../../../runtime/data/images/types.ts";
import { corruptJpeg, makeImageFolder, pattern, type FileSpec } from "../../../helpers/image-folder.ts";

const SIZE = 16;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-stats-partial-"));

beforeAll(async () => {
  const files: Record<string, FileSpec> = {};
  for (let i = 0; i < 6; i++) {
    files[`train/a/${i}.png`] = pattern(
      20 + i,
      18,
      (x, y) => [(x * 7 + i * 30) % 256, (y * 11) % 256, 90],
      "png",
    );
    files[`train/b/${i}.jpg`] = pattern(17, 24 + i, (x, y) => [40, (x * y + i) % 256, (y * 5) % 256]);
  }
  files["train/b/bad.jpg"] = corruptJpeg();
  files["val/a/v.png"] = pattern(16, 16, (x) => [x * 9, 0, 0], "png");
  await makeImageFolder(root, files);
});

/**
 * Everything a statistics result holds, as bytes and JSON, for bitwise comparison — except libvips'
 * wording for a corrupt file, which varies from one decode of it to the next.
 */
function fingerprint(s: ImageStats): string {
  const unreadable = s.unreadable.map((f) => ({ ...f, detail: undefined }));
  return JSON.stringify({ ...s, unreadable, meanImage: Buffer.from(s.meanImage.buffer).toString("base64") });
}

describe("a statistics pass killed part-way", () => {
  it("resumes from its saved progress and ends bit-identical to an uninterrupted pass", async () => {
    const index = scanImageFolder(root);
    const straight = await loadOrComputeStats(index, {
      size: SIZE,
      cacheFile: path.join(root, "straight.safetensors"),
    });

    const cacheFile = path.join(root, "killed.safetensors");
    const opts = { size: SIZE, cacheFile, chunk: 3, saveEveryMs: 0, concurrency: 2 };
    // The "kill": the progress callback throws once 7 files are done.
    await expect(
      loadOrComputeStats(index, {
        ...opts,
        progress: (done) => {
          if (done >= 7) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    const saved = readPartial(partialPath(cacheFile), fileListHash(index, SIZE), SIZE);
    expect(saved?.done).toBe(6); // the last chunk boundary before the kill
    expect(fs.existsSync(cacheFile)).toBe(false);

    const starts: number[] = [];
    const resumed = await loadOrComputeStats(index, {
      ...opts,
      progress: (done) => void (starts.length === 0 && starts.push(done)),
    });
    expect(starts).toEqual([6]);
    expect(resumed.cached).toBe(false);
    expect(fingerprint(resumed.stats)).toBe(fingerprint(straight.stats));
    expect(resumed.stats.unreadable.map((f) => f.path)).toEqual(["train/b/bad.jpg"]);
    expect(fs.existsSync(partialPath(cacheFile))).toBe(false);
  });

  it("ignores a partial pass saved for another file list", async () => {
    const index = scanImageFolder(root);
    const cacheFile = path.join(root, "other.safetensors");
    await expect(
      loadOrComputeStats(index, {
        size: SIZE,
        cacheFile,
        chunk: 3,
        saveEveryMs: 0,
        progress: (done) => {
          if (done >= 4) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    expect(readPartial(partialPath(cacheFile), fileListHash(index, SIZE), SIZE)?.done).toBe(3);
    // A new file changes the hash: the old progress cannot be trusted, and the pass starts afresh.
    await makeImageFolder(root, { "train/a/new.png": pattern(16, 16, () => [1, 2, 3], "png") });
    const changed = scanImageFolder(root);
    const starts: number[] = [];
    await loadOrComputeStats(changed, {
      size: SIZE,
      cacheFile,
      progress: (done) => void (starts.length === 0 && starts.push(done)),
    });
    expect(starts).toEqual([0]);
  });
});
