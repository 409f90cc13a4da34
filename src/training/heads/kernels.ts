/**
 * Clipped-gradient kernels for softmax cross-entropy on a linear head. Internally a head is a K x D matrix
 * theta (D = d + 1 with a bias: the last column multiplies a constant feature 1).
 *
 * Per-example gradient of softmax CE: g_i = (p_i - e_{y_i}) x~_i^T, a rank-1 matrix whose Frobenius norm
 * factorises: ||g_i|| = ||p_i - e_{y_i}|| * ||x~_i||. Clipping is therefore a per-example scalar
 * c_i = min(1, C / ||g_i||) and the clipped sum is (P - Y)^T diag(c) X~, accumulated row by row.
 * No per-example gradient is ever materialised.
 */
import { FeatureMatrix, LinearHead } from './types';

/** ||x~_i||^2 for every row (including the bias coordinate 1 when withBias). */
export function rowNormsSquared(features: FeatureMatrix, withBias: boolean): Float64Array {
  const { rows, cols, data } = features;
  const out = new Float64Array(rows);
  const extra = withBias ? 1 : 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += data[o + j] * data[o + j];
    out[i] = s + extra;
  }
  return out;
}

/** Clip factor min(1, C / norm); 1 for a zero norm. */
export function clipFactor(clip: number, norm: number): number {
  return norm > clip ? clip / norm : 1;
}

/**
 * Single pass for theta = 0: every p_i = (1/K, ..., 1/K), so ||g_i|| = sqrt((K-1)/K) ||x~_i|| and
 * sum_i c_i (p - e_{y_i}) x~_i^T = (1/K) T - S_k for class row k, where S_k = sum_{y_i = k} c_i x~_i and
 * T = sum_k S_k. Returns the K x D clipped gradient sum.
 *
 * Each row is read once from memory (its norm is computed on arrival). To cut the read-modify-write
 * traffic on the class accumulators, up to three rows per class are held back (by index; they stay in
 * cache) and flushed together with the fourth: one accumulator update per four feature entries.
 */
export function zeroInitClippedGradientSum(
  features: FeatureMatrix,
  labels: Int32Array,
  numClasses: number,
  withBias: boolean,
  clip: number,
): Float64Array {
  const { rows, cols, data } = features;
  const K = numClasses;
  const D = withBias ? cols + 1 : cols;
  const sums = new Float64Array(K * D);
  const pNorm = Math.sqrt((K - 1) / K);
  const extra = withBias ? 1 : 0;
  const heldRow = new Int32Array(K * 3);
  const heldClip = new Float64Array(K * 3);
  const held = new Int32Array(K);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let j = 0;
    for (; j + 3 < cols; j += 4) {
      const a = data[o + j], b = data[o + j + 1], c = data[o + j + 2], d = data[o + j + 3];
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; j < cols; j++) s0 += data[o + j] * data[o + j];
    const c = clipFactor(clip, pNorm * Math.sqrt(s0 + s1 + s2 + s3 + extra));
    const k = labels[i];
    const m = held[k];
    if (m < 3) {
      heldRow[k * 3 + m] = i;
      heldClip[k * 3 + m] = c;
      held[k] = m + 1;
      continue;
    }
    held[k] = 0;
    const o0 = heldRow[k * 3] * cols, o1 = heldRow[k * 3 + 1] * cols, o2 = heldRow[k * 3 + 2] * cols;
    const c0 = heldClip[k * 3], c1 = heldClip[k * 3 + 1], c2 = heldClip[k * 3 + 2];
    const base = k * D;
    for (let t = 0; t < cols; t++) {
      sums[base + t] += c0 * data[o0 + t] + c1 * data[o1 + t] + (c2 * data[o2 + t] + c * data[o + t]);
    }
    if (withBias) sums[base + cols] += c0 + c1 + c2 + c;
  }
  for (let k = 0; k < K; k++) {
    const base = k * D;
    for (let q = 0; q < held[k]; q++) {
      const oq = heldRow[k * 3 + q] * cols;
      const cq = heldClip[k * 3 + q];
      for (let t = 0; t < cols; t++) sums[base + t] += cq * data[oq + t];
      if (withBias) sums[base + cols] += cq;
    }
  }
  const total = new Float64Array(D);
  for (let k = 0; k < K; k++) {
    for (let t = 0; t < D; t++) total[t] += sums[k * D + t];
  }
  const grad = new Float64Array(K * D);
  const invK = 1 / K;
  for (let k = 0; k < K; k++) {
    for (let t = 0; t < D; t++) grad[k * D + t] = total[t] * invK - sums[k * D + t];
  }
  return grad;
}

export interface GradientPass {
  /** K x D sum of clipped per-example gradients over the included rows. */
  gradSum: Float64Array;
  /** Sum of (unclipped) per-example losses over the included rows (for diagnostics on public data only). */
  lossSum: number;
  included: number;
}

/**
 * Clipped gradient sum at a general theta (K x D). `normsSq` are the ||x~_i||^2 from `rowNormsSquared`.
 * `include` (optional) selects rows (Poisson sampling); rows not included contribute nothing.
 *
 * Rows go through in blocks of four: each theta entry loaded for the logits serves four independent
 * accumulators (no single add chain bounds the loop), and each gradient accumulator is read and written
 * once per four rows. Float64 throughout.
 */
