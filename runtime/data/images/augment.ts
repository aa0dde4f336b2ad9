// Crops, reflections, PCA lighting and the f32 network input for the ImageNet-style pipeline
// (Krizhevsky, Sutskever & Hinton 2012, §4.1 and §3 "test time"). Pure functions over plain data,
// so the loader's worker threads import this file as is.
//
// Everything is on the 0–255 pixel scale: the paper subtracts the mean image from raw pixels and
// divides by nothing, and the lighting shift, the mean image and the pixels all live on that scale.
import { Rng } from "../../train/rng.ts";
import type { MeanMode, View } from "./types.ts";

export type Rgb = [number, number, number];

function checkGeometry(size: number, crop: number): void {
  if (!Number.isInteger(size) || !Number.isInteger(crop) || crop < 1 || crop > size) {
    throw new RangeError(`a crop needs integers 1 ≤ crop ≤ size, got crop ${crop}, size ${size}`);
  }
}

/** The central crop, unreflected; for odd size − crop the extra pixel is on the right and bottom. */
export function centreView(size: number, crop: number): View {
  checkGeometry(size, crop);
  const c = Math.floor((size - crop) / 2);
  return { x: c, y: c, flip: false };
}

/**
 * The paper's ten test views: five crops (centre, top-left, top-right, bottom-left, bottom-right),
 * then the same five reflected, in that order. The runner averages the softmax over them, so the
 * order only matters for reproducible reports and per-view diagnostics; it is fixed here.
 */
export function tenCropViews(size: number, crop: number): View[] {
  const centre = centreView(size, crop);
  const far = size - crop;
  const five = [
    { x: centre.x, y: centre.y },
    { x: 0, y: 0 },
    { x: far, y: 0 },
    { x: 0, y: far },
    { x: far, y: far },
  ];
  return [...five.map((p) => ({ ...p, flip: false })), ...five.map((p) => ({ ...p, flip: true }))];
}

/**
 * The RGB shift of the paper's PCA lighting for coefficients `alphas`:
 *   shift[c] = Σ_i p_i[c] · α_i · √λ_i
 * with λ_i the eigenvalues of the RGB covariance (variances, 0–255 scale) and p_i its unit
 * eigenvectors (rows of `eigenvectors`).
 *
 * The paper writes [p1 p2 p3][α1λ1 α2λ2 α3λ3]ᵀ. Read literally, with λ a variance, the shift scales
 * with the square of the pixel unit: on 0–255 pixels the first ImageNet eigenvalue is ~3000, so
 * α = 0.1 would move every pixel by ~300 levels, more than the whole range. cuda-convnet-style
 * implementations (fb.resnet.torch, chainercv, the Caffe/Torch ports) instead use the standard
 * deviation along p_i — their published ImageNet "eigenvalues" 55.46, 4.794, 1.148 on 0–255 are
 * √λ — which makes α a fraction of the natural spread along each principal component (σ = 0.1 →
 * a typical shift of ~5 levels). We follow that reading, with λ straight from stats.ts.
 */
export function lightingShift(
  alphas: readonly number[],
  eigenvalues: readonly number[],
  eigenvectors: readonly (readonly number[])[],
): Rgb {
  const shift: Rgb = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    // Clamp: a covariance computed in floating point can give an eigenvalue of −1e-12.
    const w = alphas[i] * Math.sqrt(Math.max(0, eigenvalues[i]));
    for (let c = 0; c < 3; c++) shift[c] += eigenvectors[i][c] * w;
  }
  return shift;
}

export interface AugmentOptions {
  size: number;
  crop: number;
  /** Reflect with probability 1/2. */
  flip: boolean;
  /** σ of each α_i; the paper's 0.1. 0 turns lighting off (no draws are skipped: see below). */
  lighting: number;
  eigenvalues: readonly number[];
  eigenvectors: readonly (readonly number[])[];
}

export interface Augmentation {
  view: View;
  shift: Rgb;
}

