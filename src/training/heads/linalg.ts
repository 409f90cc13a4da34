/**
 * Dense linear algebra for the heads, in float64, written for row-major Float64Arrays with contiguous inner
 * loops (no tensor library).
 *
 * - `symmetricEigen`: Householder reduction to tridiagonal form followed by the implicit QL algorithm with
 *   Wilkinson-type shifts. Eigenvectors are kept as ROWS (row j is the eigenvector of values[j]) so that
 *   every Givens rotation of the QL phase touches two contiguous rows. O(d^3); d = 577 takes well under a
 *   second, d = 1281 a few seconds.
 * - `projectPsd`: V max(L, 0) V^T.
 * - `accumulateClippedGram`: the upper triangle of sum_i c_i^2 x~_i x~_i^T in cache-sized row panels.
 */
import { HeadError } from './types';

export interface SymmetricEigen {
  n: number;
  /** Ascending eigenvalues. */
  values: Float64Array;
  /** n x n row-major; row j is the unit eigenvector for values[j]. */
  vectors: Float64Array;
}

const EPS = 2 ** -52;

/**
 * Eigendecomposition of a symmetric n x n matrix (row-major; only the upper triangle is read). The input is
 * not modified.
 */
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: matrix has ${matrix.length} entries, expected ${n * n}`);
  const a = new Float64Array(n * n);
  // Work on the upper triangle; copy it (the lower triangle of `a` is scratch).
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) a[i * n + j] = matrix[i * n + j];
  }
  const diag = new Float64Array(n);
  const off = new Float64Array(n); // off[i] couples i and i+1; off[n-1] = 0
  const betas = new Float64Array(n);
  tridiagonalize(a, n, diag, off, betas);
  const vt = householderQt(a, n, betas);
  tridiagonalQl(diag, off, vt, n);
  // Sort ascending, permuting rows.
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => diag[p] - diag[q]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    values[r] = diag[order[r]];
    vectors.set(vt.subarray(order[r] * n, order[r] * n + n), r * n);
  }
  return { n, values, vectors };
}

/**
 * Householder tridiagonalisation of the symmetric matrix held in the upper triangle of `a`.
 * Step k reflects row k's tail x = a[k, k+1:] to alpha e_1 with H_k = I - beta v v^T (v stored in place of
 * row k's tail), and applies H_k from both sides to the trailing block as a symmetric rank-2 update of its
 * upper triangle. Afterwards T = Q^T A Q with Q = H_0 H_1 ... H_{n-3}.
 */
function tridiagonalize(a: Float64Array, n: number, diag: Float64Array, off: Float64Array, betas: Float64Array): void {
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const rk = k * n;
    diag[k] = a[rk + k];
    // Scale for robustness against overflow/underflow.
    let scale = 0;
    for (let i = k + 1; i < n; i++) scale = Math.max(scale, Math.abs(a[rk + i]));
    if (scale === 0) {
      off[k] = 0;
      betas[k] = 0;
      continue;
    }
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) {
      const t = a[rk + i] / scale;
      norm2 += t * t;
    }
    const x0 = a[rk + k + 1];
    const alpha = -(x0 >= 0 ? 1 : -1) * Math.sqrt(norm2) * scale;
    // v = x - alpha e1; v^T v = 2(|x|^2 - alpha x0) -> beta = 1 / (|x|^2 - alpha x0)
    const denom = norm2 * scale * scale - alpha * x0;
    a[rk + k + 1] = x0 - alpha;
    off[k] = alpha;
    if (denom === 0) {
      betas[k] = 0;
      continue;
    }
    const beta = 1 / denom;
    betas[k] = beta;
    // p = beta * A22 v using the upper triangle only (symv).
    for (let i = k + 1; i < n; i++) p[i] = 0;
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vi = a[rk + i];
      let acc = a[ri + i] * vi;
      for (let j = i + 1; j < n; j++) {
        const aij = a[ri + j];
        acc += aij * a[rk + j];
        p[j] += aij * vi;
      }
      p[i] += acc;
    }
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      p[i] *= beta;
      pv += p[i] * a[rk + i];
    }
    // w = p - (beta/2)(p^T v) v, stored in p.
    const half = 0.5 * beta * pv;
    for (let i = k + 1; i < n; i++) p[i] -= half * a[rk + i];
    // A22 -= v w^T + w v^T (upper triangle).
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vi = a[rk + i];
      const wi = p[i];
      for (let j = i; j < n; j++) a[ri + j] -= vi * p[j] + wi * a[rk + j];
    }
  }
  if (n >= 2) {
    diag[n - 2] = a[(n - 2) * n + n - 2];
    off[n - 2] = a[(n - 2) * n + n - 1];
  }
  diag[n - 1] = a[(n - 1) * n + n - 1];
  off[n - 1] = 0;
}

/**
 * Forms Q^T (row-major) from the stored reflectors by backward accumulation: Q = H_0 (H_1 (... H_{n-3})), each
 * step touching only the trailing block that is not yet identity; then transposes.
 */
function householderQt(a: Float64Array, n: number, betas: Float64Array): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const u = new Float64Array(n);
  for (let k = n - 3; k >= 0; k--) {
    const beta = betas[k];
    if (beta === 0) continue;
    const rk = k * n;
    const lo = k + 1;
    // u = v^T Q[lo:, lo:]
    for (let j = lo; j < n; j++) u[j] = 0;
    for (let i = lo; i < n; i++) {
      const vi = a[rk + i];
      if (vi === 0) continue;
      const ri = i * n;
      for (let j = lo; j < n; j++) u[j] += vi * q[ri + j];
    }
    // Q[lo:, lo:] -= beta v u
    for (let i = lo; i < n; i++) {
      const f = beta * a[rk + i];
      if (f === 0) continue;
      const ri = i * n;
      for (let j = lo; j < n; j++) q[ri + j] -= f * u[j];
    }
  }
  // transpose in place
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const t = q[i * n + j];
      q[i * n + j] = q[j * n + i];
      q[j * n + i] = t;
    }
  }
  return q;
}

/**
 * Implicit QL iteration with shifts on the symmetric tridiagonal (diag, off). Each Givens rotation acting on
 * eigen-coordinates i, i+1 is applied to rows i and i+1 of `vt` (which starts as Q^T and ends as V^T).
 */
function tridiagonalQl(diag: Float64Array, off: Float64Array, vt: Float64Array, n: number): void {
  // Deflation threshold relative to the matrix norm (not to the neighbouring diagonal entries): with a
  // purely local test, clusters of (near-)zero eigenvalues, as in rank-deficient Gram matrices, never
  // deflate. An absolute threshold EPS * ||T|| keeps the result backward stable.
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(diag[i]) + Math.abs(off[i]) + (i > 0 ? Math.abs(off[i - 1]) : 0));
  const tol = EPS * norm;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        if (Math.abs(off[m]) <= tol) break;
      }
      if (m === l) break;
      if (++iterations > 60) {
        throw new HeadError('EIGEN_NO_CONVERGENCE', `QL iteration did not converge for eigenvalue ${l}`);
      }
      // Wilkinson-type shift from the leading 2x2 block.
      let g = (diag[l + 1] - diag[l]) / (2 * off[l]);
      let r = Math.hypot(g, 1);
      g = diag[m] - diag[l] + off[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * off[i];
        const b = c * off[i];
        r = Math.hypot(f, g);
        off[i + 1] = r;
        if (r === 0) {
          diag[i + 1] -= p;
          off[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = diag[i + 1] - p;
        r = (diag[i] - g) * s + 2 * c * b;
        p = s * r;
        diag[i + 1] = g + p;
        g = c * r - b;
        // rotate rows i and i+1 of vt
        const ri = i * n;
        const ri1 = ri + n;
        for (let t = 0; t < n; t++) {
          const x1 = vt[ri1 + t];
          const x0 = vt[ri + t];
          vt[ri1 + t] = s * x0 + c * x1;
          vt[ri + t] = c * x0 - s * x1;
        }
      }
      if (underflow) continue;
      diag[l] -= p;
      off[l] = g;
      off[m] = 0;
    }
  }
}

/** Reconstructs V f(L) V^T for an eigendecomposition and a function of the eigenvalues. */
export function reconstructFromEigen(eig: SymmetricEigen, f: (value: number) => number = (v) => v): Float64Array {
  const { n, values, vectors } = eig;
  const out = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const lam = f(values[j]);
    if (lam === 0) continue;
    const rj = j * n;
    for (let a = 0; a < n; a++) {
      const va = lam * vectors[rj + a];
      if (va === 0) continue;
      const ra = a * n;
      for (let b = 0; b < n; b++) out[ra + b] += va * vectors[rj + b];
    }
  }
  return out;
}

/** Projection of a symmetric matrix onto the PSD cone (nearest in Frobenius norm): V max(L, 0) V^T. */
export function projectPsd(matrix: Float64Array, n: number): Float64Array {
  return reconstructFromEigen(symmetricEigen(matrix, n), (v) => (v > 0 ? v : 0));
}

/** Copies the upper triangle of a row-major n x n matrix onto its lower triangle, in place. */
export function mirrorUpper(m: Float64Array, n: number): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) m[j * n + i] = m[i * n + j];
  }
  return m;
}

/**
 * Solves (A_+ + ridge I) X = B for every row b of `rhsRows` (K x n), given an eigendecomposition of A, where
 * A_+ clips negative eigenvalues to 0. Returns the K x n solutions as rows. ridge must be > 0.
 */
export function eigenRidgeSolve(eig: SymmetricEigen, rhsRows: Float64Array, k: number, ridge: number): Float64Array {
  const { n, values, vectors } = eig;
  if (!(ridge > 0)) throw new Error('eigenRidgeSolve: ridge must be > 0');
  const out = new Float64Array(k * n);
  for (let j = 0; j < n; j++) {
    const inv = 1 / ((values[j] > 0 ? values[j] : 0) + ridge);
    const rj = j * n;
    for (let c = 0; c < k; c++) {
      const rc = c * n;
      let dot = 0;
      for (let t = 0; t < n; t++) dot += vectors[rj + t] * rhsRows[rc + t];
      const coef = dot * inv;
      for (let t = 0; t < n; t++) out[rc + t] += coef * vectors[rj + t];
    }
  }
  return out;
}

/**
 * Adds the upper triangle of sum_i (scale_i x~_i)(scale_i x~_i)^T to `gram` (D x D row-major, D = d + 1 when
 * `withBias`, where x~_i = (x_i, 1)). Rows are processed in panels: a panel of PANEL rows is transposed into
 * a D x PANEL float64 buffer, then 2x4 blocks of the upper triangle are accumulated as dot products in
 * registers, so the D x D accumulator is touched once per panel, never once per example.
 */
export function accumulateClippedGram(
  data: Float32Array | Float64Array,
  rows: number,
  cols: number,
  scale: Float64Array,
  withBias: boolean,
  gram: Float64Array,
  rowStart = 0,
  rowEnd = rows,
): void {
  const D = withBias ? cols + 1 : cols;
  const PANEL = 64;
  const panel = new Float64Array(D * PANEL);
  for (let r0 = rowStart; r0 < rowEnd; r0 += PANEL) {
    const R = Math.min(PANEL, rowEnd - r0);
    if (R < PANEL) panel.fill(0);
    for (let r = 0; r < R; r++) {
      const c = scale[r0 + r];
      const o = (r0 + r) * cols;
      for (let j = 0; j < cols; j++) panel[j * PANEL + r] = c * data[o + j];
      if (withBias) panel[cols * PANEL + r] = c;
    }
    // Pairs (a, b) with a <= b: rows a, a+1 against b .. b+3.
    let a = 0;
    for (; a + 1 < D; a += 2) {
      const pa0 = a * PANEL;
      const pa1 = pa0 + PANEL;
      const ga0 = a * D;
      const ga1 = ga0 + D;
      // diagonal 2x2 block
      {
        let s00 = 0, s01 = 0, s11 = 0;
        for (let r = 0; r < PANEL; r++) {
          const x0 = panel[pa0 + r];
          const x1 = panel[pa1 + r];
          s00 += x0 * x0;
          s01 += x0 * x1;
          s11 += x1 * x1;
        }
        gram[ga0 + a] += s00;
        gram[ga0 + a + 1] += s01;
        gram[ga1 + a + 1] += s11;
      }
      let b = a + 2;
      for (; b + 3 < D; b += 4) {
        const pb0 = b * PANEL;
        const pb1 = pb0 + PANEL;
        const pb2 = pb1 + PANEL;
        const pb3 = pb2 + PANEL;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        for (let r = 0; r < PANEL; r++) {
          const x0 = panel[pa0 + r];
          const x1 = panel[pa1 + r];
          const y0 = panel[pb0 + r];
          const y1 = panel[pb1 + r];
          const y2 = panel[pb2 + r];
          const y3 = panel[pb3 + r];
          s00 += x0 * y0;
          s01 += x0 * y1;
          s02 += x0 * y2;
          s03 += x0 * y3;
          s10 += x1 * y0;
          s11 += x1 * y1;
          s12 += x1 * y2;
          s13 += x1 * y3;
        }
        gram[ga0 + b] += s00;
        gram[ga0 + b + 1] += s01;
        gram[ga0 + b + 2] += s02;
        gram[ga0 + b + 3] += s03;
        gram[ga1 + b] += s10;
        gram[ga1 + b + 1] += s11;
        gram[ga1 + b + 2] += s12;
        gram[ga1 + b + 3] += s13;
      }
      for (; b < D; b++) {
        const pb = b * PANEL;
        let s0 = 0, s1 = 0;
        for (let r = 0; r < PANEL; r++) {
          const y = panel[pb + r];
          s0 += panel[pa0 + r] * y;
          s1 += panel[pa1 + r] * y;
        }
        gram[ga0 + b] += s0;
        gram[ga1 + b] += s1;
      }
    }
    if (a < D) {
      // last row when D is odd: only the diagonal entry remains
      const pa = a * PANEL;
      let s = 0;
      for (let r = 0; r < PANEL; r++) s += panel[pa + r] * panel[pa + r];
      gram[a * D + a] += s;
    }
  }
}
