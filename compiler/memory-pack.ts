// memory-pack: the buffers compiler/memory.ts places, in-place sharing, and the packing.
//
// In place. An element-wise kernel whose output y[i] depends only on x[i] of a same-size input x may
// write y over x when that kernel is x's last use and y's first, and neither is pinned: x and y
// become one buffer (ELEMENTWISE lists the ops, each checked against its WGSL).
//
// Packing (Pisarchyk & Lee 2020, "Efficient Memory Management for Deep Neural Net Inference", greedy
// by size): buffers in decreasing size, each at the best-fitting gap among the already placed buffers
// whose lifetimes overlap its own, else at the end of the arena (or in a new arena when the end would
// pass the cap); a few orders are tried and the smallest total kept.
import type { InPlace, Lane } from "./memory.ts";
import { type Liveness, rootOf } from "./memory-liveness.ts";
import type { Plan } from "./plan.ts";

/**
 * Kernel op → the bindings it reads only at the index it writes, `y[i]` from `x[i]` (its output is
 * its one `read_write` binding), checked against each template:
 *  - relu / tanh / sigmoid: wgsl/activation.ts `let v = x[i]; y[i] = act(v)`;
 *  - *.grad of those: wgsl/backward/elementwise.ts `let g = dy[i]; dx[i] = f(g, y[i])`;
 *  - dropout.train / dropout.grad: elementwise.ts `y[i] = select(0.0, x[i] * SCALE, keep)`, the mask
 *    a hash of i alone;
 *  - grad.accumulate: elementwise.ts `out[i] = (out[i] +) t0[i] + t1[i] + …`;
 *  - gradient.mean: lower-placed.ts `y[i] = (a[i] + b[i]) * 0.5`;
 *  - gradient.sum: lower-hybrid.ts `y[i] = a[i] + b[i]` — but the hybrid boundary's batch gradient sum
 *    shares the op and reads `x[i + offset]` of a tensor twice the size, so the op qualifies only
 *    when all its storage bindings have one size.
 * Anything else (conv, pooling, concat, softmax, LRN, batch norm, fused kernels) reads neighbours.
 */
const ELEMENTWISE: Record<string, { reads: "all" | number[]; sameSizes?: boolean }> = {
  relu: { reads: [0] },
  tanh: { reads: [0] },
  sigmoid: { reads: [0] },
  "relu.grad": { reads: [0, 1] },
  "tanh.grad": { reads: [0, 1] },
  "sigmoid.grad": { reads: [0, 1] },
  "dropout.train": { reads: [0] },
  "dropout.grad": { reads: [0] },
  "grad.accumulate": { reads: "all" },
  "gradient.mean": { reads: [0, 1] },
  "gradient.sum": { reads: [0, 1], sameSizes: true },
};

/** The ops whose kernels may write their output over an input. */
export const IN_PLACE_OPS: readonly string[] = Object.keys(ELEMENTWISE);

export interface Block {
  /** Its tensors in order of definition: an in-place chain x → y → … shares one buffer. */
  tensors: string[];
  bytes: number;
  /** Aligned size. */
  size: number;
  start: number;
  end: number;
  pinned: boolean;
  lane: Lane;
  /** No step uses it: it conflicts with nothing. */
  unused: boolean;
}

/** Finds the in-place pairs and merges their buffers (chains share one buffer). */
export function shareInPlace(
  plan: Plan,
  live: Liveness,
  buffers: Map<string, Block>,
  bufferOf: Map<string, Block>,
): InPlace[] {
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const root = (name: string) => rootOf(tensors, name);
  const found: InPlace[] = [];
  live.steps.forEach((step, p) => {
    if (step.kind !== "dispatch") return;
    const k = kernels.get(step.kernel)!;
    const rule = ELEMENTWISE[k.op];
    if (!rule) return;
    const storage = k.bindings.filter((b) => b.access !== "uniform");
    const outputs = storage.filter((b) => b.access === "read_write");
    if (outputs.length !== 1) return;
    const y = root(outputs[0].tensor);
    const bytes = tensors.get(y)!.bytes;
    if (rule.sameSizes && storage.some((b) => tensors.get(root(b.tensor))!.bytes !== bytes)) return;
    const out = bufferOf.get(y)!;
    if (out.pinned || out.tensors.length > 1 || live.uses.get(y)!.first !== p) return;
    const bound = (r: string) => k.bindings.filter((b) => root(b.tensor) === r).length;
    if (bound(y) !== 1) return;
    const candidates = rule.reads === "all" ? k.bindings.map((_, i) => i) : rule.reads;
    for (const i of candidates) {
      const b = k.bindings[i];
      if (!b || b.access !== "read") continue;
      const x = root(b.tensor);
      const into = bufferOf.get(x)!;
      if (x === y || into.pinned || tensors.get(x)!.bytes !== bytes || bound(x) !== 1) continue;
      if (live.uses.get(x)!.last !== p || into.end !== p) continue;
      into.tensors.push(y);
      into.end = out.end;
      bufferOf.set(y, into);
      buffers.delete(y);
      found.push({ tensor: y, sharesWith: x, kernel: k.name });
      return;
    }
  });
  return found;
}

