// Decodes one image file into the paper's preprocessed square (Krizhevsky et al. 2012, §2): "we
// down-sampled the images to a fixed resolution of 256 × 256 … we first rescaled the image such that
// the shorter side was of length 256, and then cropped out the central 256×256 patch". All decoding
// and resampling is libvips' (through sharp); alexc only decides what to ask for and what to report.
//
// Decisions, each tested in test/runtime/data/images/decode.test.ts:
// - EXIF orientation is applied before the crop (`autoOrient`), so the crop is taken from the image
//   as a viewer shows it; a phone's portrait photo is not cropped sideways.
// - An embedded ICC profile is honoured (converted to sRGB, sharp's default); CMYK without one uses
//   libvips' built-in CMYK profile. Grayscale is replicated to R = G = B; 16 bits become 8.
// - Alpha is dropped, not composited: a transparent pixel keeps the colour it stores. Photos almost
//   never have alpha; picking a background colour would invent pixels the file does not hold.
// - The file is decoded by its content; an extension that disagrees (ImageNet has a PNG named .JPEG)
//   is only reported.
// - `failOn: "warning"` (sharp's default, kept on purpose): a truncated JPEG or one with a bad Huffman
//   code is an error, not an image with a grey or smeared bottom. libvips' message is kept.
// - A header declaring more than `maxPixels` pixels is refused before any pixel is decoded: a
//   decompression bomb (a small file declaring 60000 × 60000) would otherwise take gigabytes.
//
// Throughput: sharp runs each decode on a libuv threadpool thread (UV_THREADPOOL_SIZE, default 4),
// and libvips may additionally split one image over `sharp.concurrency()` threads. With many decodes
// in flight the parallelism comes from the images themselves, and splitting each 256×256 result
// over more threads only adds contention (measured: 200 ImageNet-sized JPEGs, 8% faster at 1 than 2),
// so this module sets libvips to one thread per image. It also turns off libvips' operation cache:
// every file is decoded once per pass, so the cache would only hold memory.
import * as fs from "node:fs";
import * as path from "node:path";
import sharp, { type FailOnOptions, type Metadata, type OutputInfo } from "sharp";
import type { Conversion, DecodedImage } from "./types.ts";

sharp.concurrency(1);
sharp.cache(false);

/** Larger than any photo in ILSVRC-2012, small enough that a few decodes in flight fit in memory. */
export const MAX_INPUT_PIXELS = 100_000_000;

/** Formats decoded by content: what photo collections hold, whatever the extension says. */
const RASTER_FORMATS: readonly string[] = ["jpeg", "png", "webp", "gif", "tiff"];

const FORMAT_OF_EXTENSION: Readonly<Record<string, string>> = {
  ".jpeg": "jpeg",
  ".jpg": "jpeg",
  ".png": "png",
};

export interface DecodeOptions {
  /** libvips' strictness; default "warning" (see the file comment). */
  failOn?: Exclude<FailOnOptions, "none">;
  /** Refuse images whose header declares more pixels than this; default MAX_INPUT_PIXELS. */
  maxPixels?: number;
}

/** sharp's line when a decoder warning stops a decode under `failOn: "warning"`. */
const FAIL_ON_LINE = "Warning treated as error due to failOn setting";

/**
 * The reason a decode failed, from sharp's message. libvips keeps one error buffer for the process,
 * so among concurrent decodes a failure's message can arrive repeated (measured: 40 decodes of one
 * truncated JPEG in flight gave its line 1 to 4 times) or lost, leaving only sharp's failOn line:
 * repeats are dropped, and the bare line is said in words a user can act on.
 */
export function decodeFailure(message: string): string {
  const lines = [...new Set(message.split("\n").map((l) => l.trim()))].filter((l) => l && l !== FAIL_ON_LINE);
  return lines.length > 0
    ? lines.join("; ")
    : `the decoder warned (truncated or corrupt data), and alexc treats decoder warnings as errors (${FAIL_ON_LINE})`;
}

/**
 * Why `file` does not decode, asked again with no other decode in flight, so that the message is the
 * file's own (see decodeFailure); undefined when it decodes after all.
 */
export async function decodeFailureAlone(file: string, size: number): Promise<string | undefined> {
  try {
    await decodeImage(file, size);
    return undefined;
  } catch (error) {
    if (error instanceof ImageDecodeError) return error.reason;
    throw error;
  }
}

/** A file that is not a decodable image: unreadable, empty, corrupt, truncated, or too large. */
export class ImageDecodeError extends Error {
  readonly path: string;
  /** Why, in libvips' words where libvips said it: what `SkippedFile.detail` records. */
  readonly reason: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`${file}: ${reason}`, options);
    this.name = "ImageDecodeError";
    this.path = file;
    this.reason = reason;
  }
}

/**
 * Decodes `file`: shorter side scaled to `size`, the central `size`×`size` square cropped, as 8-bit
 * sRGB, HWC interleaved. Throws ImageDecodeError for anything that is not a usable image.
 */
export async function decodeImage(
  file: string,
  size: number,
  opts: DecodeOptions = {},
): Promise<DecodedImage> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer ≥ 1, got ${size}`);
  const maxPixels = opts.maxPixels ?? MAX_INPUT_PIXELS;
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (error) {
    throw new ImageDecodeError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`, {
      cause: error,
    });
  }
  if (bytes.length === 0) throw new ImageDecodeError(file, "is empty (0 bytes)");

  // The header alone, without the pixel limit, so a bomb is refused with its real dimensions.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ImageDecodeError(file, decodeFailure((error as Error).message), { cause: error });
  }
  if (!RASTER_FORMATS.includes(meta.format)) {
    throw new ImageDecodeError(
      file,
      `holds ${meta.format}, not a photo format alexc reads (JPEG, PNG, WebP, GIF, TIFF)`,
    );
  }
  const { width, height } = meta;
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      file,
      `is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels} ` +
        "(a decompression bomb, or a scan far larger than any photo)",
    );
  }

  const conversions: Conversion[] = [];
  if (meta.channels <= 2 || meta.space === "b-w" || meta.space === "grey16") conversions.push("grayscale");
  if (meta.space === "cmyk") conversions.push("cmyk");
  if (meta.depth === "ushort") conversions.push("16-bit");
  if (meta.hasAlpha) conversions.push("alpha");
  if (Math.min(width, height) < size / 4) conversions.push("tiny");
  const expected = FORMAT_OF_EXTENSION[path.extname(file).toLowerCase()];
  if (expected !== undefined && expected !== meta.format) conversions.push("wrong-extension");

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, {
      failOn: opts.failOn ?? "warning",
      limitInputPixels: maxPixels,
      autoOrient: true,
    })
      .resize(size, size, { fit: "cover", position: "centre" })
      .removeAlpha()
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true }));
  } catch (error) {
    throw new ImageDecodeError(file, decodeFailure((error as Error).message), { cause: error });
  }
  if (info.width !== size || info.height !== size || info.channels !== 3 || data.length !== size * size * 3) {
    throw new Error(
      `decoding ${file} gave ${info.width}×${info.height}×${info.channels} (${data.length} bytes), ` +
        `expected ${size}×${size}×3: a bug in alexc's use of sharp`,
    );
  }
  // A copy the caller owns: its buffer can be transferred to another thread or kept, unlike memory
  // sharp allocated.
  return { pixels: new Uint8Array(data), size, width, height, conversions };
}
