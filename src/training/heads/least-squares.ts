/**
 * LEAST_SQUARES (Mehta, Krichene, Thakurta, Kurakin, Cutkosky 2023): DP ridge regression of one-hot labels
 * on clipped features. The default method.
 *
 *   x-bar_i = x~_i min(1, C / ||x~_i||)                       (x~ = (x, 1) with a bias)
 *   release 1: A = X-bar^T X-bar + E,  E symmetric, upper-triangle entries (diagonal included) iid
 *              N(0, (sigma C^2)^2), mirrored                   sensitivity C^2 (add/remove one example
 *                                                              changes the upper triangle by <= ||x-bar||^2)
 *   release 2: B = X-bar^T Y + N(0, (sigma C)^2) per entry     sensitivity C
 *   Theta = (A_+ + lambda I)^{-1} B,  A_+ = A with negative eigenvalues clipped to 0 (eigendecomposition,
 *           not Cholesky: the noise's spectral norm can exceed lambda, so A + lambda I may be indefinite).
 *
 * Both releases have noise multiplier sigma relative to their own sensitivity, so the events are
 * [gaussian(sigma), gaussian(sigma)]. The accountant composes them; together they are exactly one Gaussian
 * mechanism with noise multiplier sigma / sqrt(2) (mu-GDP: mu^2 = 2 / sigma^2). To target an effective
 * multiplier s_eff, use sigma = sqrt(2) s_eff (`leastSquaresNoiseMultiplier`).
 *
 * Ridge default: lambda = 10 sigma C^2 (i.e. 10 sigma for unit-norm features with C = 1, the scale in
 * METHOD.md); in non-private mode the default is 1e-3 C^2.
 *
 * Noise order: release 1 draws D(D+1)/2 values (upper triangle, row-major: (0,0), (0,1), ..., (0,D-1),
 * (1,1), ...), then release 2 draws K*D values (row-major K x D, class k row, bias coordinate last).
 */
import { checkData, checkPrivacy, CheckedPrivacy, drawGaussian, invalidOption } from './guard';
import { clipFactor, thetaToHead } from './kernels';
import { eigenRidgeSolve, mirrorUpper, symmetricEigen } from './linalg';
import { shardedClippedGram } from './sharded-gram';
import { FeatureMatrix, HeadResult, PrivacyEvent, PrivacyOptions } from './types';

export interface LeastSquaresOptions extends PrivacyOptions {
  numClasses: number;
  /** Ridge lambda (> 0). Default 10 * sigma * C^2 (non-private: 1e-3 * C^2). */
  ridge?: number;
  /** Append a constant feature 1 (learned bias). Default false. */
  fitBias?: boolean;
  /** Threads for the Gram accumulation (gramThreads picks a count; default 1). */
  threads?: number;
}

/** Noise multiplier of the single Gaussian equivalent to LS's two releases at multiplier sigma: sigma / sqrt(2). */
export function leastSquaresEffectiveSigma(sigma: number): number {
  return sigma / Math.SQRT2;
}

/** The per-release sigma that makes LS's two releases together equal one Gaussian of `effectiveSigma`. */
export function leastSquaresNoiseMultiplier(effectiveSigma: number): number {
  return effectiveSigma * Math.SQRT2;
}

export interface LeastSquaresStatistics {
  /** D x D, symmetric (both triangles filled). */
  gram: Float64Array;
  /** K x D: row k = sum of clipped features of class k. */
  classSums: Float64Array;
  dim: number;
}

/** The clipped (noiseless) sufficient statistics. Exposed for sharded reduction and tests. */
export function leastSquaresStatistics(
  features: FeatureMatrix,
  labels: Int32Array,
  numClasses: number,
  clip: number,
  withBias: boolean,
  threads = 1,
): LeastSquaresStatistics {
  const { rows, cols, data } = features;
  const D = withBias ? cols + 1 : cols;
  const scale = new Float64Array(rows);
  const classSums = new Float64Array(numClasses * D);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let s = withBias ? 1 : 0;
    for (let j = 0; j < cols; j++) s += data[o + j] * data[o + j];
    const c = clipFactor(clip, Math.sqrt(s));
    scale[i] = c;
    const base = labels[i] * D;
    for (let j = 0; j < cols; j++) classSums[base + j] += c * data[o + j];
    if (withBias) classSums[base + cols] += c;
  }
  const gram = shardedClippedGram(data, rows, cols, scale, withBias, threads);
  mirrorUpper(gram, D);
  return { gram, classSums, dim: D };
}

