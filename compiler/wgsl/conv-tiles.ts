// Tile choices and code-generation helpers shared by the register-blocked convolution kernels
// (forward in conv.ts, data and weight gradient in backward/conv.ts).
//
// What lavapipe (llvmpipe's compute path) rewards, measured rather than assumed: one invocation is one
// SIMD lane, 8 lanes per AVX2 vector. These kernels were designed on the belief that a storage load
// whose address is the same in every lane is one scalar load and a broadcast; reading the generated x86
// (GALLIVM_DEBUG=asm, Mesa 25.0.7, LLVM 15) showed otherwise: every storage load is a per-lane loop of
// bounds-checked scalar loads, uniform address or not, and a vec4 load pays that cost once for four
// values (what wgsl/winograd.ts builds on). What still holds: the channel block in the workgroup and
// pixels in the lanes, several outputs per invocation in registers (straight-line code, one WGSL `var`
// per accumulator), and each input row segment loaded once for all the taps and pixels that reuse it —
// fewer loads per multiply-add is what pays. Workgroup memory tiles did not pay on lavapipe, so none are
// used except for the fixed-order split-K combine.

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
