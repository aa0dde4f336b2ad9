// The one tensor-comparison helper of the gradient tests, after tinygrad's helper_test_op: a case
// names its shapes, produces reference tensors and ours, and every tensor is held to
//
//     max_i |ours_i − ref_i|  ≤  atol + rtol · max_i |ref_i|
//
// i.e. the error relative to the reference tensor's scale (robust where values cross zero, unlike an
// element-wise relative error). Every comparison is also recorded, so a test file can print the
// measured errors per op at the end.
import { expect } from "vitest";

export interface Tolerance {
  rtol: number;
  atol?: number;
}

export interface Comparison {
  label: string;
  size: number;
  maxAbsDiff: number;
  maxAbsRef: number;
  /** maxAbsDiff / maxAbsRef. */
  relative: number;
  /** Where the largest difference is (index into the compared arrays). */
  worst: number;
  ok: boolean;
}

/** Every comparison made in this process, in order. */
export const measured: Comparison[] = [];

/** Compares without asserting: the numbers of the metric above. */
export function measure(
  label: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: Tolerance,
): Comparison {
  if (ours.length !== ref.length)
    throw new Error(`${label}: ${ours.length} values vs reference ${ref.length}`);
  let maxAbsDiff = 0;
  let maxAbsRef = 0;
  let worst = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= maxAbsDiff)) {
      maxAbsDiff = Number.isNaN(d) ? Infinity : d;
      worst = i;
    }
    maxAbsRef = Math.max(maxAbsRef, Math.abs(ref[i]));
  }
  const relative = maxAbsDiff / Math.max(maxAbsRef, 1e-30);
  const ok = maxAbsDiff <= (tol.atol ?? 0) + tol.rtol * maxAbsRef;
  return { label, size: ref.length, maxAbsDiff, maxAbsRef, relative, worst, ok };
}

/**
 * Asserts `ours` ≈ `ref` under `tol`, records the comparison, and fails with the numbers (and the
 * worst element) otherwise. A reference that is all zeros fails too: such a check would be vacuous.
 */
export function expectClose(
  label: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: Tolerance,
): Comparison {
  const c = measure(label, ours, ref, tol);
  measured.push(c);
  const detail =
    `${label}: max|ours − ref| ${c.maxAbsDiff.toExponential(3)}, max|ref| ${c.maxAbsRef.toExponential(3)}, ` +
    `relative ${c.relative.toExponential(3)} (rtol ${tol.rtol}${tol.atol ? `, atol ${tol.atol}` : ""}); ` +
    `worst at [${c.worst}]: ours ${ours[c.worst]} vs ref ${ref[c.worst]} over ${c.size} values`;
  expect(c.maxAbsRef, `${label}: the reference is all zeros, the check would be vacuous`).toBeGreaterThan(0);
  expect(c.ok, detail).toBe(true);
  return c;
}

export interface OpCase<T> {
  /** e.g. `conv grouped s2 asym-pad`. */
  name: string;
  /** Shapes for the report, e.g. { x: [2, 4, 7, 9], weight: [6, 2, 3, 2] }. */
  shapes: Record<string, readonly number[]>;
  /** Reference tensors by name. */
  reference: () => T | Promise<T>;
  /** Our tensors by the same names (a name missing here fails). */
  ours: () => T | Promise<T>;
  tol: Tolerance;
}

/**
 * tinygrad's helper_test_op for tensors-by-name: runs the reference and ours, compares every
 * reference tensor with ours under `tol`, returns the comparisons.
 */
export async function helperTestOp(c: OpCase<ReadonlyMap<string, ArrayLike<number>>>): Promise<Comparison[]> {
  const ref = await c.reference();
  const ours = await c.ours();
  const out: Comparison[] = [];
  for (const [name, r] of ref) {
    const o = ours.get(name);
    expect(o, `${c.name}: ours has no tensor ${name}`).toBeDefined();
    out.push(expectClose(`${c.name} ${name}`, o!, r, c.tol));
  }
  return out;
}

/** The recorded comparisons as aligned text lines, for the console. */
export function report(comparisons: readonly Comparison[] = measured): string {
  const width = Math.max(...comparisons.map((c) => c.label.length), 10);
  return comparisons
    .map(
      (c) =>
        `${c.label.padEnd(width)}  rel ${c.relative.toExponential(2)}  (max|Δ| ${c.maxAbsDiff.toExponential(2)}, ` +
        `max|ref| ${c.maxAbsRef.toExponential(2)}, n ${c.size})${c.ok ? "" : "  FAIL"}`,
    )
    .join("\n");
}
