// Image files given on the command line (infer.ts) as network inputs: decoded with the training
// preprocessing (shorter side to `size`, central square), then cut into the evaluation views and
// mean-subtracted exactly as the training runner's evaluation does, so a checkpoint sees the same
// kind of input it was validated on.
import { toNetworkInput, type MeanSpec } from "./augment.ts";
import { decodeImage, ImageDecodeError } from "./decode.ts";
import type { Conversion, View } from "./types.ts";

export interface FileInputs {
  /** The files that decoded, in the order given. */
  files: string[];
  /** One N × 3 × crop × crop array per view. */
  views: Float32Array[];
  /** Per decoded file, what decoding had to convert. */
  conversions: Conversion[][];
  /** Files that could not be decoded, with libvips' message. */
  failed: { file: string; message: string }[];
}

export async function imageFilesToInputs(
  files: readonly string[],
  opts: { size: number; crop: number; mean: MeanSpec; views: readonly View[] },
): Promise<FileInputs> {
  const decoded = await Promise.all(
    files.map(async (file) => {
      try {
        return { file, image: await decodeImage(file, opts.size) };
      } catch (e) {
        if (e instanceof ImageDecodeError) return { file, message: e.message };
        throw e;
      }
    }),
  );
  const ok = decoded.flatMap((d) => ("image" in d && d.image ? [{ file: d.file, image: d.image }] : []));
  const per = 3 * opts.crop * opts.crop;
  const views = opts.views.map((view) => {
    const out = new Float32Array(ok.length * per);
    ok.forEach(({ image }, n) =>
      toNetworkInput(image.pixels, opts.size, view, opts.crop, opts.mean, [0, 0, 0], out, n * per),
    );
    return out;
  });
  return {
    files: ok.map((d) => d.file),
    views,
    conversions: ok.map((d) => d.image.conversions),
    failed: decoded.flatMap((d) =>
      "message" in d && d.message !== undefined ? [{ file: d.file, message: d.message }] : [],
    ),
  };
}
