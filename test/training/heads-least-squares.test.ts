import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accuracy,
  leastSquaresEffectiveSigma,
  leastSquaresNoiseMultiplier,
  leastSquaresStatistics,
  projectPsd,
  reconstructFromEigen,
  symmetricEigen,
  trainLeastSquares,
  trainSingleStep,
} from '../../src/training/heads';
import { gaussianMixture, maxAbsDiff, randomSymmetric, RecordingNoise } from './heads-helpers';

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) out[i * n + j] += a[i * n + k] * b[k * n + j];
  return out;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Independent dense solve (Gaussian elimination with partial pivoting) of A X = B, B n x m row-major. */
function solve(aIn: Float64Array, bIn: Float64Array, n: number, m: number): Float64Array {
  const a = Float64Array.from(aIn);
  const b = Float64Array.from(bIn);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[p * n + c])) p = r;
    for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j], a[c * n + j]];
    for (let j = 0; j < m; j++) [b[c * m + j], b[p * m + j]] = [b[p * m + j], b[c * m + j]];
    for (let r = c + 1; r < n; r++) {
      const f = a[r * n + c] / a[c * n + c];
      for (let j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
      for (let j = 0; j < m; j++) b[r * m + j] -= f * b[c * m + j];
    }
  }
  const x = new Float64Array(n * m);
  for (let r = n - 1; r >= 0; r--) {
    for (let j = 0; j < m; j++) {
      let s = b[r * m + j];
      for (let k = r + 1; k < n; k++) s -= a[r * n + k] * x[k * m + j];
      x[r * m + j] = s / a[r * n + r];
    }
  }
  return x;
}

