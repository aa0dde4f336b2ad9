// Seeded, serialisable random streams for the training runner.
//
// Each purpose (data order, augmentation, dropout, ...) draws from its own xoshiro128** stream
// keyed by (seed, purpose), derived exactly as runtime/init.ts derives a parameter's stream, with
// the purpose prefixed by "rng/" so no stream coincides with a parameter's. Independent streams
// mean that turning augmentation off, or changing the dropout rate, does not change the order in
// which examples are visited, and vice versa.
//
// A stream's whole state is four u32 words. `state()` exports them as plain JSON data and
// `fromState` continues the sequence bitwise, so a run resumed from a checkpoint draws exactly what
// the uninterrupted run would have drawn.
import { z } from "zod";
import { Xoshiro128ss, paramStream } from "../init.ts";

const TWO_POW_32 = 4294967296;

export interface RngState {
  seed: number;
  purpose: string;
  words: [number, number, number, number];
}

const u32 = z.number().int().min(0).max(0xffffffff);
const stateSchema = z.object({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  purpose: z.string(),
  words: z.tuple([u32, u32, u32, u32]).refine((w) => w.some((x) => x !== 0), "all-zero state"),
});

export class Rng {
  readonly seed: number;
  readonly purpose: string;
  private readonly gen: Xoshiro128ss;

  private constructor(seed: number, purpose: string, gen: Xoshiro128ss) {
    this.seed = seed;
    this.purpose = purpose;
    this.gen = gen;
  }

  /** The fresh stream for `purpose` under `seed`. */
  static derive(seed: number, purpose: string): Rng {
    return new Rng(seed, purpose, paramStream(seed, `rng/${purpose}`));
  }

  /** Continues a stream from `state()`; throws RangeError on anything that is not such a state. */
  static fromState(state: unknown): Rng {
    const parsed = stateSchema.safeParse(state);
    if (!parsed.success) throw new RangeError(`not an RNG state: ${parsed.error.issues[0].message}`);
    const { seed, purpose, words } = parsed.data;
    return new Rng(seed, purpose, new Xoshiro128ss(words));
  }

  /** Plain data; JSON round-trips it exactly (u32 words are exact doubles). */
  state(): RngState {
    return { seed: this.seed, purpose: this.purpose, words: this.gen.state() };
  }

  nextUint32(): number {
    return this.gen.nextUint32();
  }

  /** Uniform integer in [0, n), 1 ≤ n ≤ 2^32, unbiased (rejection of the short last interval). */
  uniformInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`uniformInt needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    // Accept x < limit, the largest multiple of n ≤ 2^32: every residue then has equal odds.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.gen.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform double in [0, 1) with 53 random bits (two draws). */
  float(): number {
    const hi = this.gen.nextUint32() >>> 5; // 27 bits
    const lo = this.gen.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.float() < p;
  }

  /** Shuffles `items` in place (Fisher–Yates, Durstenfeld's form) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.uniformInt(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** A uniformly random permutation of 0..n−1: an epoch's example order. */
  permutation(n: number): Uint32Array {
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    return this.shuffle(order);
  }
}

/** The state of every stream a run has touched, keyed by purpose. */
export interface RngStreamsState {
  seed: number;
  streams: Record<string, [number, number, number, number]>;
}

const streamsSchema = z.object({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  streams: z.record(z.string(), z.tuple([u32, u32, u32, u32])),
});

/**
 * The runner's streams under one seed, created on first use. Only touched streams are saved: an
 * untouched one restores to its fresh derivation, which is exactly where it would be.
 */
export class RngStreams {
  readonly seed: number;
  private readonly streams = new Map<string, Rng>();

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
    this.seed = seed;
  }

  get(purpose: string): Rng {
    let rng = this.streams.get(purpose);
    if (rng === undefined) {
      rng = Rng.derive(this.seed, purpose);
      this.streams.set(purpose, rng);
    }
    return rng;
  }

  state(): RngStreamsState {
    const streams: Record<string, [number, number, number, number]> = {};
    for (const purpose of [...this.streams.keys()].sort())
      streams[purpose] = this.streams.get(purpose)!.state().words;
    return { seed: this.seed, streams };
  }

  static fromState(state: unknown): RngStreams {
    const parsed = streamsSchema.safeParse(state);
    if (!parsed.success) throw new RangeError(`not an RNG streams state: ${parsed.error.issues[0].message}`);
    const out = new RngStreams(parsed.data.seed);
    for (const [purpose, words] of Object.entries(parsed.data.streams)) {
      out.streams.set(purpose, Rng.fromState({ seed: out.seed, purpose, words }));
    }
    return out;
  }
}
