// Deterministic parameter initialisation: the same graph and seed give bitwise the same weights on
// every machine and JavaScript engine.
//
// Design:
//  - Each parameter draws from its own sub-stream, keyed by (seed, parameter name). Values do not
//    depend on the order of `graph.params`, on Map iteration, or on the other parameters: adding or
//    renaming one layer leaves every other layer's weights unchanged.
//  - Key → stream: k = mix64(seed) XOR FNV-1a-64(UTF-8 name); SplitMix64 from k yields the 128-bit
//    state of a xoshiro128** generator (Blackman & Vigna), the seeding both authors recommend.
//    xoshiro128** needs only 32-bit integer operations, which JavaScript computes exactly.
//  - Normal deviates by Marsaglia's polar form of the Box–Muller transform. It avoids sin/cos, and
//    the one logarithm and square root it needs are computed here from +, −, ×, ÷ only: ECMAScript
//    lets Math.log/Math.sqrt be approximations that may differ between engines, whereas the four
//    basic operations are exactly rounded IEEE 754 doubles everywhere. Each value is
//    mean + std·z rounded once to f32.
import type { Graph, Init } from "../compiler/graph.ts";
import { elementCount } from "../compiler/graph.ts";
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";

const MASK64 = (1n << 64n) - 1n;

/** Initial values of every parameter of `graph`, in `graph.params` order, keyed by name. */
export function initParams(graph: Graph, seed: number): Map<string, Float32Array> {
  checkSeed(seed);
  const out = new Map<string, Float32Array>();
  for (const param of graph.params) {
    if (out.has(param.name)) internal(`parameter \`${param.name}\` is declared twice`);
    const values = new Float32Array(elementCount(param.shape));
    fillInit(values, param.init, seed, param.name);
    out.set(param.name, values);
  }
  return out;
}

/** Fills `out` following `init`; normal draws come from the (seed, name) sub-stream. */
export function fillInit(out: Float32Array, init: Init, seed: number, name: string): void {
  switch (init.kind) {
    case "constant":
      if (!Number.isFinite(init.value)) internal(`constant init of \`${name}\` is not finite`);
      out.fill(init.value);
      return;
    case "normal":
      if (!Number.isFinite(init.mean) || !(init.std >= 0) || !Number.isFinite(init.std)) {
        internal(`normal(${init.mean}, ${init.std}) init of \`${name}\` is invalid`);
      }
      fillNormal(out, init.mean, init.std, paramStream(seed, name));
      return;
  }
}

/** xoshiro128** (Blackman & Vigna, 2018): 128-bit state, period 2^128 − 1, 32-bit outputs. */
export class Xoshiro128ss {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(state: readonly [number, number, number, number]) {
    if (state.every((w) => w >>> 0 === 0)) throw new RangeError("xoshiro128** state must not be all zero");
    this.s0 = state[0] | 0;
    this.s1 = state[1] | 0;
    this.s2 = state[2] | 0;
    this.s3 = state[3] | 0;
  }