export function clippedGradientSum(
  features: FeatureMatrix,
  labels: Int32Array,
  numClasses: number,
  withBias: boolean,
  theta: Float64Array,
  normsSq: Float64Array,
  clip: number,
  include?: Uint8Array,
): GradientPass {
  const { rows, cols, data } = features;
  const K = numClasses;
  const D = withBias ? cols + 1 : cols;
  const gradSum = new Float64Array(K * D);
  const block = new Int32Array(4);
  const z = new Float64Array(4 * K); // logits, then c_i (p_i - e_{y_i}), row r at r K
  let lossSum = 0;
  let included = 0;
  let filled = 0;

  const flush = () => {
    // A short last block repeats its first row; the copies get zero coefficients below.
    for (let r = filled; r < 4; r++) block[r] = block[0];
    const o0 = block[0] * cols, o1 = block[1] * cols, o2 = block[2] * cols, o3 = block[3] * cols;
    let k = 0;
    for (; k + 1 < K; k += 2) {
      const rk = k * D, rl = rk + D;
      const b = withBias ? theta[rk + cols] : 0, c = withBias ? theta[rl + cols] : 0;
      let s0 = b, s1 = b, s2 = b, s3 = b, u0 = c, u1 = c, u2 = c, u3 = c;
      for (let t = 0; t < cols; t++) {
        const w = theta[rk + t], v = theta[rl + t];
        const x0 = data[o0 + t], x1 = data[o1 + t], x2 = data[o2 + t], x3 = data[o3 + t];
        s0 += w * x0;
        s1 += w * x1;
        s2 += w * x2;
        s3 += w * x3;
        u0 += v * x0;
        u1 += v * x1;
        u2 += v * x2;
        u3 += v * x3;
      }
      z[k] = s0;
      z[K + k] = s1;
      z[2 * K + k] = s2;
      z[3 * K + k] = s3;
      z[k + 1] = u0;
      z[K + k + 1] = u1;
      z[2 * K + k + 1] = u2;
      z[3 * K + k + 1] = u3;
    }
    for (; k < K; k++) {
      const rk = k * D;
      const b = withBias ? theta[rk + cols] : 0;
      let s0 = b, s1 = b, s2 = b, s3 = b;
      for (let t = 0; t < cols; t++) {
        const w = theta[rk + t];
        s0 += w * data[o0 + t];
        s1 += w * data[o1 + t];
        s2 += w * data[o2 + t];
        s3 += w * data[o3 + t];
      }
      z[k] = s0;
      z[K + k] = s1;
      z[2 * K + k] = s2;
      z[3 * K + k] = s3;
    }
    for (let r = 0; r < 4; r++) {
      const zr = r * K;
      if (r >= filled) {
        for (let k = 0; k < K; k++) z[zr + k] = 0;
        continue;
      }
      let zmax = -Infinity;
      for (let k = 0; k < K; k++) if (z[zr + k] > zmax) zmax = z[zr + k];
      let zsum = 0;
      for (let k = 0; k < K; k++) zsum += z[zr + k] = Math.exp(z[zr + k] - zmax);
      const y = labels[block[r]];
      lossSum += Math.log(zsum) - Math.log(z[zr + y]);
      // z <- p - e_y, its norm, then the clip factor folded in
      let pn = 0;
      for (let k = 0; k < K; k++) {
        const v = z[zr + k] / zsum - (k === y ? 1 : 0);
        z[zr + k] = v;
        pn += v * v;
      }
      const c = clipFactor(clip, Math.sqrt(pn * normsSq[block[r]]));
      for (let k = 0; k < K; k++) z[zr + k] *= c;
    }
    for (k = 0; k + 1 < K; k += 2) {
      const rk = k * D, rl = rk + D;
      const a0 = z[k], a1 = z[K + k], a2 = z[2 * K + k], a3 = z[3 * K + k];
      const b0 = z[k + 1], b1 = z[K + k + 1], b2 = z[2 * K + k + 1], b3 = z[3 * K + k + 1];
      for (let t = 0; t < cols; t++) {
        const x0 = data[o0 + t], x1 = data[o1 + t], x2 = data[o2 + t], x3 = data[o3 + t];
        gradSum[rk + t] += a0 * x0 + a1 * x1 + (a2 * x2 + a3 * x3);
        gradSum[rl + t] += b0 * x0 + b1 * x1 + (b2 * x2 + b3 * x3);
      }
      if (withBias) {
        gradSum[rk + cols] += a0 + a1 + (a2 + a3);
        gradSum[rl + cols] += b0 + b1 + (b2 + b3);
      }
    }
    for (; k < K; k++) {
      const rk = k * D;
      const a0 = z[k], a1 = z[K + k], a2 = z[2 * K + k], a3 = z[3 * K + k];
      for (let t = 0; t < cols; t++) {
        gradSum[rk + t] += a0 * data[o0 + t] + a1 * data[o1 + t] + (a2 * data[o2 + t] + a3 * data[o3 + t]);
      }
      if (withBias) gradSum[rk + cols] += a0 + a1 + (a2 + a3);
    }
    filled = 0;
  };

  for (let i = 0; i < rows; i++) {
    if (include && include[i] === 0) continue;
    included++;
    block[filled++] = i;
    if (filled === 4) flush();
  }
  if (filled > 0) flush();
  return { gradSum, lossSum, included };
}

/** Splits a K x D theta into a LinearHead (weights K x d, bias K or null). */
export function thetaToHead(theta: Float64Array, numClasses: number, dim: number, withBias: boolean): LinearHead {
  const D = withBias ? dim + 1 : dim;
  const weights = new Float64Array(numClasses * dim);
  const bias = withBias ? new Float64Array(numClasses) : null;
  for (let k = 0; k < numClasses; k++) {
    weights.set(theta.subarray(k * D, k * D + dim), k * dim);
    if (bias) bias[k] = theta[k * D + dim];
  }
  return { numClasses, dim, weights, bias };
}
