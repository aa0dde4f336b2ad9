// Tile choices and code-generation helpers shared by the register-blocked convolution kernels
// (forward in conv.ts, data and weight gradient in backward/conv.ts).
//
// What lavapipe (llvmpipe's compute path) rewards, measured rather than assumed: one invocation is one
// SIMD lane, 8 lanes per AVX2 vector; a storage load whose address is the same in every lane (derived
// only from workgroup_id, loop counters and constants) is one scalar load and a broadcast, while a load
// whose address differs per lane is a loop of scalar loads. So every kernel here puts the channel block
// in the workgroup (weights: uniform loads) and pixels in the lanes, keeps several outputs per
// invocation in registers (straight-line code, one WGSL `var` per accumulator), and loads each input
// row segment once for all the taps and pixels that reuse it. Workgroup memory tiles did not pay on
// lavapipe (see the project's notes), so none are used except for the fixed-order split-K combine.

/** Largest block in `candidates` that divides every value in `mustDivide`. */
export function largestDividing(candidates: readonly number[], mustDivide: readonly number[]): number {
  for (const b of candidates) if (mustDivide.every((v) => v % b === 0)) return b;
  return 1;
}

/**
 * Consecutive output pixels along a row per invocation: the largest p ≤ `max` whose waste
 * (⌈ow/p⌉·p/ow − 1) stays within 15 %, else the one with the least waste.
 */
export function pixelBlock(ow: number, max: number): number {
  let best = 1;
  let bestWaste = Infinity;
  for (let p = Math.min(max, ow); p >= 1; p--) {
    const waste = (Math.ceil(ow / p) * p) / ow - 1;
    if (waste <= 0.15) return p;
    if (waste < bestWaste) [best, bestWaste] = [p, waste];
  }
  return best;
}

/** Lanes per workgroup: 64, or fewer (a multiple of 8, lavapipe's vector width) when there is less work. */
export function lanes(total: number, max = 64): number {
  return Math.max(8, Math.min(max, Math.ceil(total / 8) * 8));
}

/** `a0, a1, …` joined by `sep`. */
export function each(count: number, f: (i: number) => string, sep = "\n"): string {
  return Array.from({ length: count }, (_, i) => f(i)).join(sep);
}

/** Indents every line of `code` by `n` spaces. */
export function indent(code: string, n: number): string {
  const pad = " ".repeat(n);
  return code
    .split("\n")
    .map((l) => (l.length ? pad + l : l))
    .join("\n");
}
