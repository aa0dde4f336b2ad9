// The generated runner on an ImageNet-style folder, run for real on the WebGPU adapter: the
// statistics pass and its cache, bad files skipped and summarised, classes.json and the kernel
// figure written, the paper's centre-crop and ten-crop evaluation, a resumed run ending bitwise
// equal to an uninterrupted one (augmentation is drawn per seed, epoch and image), and infer.ts
// classifying image files by name.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, expect, it } from "vitest";
import { main } from "../../../compiler/cli.ts";
import { loadLatest } from "../../../runtime/train/checkpoint.ts";
import { useGpu } from "../../gpu/adapter.ts";
import {
  corruptJpeg,
  grayscale,
  makeImageFolder,
  pattern,
  text,
  type FileSpec,
  type Rgb,
} from "../../helpers/image-folder.ts";

const fixture = new URL("../../fixtures/tiny-images.net", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "alexc-image-runner-"));
const data = join(out, "data");
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() };

/** Three classes a viewer could tell apart: reddish noise, green stripes, a blue gradient. */
function example(cls: number, i: number): FileSpec {
  const [w, h] = [
    [40, 30],
    [30, 44],
    [32, 32],
  ][i % 3];
  const colour = (x: number, y: number): Rgb => {
    const n = (x * 31 + y * 17 + i * 7) % 40;
    if (cls === 0) return [200 + (n % 50), 40 + n, 30];
    if (cls === 1) return [20, (x + i) % 6 < 3 ? 220 : 60, 40 + n];
    return [30, 40 + y * 3, 120 + x * 3];
  };
  return pattern(w, h, colour, i % 2 === 0 ? "jpeg" : "png");
}

function folderSpec(): Record<string, FileSpec> {
  const spec: Record<string, FileSpec> = {};
  const names = ["apple", "fern", "sky"];
  names.forEach((name, cls) => {
    for (let i = 0; i < 8; i++)
      spec[`train/${name}/img${i}.${i % 2 === 0 ? "JPEG" : "png"}`] = example(cls, i);
    for (let i = 0; i < 2; i++)
      spec[`val/${name}/v${i}.${i % 2 === 0 ? "JPEG" : "png"}`] = example(cls, 10 + i);
  });
  spec["train/apple/broken.JPEG"] = corruptJpeg();
  spec["train/fern/notes.txt"] = text("not an image");
  spec["train/sky/gray.png"] = grayscale(36, 36, 90, "png");
  spec["val/zebra/z0.JPEG"] = example(2, 20);
  return spec;
}

