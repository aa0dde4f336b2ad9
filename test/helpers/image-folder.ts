// Builds small ImageNet-style folders for tests: real JPEG and PNG files encoded by sharp from
// generated pixels (nothing downloaded), and every kind of bad file a real collection holds. Each
// builder is deterministic: the same spec gives the same pixels (and, with one libvips, the same bytes).
//
//   await makeImageFolder(dir, {
//     "train/cat/a.JPEG": solid(500, 375, [255, 0, 0]),
//     "train/cat/b.png": pattern(40, 60, (x, y) => [x, y, 0], "png"),
//     "train/dog": emptyFolder(),
//     "train/dog/README.txt": text("hello"),
//   });
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import sharp from "sharp";

export type Rgb = [number, number, number];
export type Format = "jpeg" | "png";

/** What one path of the folder becomes: file bytes made on demand, or an empty folder. */
export type FileSpec = { kind: "bytes"; make: () => Promise<Uint8Array> } | { kind: "folder" };

/** Writes every entry of `spec` (paths relative to `dir`, with `/`) and returns `dir`. */
export async function makeImageFolder(dir: string, spec: Record<string, FileSpec>): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  await Promise.all(
    Object.entries(spec).map(async ([rel, entry]) => {
      const file = path.join(dir, ...rel.split("/"));
      if (entry.kind === "folder") {
        fs.mkdirSync(file, { recursive: true });
        return;
      }
      const bytes = await entry.make();
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, bytes);
    }),
  );
  return dir;
}

const JPEG_QUALITY = 95;

function bytes(make: () => Promise<Uint8Array>): FileSpec {
  return { kind: "bytes", make };
}

/** Raw 8-bit RGB pixels of `width` × `height`, pixel (x, y) = colour(x, y). */
export function rawPixels(width: number, height: number, colour: (x: number, y: number) => Rgb): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(colour(x, y), (y * width + x) * 3);
  }
  return raw;
}

/** Encodes raw RGB pixels as JPEG or PNG. */
export async function encodeRgb(raw: Buffer, width: number, height: number, format: Format): Promise<Buffer> {
  const image = sharp(raw, { raw: { width, height, channels: 3 } });
  return format === "png" ? image.png().toBuffer() : image.jpeg({ quality: JPEG_QUALITY }).toBuffer();
}

/** An RGB image whose pixel (x, y) is `colour(x, y)`. */
export function pattern(
  width: number,
  height: number,
  colour: (x: number, y: number) => Rgb,
  format: Format = "jpeg",
): FileSpec {
  return bytes(() => encodeRgb(rawPixels(width, height, colour), width, height, format));
}

/** An RGB image of one colour. */
export function solid(width: number, height: number, colour: Rgb, format: Format = "jpeg"): FileSpec {
  return pattern(width, height, () => colour, format);
}

/** A 256-level grayscale image (one channel; two with `alpha`). */
export function grayscale(
  width: number,
  height: number,
  value: number,
  format: Format,
  alpha?: number,
): FileSpec {
  const channels = alpha === undefined ? 1 : 2;
  const raw = Buffer.alloc(width * height * channels, value);
  if (alpha !== undefined) for (let i = 1; i < raw.length; i += 2) raw[i] = alpha;
  return bytes(() => {
    const image = sharp(raw, { raw: { width, height, channels } }).toColourspace("b-w");
    return format === "png" ? image.png().toBuffer() : image.jpeg({ quality: JPEG_QUALITY }).toBuffer();
  });
}

/** A CMYK JPEG (as print workflows save them) converted from the RGB colour. */
export function cmykJpeg(width: number, height: number, colour: Rgb): FileSpec {
  return bytes(() =>
    sharp(
      rawPixels(width, height, () => colour),
      { raw: { width, height, channels: 3 } },
    )
      .toColourspace("cmyk")
      .jpeg({ quality: JPEG_QUALITY })
      .toBuffer(),
  );
}

