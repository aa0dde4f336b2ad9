import { describe, expect, it } from "vitest";
import {
  centreView,
  lightingShift,
  tenCropViews,
  toNetworkInput,
  trainAugmentation,
  type AugmentOptions,
} from "../../../../runtime/data/images/augment.ts";

/** A size × size HWC image whose every byte differs from its neighbours': (r·7 + c·3 + ch·101) mod 256. */
function synthetic(size: number): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  for (let r = 0; r < size; r++)
    for (let c = 0; c < size; c++)
      for (let ch = 0; ch < 3; ch++) px[(r * size + c) * 3 + ch] = (r * 7 + c * 3 + ch * 101) % 256;
  return px;
}

/** A 3 × size × size CHW mean image with distinct, non-integer values. */
function meanImage(size: number): Float32Array {
  return Float32Array.from({ length: 3 * size * size }, (_, i) => (i % 97) * 0.5 + 0.25);
}

/**
 * The expected input written out directly from the definition, independently of augment.ts's
 * strides: output (ch, r, k) reads source row y + r and column x + k, or x + crop − 1 − k mirrored.
 */
function expected(
  px: Uint8Array,
  size: number,
  view: { x: number; y: number; flip: boolean },
  crop: number,
  meanAt: (ch: number, row: number, col: number) => number,
  shift: number[],
): Float32Array {
  const out = new Float32Array(3 * crop * crop);
  for (let ch = 0; ch < 3; ch++)
    for (let r = 0; r < crop; r++)
      for (let k = 0; k < crop; k++) {
        const row = view.y + r;
        const col = view.flip ? view.x + crop - 1 - k : view.x + k;
        out[ch * crop * crop + r * crop + k] =
          px[(row * size + col) * 3 + ch] + shift[ch] - meanAt(ch, row, col);
      }
  return out;
}

describe("views", () => {
  it("places the ten crops of 224 in 256 at the corners (0, 32) and the centre (16), then mirrored", () => {
    const views = tenCropViews(256, 224);
    expect(views).toEqual([
      { x: 16, y: 16, flip: false },
      { x: 0, y: 0, flip: false },
      { x: 32, y: 0, flip: false },
      { x: 0, y: 32, flip: false },
      { x: 32, y: 32, flip: false },
      { x: 16, y: 16, flip: true },
      { x: 0, y: 0, flip: true },
      { x: 32, y: 0, flip: true },
      { x: 0, y: 32, flip: true },
      { x: 32, y: 32, flip: true },
    ]);
    expect(centreView(256, 224)).toEqual({ x: 16, y: 16, flip: false });
  });

  it("puts the centre crop's extra pixel right and bottom when size − crop is odd", () => {
    expect(centreView(9, 4)).toEqual({ x: 2, y: 2, flip: false });
    const views = tenCropViews(9, 4);
    expect(views.map((v) => [v.x, v.y])).toEqual([
      [2, 2],
      [0, 0],
      [5, 0],
      [0, 5],
      [5, 5],
      [2, 2],
      [0, 0],
      [5, 0],
      [0, 5],
      [5, 5],
    ]);
    // Every window fits: the far corner ends at the last pixel.
    for (const v of views) expect(v.x + 4).toBeLessThanOrEqual(9);
  });

  it("rejects a crop larger than the image", () => {
    expect(() => tenCropViews(8, 9)).toThrow(RangeError);
  });
});

