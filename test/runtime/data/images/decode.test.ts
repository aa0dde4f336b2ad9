import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageDecodeError, decodeFailure, decodeImage } from "../../../../runtime/data/images/decode.ts";
import type { DecodedImage } from "../../../../runtime/data/images/types.ts";
import {
  cmykJpeg,
  corruptJpeg,
  emptyFile,
  garbage,
  grayscale,
  makeImageFolder,
  orientedJpeg,
  pattern,
  png16,
  pngBomb,
  rawPixels,
  rgbaPng,
  solid,
  truncatedJpeg,
  TRUNCATED_JPEG,
  type Rgb,
} from "../../../helpers/image-folder.ts";

const RED: Rgb = [255, 0, 0];
const BLUE: Rgb = [0, 0, 255];
/** A smooth 256 × 256 pattern: JPEG keeps it within a few levels. */
const smooth = (x: number, y: number): Rgb => [x, y, (x + y) >> 1];

let dir: string;
const at = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-decode-"));
  await makeImageFolder(dir, {
    "landscape.png": pattern(500, 375, (x) => (x < 100 ? RED : BLUE), "png"),
    "landscape.JPEG": pattern(500, 375, (x) => (x < 100 ? RED : BLUE)),
    "portrait.png": pattern(375, 500, (_, y) => (y < 100 ? RED : BLUE), "png"),
    "square.png": pattern(256, 256, smooth, "png"),
    "square.jpg": pattern(256, 256, smooth),
    "gray.png": grayscale(40, 60, 128, "png"),
    "gray.jpg": grayscale(60, 40, 90, "jpeg"),
    "gray-alpha.png": grayscale(40, 60, 200, "png", 255),
    "cmyk.jpg": cmykJpeg(64, 48, [20, 120, 220]),
    "deep.png": png16(48, 64, [65535, 32896, 2570]),
    "alpha.png": rgbaPng(50, 50, [10, 200, 10], 128),
    "tiny.png": solid(3, 5, [250, 250, 0], "png"),
    "edge-tiny.png": solid(63, 100, [0, 0, 0], "png"),
    "edge-not-tiny.png": solid(64, 100, [0, 0, 0], "png"),
    "png-named.JPEG": solid(64, 64, [0, 0, 250], "png"),
    // Stored portrait 40 × 60, left 10 columns red; orientation 6 shows it landscape with red on top.
    "oriented.jpg": orientedJpeg(40, 60, (x) => (x < 10 ? RED : BLUE), 6),
    "corrupt.JPEG": corruptJpeg(),
    "truncated.JPEG": truncatedJpeg(),
    "zero.JPEG": emptyFile(),
    "garbage.jpg": garbage(),
    "bomb.png": pngBomb(),
  });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function px(image: DecodedImage, x: number, y: number): Rgb {
  const i = (y * image.size + x) * 3;
  return [image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]];
}
const isRed = ([r, g, b]: Rgb) => r > 200 && g < 40 && b < 50;
const isBlue = ([r, g, b]: Rgb) => r < 50 && g < 40 && b > 200;

