// Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) in its standard IDX format, and the conversion of
// its bytes into normalised, optionally augmented f32 batches for the training runner.
//
// IDX (LeCun's MNIST format): a big-endian u32 magic 0x0000TTDD (TT = element type, 0x08 = u8;
// DD = number of dimensions), DD big-endian u32 sizes, then the elements in row-major order.
// Images are 0x00000803 (N × rows × cols), labels 0x00000801 (N).
//
// The files are untrusted input downloaded by hand or by a package, so every inconsistency
// (wrong magic, truncation, a broken gzip stream, counts that disagree, a label outside 0–9)
// becomes an AX4101 diagnostic naming the file, the problem, where alexc looked and how to get
// the data, rather than a shape error or a silently wrong accuracy later.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { DiagnosticError, diag } from "../../compiler/diagnostics.ts";

export interface ImageSet {
  /** count × rows × cols pixels, row-major, 0 = background (black), 255 = foreground. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

export interface FashionMnist {
  train: ImageSet;
  test: ImageSet;
  /** Class names, indexed by label. */
  classes: string[];
}

/** Where Debian's `dataset-fashion-mnist` package installs the four `.gz` files. */
export const DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Per-pixel mean and standard deviation of the 60,000 training images, on the [0, 1] scale. */
export const FASHION_MNIST_MEAN = 0.286;
export const FASHION_MNIST_STD = 0.353;

const ROWS = 28;
const COLS = 28;
const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;
/** Well above the 47 MB training images; a larger stream is a gzip bomb or the wrong file. */
const MAX_DECOMPRESSED_BYTES = 1 << 30;

const HOW_TO_GET =
  "run `npm run setup` (it installs Debian's `dataset-fashion-mnist` into " +
  `${DEFAULT_FASHION_MNIST_DIR}), or pass \`--data DIR\` with a directory holding ` +
  "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and " +
  "t10k-labels-idx1-ubyte (each may be gzipped as `.gz`)";

/** Loads the training and test sets from `dir` (default: Debian's install location). */
export function loadFashionMnist(dir: string = DEFAULT_FASHION_MNIST_DIR): FashionMnist {
  const where = path.resolve(dir);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(where);
  } catch {
    stat = undefined;
  }
  if (stat === undefined) fail(where, where, "the data directory does not exist");
  if (!stat.isDirectory()) fail(where, where, "is not a directory");

  const stems = {
    trainImages: "train-images-idx3-ubyte",
    trainLabels: "train-labels-idx1-ubyte",
    testImages: "t10k-images-idx3-ubyte",
    testLabels: "t10k-labels-idx1-ubyte",
  };
  // Report every missing file at once: a half-copied directory usually lacks more than one.
  const found = Object.fromEntries(Object.entries(stems).map(([k, stem]) => [k, findFile(where, stem)]));
  const missing = Object.entries(stems).filter(([k]) => found[k] === undefined);
  if (missing.length > 0) {
    const names = missing.map(([, stem]) => `\`${stem}\` (or \`${stem}.gz\`)`).join(", ");
    fail(where, path.join(where, missing[0][1]), `missing ${names}`);
  }
  const train = readPair(where, found.trainImages!, found.trainLabels!);
  const test = readPair(where, found.testImages!, found.testLabels!);
  return { train, test, classes: [...FASHION_MNIST_CLASSES] };
}

/**
 * The file for `stem` in `dir`: plain or `.gz`, and also the `stem.replace("-idx", ".idx")`
 * spelling some mirrors use. Plain wins when both exist (it is what a user unpacked on purpose).
 */
function findFile(dir: string, stem: string): string | undefined {
  const dotted = stem.replace(/-(idx\d)/, ".$1");
  for (const name of [stem, `${stem}.gz`, dotted, `${dotted}.gz`]) {
    const file = path.join(dir, name);
    try {
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not this spelling
    }
  }
  return undefined;
}

