// The paper's Figure 3 drawing: the first convolution's kernels, one block of rows per tower, each
// kernel scaled on its own with zero at mid grey.
import { describe, expect, it } from "vitest";
import { compileSource } from "../../../compiler/frontend.ts";
import { firstConvKernels, kernelGridPng } from "../../../runtime/train/kernels-figure.ts";
import sharp from "sharp";

const src = (towers: string) => `network k {
  input image: f32[3, 8, 8]
  classes: 2
  towers: 2
  conv1 = conv(image, filters: 4, kernel: 2, towers: ${towers}, init: normal(0.1), bias: 0)
  fc = dense(conv1, units: classes, towers: on(0))
  loss = softmax_cross_entropy(fc)
}`;

function graphOf(towers: string) {
  const { graph, diagnostics } = compileSource(src(towers));
  expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return graph!;
}

/** Filter f, channel c, tap t of [4, 3, 2, 2]: filter 1 is red-only, the others carry their index. */
function weights(): Map<string, Float32Array> {
  const w = new Float32Array(4 * 3 * 2 * 2);
  for (let f = 0; f < 4; f++)
    for (let c = 0; c < 3; c++)
      for (let t = 0; t < 4; t++) w[f * 12 + c * 4 + t] = f === 1 ? (c === 0 ? 0.5 : 0) : (t - 1.5) * (f + 1);
  return new Map([["conv1.weight", w]]);
}

describe("the first convolution's kernel figure", () => {
  it("puts each tower's filters in its own block and scales each kernel by its largest magnitude", () => {
    const grid = firstConvKernels(graphOf("cross"), weights())!;
    expect(grid).toMatchObject({ layer: "conv1", towers: 2 });
    // Two filters per tower, one row each: cells of 2·4 + 2 pixels, an 8-pixel gap between towers.
    expect([grid.width, grid.height]).toEqual([2 * 10 + 2, 2 * 10 + 8 + 2]);
    const px = (x: number, y: number) =>
      Array.from(grid.rgb.subarray((y * grid.width + x) * 3, (y * grid.width + x) * 3 + 3));
    // Filter 1 (tower 0, second cell): red = +max → 255, green and blue = 0 → mid grey 128.
    expect(px(2 + 10 + 1, 2 + 1)).toEqual([255, 128, 128]);
    // Filter 0's first tap is −1.5, its largest magnitude: 128 − 127 = 1 in every channel.
    expect(px(2, 2)).toEqual([1, 1, 1]);
    // Filter 2 opens tower 1's block, below the gap; its last tap is +1.5·3, the maximum: 255.
    expect(px(2 + 7, 2 + 10 + 8 + 7)).toEqual([255, 255, 255]);
    // The background between cells stays white.
    expect(px(0, 0)).toEqual([255, 255, 255]);
  });

  it("keeps the filters of a layer placed on one tower in one block", () => {
    const grid = firstConvKernels(graphOf("on(1)"), weights())!;
    expect(grid.towers).toBe(1);
    expect([grid.width, grid.height]).toEqual([4 * 10 + 2, 10 + 2]);
  });

  it("encodes the grid as a PNG of the same size", async () => {
    const grid = firstConvKernels(graphOf("cross"), weights())!;
    const meta = await sharp(await kernelGridPng(grid)).metadata();
    expect(meta).toMatchObject({ format: "png", width: grid.width, height: grid.height, channels: 3 });
  });
});