/** One standard normal from two uniforms (Box–Muller, cosine branch). */
function gaussian(rng: Rng): number {
  // float() is in [0, 1): 1 − u is in (0, 1], so the log is finite.
  const u = 1 - rng.float();
  const v = rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * The random crop, reflection and lighting of training image `imageIndex` (its index in
 * FolderIndex.train, not its position in the epoch's shuffled order) in `epoch`. Each
 * (seed, epoch, image) has its own stream, so the draw does not depend on batch composition, on
 * which worker or in which order images are prepared, or on where a resumed run starts: α is drawn
 * once per image per epoch (the paper: "once for all the pixels of a particular training image
 * until that image is used for training again") and a resume needs no saved state.
 *
 * Draw order is fixed — x, y, flip, then three (u, v) pairs for α — and every draw is made even
 * when flip or lighting is off, so toggling one does not change the others.
 */
export function trainAugmentation(
  seed: number,
  epoch: number,
  imageIndex: number,
  opts: AugmentOptions,
): Augmentation {
  checkGeometry(opts.size, opts.crop);
  if (!(opts.lighting >= 0)) throw new RangeError(`lighting σ must be ≥ 0, got ${opts.lighting}`);
  const rng = Rng.derive(seed, `augment/${epoch}/${imageIndex}`);
  const range = opts.size - opts.crop + 1;
  const x = rng.uniformInt(range);
  const y = rng.uniformInt(range);
  const flip = rng.uniformInt(2) === 1 && opts.flip;
  const alphas = [0, 0, 0].map(() => gaussian(rng) * opts.lighting);
  const shift: Rgb =
    opts.lighting > 0 ? lightingShift(alphas, opts.eigenvalues, opts.eigenvectors) : [0, 0, 0];
  return { view: { x, y, flip }, shift };
}

export interface MeanSpec {
  mode: MeanMode;
  /** 3 × size × size, CHW (ImageStats.meanImage); needed for mode "image". */
  image?: Float32Array;
  /** Per-channel R, G, B (ImageStats.channelMean); needed for mode "channel". */
  channel?: readonly number[];
}

/** Throws unless `mean` carries what its mode needs, at the right size. */
export function checkMean(mean: MeanSpec, size: number): void {
  if (mean.mode === "image") {
    const want = 3 * size * size;
    if (mean.image === undefined || mean.image.length !== want) {
      throw new RangeError(
        `mean mode "image" needs a 3×${size}×${size} mean image (${want} floats), got ${mean.image?.length ?? "none"}`,
      );
    }
  } else if (mean.mode === "channel") {
    if (mean.channel === undefined || mean.channel.length !== 3) {
      throw new RangeError(`mean mode "channel" needs three channel means`);
    }
  } else if (mean.mode !== "none") {
    throw new RangeError(`unknown mean mode ${String(mean.mode)}`);
  }
}

/**
 * Writes one network input, 3 × crop × crop CHW f32, at `out[offset…]`:
 *   input = mirror(crop(pixel + shift − mean))
 * i.e. output (c, r, k) reads the source position (y + r, x + k), or (y + r, x + crop − 1 − k) when
 * the view is reflected, for the pixel and for the mean image alike: the mean is cut with the same
 * window and mirrored with the image, so mean subtraction and augmentation commute.
 *
 * `pixels` is size × size × 3 HWC bytes (DecodedImage.pixels). Runs once per image per epoch: the
 * inner loop is a strided read with no allocation; the flip only picks the start and step.
 */
export function toNetworkInput(
  pixels: Uint8Array,
  size: number,
  view: View,
  crop: number,
  mean: MeanSpec,
  shift: readonly number[],
  out: Float32Array,
  offset: number,
): void {
  checkGeometry(size, crop);
  const { x, y } = view;
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x > size - crop || y > size - crop) {
    throw new RangeError(`view (${x}, ${y}) is outside 0..${size - crop} for size ${size}, crop ${crop}`);
  }
  if (pixels.length !== size * size * 3) {
    throw new RangeError(
      `pixels hold ${pixels.length} bytes, a ${size}×${size} RGB image needs ${size * size * 3}`,
    );
  }
  const plane = crop * crop;
  if (offset < 0 || offset + 3 * plane > out.length) {
    throw new RangeError(`out holds ${out.length} floats, the input needs ${3 * plane} at offset ${offset}`);
  }
  checkMean(mean, size);
  // Column of the first output pixel in the source, and the step per output column.
  const col0 = view.flip ? x + crop - 1 : x;
  const step = view.flip ? -1 : 1;
  const meanImage = mean.mode === "image" ? mean.image! : undefined;
  for (let c = 0; c < 3; c++) {
    // Per-channel constant: shift minus the channel mean ("channel" only). Kept in f64: each value
    // is rounded to f32 once, on the store.
    const bias = shift[c] - (mean.mode === "channel" ? mean.channel![c] : 0);
    const meanPlane = c * size * size;
    let o = offset + c * plane;
    for (let r = 0; r < crop; r++) {
      const srcRow = (y + r) * size;
      let s = (srcRow + col0) * 3 + c;
      const sStep = step * 3;
      if (meanImage === undefined) {
        for (let k = 0; k < crop; k++, s += sStep) out[o++] = pixels[s] + bias;
      } else {
        let m = meanPlane + srcRow + col0;
        for (let k = 0; k < crop; k++, s += sStep, m += step) out[o++] = pixels[s] + bias - meanImage[m];
      }
    }
  }
}
