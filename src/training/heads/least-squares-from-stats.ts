/**
 * LEAST_SQUARES from precomputed noiseless statistics: the two noisy releases and the ridge solve of
 * `trainLeastSquares`, starting from `leastSquaresStatistics(...)` instead of the features.
 *
 * The clipped Gram matrix is the expensive part (n D^2 / 2 multiply-adds); it depends on the data only, not
 * on the noise. Computing it once and calling this function with fresh noise per draw is the same mechanism
 * as calling `trainLeastSquares` each time (identical noise order, scales, PSD handling, ridge default and
 * events), at a fraction of the cost: for experiments over many noise draws or noise multipliers, and for
 * sharded reduction (sum shard statistics, then release once). `stats` is not modified.
 *
 * Privacy: exactly as `trainLeastSquares` — the statistics must be those of the clipped data with the same
 * clip norm (`leastSquaresStatistics(features, labels, K, clipNorm, fitBias)`), otherwise the sensitivity
 * analysis does not hold. Release 1: D(D+1)/2 draws of std sigma C^2 (upper triangle, row-major), release 2:
 * K*D draws of std sigma C.
 */
import { checkPrivacy, drawGaussian, invalidOption } from './guard';
import { thetaToHead } from './kernels';
import type { LeastSquaresOptions, LeastSquaresStatistics } from './least-squares';
import { eigenRidgeSolve, symmetricEigen } from './linalg';
import { HeadResult, PrivacyEvent } from './types';

export function leastSquaresFromStatistics(stats: LeastSquaresStatistics, opts: LeastSquaresOptions): HeadResult {
  const priv = checkPrivacy(opts);
  const K = opts.numClasses;
  const D = stats.dim;
  const withBias = opts.fitBias === true;
  const d = withBias ? D - 1 : D;
  if (!Number.isInteger(K) || K < 2) throw invalidOption('numClasses must be an integer >= 2', { numClasses: K });
  if (d < 1 || stats.gram.length !== D * D || stats.classSums.length !== K * D) {
    throw invalidOption('statistics do not match numClasses / fitBias', { dim: D, gram: stats.gram.length, classSums: stats.classSums.length });
  }
  const clip = priv.clip;
  if (!Number.isFinite(clip) && opts.ridge === undefined) {
    throw invalidOption('LEAST_SQUARES with an infinite clip norm needs an explicit ridge');
  }
  const ridge = opts.ridge ?? (priv.isPrivate ? 10 * priv.sigma * clip * clip : 1e-3 * clip * clip);
  if (!(ridge > 0) || !Number.isFinite(ridge)) throw invalidOption('ridge must be a finite number > 0', { ridge });

  const gram = Float64Array.from(stats.gram);
  const classSums = Float64Array.from(stats.classSums);
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

  const theta = eigenRidgeSolve(symmetricEigen(gram, D), classSums, K, ridge);
  return {
    method: 'LEAST_SQUARES',
    ...thetaToHead(theta, K, d, withBias),
    events,
    releases: events.length,
    private: priv.isPrivate,
    noiseKind: priv.noiseKind,
    noiseMultiplier: priv.sigma,
    clipNorm: clip,
  };
}
