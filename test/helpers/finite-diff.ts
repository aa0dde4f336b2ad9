// Central finite differences of the batch-mean loss in float64 on reference64, w.r.t. any parameter,
// graph input or node output (activation), at chosen coordinates.
//
// Step: h = relStep·max(1, |x|) with relStep = 1e-6 by default. In float64 the central difference's
// truncation error is h²·|f'''|/6 ≈ 1e-13 and its rounding error ≈ ε₆₄·|L|/h ≈ 2e-16·|L|/1e-6 ≈ 5e-10
// for a loss of order 1 — both far below what separates an f32 kernel (≈1e-6 relative per
// operation) from the truth, so the FD value is the reference to the f32 kernels' precision.
//
// Non-smooth points (ReLU at 0, a max-pool argmax switch, a dropout of an exact 0) make a central
// difference meaningless when x ± h straddles one. Such a coordinate is detected by its one-sided
// differences disagreeing far beyond h·|f''| and reported as `kinks`, not silently used.
import type { Graph } from "../../compiler/graph.ts";
import { type Forward64Options, type Values, forward64 } from "./reference64.ts";

export interface FdProblem {
  graph: Graph;
  params: Values;
  inputs: Values;
  labels: ArrayLike<number>;
  batch: number;
  mode?: "train" | "inference";
  dropoutMasks?: Values;
}

export interface FdResult {
  /** The coordinates differentiated, in the order given. */
  indices: number[];
  /** ∂L/∂x at each coordinate (NaN where a kink was detected). */
  gradient: Float64Array;
  /** Coordinates where x ± h straddles a non-smooth point (left out of `gradient`). */
  kinks: number[];
}

function options(p: FdProblem): Forward64Options {
  return { batch: p.batch, mode: p.mode ?? "train", dropoutMasks: p.dropoutMasks, labels: p.labels };
}

/** The loss of `p`, optionally with one element perturbed. */
export function lossOf(p: FdProblem, perturb?: { name: string; index: number; delta: number }): number {
  return forward64(p.graph, p.params, p.inputs, { ...options(p), perturb }).loss;
}

/**
 * ∂L/∂`name`[i] for i in `indices`, where `name` is a parameter, a graph input or a node output.
 * Costs two forward passes per coordinate. A coordinate whose one-sided slopes differ by more than
 * `kinkTol` × the largest |∂L/∂x| found is a kink (see the file comment).
 */
export function finiteDiff(
  p: FdProblem,
  name: string,
  indices: number[],
  { relStep = 1e-6, kinkTol = 1e-4 } = {},
): FdResult {
  const base = forward64(p.graph, p.params, p.inputs, options(p));
  const x = p.params.get(name) ?? p.inputs.get(name) ?? base.values.get(name);
  if (!x) throw new Error(`finiteDiff: ${name} is neither a parameter, an input nor a node output`);
  const central = new Float64Array(indices.length);
  const gap = new Float64Array(indices.length);
  indices.forEach((index, k) => {
    const h = relStep * Math.max(1, Math.abs(x[index]));
    const plus = lossOf(p, { name, index, delta: h });
    const minus = lossOf(p, { name, index, delta: -h });
    central[k] = (plus - minus) / (2 * h);
    // One-sided slopes from the same points differ by ≈ h·|f''| where smooth, by O(jump) at a kink.
    gap[k] = Math.abs((plus - base.loss) / h - (base.loss - minus) / h);
  });
  const scale = central.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-12);
  const gradient = new Float64Array(indices.length);
  const kinks: number[] = [];
  indices.forEach((index, k) => {
    if (gap[k] > kinkTol * scale) {
      kinks.push(index);
      gradient[k] = Number.NaN;
    } else gradient[k] = central[k];
  });
  return { indices, gradient, kinks };
}

/**
 * Up to `n` distinct coordinates of a tensor with `size` elements: all of them when size ≤ n,
 * otherwise `include` (e.g. where the gradient under test is largest, so that the max-scaled error
 * has a meaningful scale) plus a seeded uniform sample of the rest.
 */
export function sampleIndices(size: number, n: number, seed: number, include: number[] = []): number[] {
  if (size <= n) return Array.from({ length: size }, (_, i) => i);
  const chosen = new Set(include.filter((i) => i >= 0 && i < size).slice(0, n));
  let a = seed >>> 0 || 1;
  while (chosen.size < n) {
    // xorshift32: deterministic and independent of the test data's generator
    a ^= a << 13;
    a >>>= 0;
    a ^= a >>> 17;
    a ^= a << 5;
    a >>>= 0;
    chosen.add(a % size);
  }
  return [...chosen].sort((p, q) => p - q);
}

/** Indices of the `k` largest |values[i]|. */
export function largestIndices(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((p, q) => Math.abs(values[q]) - Math.abs(values[p]))
    .slice(0, k);
}
