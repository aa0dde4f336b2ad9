// The records of the ImageNet-style data pipeline, defined once and shared by its stages:
//   folder.ts  scans `root/train/<class>/*`, `root/val/…` into a FolderIndex (no decoding)
//   decode.ts  decodes one file with sharp/libvips into the paper's 256×256 8-bit RGB square
//   stats.ts   the mean image, per-channel mean and RGB covariance's eigenvectors over the training
//              set, computed once (also finding every file that does not decode) and cached
//   augment.ts crops, reflections, PCA lighting and the f32 network input (pure functions)
//   loader.ts  worker threads that decode and augment batches ahead of the training step
// Everything here is plain data: it crosses worker boundaries and goes into JSON caches.

/** Extensions read as images (compared lower-cased); anything else in a class folder is skipped. */
export const IMAGE_EXTENSIONS: readonly string[] = [".jpeg", ".jpg", ".png"];

/** One labelled image. `path` is relative to the folder's root, with `/` separators. */
export interface ImageEntry {
  path: string;
  label: number;
}

/** Why a file found in the folder takes no part in training or evaluation. */
export type SkipReason =
  /** Not .jpeg/.jpg/.png (a README, .DS_Store, a .txt). */
  | "not-an-image"
  /** libvips could not decode it: corrupt, truncated, empty, or not an image at all. */
  | "unreadable"
  /** A val image whose class has no folder under train/ (so the network has no index for it). */
  | "class-not-in-train"
  /** A val label-file line naming a file that does not exist, or a val file the label file omits. */
  | "unlabelled";

export interface SkippedFile {
  path: string;
  reason: SkipReason;
  /** libvips' message, or what was wrong, for the first few named in the summary. */
  detail?: string;
}

/** What decoding had to change to reach 8-bit sRGB; counted, never silent. */
export type Conversion =
  | "grayscale" // 1 or 2 channels (with alpha) replicated to RGB
  | "cmyk" // converted to sRGB with libvips' CMYK profile
  | "16-bit" // 16 bits per channel scaled to 8
  | "alpha" // an alpha channel dropped
  | "tiny" // shorter side below a quarter of the target size: upscaled a lot
  | "wrong-extension"; // the content is another format than the extension says (decoded by content)

export interface FolderIndex {
  /** Absolute root. */
  root: string;
  /** Class folder names under train/, sorted by code unit (`<` on strings); a label is an index here. */
  classes: string[];
  /** Sorted by (label, path). */
  train: ImageEntry[];
  /** Sorted by (label, path); empty when the folder has no val/ (the runner then holds some train images out). */
  val: ImageEntry[];
  valSource: "class-folders" | "label-file" | "none";
  /** Class folders under train/ without any image: kept as classes so indices stay stable, and reported. */
  emptyClasses: string[];
  /** Files found but left out by the scan, in path order. */
  skipped: SkippedFile[];
}

/** One decoded image: the paper's preprocessing (shorter side to `size`, central `size`×`size` crop). */
export interface DecodedImage {
  /** size × size × 3 bytes, row-major, RGB interleaved (HWC). */
  pixels: Uint8Array;
  size: number;
  /** Width and height of the file as stored. */
  width: number;
  height: number;
  conversions: Conversion[];
}

/** Statistics of the training set at the preprocessed size, on the 0–255 pixel scale. */
export interface ImageStats {
  size: number;
  /** Training images that decoded (the ones averaged). */
  count: number;
  /** sha256 over the sorted training and val file lists (paths, byte sizes, mtimes): the cache key. */
  fileListHash: string;
  /** 3 × size × size, CHW: the mean of every training image at each pixel (the paper subtracts this). */
  meanImage: Float32Array;
  /** Mean R, G, B over all training pixels. */
  channelMean: [number, number, number];
  /** RGB covariance over all training pixels, row-major 3 × 3. */
  covariance: number[];
  /** Eigenvalues of `covariance` (variances along each eigenvector), descending. */
  eigenvalues: [number, number, number];
  /** Unit eigenvectors p1, p2, p3 as rows, matching `eigenvalues`. */
  eigenvectors: [number, number, number][];
  /** Files (train and val) that failed to decode in the statistics pass, and why. */
  unreadable: SkippedFile[];
  /** How many images needed each conversion. */
  conversions: Partial<Record<Conversion, number>>;
}

/** Where one network input is cut from a decoded size × size image. */
export interface View {
  /** Top-left corner of the crop window, in [0, size − crop]. */
  x: number;
  y: number;
  /** Mirror left–right after cropping. */
  flip: boolean;
}

/** What the network input subtracts: the paper's mean image, the per-channel mean, or nothing. */
export type MeanMode = "image" | "channel" | "none";

/** One example of a batch request: which file, cut how, shifted by which lighting. */
export interface ExampleRequest {
  path: string;
  label: number;
  view: View;
  /** Added to every pixel's R, G, B (0–255 scale) before mean subtraction: PCA lighting. */
  shift: [number, number, number];
}
