// Eigen-decomposition of a symmetric 3×3 matrix: the RGB covariance's principal components, whose
// directions and variances drive the paper's PCA lighting augmentation (§4.1).

type Vec3 = [number, number, number];

/**
 * Eigenvalues (descending) and unit eigenvectors (rows) of a symmetric 3 × 3 matrix given row-major,
 * by cyclic Jacobi rotations: for 3 × 3 it converges in a handful of sweeps to full precision and,
 * unlike the closed-form cubic, stays accurate for repeated eigenvalues. Each vector's sign is fixed
 * so that its largest component (the first, among equals) is positive, so a result is reproducible.
 */
export function symmetricEigen3(m: readonly number[]): { values: Vec3; vectors: Vec3[] } {
  if (m.length !== 9 || !m.every(Number.isFinite))
    throw new RangeError("symmetricEigen3 needs 9 finite numbers");
  const scale = Math.max(...m.map(Math.abs));
  for (let r = 0; r < 3; r++) {
    const [i, j] = [UPPER_ROW[r], UPPER_COL[r]];
    if (Math.abs(m[3 * i + j] - m[3 * j + i]) > 1e-9 * scale) {
      throw new RangeError(`matrix is not symmetric at (${i}, ${j})`);
    }
  }
  const a = [0, 1, 2].map((i) => [0, 1, 2].map((j) => (m[3 * i + j] + m[3 * j + i]) / 2));
  const v = [0, 1, 2].map((i) => [0, 1, 2].map((j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 64; sweep++) {
    const off = a[0][1] ** 2 + a[0][2] ** 2 + a[1][2] ** 2;
    const diag = a[0][0] ** 2 + a[1][1] ** 2 + a[2][2] ** 2;
    if (off === 0 || off <= 1e-36 * diag) break;
    for (let r = 0; r < 3; r++) {
      const [p, q] = [UPPER_ROW[r], UPPER_COL[r]];
      if (a[p][q] === 0) continue;
      // The rotation that zeroes a[p][q] (Numerical Recipes §11.1, the smaller angle): a ← Jᵀ a J, v ← v J.
      const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
      const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      for (const row of a) rotate(row, p, q, c, s);
      for (let k = 0; k < 3; k++) [a[p][k], a[q][k]] = [c * a[p][k] - s * a[q][k], s * a[p][k] + c * a[q][k]];
      for (const row of v) rotate(row, p, q, c, s);
    }
  }
  const order = [0, 1, 2].sort((x, y) => a[y][y] - a[x][x] || x - y);
  const vectors = order.map((j) => {
    const col: Vec3 = [v[0][j], v[1][j], v[2][j]];
    const big = Math.max(...col.map(Math.abs));
    const lead = col.find((x) => Math.abs(x) >= big * (1 - 1e-9))!;
    return (lead < 0 ? col.map((x) => -x) : col) as Vec3;
  });
  return { values: order.map((j) => a[j][j]) as Vec3, vectors };
}

const UPPER_ROW = [0, 0, 1];
const UPPER_COL = [1, 2, 2];

/** Columns p and q of one row times the plane rotation [[c, s], [−s, c]]. */
function rotate(row: number[], p: number, q: number, c: number, s: number): void {
  [row[p], row[q]] = [c * row[p] - s * row[q], s * row[p] + c * row[q]];
}