describe("the paper's geometry: shorter side to size, central square", () => {
  // 500 × 375 → scale 256/375 → 341.33 × 256; the crop drops (341.33 − 256)/2 = 42.67 columns on
  // the left, so the red/blue boundary at column 100 lands at 100·256/375 − 42.67 = 25.6. Squashing
  // the whole width into 256 (no crop) would put it at 51.2; padding instead of cropping at 59.
  it("a landscape 500×375 PNG: the boundary at column 100 lands at 25.6", async () => {
    const image = await decodeImage(at("landscape.png"), 256);
    expect([image.size, image.width, image.height, image.pixels.length]).toEqual([
      256,
      500,
      375,
      256 * 256 * 3,
    ]);
    for (const y of [0, 128, 255]) {
      for (let x = 0; x <= 24; x++) expect(isRed(px(image, x, y)), `(${x}, ${y})`).toBe(true);
      for (let x = 27; x < 256; x++) expect(isBlue(px(image, x, y)), `(${x}, ${y})`).toBe(true);
    }
  });

  it("the same as JPEG, within chroma subsampling's blur", async () => {
    const image = await decodeImage(at("landscape.JPEG"), 256);
    for (const y of [0, 128, 255]) {
      for (let x = 0; x <= 22; x++) expect(isRed(px(image, x, y)), `(${x}, ${y})`).toBe(true);
      for (let x = 29; x < 256; x++) expect(isBlue(px(image, x, y)), `(${x}, ${y})`).toBe(true);
    }
  });

  it("a portrait 375×500: the crop is vertical, the boundary at row 100 lands at 25.6", async () => {
    const image = await decodeImage(at("portrait.png"), 256);
    expect([image.width, image.height]).toEqual([375, 500]);
    for (const x of [0, 128, 255]) {
      for (let y = 0; y <= 24; y++) expect(isRed(px(image, x, y)), `(${x}, ${y})`).toBe(true);
      for (let y = 27; y < 256; y++) expect(isBlue(px(image, x, y)), `(${x}, ${y})`).toBe(true);
    }
  });

  it("a 256×256 PNG decodes to exactly its pixels", async () => {
    const image = await decodeImage(at("square.png"), 256);
    expect(Buffer.from(image.pixels).equals(rawPixels(256, 256, smooth))).toBe(true);
    expect(image.conversions).toEqual([]);
  });

  it("a 256×256 JPEG decodes to its pixels within JPEG's error", async () => {
    const image = await decodeImage(at("square.jpg"), 256);
    const raw = rawPixels(256, 256, smooth);
    let total = 0;
    let worst = 0;
    for (let i = 0; i < raw.length; i++) {
      const d = Math.abs(image.pixels[i] - raw[i]);
      total += d;
      worst = Math.max(worst, d);
    }
    expect(total / raw.length).toBeLessThan(1.5);
    expect(worst).toBeLessThan(12);
  });

  it("EXIF orientation is applied before the crop", async () => {
    // Shown 60 × 40 with the red stripe on top; at size 40 only the width is cropped (10 each side).
    const image = await decodeImage(at("oriented.jpg"), 40);
    expect([image.width, image.height]).toEqual([40, 60]); // as stored
    for (const x of [0, 20, 39]) {
      expect(isRed(px(image, x, 3)), `(${x}, 3)`).toBe(true);
      expect(isBlue(px(image, x, 20)), `(${x}, 20)`).toBe(true);
    }
    // Ignoring the tag would crop rows 10–49 of the portrait and keep red on the left instead.
    expect(isBlue(px(image, 3, 20))).toBe(true);
  });

  it("a size that is not a positive integer is refused", async () => {
    await expect(decodeImage(at("square.png"), 0)).rejects.toThrow(RangeError);
    await expect(decodeImage(at("square.png"), 2.5)).rejects.toThrow(RangeError);
  });
});

describe("conversions to 8-bit sRGB, each recorded", () => {
  const uniform = (image: DecodedImage): Rgb => {
    const first = px(image, 0, 0);
    let worst = 0;
    for (let i = 0; i < image.pixels.length; i++)
      worst = Math.max(worst, Math.abs(image.pixels[i] - first[i % 3]));
    expect(worst).toBeLessThanOrEqual(2);
    return first;
  };

  it("grayscale PNG and JPEG are replicated to R = G = B", async () => {
    const png = await decodeImage(at("gray.png"), 32);
    expect(png.conversions).toEqual(["grayscale"]);
    expect(uniform(png)).toEqual([128, 128, 128]);
    const jpg = await decodeImage(at("gray.jpg"), 32);
    expect(jpg.conversions).toEqual(["grayscale"]);
    const [r, g, b] = uniform(jpg);
    expect(r === g && g === b && Math.abs(r - 90) <= 1).toBe(true);
  });

  it("gray + alpha: both conversions, three channels out", async () => {
    const image = await decodeImage(at("gray-alpha.png"), 32);
    expect(image.conversions).toEqual(["grayscale", "alpha"]);
    const [r, g, b] = uniform(image);
    expect(r === g && g === b && Math.abs(r - 200) <= 2).toBe(true);
  });

  it("CMYK JPEG is converted to sRGB through libvips' CMYK profile", async () => {
    const image = await decodeImage(at("cmyk.jpg"), 32);
    expect(image.conversions).toEqual(["cmyk"]);
    const [r, g, b] = uniform(image);
    // The profile round trip is not exact, but the colour stays a clear blue, not inverted ink.
    expect(b).toBeGreaterThan(150);
    expect(b).toBeGreaterThan(g);
    expect(g).toBeGreaterThan(r);
  });

  it("16-bit PNG is scaled to 8 bits (65535 → 255, 32896 → 128, 2570 → 10)", async () => {
    const image = await decodeImage(at("deep.png"), 32);
    expect(image.conversions).toEqual(["16-bit"]);
    expect(uniform(image)).toEqual([255, 128, 10]);
  });

  it("alpha is dropped, not composited: a half-transparent pixel keeps its stored colour", async () => {
    const image = await decodeImage(at("alpha.png"), 32);
    expect(image.conversions).toEqual(["alpha"]);
    // Over black it would be (5, 100, 5); over white (132, 227, 132).
    const [r, g, b] = uniform(image);
    expect(Math.abs(r - 10) <= 2 && Math.abs(g - 200) <= 2 && Math.abs(b - 10) <= 2).toBe(true);
  });

  it("a 3×5 image is upscaled to the full square and marked tiny", async () => {
    const image = await decodeImage(at("tiny.png"), 256);
    expect(image.conversions).toEqual(["tiny"]);
    expect([image.width, image.height, image.pixels.length]).toEqual([3, 5, 256 * 256 * 3]);
    expect(uniform(image)).toEqual([250, 250, 0]);
  });

  it("tiny means a shorter side below a quarter of the size", async () => {
    expect((await decodeImage(at("edge-tiny.png"), 256)).conversions).toEqual(["tiny"]);
    expect((await decodeImage(at("edge-not-tiny.png"), 256)).conversions).toEqual([]);
  });

  it("a PNG named .JPEG is decoded by its content and reported", async () => {
    const image = await decodeImage(at("png-named.JPEG"), 16);
    expect(image.conversions).toEqual(["wrong-extension"]);
    expect(uniform(image)).toEqual([0, 0, 250]);
  });
});