function readPair(dir: string, imagesFile: string, labelsFile: string): ImageSet {
  const imagesIdx = readIdx(dir, imagesFile, IMAGES_MAGIC, "images");
  const labelsIdx = readIdx(dir, labelsFile, LABELS_MAGIC, "labels");
  const [count, rows, cols] = imagesIdx.dims;
  if (rows !== ROWS || cols !== COLS) {
    fail(dir, imagesFile, `images are ${rows}×${cols} pixels; Fashion-MNIST images are ${ROWS}×${COLS}`);
  }
  const labelCount = labelsIdx.dims[0];
  if (labelCount !== count) {
    fail(
      dir,
      labelsFile,
      `holds ${labelCount} labels but \`${path.basename(imagesFile)}\` holds ${count} images`,
    );
  }
  const labels = labelsIdx.data;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] > 9) fail(dir, labelsFile, `label ${i} is ${labels[i]}, outside the classes 0–9`);
  }
  return { images: imagesIdx.data, labels, count, rows, cols };
}

/** Reads one IDX file of unsigned bytes with the expected magic; `what` names it in messages. */
function readIdx(
  dir: string,
  file: string,
  magic: number,
  what: string,
): { dims: number[]; data: Uint8Array } {
  const bad = (problem: string): never => fail(dir, file, problem);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    return bad(`cannot be read (${(error as Error).message})`);
  }
  // Decide by content, not by name: a `.gz` that was already unpacked (or the reverse) is common.
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === "Z_BUF_ERROR"
          ? "the gzip stream is truncated (an interrupted download?)"
          : code === "ERR_BUFFER_TOO_LARGE"
            ? `it decompresses to more than ${MAX_DECOMPRESSED_BYTES} bytes`
            : `the gzip stream is corrupt (${(error as Error).message})`;
      return bad(reason);
    }
  }
  const dimCount = magic & 0xff;
  const headerBytes = 4 + 4 * dimCount;
  if (bytes.length < headerBytes) {
    return bad(`is ${bytes.length} bytes long, too short for the ${headerBytes}-byte IDX ${what} header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    return bad(
      `magic number is 0x${hex(found)}, expected 0x${hex(magic)} (IDX ${what}: unsigned bytes, ` +
        `${dimCount} dimension${dimCount === 1 ? "" : "s"}); is this the right file?`,
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < dimCount; d++) dims.push(view.getUint32(4 + 4 * d, false));
  if (dims[0] === 0) bad(`declares 0 ${what}`);
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual < expected) {
    bad(
      `is truncated: the header declares ${dims.join("×")} = ${expected} bytes of ${what}, found ${actual}`,
    );
  }
  if (actual > expected) {
    bad(`has ${actual - expected} bytes after the ${dims.join("×")} ${what} its header declares`);
  }
  // A copy, not a view: the decompressed buffer may be much larger than we keep, or shared.
  return { dims, data: new Uint8Array(bytes.subarray(headerBytes)) };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function fail(dir: string, file: string, problem: string): never {
  throw new DiagnosticError(
    diag("AX4101", { file: `\`${file}\``, problem }, undefined, {
      notes: [`looked in \`${dir}\``],
      help: HOW_TO_GET,
    }),
  );
}

// ---- batches -----------------------------------------------------------------------------------

export interface CropOffset {
  x: number;
  y: number;
}

export interface BatchOptions {
  /** Normalisation on the [0, 1] pixel scale: value = (pixel / 255 − mean) / std. */
  mean: number;
  std: number;
  /**
   * Zero pixels added on every side before cropping a rows × cols window; 0 (default) crops the
   * image itself. The padding is background (pixel 0), normalised like any other pixel.
   */
  pad?: number;
  /** Window offset in the padded image, each in [0, 2·pad]; one for all, or one per example. Default: centred. */
  crop?: CropOffset | readonly CropOffset[];
  /** Mirror left–right (after cropping); one for all, or one per example. */
  flip?: boolean | readonly boolean[];
}

/**
 * Writes examples `indices` of `set` into `out` as consecutive 1 × rows × cols f32 images (NCHW
 * with one channel), normalised and augmented as `opts` says. Deterministic: the same choices give
 * the same floats. Returns the number of floats written.
 */