  /**
   * The 128-bit state as four unsigned 32-bit words; `new Xoshiro128ss(rng.state())` continues the
   * sequence bitwise (for checkpoints that must resume a stream exactly).
   */
  state(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** The next output as an unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The generator for parameter `name` under `seed` (see the file comment). */
export function paramStream(seed: number, name: string): Xoshiro128ss {
  checkSeed(seed);
  let state = mix64(BigInt(seed)) ^ fnv1a64(name);
  const words: number[] = [];
  for (let i = 0; i < 2; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64; // SplitMix64
    const z = mix64(state);
    words.push(Number(z & 0xffffffffn), Number(z >> 32n));
  }
  // SplitMix64 outputs are a bijection of distinct states, so two consecutive outputs are never
  // both zero; the class still guards against the all-zero state.
  return new Xoshiro128ss(words as [number, number, number, number]);
}

/** SplitMix64's finaliser (Stafford's Mix13): a bijective avalanche on 64 bits. */
export function mix64(x: bigint): bigint {
  let z = x & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** FNV-1a, 64-bit, over the UTF-8 bytes of `text`. */
export function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h = ((h ^ BigInt(byte)) * 0x100000001b3n) & MASK64;
  }
  return h;
}

/**
 * Fills `out` with mean + std·z, z ~ N(0, 1), by the polar method: draw (u, v) uniform in the
 * square [−1, 1)², keep it if 0 < s = u² + v² < 1 (π/4 of draws), then u·√(−2 ln s / s) and
 * v·√(−2 ln s / s) are two independent standard normals.
 */
export function fillNormal(out: Float32Array, mean: number, std: number, rng: Xoshiro128ss): void {
  let i = 0;
  while (i < out.length) {
    // k / 2^31 − 1 is exact in a double: 31 bits of resolution, symmetric around 0.
    const u = rng.nextUint32() / 2147483648 - 1;
    const v = rng.nextUint32() / 2147483648 - 1;
    const s = u * u + v * v;
    if (s >= 1 || s === 0) continue;
    const factor = deterministicSqrt((-2 * deterministicLog(s)) / s);
    out[i++] = mean + std * (u * factor); // the Float32Array store rounds to nearest f32
    if (i < out.length) out[i++] = mean + std * (v * factor);
  }
}

const SQRT2 = 1.4142135623730951;
const SQRT_HALF = 0.7071067811865476;
// fdlibm's split of ln 2: the high part has trailing zero bits so e·LN2_HI is exact for |e| < 2^11.
const LN2_HI = 6.9314718036912381649e-1;
const LN2_LO = 1.90821492927058770002e-10;
// 1/(2k+1) for k = 1..11: atanh's series; |f| ≤ 0.1716 makes the 12th term < 2^-56 of f.
const ATANH_COEFFS = [1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11, 1 / 13, 1 / 15, 1 / 17, 1 / 19, 1 / 21, 1 / 23];

/**
 * Natural logarithm of a finite x > 0 from the basic operations only (so it is the same on every
 * engine), within a few ulps of the true value: x = m·2^e with m ∈ [√½, √2) by exact scaling,
 * then ln m = 2·atanh((m − 1)/(m + 1)) by its series.
 */
export function deterministicLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`deterministicLog(${x}): needs a finite x > 0`);
  let m = x;
  let e = 0;
  while (m < SQRT_HALF) {
    m *= 2;
    e -= 1;
  }
  while (m >= SQRT2) {
    m /= 2;
    e += 1;
  }
  const f = (m - 1) / (m + 1);
  const f2 = f * f;
  let p = ATANH_COEFFS[ATANH_COEFFS.length - 1];
  for (let k = ATANH_COEFFS.length - 2; k >= 0; k--) p = ATANH_COEFFS[k] + f2 * p;
  const lnM = 2 * f + 2 * f * (f2 * p);
  return e * LN2_HI + (e * LN2_LO + lnM);
}

/**
 * Square root of a finite x ≥ 0 from the basic operations only: scale by exact powers of 4 into
 * [1, 4), Newton's iteration from a linear first guess (relative error < 0.06, roughly squared
 * each step, so four steps reach the last bit; a fifth is cheap insurance), scale back by the matching power of 2.
 */
export function deterministicSqrt(x: number): number {
  if (!(x >= 0) || !Number.isFinite(x)) throw new RangeError(`deterministicSqrt(${x}): needs a finite x ≥ 0`);
  if (x === 0) return 0;
  let m = x;
  let scale = 1;
  while (m < 1) {
    m *= 4;
    scale /= 2;
  }
  while (m >= 4) {
    m /= 4;
    scale *= 2;
  }
  let y = (m + 2) / 3; // the chord through (1, 1) and (4, 2): at most 6 % off on [1, 4)
  for (let k = 0; k < 5; k++) y = 0.5 * (y + m / y);
  return y * scale;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
  }
}

function internal(message: string): never {
  throw new DiagnosticError(diag("AX9001", { message }, undefined));
}