function run(script: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(out, script), ...args], {
    env,
    encoding: "utf8",
    timeout: 300_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const manifestHash = (dir: string) =>
  (
    JSON.parse(
      readFileSync(join(dir, readFileSync(join(dir, "latest"), "utf8").trim(), "manifest.json"), "utf8"),
    ) as {
      planHash: string;
    }
  ).planHash;

beforeAll(async () => {
  const silent = { out: () => {}, err: () => {} };
  expect(await main(["compile", fixture, "-o", out], silent)).toBe(0);
  await makeImageFolder(data, folderSpec());
});

const gpu = await useGpu();

gpu.describe("training on an image folder with the generated runner", () => {
  it("trains, evaluates with one and ten crops, and reports what it skipped", () => {
    const dir = join(out, "run-straight");
    const r = run("train.ts", ["--data", data, "--checkpoint-dir", dir, "--checkpoint-every", "2"]);
    expect(r.stderr).toContain("statistics");
    expect(r.code, r.stderr).toBe(0);
    // 25 train images decode (24 + the grayscale one); the corrupt one and the .txt are left out.
    expect(r.stderr).toMatch(/25 training and 6 validation images/);
    expect(r.stderr).toMatch(/val \(centre crop\): top-1 error [\d.]+ %.* over 6 images/);
    expect(r.stderr).toMatch(/val \(ten crops\): top-1 error [\d.]+ %.* over 6 images/);
    expect(r.stderr).toMatch(/1 file left out: could not be read or decoded\n\s+train\/apple\/broken\.JPEG/);
    expect(r.stderr).toMatch(/1 file left out: not \.JPEG/);
    expect(r.stderr).toMatch(
      /1 file left out: their class has no folder under `train\/`\n\s+val\/zebra\/z0\.JPEG/,
    );
    expect(r.stderr).toMatch(/converted while decoding: 1 grayscale/);
    expect(JSON.parse(readFileSync(join(dir, "classes.json"), "utf8"))).toEqual(["apple", "fern", "sky"]);
    const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"));
    expect(results).toMatchObject({ epochs: 1, steps: 6 });
    expect(results["val (ten crops)"].count).toBe(6);
    // The statistics are cached next to the data and copied next to the checkpoints for infer.ts.
    expect(readdirSync(data)).toContain(".alexc-stats-32.safetensors");
    expect(existsSync(join(dir, "data-stats.safetensors"))).toBe(true);
  }, 300_000);

  it("writes conv1's kernels per tower as a PNG at each checkpoint (the paper's Figure 3)", async () => {
    const dir = join(out, "run-straight");
    const latest = readFileSync(join(dir, "latest"), "utf8").trim();
    const meta = await sharp(join(dir, latest, "conv1-kernels.png")).metadata();
    // 8 filters, 4 per tower: one row of four 20×20 cells per tower.
    expect(meta).toMatchObject({ format: "png", channels: 3, width: 4 * 22 + 2, height: 2 * 22 + 8 + 2 });
    expect(existsSync(join(dir, "conv1-kernels.png"))).toBe(true);
  });

  it("a run stopped after 3 steps and resumed ends bitwise equal to the uninterrupted run", () => {
    const straight = join(out, "run-straight");
    const resumed = join(out, "run-resumed");
    const first = run("train.ts", ["--data", data, "--checkpoint-dir", resumed, "--max-steps", "3"]);
    expect(first.code, first.stderr).toBe(0);
    // The statistics come from the cache this time.
    expect(first.stderr).toMatch(/statistics: 25 training images, read from/);
    const second = run("train.ts", ["--data", data, "--checkpoint-dir", resumed, "--resume"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain("resumed from");
    const a = loadLatest(straight, { planHash: manifestHash(straight) })!;
    const b = loadLatest(resumed, { planHash: manifestHash(resumed) })!;
    expect(b.manifest.globalStep).toBe(a.manifest.globalStep);
    for (const [name, t] of a.weights)
      expect(Buffer.from(b.weights.get(name)!.data.buffer)).toEqual(Buffer.from(t.data.buffer));
    for (const [name, t] of a.momentum)
      expect(Buffer.from(b.momentum.get(name)!.data.buffer)).toEqual(Buffer.from(t.data.buffer));
  });

  it("infer.ts classifies image files, with one crop or ten, naming the classes", () => {
    const dir = join(out, "run-straight");
    const files = [join(data, "val/apple/v0.JPEG"), join(data, "val/sky/v1.png")];
    for (const extra of [[], ["--ten-crop"]]) {
      const r = run("infer.ts", ["--checkpoint", dir, ...extra, ...files]);
      expect(r.code, r.stderr).toBe(0);
      const escaped = files.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      expect(r.stdout).toMatch(
        new RegExp(`^${escaped[0]}\\n(\\s+\\d+\\.\\d %  (apple|fern|sky)\\n){3}${escaped[1]}\\n`),
      );
    }
    const bad = run("infer.ts", ["--checkpoint", dir, join(data, "train/apple/broken.JPEG")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("broken.JPEG");
  });

  it("an unreadable root stops at once, showing the expected layout", () => {
    const r = run("train.ts", ["--data", join(out, "no-such-folder"), "--checkpoint-dir", join(out, "x")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AX4105.*image folder .*no-such-folder/);
    expect(r.stderr).toContain("train/");
  });

  it("a folder whose class count differs from the network's stops with a message naming both", async () => {
    const two = join(out, "two-classes");
    await makeImageFolder(two, { "train/a/0.png": example(0, 1), "train/b/0.png": example(1, 1) });
    const r = run("train.ts", ["--data", two, "--checkpoint-dir", join(out, "y")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tiny_images has 3 classes but .*two-classes\/train has 2 class folders/);
  });

  // Last: it changes the folder, which every test above reads.
  it("a resumed run refuses a folder whose files changed: its batches would not be the same", async () => {
    const dir = join(out, "run-resumed");
    await makeImageFolder(data, { "train/fern/img9.png": example(1, 9) });
    const r = run("train.ts", ["--data", data, "--checkpoint-dir", dir, "--resume", "--epochs", "2"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AX4102.*training identity/);
    expect(r.stderr).toContain("image folder's files changed");
  });
});