/** A 16-bit-per-channel RGB PNG; `colour` is on the 0–65535 scale. */
export function png16(width: number, height: number, colour: Rgb): FileSpec {
  const raw = new Uint16Array(width * height * 3);
  for (let i = 0; i < raw.length; i += 3) raw.set(colour, i);
  return bytes(() =>
    sharp(raw, { raw: { width, height, channels: 3 } })
      .toColourspace("rgb16")
      .png()
      .toBuffer(),
  );
}

/** An RGBA PNG of one colour and one alpha. */
export function rgbaPng(width: number, height: number, colour: Rgb, alpha: number): FileSpec {
  const raw = Buffer.alloc(width * height * 4);
  for (let i = 0; i < raw.length; i += 4) raw.set([...colour, alpha], i);
  return bytes(() =>
    sharp(raw, { raw: { width, height, channels: 4 } })
      .png()
      .toBuffer(),
  );
}

/** A JPEG stored as `colour(x, y)` with an EXIF Orientation tag (6: viewers rotate it 90° clockwise). */
export function orientedJpeg(
  width: number,
  height: number,
  colour: (x: number, y: number) => Rgb,
  orientation: number,
): FileSpec {
  return bytes(() =>
    sharp(rawPixels(width, height, colour), { raw: { width, height, channels: 3 } })
      .withMetadata({ orientation })
      .jpeg({ quality: JPEG_QUALITY })
      .toBuffer(),
  );
}

/** A valid JPEG of a busy pattern with bytes flipped in its entropy-coded data (a bad Huffman code). */
export function corruptJpeg(): FileSpec {
  return bytes(async () => {
    const good = Buffer.from(await busyJpeg());
    for (let i = 1000; i < good.length - 100; i += 37) good[i] ^= 0x5a;
    return good;
  });
}

/**
 * What a truncated JPEG's decode failure says: libjpeg's own warning, or, when libvips loses it to
 * another thread's error buffer, alexc's explanation of libvips' bare failOn line (decode.ts).
 */
export const TRUNCATED_JPEG = /premature end of JPEG|the decoder warned \(truncated or corrupt data\)/;

/** The first half of a valid JPEG, as an interrupted download leaves it. */
export function truncatedJpeg(): FileSpec {
  return bytes(async () => {
    const good = await busyJpeg();
    return good.subarray(0, good.length >> 1);
  });
}

/** Deterministic bytes that are no image format at all, under an image's name. */
export function garbage(length = 4096): FileSpec {
  return bytes(async () => {
    const out = new Uint8Array(length);
    let state = 12345;
    for (let i = 0; i < length; i++) out[i] = (state = (state * 1103515245 + 12345) >>> 0) >>> 24;
    return out;
  });
}

/** A zero-byte file. */
export function emptyFile(): FileSpec {
  return bytes(async () => new Uint8Array(0));
}

/** A text file (README.txt, a label file). */
export function text(content: string): FileSpec {
  return bytes(async () => new TextEncoder().encode(content));
}

/** Bytes like macOS's .DS_Store (a "Bud1" header); what matters is the hidden name. */
export function dsStore(): FileSpec {
  return bytes(async () =>
    Uint8Array.from([0, 0, 0, 1, 0x42, 0x75, 0x64, 0x31, ...new Array<number>(24).fill(0)]),
  );
}

/** An empty folder. */
export function emptyFolder(): FileSpec {
  return { kind: "folder" };
}

/**
 * A decompression bomb: a valid PNG header declaring `side` × `side` RGB pixels, followed by a few
 * bytes of data. Only the header is ever read before the decoder refuses it.
 */
export function pngBomb(side = 60_000): FileSpec {
  return bytes(async () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(side, 0);
    ihdr.writeUInt32BE(side, 4);
    ihdr[8] = 8; // bits per sample
    ihdr[9] = 2; // RGB
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([
      signature,
      chunk("IHDR", ihdr),
      chunk("IDAT", zlib.deflateSync(Buffer.alloc(1024))),
      chunk("IEND", Buffer.alloc(0)),
    ]);
  });
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
  return out;
}

