// The symmetric 3×3 eigen solver behind the PCA lighting statistics, on matrices whose answer is
// known by hand: diagonal, rotated, with repeated eigenvalues; and reconstruction Vᵀ diag(λ) V ≈ M.
import { describe, expect, it } from "vitest";
import { symmetricEigen3 } from "../../../../runtime/data/images/eigen3.ts";

type Vec3 = [number, number, number];

function reconstruct(values: Vec3, vectors: Vec3[]): number[] {
  // Σ_k λ_k v_k v_kᵀ = Vᵀ diag(λ) V with the eigenvectors as V's rows.
  const m = new Array<number>(9).fill(0);
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) m[3 * i + j] += values[k] * vectors[k][i] * vectors[k][j];
  }
  return m;
}
const dot = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

function expectOrthonormal(vectors: Vec3[]): void {
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) expect(dot(vectors[i], vectors[j])).toBeCloseTo(i === j ? 1 : 0, 12);
}

function expectClose(actual: number[], expected: number[], digits = 9): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a, `element ${i}`).toBeCloseTo(expected[i], digits));
}

describe("symmetricEigen3", () => {
  it("a diagonal matrix: its diagonal, descending, with unit axes", () => {
    const { values, vectors } = symmetricEigen3([1, 0, 0, 0, 5, 0, 0, 0, 3]);
    expect(values).toEqual([5, 3, 1]);
    expect(vectors).toEqual([
      [0, 1, 0],
      [0, 0, 1],
      [1, 0, 0],
    ]);
  });

  it("a known rotation: M = Rᵀ diag(9, 4, 1) R gives R's rows back", () => {
    const [a, b] = [Math.PI / 6, Math.PI / 4];
    // R = Rx(b) · Rz(a); its rows are orthonormal.
    const rz = [
      [Math.cos(a), -Math.sin(a), 0],
      [Math.sin(a), Math.cos(a), 0],
      [0, 0, 1],
    ];
    const rx = [
      [1, 0, 0],
      [0, Math.cos(b), -Math.sin(b)],
      [0, Math.sin(b), Math.cos(b)],
    ];
    const r = rx.map((row) =>
      [0, 1, 2].map((j) => row[0] * rz[0][j] + row[1] * rz[1][j] + row[2] * rz[2][j]),
    ) as Vec3[];
    const m = reconstruct([9, 4, 1], r);
    const { values, vectors } = symmetricEigen3(m);
    expectClose(values, [9, 4, 1], 12);
    for (let k = 0; k < 3; k++) expect(Math.abs(dot(vectors[k], r[k]))).toBeCloseTo(1, 12);
    expectOrthonormal(vectors);
  });

  it("repeated eigenvalues: any orthonormal basis of the eigenspace, still exact", () => {
    const identity = symmetricEigen3([2, 0, 0, 0, 2, 0, 0, 0, 2]);
    expect(identity.values).toEqual([2, 2, 2]);
    expect(identity.vectors).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    // Eigenvalues 3, 3, 1: the λ = 1 vector is (1, −1, 0)/√2, sign fixed by its first largest component.
    const m = [2, 1, 0, 1, 2, 0, 0, 0, 3];
    const { values, vectors } = symmetricEigen3(m);
    expectClose(values, [3, 3, 1], 12);
    expectClose(vectors[2], [Math.SQRT1_2, -Math.SQRT1_2, 0], 12);
    expectOrthonormal(vectors);
    expectClose(reconstruct(values, vectors), m, 12);
  });

  it("reconstructs Vᵀ diag(λ) V ≈ M for varied symmetric matrices, signs normalised", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (let trial = 0; trial < 50; trial++) {
      const scale = 10 ** Math.round(rand() * 4);
      const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => rand() * scale);
      const m = [a, b, c, b, d, e, c, e, f];
      const { values, vectors } = symmetricEigen3(m);
      expect(values[0]).toBeGreaterThanOrEqual(values[1]);
      expect(values[1]).toBeGreaterThanOrEqual(values[2]);
      expectOrthonormal(vectors);
      reconstruct(values, vectors).forEach((x, i) => expect(Math.abs(x - m[i])).toBeLessThan(1e-12 * scale));
      for (const v of vectors) {
        const big = Math.max(...v.map(Math.abs));
        expect(v.find((x) => Math.abs(x) >= big * (1 - 1e-9))!).toBeGreaterThan(0);
      }
    }
  });

  it("refuses a matrix that is not symmetric or not finite", () => {
    expect(() => symmetricEigen3([1, 2, 0, 0, 1, 0, 0, 0, 1])).toThrow(/not symmetric at \(0, 1\)/);
    expect(() => symmetricEigen3([1, 0, 0, 0, NaN, 0, 0, 0, 1])).toThrow(RangeError);
    expect(() => symmetricEigen3([1, 0, 0])).toThrow(RangeError);
  });
});