// ---- packing ----

export interface Spot {
  arena: number;
  offset: number;
}

const overlaps = (a: Block, b: Block) => !a.unused && !b.unused && a.start <= b.end && b.start <= a.end;

/** Greedy by size, best fit (see the file comment); `order` is the order buffers are placed in. */
function packGreedy(order: Block[], cap: number): { sizes: number[]; at: Map<Block, Spot> } {
  const sizes: number[] = [];
  const placed: { buffer: Block; offset: number }[][] = [];
  const at = new Map<Block, Spot>();
  for (const b of order) {
    let best: { arena: number; offset: number; growth: number; waste: number } | undefined;
    const consider = (arena: number, offset: number, growth: number, waste: number) => {
      if (
        !best ||
        growth < best.growth ||
        (growth === best.growth && (waste < best.waste || (waste === best.waste && arena < best.arena)))
      )
        best = { arena, offset, growth, waste };
    };
    sizes.forEach((size, arena) => {
      const live = placed[arena].filter((q) => overlaps(q.buffer, b)).sort((x, y) => x.offset - y.offset);
      let cursor = 0;
      for (const q of live) {
        if (q.offset - cursor >= b.size) consider(arena, cursor, 0, q.offset - cursor - b.size);
        cursor = Math.max(cursor, q.offset + q.buffer.size);
      }
      if (cursor + b.size <= cap) {
        const growth = Math.max(0, cursor + b.size - size);
        consider(arena, cursor, growth, growth > 0 ? 0 : size - cursor - b.size);
      }
    });
    if (!best) {
      sizes.push(0);
      placed.push([]);
      best = { arena: sizes.length - 1, offset: 0, growth: b.size, waste: 0 };
    }
    placed[best.arena].push({ buffer: b, offset: best.offset });
    sizes[best.arena] = Math.max(sizes[best.arena], best.offset + b.size);
    at.set(b, { arena: best.arena, offset: best.offset });
  }
  return { sizes, at };
}

/** The best of a few greedy orders: by size, ties by start; by size then lifetime; by size × lifetime. */
export function pack(buffers: Block[], cap: number): { sizes: number[]; at: Map<Block, Spot> } {
  const span = (b: Block) => (b.unused ? 0 : b.end - b.start + 1);
  const orders: ((a: Block, b: Block) => number)[] = [
    (a, b) => b.size - a.size || a.start - b.start,
    (a, b) => b.size - a.size || span(b) - span(a) || a.start - b.start,
    (a, b) => b.size * span(b) - a.size * span(a) || b.size - a.size || a.start - b.start,
  ];
  let best: { sizes: number[]; at: Map<Block, Spot> } | undefined;
  const total = (r: { sizes: number[] }) => r.sizes.reduce((s, x) => s + x, 0);
  for (const order of orders) {
    const r = packGreedy([...buffers].sort(order), cap);
    if (!best || total(r) < total(best)) best = r;
  }
  return best!;
}

/** The most bytes live at one position: pinned buffers everywhere, the others over their lifetimes. */
export function lowerBound(buffers: Block[], positions: number): number {
  const delta = new Array<number>(positions + 1).fill(0);
  let always = 0;
  for (const b of buffers) {
    if (b.pinned) always += b.size;
    else if (!b.unused) {
      delta[b.start] += b.size;
      delta[b.end + 1] -= b.size;
    }
  }
  let running = 0;
  let most = 0;
  for (let p = 0; p < positions; p++) {
    running += delta[p];
    most = Math.max(most, running);
  }
  return always + most;
}