/** 500 × 375 of a pattern JPEG compresses poorly enough that every byte matters to the decoder. */
function busyJpeg(): Promise<Buffer> {
  return encodeRgb(
    rawPixels(500, 375, (x, y) => [(x * 7 + y * 3) % 256, (x * y) % 256, (x ^ y) % 256]),
    500,
    375,
    "jpeg",
  );
}

/**
 * A folder with a bit of everything a real collection holds, for tests of the scan, the statistics
 * pass and the loader. Classes `cat`, `dog` (usable images of every conversion and bad case),
 * `empty` (no images) and a `val/` sorted into class folders, one of them (`fox`) not in train/.
 * Of train/'s 15 image files, 11 decode (9 in cat, 2 in dog) and 4 do not.
 */
export function messyFolderSpec(): Record<string, FileSpec> {
  return {
    "train/cat/photo.JPEG": solid(500, 375, [200, 30, 30]),
    "train/cat/small.png": solid(40, 60, [180, 40, 40], "png"),
    "train/cat/gray.png": grayscale(40, 60, 128, "png"),
    "train/cat/gray.jpg": grayscale(60, 40, 90, "jpeg"),
    "train/cat/cmyk.jpg": cmykJpeg(64, 48, [20, 120, 220]),
    "train/cat/deep.png": png16(48, 64, [65535, 32896, 2570]),
    "train/cat/alpha.png": rgbaPng(50, 50, [10, 200, 10], 128),
    "train/cat/tiny.png": solid(3, 5, [250, 250, 0], "png"),
    "train/cat/png-named.JPEG": solid(64, 64, [0, 0, 250], "png"),
    "train/cat/README.txt": text("cats\n"),
    "train/cat/.DS_Store": dsStore(),
    "train/dog/photo.jpg": solid(375, 500, [30, 30, 200]),
    "train/dog/corrupt.JPEG": corruptJpeg(),
    "train/dog/truncated.JPEG": truncatedJpeg(),
    "train/dog/zero.JPEG": emptyFile(),
    "train/dog/garbage.jpg": garbage(),
    "train/dog/shard/nested.png": solid(32, 32, [60, 60, 60], "png"),
    "train/empty": emptyFolder(),
    "val/cat/v1.JPEG": solid(64, 48, [210, 20, 20]),
    "val/dog/v2.png": solid(48, 64, [20, 20, 210], "png"),
    "val/dog/v3.JPEG": truncatedJpeg(),
    "val/fox/v4.JPEG": solid(64, 64, [200, 100, 0]),
  };
}

/**
 * Two classes and a flat val/ labelled by `labels.txt` (at the root): one line per class spelling
 * (name and index), a line for a file that does not exist, a line for a class train/ lacks, a
 * file the label file omits, and a comment and a blank line.
 */
export function flatValSpec(): Record<string, FileSpec> {
  return {
    "train/n01/a.JPEG": solid(64, 48, [200, 0, 0]),
    "train/n02/b.JPEG": solid(48, 64, [0, 0, 200]),
    "val/ILSVRC2012_val_00000001.JPEG": solid(64, 48, [190, 10, 10]),
    "val/ILSVRC2012_val_00000002.JPEG": solid(64, 48, [10, 10, 190]),
    "val/ILSVRC2012_val_00000003.JPEG": solid(64, 48, [10, 190, 10]),
    "val/ILSVRC2012_val_00000004.JPEG": solid(64, 48, [100, 100, 100]),
    "labels.txt": text(
      [
        "# file class",
        "ILSVRC2012_val_00000001.JPEG n01",
        "",
        "ILSVRC2012_val_00000002.JPEG 1",
        "ILSVRC2012_val_00000003.JPEG n99",
        "ILSVRC2012_val_00000009.JPEG n01",
      ].join("\n") + "\n",
    ),
  };
}