export function toFloatBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  out: Float32Array,
  opts: BatchOptions,
): number {
  const { rows, cols } = set;
  const size = rows * cols;
  const n = indices.length;
  const pad = opts.pad ?? 0;
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`pad must be an integer ≥ 0, got ${pad}`);
  if (!(opts.std > 0) || !Number.isFinite(opts.mean)) {
    throw new RangeError(`normalisation needs a finite mean and std > 0, got ${opts.mean}, ${opts.std}`);
  }
  if (out.length < n * size)
    throw new RangeError(`out holds ${out.length} floats, the batch needs ${n * size}`);
  if (Array.isArray(opts.crop) && opts.crop.length !== n) {
    throw new RangeError(`crop has ${opts.crop.length} offsets for ${n} examples`);
  }
  if (Array.isArray(opts.flip) && opts.flip.length !== n) {
    throw new RangeError(`flip has ${opts.flip.length} entries for ${n} examples`);
  }
  // One table lookup per pixel instead of a division: 256 values, computed in f64 then rounded once.
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (v / 255 - opts.mean) / opts.std;
  const background = lut[0];

  for (let b = 0; b < n; b++) {
    const index = indices[b];
    if (!Number.isInteger(index) || index < 0 || index >= set.count) {
      throw new RangeError(`example index ${index} is outside 0..${set.count - 1}`);
    }
    const crop: CropOffset = Array.isArray(opts.crop)
      ? opts.crop[b]
      : ((opts.crop as CropOffset | undefined) ?? { x: pad, y: pad });
    const flip = Array.isArray(opts.flip) ? opts.flip[b] : opts.flip === true;
    if (
      !Number.isInteger(crop.x) ||
      !Number.isInteger(crop.y) ||
      crop.x < 0 ||
      crop.y < 0 ||
      crop.x > 2 * pad ||
      crop.y > 2 * pad
    ) {
      throw new RangeError(`crop offset (${crop.x}, ${crop.y}) is outside 0..${2 * pad} for pad ${pad}`);
    }
    // Source pixel of output (r, c) is (r + crop.y − pad, c' + crop.x − pad), c' mirrored if flipped.
    const image = set.images.subarray(index * size, (index + 1) * size);
    const base = b * size;
    for (let r = 0; r < rows; r++) {
      const sr = r + crop.y - pad;
      const row = base + r * cols;
      if (sr < 0 || sr >= rows) {
        out.fill(background, row, row + cols);
        continue;
      }
      for (let c = 0; c < cols; c++) {
        const sc = (flip ? cols - 1 - c : c) + crop.x - pad;
        out[row + c] = sc < 0 || sc >= cols ? background : lut[image[sr * cols + sc]];
      }
    }
  }
  return n * size;
}

/** A source of uniform integers in [0, n); train/rng.ts's streams satisfy it. */
export interface IntSource {
  uniformInt(n: number): number;
}

/** Per-example random crops from a `pad`-padded image and coin-flip mirrors, for toFloatBatch. */
export function drawAugmentation(
  rng: IntSource,
  count: number,
  pad: number,
  flip = true,
): { crop: CropOffset[]; flip: boolean[] } {
  const crops: CropOffset[] = [];
  const flips: boolean[] = [];
  for (let i = 0; i < count; i++) {
    // Draw order is fixed (x, y, flip) so that a stream replays identically after a resume.
    const x = rng.uniformInt(2 * pad + 1);
    const y = rng.uniformInt(2 * pad + 1);
    crops.push({ x, y });
    flips.push(flip ? rng.uniformInt(2) === 1 : false);
  }
  return { crop: crops, flip: flips };
}

/**
 * The paper's test views, on this data: the four corner crops and the centre crop of the image
 * padded by `pad`, each also mirrored when training flips (ten for pad > 0 with flips, as in the
 * paper; the centre and its mirror for pad 0). Softmax outputs over them are averaged.
 */
export function testViews(pad: number, flip: boolean): { crop: CropOffset; flip: boolean }[] {
  const far = 2 * pad;
  const crops: CropOffset[] =
    pad > 0
      ? [
          { x: 0, y: 0 },
          { x: far, y: 0 },
          { x: 0, y: far },
          { x: far, y: far },
          { x: pad, y: pad },
        ]
      : [{ x: 0, y: 0 }];
  return crops.flatMap((crop) => (flip ? [false, true] : [false]).map((f) => ({ crop, flip: f })));
}

/** Mean and standard deviation of all pixels of `set` on the [0, 1] scale (for normalisation). */
export function pixelStats(set: ImageSet): { mean: number; std: number } {
  const histogram = new Float64Array(256);
  for (let i = 0; i < set.images.length; i++) histogram[set.images[i]]++;
  let sum = 0;
  let sumSq = 0;
  for (let v = 0; v < 256; v++) {
    sum += histogram[v] * (v / 255);
    sumSq += histogram[v] * (v / 255) ** 2;
  }
  const n = set.images.length;
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)) };
}