describe("toNetworkInput", () => {
  const size = 7;
  const crop = 4;
  const px = synthetic(size);
  const views = [
    { x: 0, y: 0, flip: false },
    { x: 3, y: 2, flip: false },
    { x: 3, y: 2, flip: true },
    { x: 1, y: 3, flip: true },
  ];

  it("crops and mirrors like a direct index computation, with no mean", () => {
    for (const view of views) {
      const out = new Float32Array(3 * crop * crop);
      toNetworkInput(px, size, view, crop, { mode: "none" }, [0, 0, 0], out, 0);
      expect(out).toEqual(expected(px, size, view, crop, () => 0, [0, 0, 0]));
    }
  });

  it("mirrors left–right only: a reflected row is the unreflected row reversed", () => {
    const plain = new Float32Array(3 * crop * crop);
    const flipped = new Float32Array(3 * crop * crop);
    toNetworkInput(px, size, { x: 2, y: 1, flip: false }, crop, { mode: "none" }, [0, 0, 0], plain, 0);
    toNetworkInput(px, size, { x: 2, y: 1, flip: true }, crop, { mode: "none" }, [0, 0, 0], flipped, 0);
    for (let row = 0; row < 3 * crop; row++) {
      const a = Array.from(plain.subarray(row * crop, (row + 1) * crop));
      const b = Array.from(flipped.subarray(row * crop, (row + 1) * crop));
      expect(b).toEqual(a.reverse());
    }
  });

  it("cuts the mean image with the same window and mirrors it with the image", () => {
    const mean = meanImage(size);
    const meanAt = (ch: number, row: number, col: number) => mean[ch * size * size + row * size + col];
    const shift = [1.5, -2.25, 0.75];
    for (const view of views) {
      const out = new Float32Array(3 * crop * crop);
      toNetworkInput(px, size, view, crop, { mode: "image", image: mean }, shift, out, 0);
      expect(out).toEqual(expected(px, size, view, crop, meanAt, shift));
    }
    // A pixel equal to the mean at every position gives exactly the shift, flipped or not.
    const flat = new Uint8Array(size * size * 3);
    const meanOfFlat = new Float32Array(3 * size * size);
    for (let i = 0; i < size * size; i++)
      for (let ch = 0; ch < 3; ch++) {
        flat[i * 3 + ch] = (i * 13 + ch) % 256;
        meanOfFlat[ch * size * size + i] = (i * 13 + ch) % 256;
      }
    const out = new Float32Array(3 * crop * crop);
    toNetworkInput(
      flat,
      size,
      { x: 3, y: 1, flip: true },
      crop,
      { mode: "image", image: meanOfFlat },
      shift,
      out,
      0,
    );
    for (let ch = 0; ch < 3; ch++)
      for (const v of out.subarray(ch * crop * crop, (ch + 1) * crop * crop))
        expect(v).toBe(Math.fround(shift[ch]));
  });

  it("subtracts one mean per channel in channel mode", () => {
    const channel = [100.5, 50.25, 10];
    const shift = [2, 3, -4];
    const view = { x: 2, y: 3, flip: true };
    const out = new Float32Array(3 * crop * crop);
    toNetworkInput(px, size, view, crop, { mode: "channel", channel }, shift, out, 0);
    const want = expected(px, size, view, crop, (ch) => channel[ch], shift);
    expect(out).toEqual(want);
  });

  it("writes at the offset and nowhere else", () => {
    const n = 3 * crop * crop;
    const out = new Float32Array(3 * n).fill(-7);
    toNetworkInput(px, size, views[1], crop, { mode: "none" }, [0, 0, 0], out, n);
    expect(out.subarray(0, n).every((v) => v === -7)).toBe(true);
    expect(out.subarray(2 * n).every((v) => v === -7)).toBe(true);
    expect(out.subarray(n, 2 * n)).toEqual(expected(px, size, views[1], crop, () => 0, [0, 0, 0]));
  });

  it("rejects a window outside the image, a short output and a missing mean image", () => {
    const out = new Float32Array(3 * crop * crop);
    expect(() =>
      toNetworkInput(px, size, { x: 4, y: 0, flip: false }, crop, { mode: "none" }, [0, 0, 0], out, 0),
    ).toThrow(RangeError);
    expect(() => toNetworkInput(px, size, views[0], crop, { mode: "none" }, [0, 0, 0], out, 1)).toThrow(
      RangeError,
    );
    expect(() => toNetworkInput(px, size, views[0], crop, { mode: "image" }, [0, 0, 0], out, 0)).toThrow(
      /mean image/,
    );
  });
});