describe("files that are not usable images throw ImageDecodeError", () => {
  async function failure(name: string, opts?: Parameters<typeof decodeImage>[2]): Promise<ImageDecodeError> {
    const error = await decodeImage(at(name), 64, opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImageDecodeError);
    const decodeError = error as ImageDecodeError;
    expect(decodeError.path).toBe(at(name));
    expect(decodeError.message).toBe(`${at(name)}: ${decodeError.reason}`);
    return decodeError;
  }

  it("keeps one copy of a decoder message, and explains sharp's failOn line when it arrives alone", () => {
    const bare = "Warning treated as error due to failOn setting";
    expect(decodeFailure(bare)).toMatch(TRUNCATED_JPEG);
    expect(decodeFailure(bare)).toContain(bare);
    const once = "VipsJpeg: premature end of JPEG image";
    expect(decodeFailure(once)).toBe(once);
    expect(decodeFailure(`${once}\n${once}\n${once}`)).toBe(once);
    expect(decodeFailure(`${once}\n${bare}`)).toBe(once);
  });

  it("a truncated JPEG fails with libvips' message instead of decoding a grey bottom half", async () => {
    expect((await failure("truncated.JPEG")).reason).toMatch(TRUNCATED_JPEG);
    // What the default saves us from: libvips without failOn decodes it happily.
    const bytes = fs.readFileSync(at("truncated.JPEG"));
    await expect(sharp(bytes, { failOn: "none" }).raw().toBuffer()).resolves.toHaveLength(500 * 375 * 3);
  });

  it("a JPEG with corrupt entropy data fails (failOn warning); failOn error would let it through", async () => {
    expect((await failure("corrupt.JPEG")).reason).toMatch(/Corrupt JPEG data/);
    await expect(decodeImage(at("corrupt.JPEG"), 64, { failOn: "error" })).resolves.toBeDefined();
  });

  it("a zero-byte file", async () => {
    expect((await failure("zero.JPEG")).reason).toBe("is empty (0 bytes)");
  });

  it("bytes that are no image format", async () => {
    expect((await failure("garbage.jpg")).reason).toMatch(/unsupported image format/);
  });

  it("a file that does not exist", async () => {
    expect((await failure("missing.JPEG")).reason).toBe("cannot be read (ENOENT)");
  });

  it("a decompression bomb is refused from its header, with its dimensions", async () => {
    const started = performance.now();
    expect((await failure("bomb.png")).reason).toMatch(
      /is 60000×60000 = 3600000000 pixels, over the limit of 100000000/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("the pixel limit is an option", async () => {
    expect((await failure("gray.png", { maxPixels: 2399 })).reason).toMatch(/40×60 = 2400 pixels/);
    await expect(decodeImage(at("gray.png"), 8, { maxPixels: 2400 })).resolves.toBeDefined();
  });
});

describe("throughput settings", () => {
  it("libvips uses one thread per image and no operation cache (parallelism comes from images in flight)", () => {
    expect(sharp.concurrency()).toBe(1);
    expect(sharp.cache().items.max).toBe(0);
  });

  it("many decodes in flight give the same pixels as one at a time", async () => {
    const one = await decodeImage(at("landscape.JPEG"), 64);
    const many = await Promise.all(Array.from({ length: 12 }, () => decodeImage(at("landscape.JPEG"), 64)));
    for (const image of many) expect(Buffer.from(image.pixels).equals(Buffer.from(one.pixels))).toBe(true);
  });
});