describe('symmetric eigensolver', () => {
  for (const n of [1, 2, 3, 50, 300]) {
    it(`reconstructs random symmetric matrices (n = ${n}) with orthonormal vectors`, () => {
      const a = randomSymmetric(n, n + 1);
      const eig = symmetricEigen(a, n);
      const scale = Math.max(1, maxAbs(eig.values));
      assert.ok(maxAbsDiff(reconstructFromEigen(eig), a) < 1e-12 * n * scale, 'reconstruction error');
      for (let i = 1; i < n; i++) assert.ok(eig.values[i - 1] <= eig.values[i]);
      // V V^T = I
      const v = eig.vectors;
      let worst = 0;
      for (let i = 0; i < n; i++) {
        for (let j = i; j < Math.min(n, i + 40); j++) {
          let s = 0;
          for (let t = 0; t < n; t++) s += v[i * n + t] * v[j * n + t];
          worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
        }
      }
      assert.ok(worst < 1e-12 * n, `orthogonality ${worst}`);
    });
  }

  it('handles degenerate spectra (identity, rank-1, diagonal)', () => {
    const n = 20;
    const eye = new Float64Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    assert.ok(maxAbsDiff(symmetricEigen(eye, n).values, new Float64Array(n).fill(1)) < 1e-15);
    const u = Float64Array.from({ length: n }, (_, i) => i - 7);
    const r1 = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r1[i * n + j] = u[i] * u[j];
    const e = symmetricEigen(r1, n);
    const uu = u.reduce((s, x) => s + x * x, 0);
    assert.ok(Math.abs(e.values[n - 1] - uu) < 1e-10 * uu);
    assert.ok(maxAbs(e.values.subarray(0, n - 1)) < 1e-10 * uu);
    assert.ok(maxAbsDiff(reconstructFromEigen(e), r1) < 1e-10 * uu);
  });

  it('converges on rank-deficient Gram matrices (clusters of zero eigenvalues)', () => {
    for (const [n, rank] of [
      [120, 10],
      [301, 40],
    ]) {
      const b = randomSymmetric(Math.max(n, rank), n * 3 + rank).subarray(0, rank * n); // rank x n
      const g = new Float64Array(n * n);
      for (let r = 0; r < rank; r++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g[i * n + j] += b[r * n + i] * b[r * n + j];
      const e = symmetricEigen(g, n);
      const scale = e.values[n - 1];
      assert.ok(maxAbsDiff(reconstructFromEigen(e), g) < 1e-12 * n * scale);
      assert.ok(maxAbs(e.values.subarray(0, n - rank)) < 1e-12 * n * scale);
      assert.ok(e.values[n - rank] > 1e-3 * scale);
    }
  });

  it('PSD projection: clips negative eigenvalues, is the identity on PSD matrices, idempotent', () => {
    const n = 40;
    const a = randomSymmetric(n, 5);
    const p = projectPsd(a, n);
    const ep = symmetricEigen(p, n);
    const scale = maxAbs(symmetricEigen(a, n).values);
    assert.ok(ep.values[0] > -1e-12 * scale, `min eigenvalue ${ep.values[0]}`);
    // A - P is negative semidefinite and orthogonal to P (Moreau decomposition): trace((A - P) P) = 0
    const diff = a.map((v, i) => v - p[i]);
    assert.ok(symmetricEigen(diff, n).values[n - 1] < 1e-12 * scale);
    const prod = matmul(diff, p, n);
    let tr = 0;
    for (let i = 0; i < n; i++) tr += prod[i * n + i];
    assert.ok(Math.abs(tr) < 1e-9 * scale * scale);
    assert.ok(maxAbsDiff(projectPsd(p, n), p) < 1e-11 * scale);
    // a Gram matrix is already PSD
    const b = randomSymmetric(n, 6);
    const g = matmul(b, b, n);
    assert.ok(maxAbsDiff(projectPsd(g, n), g) < 1e-11 * maxAbs(g));
  });
});

describe('LEAST_SQUARES', () => {
  it('clipped statistics equal the direct X-bar^T X-bar and class sums (odd D with bias)', () => {
    const f = gaussianMixture(150, 12, 4, 2, 2, false); // D = 13
    const clip = 0.6;
    const s = leastSquaresStatistics(f.features, f.labels, 4, clip, true);
    const D = 13;
    const gram = new Float64Array(D * D);
    const sums = new Float64Array(4 * D);
    for (let i = 0; i < 150; i++) {
      const x = [...Array.from(f.features.data.subarray(i * 12, i * 12 + 12)), 1];
      const nrm = Math.sqrt(x.reduce((a, v) => a + v * v, 0));
      const xb = x.map((v) => v * Math.min(1, clip / nrm));
      for (let a = 0; a < D; a++) {
        sums[f.labels[i] * D + a] += xb[a];
        for (let b = 0; b < D; b++) gram[a * D + b] += xb[a] * xb[b];
      }
    }
    assert.ok(maxAbsDiff(s.gram, gram) < 1e-12);
    assert.ok(maxAbsDiff(s.classSums, sums) < 1e-12);
  });

  it('with sigma = 0 and a small ridge it matches ordinary ridge regression on one-hot labels', () => {
    const k = 4;
    const d = 16;
    const f = gaussianMixture(300, d, k, 9, 1.5); // unit rows: C = 2 clips nothing
    const ridge = 1e-3;
    const r = trainLeastSquares(f.features, f.labels, { numClasses: k, noiseMultiplier: 0, nonPrivate: true, clipNorm: 2, ridge, fitBias: true });
    assert.equal(r.private, false);
    assert.equal(r.events.length, 0);
    const D = d + 1;
    const a = new Float64Array(D * D);
    const b = new Float64Array(D * k);
    for (let i = 0; i < 300; i++) {
      const x = [...Array.from(f.features.data.subarray(i * d, i * d + d)), 1];
      for (let p = 0; p < D; p++) {
        b[p * k + f.labels[i]] += x[p];
        for (let q = 0; q < D; q++) a[p * D + q] += x[p] * x[q];
      }
    }
    for (let p = 0; p < D; p++) a[p * D + p] += ridge;
    const theta = solve(a, b, D, k); // D x k
    for (let c = 0; c < k; c++) {
      for (let p = 0; p < d; p++) assert.ok(Math.abs(r.weights[c * d + p] - theta[p * k + c]) < 1e-8 * (1 + Math.abs(theta[p * k + c])));
      assert.ok(Math.abs(r.bias![c] - theta[d * k + c]) < 1e-8 * (1 + Math.abs(theta[d * k + c])));
    }
  });

  it('is well above chance on a separable Gaussian mixture at moderate sigma, even when noise exceeds the ridge', () => {
    const k = 10;
    const d = 64;
    // overlapping classes: the noiseless ridge classifier scores ~0.75 here
    const train = gaussianMixture(5000, d, k, 21, 0.3);
    const test = gaussianMixture(2000, d, k, 21, 0.3, true, 5); // same class means, different examples
    const sigma = 4;
    const r = trainLeastSquares(train.features, train.labels, {
      numClasses: k,
      noiseMultiplier: sigma,
      clipNorm: 1,
      noise: new RecordingNoise(8),
      allowInsecureNoise: true,
    });
    const acc = accuracy(r, test.features, test.labels);
    assert.ok(acc > 0.6, `accuracy ${acc} (chance 0.1)`);
    // the noise's spectral norm (~ 2 sigma sqrt(D) = 64) exceeds the ridge 10 sigma = 40 here: eigen, not Cholesky
    // the same data through the single step at the same sigma also beats chance
    const s = trainSingleStep(train.features, train.labels, {
      numClasses: k,
      noiseMultiplier: sigma,
      clipNorm: 1,
      declaredSize: 5000,
      noise: new RecordingNoise(8),
      allowInsecureNoise: true,
    });
    assert.ok(accuracy(s, test.features, test.labels) > 0.5);
  });

  it('effective sigma of the two releases is sigma / sqrt(2)', () => {
    assert.ok(Math.abs(leastSquaresEffectiveSigma(2) - Math.SQRT2) < 1e-15);
    assert.ok(Math.abs(leastSquaresNoiseMultiplier(leastSquaresEffectiveSigma(3.7)) - 3.7) < 1e-15);
  });
});