export function trainLeastSquares(features: FeatureMatrix, labels: Int32Array, opts: LeastSquaresOptions): HeadResult {
  const priv = checkPrivacy(opts);
  checkData(features, labels, opts.numClasses);
  leastSquaresRidge(opts, priv); // refused before the expensive statistics
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw invalidOption('threads must be an integer >= 1', { threads });
  const stats = leastSquaresStatistics(features, labels, opts.numClasses, priv.clip, opts.fitBias === true, threads);
  return release(stats.gram, stats.classSums, stats.dim, opts, priv);
}

/**
 * LEAST_SQUARES from precomputed noiseless statistics: the two noisy releases and the ridge solve of
 * `trainLeastSquares` (the same code), starting from `leastSquaresStatistics(...)` instead of the features.
 *
 * The clipped Gram matrix is the expensive part (n D^2 / 2 multiply-adds); it depends on the data only, not
 * on the noise. Computing it once and calling this function with fresh noise per draw is the same mechanism
 * as calling `trainLeastSquares` each time, at a fraction of the cost: for experiments over many noise draws
 * or noise multipliers, and for sharded reduction (sum shard statistics, then release once). `stats` is
 * not modified.
 *
 * Privacy: the statistics must be those of the clipped data with the same clip norm
 * (`leastSquaresStatistics(features, labels, K, clipNorm, fitBias)`), otherwise the sensitivity analysis
 * does not hold.
 */
export function leastSquaresFromStatistics(stats: LeastSquaresStatistics, opts: LeastSquaresOptions): HeadResult {
  const priv = checkPrivacy(opts);
  const K = opts.numClasses;
  const D = stats.dim;
  const d = opts.fitBias === true ? D - 1 : D;
  if (!Number.isInteger(K) || K < 2) throw invalidOption('numClasses must be an integer >= 2', { numClasses: K });
  if (d < 1 || stats.gram.length !== D * D || stats.classSums.length !== K * D) {
    throw invalidOption('statistics do not match numClasses / fitBias', { dim: D, gram: stats.gram.length, classSums: stats.classSums.length });
  }
  return release(Float64Array.from(stats.gram), Float64Array.from(stats.classSums), D, opts, priv);
}

/** The ridge lambda: as given, else 10 sigma C^2 (non-private: 1e-3 C^2). */
function leastSquaresRidge(opts: LeastSquaresOptions, priv: CheckedPrivacy): number {
  const clip = priv.clip;
  if (!Number.isFinite(clip) && opts.ridge === undefined) {
    throw invalidOption('LEAST_SQUARES with an infinite clip norm needs an explicit ridge');
  }
  const ridge = opts.ridge ?? (priv.isPrivate ? 10 * priv.sigma * clip * clip : 1e-3 * clip * clip);
  if (!(ridge > 0) || !Number.isFinite(ridge)) throw invalidOption('ridge must be a finite number > 0', { ridge });
  return ridge;
}

/** The two noisy releases (into `gram` and `classSums`, which it owns) and the ridge solve. */
function release(gram: Float64Array, classSums: Float64Array, D: number, opts: LeastSquaresOptions, priv: CheckedPrivacy): HeadResult {
  const K = opts.numClasses;
  const withBias = opts.fitBias === true;
  const clip = priv.clip;
  const ridge = leastSquaresRidge(opts, priv);
  const events: PrivacyEvent[] = [];
  if (priv.isPrivate) {
    const gramNoise = drawGaussian(priv.noise!, (D * (D + 1)) / 2, priv.sigma * clip * clip);
    let t = 0;
    for (let i = 0; i < D; i++) {
      for (let j = i; j < D; j++) {
        const e = gramNoise[t++];
        gram[i * D + j] += e;
        if (j !== i) gram[j * D + i] += e;
      }
    }
    events.push({ type: 'gaussian', noise_multiplier: priv.sigma, count: 1 });
    const sumNoise = drawGaussian(priv.noise!, K * D, priv.sigma * clip);
    for (let u = 0; u < K * D; u++) classSums[u] += sumNoise[u];
    events.push({ type: 'gaussian', noise_multiplier: priv.sigma, count: 1 });
  }

  // Post-processing only from here on.
  const theta = eigenRidgeSolve(symmetricEigen(gram, D), classSums, K, ridge); // K x D rows: theta_k
  return {
    method: 'LEAST_SQUARES',
    ...thetaToHead(theta, K, withBias ? D - 1 : D, withBias),
    events,
    releases: events.length,
    private: priv.isPrivate,
    noiseKind: priv.noiseKind,
    noiseMultiplier: priv.sigma,
    clipNorm: clip,
  };
}