describe("lightingShift", () => {
  it("adds Σ p_i · α_i · √λ_i to each channel", () => {
    // Eigenvectors as rows: a rotation, so the hand computation exercises every term.
    const s = Math.SQRT1_2;
    const eigenvectors = [
      [s, s, 0],
      [-s, s, 0],
      [0, 0, 1],
    ];
    const eigenvalues = [400, 25, 4]; // √λ = 20, 5, 2
    const alphas = [0.1, -0.2, 0.5]; // α√λ = 2, −1, 1
    // shift[c] = Σ_i p_i[c] · (α√λ)_i, term by term:
    const want = [s * 2 + -s * -1 + 0 * 1, s * 2 + s * -1 + 0 * 1, 0 * 2 + 0 * -1 + 1 * 1];
    const got = lightingShift(alphas, eigenvalues, eigenvectors);
    for (let c = 0; c < 3; c++) expect(got[c]).toBeCloseTo(want[c], 12);
    expect(got[2]).toBeCloseTo(1, 12);
    expect(got[0]).toBeCloseTo(3 * s, 12);
  });

  it("is zero for zero alphas and tolerates a tiny negative eigenvalue", () => {
    expect(
      lightingShift(
        [0, 0, 0],
        [10, 1, -1e-12],
        [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
      ),
    ).toEqual([0, 0, 0]);
  });
});

describe("trainAugmentation", () => {
  const opts: AugmentOptions = {
    size: 256,
    crop: 224,
    flip: true,
    lighting: 0.1,
    eigenvalues: [3000, 25, 1.3],
    eigenvectors: [
      [0.58, 0.58, 0.57],
      [-0.7, 0.0, 0.71],
      [0.41, -0.81, 0.41],
    ],
  };

  it("gives the same draw for the same seed, epoch and image, and a different one otherwise", () => {
    const a = trainAugmentation(5, 2, 17, opts);
    expect(trainAugmentation(5, 2, 17, opts)).toEqual(a);
    const others = [
      trainAugmentation(5, 3, 17, opts),
      trainAugmentation(5, 2, 18, opts),
      trainAugmentation(6, 2, 17, opts),
    ];
    for (const b of others) expect(b).not.toEqual(a);
  });

  it("keeps crop and reflection when lighting is turned off, and never flips when flipping is off", () => {
    const lit = trainAugmentation(1, 0, 3, opts);
    const dark = trainAugmentation(1, 0, 3, { ...opts, lighting: 0 });
    expect(dark.view).toEqual(lit.view);
    expect(dark.shift).toEqual([0, 0, 0]);
    for (let i = 0; i < 200; i++)
      expect(trainAugmentation(1, 0, i, { ...opts, flip: false }).view.flip).toBe(false);
  });

  it("covers every crop position, flips about half the time, and draws α with std σ", () => {
    const small = { ...opts, size: 12, crop: 8 }; // 5 positions per axis
    const xs = new Set<number>();
    const ys = new Set<number>();
    let flips = 0;
    const n = 4000;
    const alphas: number[] = [];
    // With identity eigenvectors and λ = 1 the shift is α itself.
    const identity = {
      ...small,
      eigenvalues: [1, 1, 1],
      eigenvectors: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
    };
    for (let i = 0; i < n; i++) {
      const { view, shift } = trainAugmentation(42, 0, i, identity);
      xs.add(view.x);
      ys.add(view.y);
      expect(view.x).toBeLessThanOrEqual(4);
      expect(view.y).toBeLessThanOrEqual(4);
      if (view.flip) flips++;
      alphas.push(...shift);
    }
    expect([...xs].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...ys].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(flips / n).toBeGreaterThan(0.45);
    expect(flips / n).toBeLessThan(0.55);
    const mean = alphas.reduce((a, b) => a + b, 0) / alphas.length;
    const std = Math.sqrt(alphas.reduce((a, b) => a + (b - mean) ** 2, 0) / alphas.length);
    // 12,000 samples: the std's standard error is σ/√(2n) ≈ 0.0006.
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(std).toBeGreaterThan(0.097);
    expect(std).toBeLessThan(0.103);
  });
});
