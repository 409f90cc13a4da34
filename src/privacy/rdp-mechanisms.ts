/**
 * Renyi DP of single mechanism uses (sensitivity 1, add-or-remove neighbours).
 */
import { erfc, erfcx, logAddExp, log1pExp } from './special';

/** log(e^y - 1) for y > 0. */
function logExpm1(y: number): number {
  return y > 30 ? y + Math.log1p(-Math.exp(-y)) : Math.log(Math.expm1(y));
}

/**
 * log A_alpha for integer alpha >= 2 (Mironov-Talwar-Zhang 2019, binomial expansion), computed as
 * log(1 + (A - 1)) with A - 1 = sum_{i>=2} C(alpha,i) (1-q)^{alpha-i} q^i (e^{(i^2-i)/(2 s^2)} - 1):
 * all terms are positive, so there is no cancellation even for huge sigma.
 */
export function logASubsampledGaussianInt(q: number, sigma: number, alpha: number): number {
  const log1mq = Math.log1p(-q);
  const logq = Math.log(q);
  const inv2s2 = 1 / (2 * sigma * sigma);
  let logComb = Math.log(alpha); // log C(alpha, 1)
  let logAm1 = -Infinity;
  for (let i = 2; i <= alpha; i++) {
    logComb += Math.log((alpha - i + 1) / i);
    const term = logComb + (alpha - i) * log1mq + i * logq + logExpm1((i * i - i) * inv2s2);
    logAm1 = logAddExp(logAm1, term);
  }
  return log1pExp(logAm1);
}

/** Iteration cap of the fractional-order series; orders that do not converge are excluded (Infinity). */
export const MAX_FRACTIONAL_SERIES_TERMS = 1000;

/**
 * log A_alpha for fractional alpha by the series of Mironov-Talwar-Zhang 2019 (Sec. 3.3), summing the
 * absolute values of the terms. That is an upper bound on A_alpha (the exact series alternates), the same
 * convention as dp_accounting 0.6.0, so RDP stays a valid (slightly pessimistic, <= ~0.3% in epsilon)
 * bound. Returns Infinity if the series has not converged after MAX_FRACTIONAL_SERIES_TERMS terms.
 */
export function logASubsampledGaussianFrac(q: number, sigma: number, alpha: number): number {
  const log1mq = Math.log1p(-q);
  const logq = Math.log(q);
  const s2 = sigma * sigma;
  const inv2s2 = 1 / (2 * s2);
  const L = Math.log(1 / q - 1); // = log1mq - logq
  const z0 = s2 * L + 0.5;
  const sqrt2s = Math.SQRT2 * sigma;
  const z0sqTerm = z0 * z0 * inv2s2;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let lastS0 = -Infinity;
  let lastS1 = -Infinity;
  let logAbsComb = 0; // log |C(alpha, 0)|
  for (let i = 0; i < MAX_FRACTIONAL_SERIES_TERMS; i++) {
    if (i > 0) logAbsComb += Math.log(Math.abs(alpha - i + 1) / i);
    const j = alpha - i;
    const logT0 = logAbsComb + i * logq + j * log1mq;
    const logT1 = logAbsComb + j * logq + i * log1mq;
    // (i^2 - i)/(2s^2) + log erfc((i - z0)/(sqrt2 s)), merged analytically when the erfc is in its tail.
    const y0 = (i - z0) / sqrt2s;
    const e0 = y0 >= 0 ? i * L - z0sqTerm + Math.log(erfcx(y0)) : (i * i - i) * inv2s2 + Math.log(erfc(y0));
    const y1 = (z0 - j) / sqrt2s;
    const e1 = y1 >= 0 ? j * L - z0sqTerm + Math.log(erfcx(y1)) : (j * j - j) * inv2s2 + Math.log(erfc(y1));
    const logS0 = logT0 + e0 - Math.LN2;
    const logS1 = logT1 + e1 - Math.LN2;
    logA0 = logAddExp(logA0, logS0);
    logA1 = logAddExp(logA1, logS1);
    const total = logAddExp(logA0, logA1);
    if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total;
    lastS0 = logS0;
    lastS1 = logS1;
  }
  return Infinity;
}

/**
 * RDP at order alpha > 1 of one Poisson-subsampled Gaussian (rate q, noise sigma). q = 1 is exactly the
 * Gaussian alpha/(2 sigma^2); the result is also capped by it (subsampling never hurts), and floored at 0.
 * May be Infinity for fractional orders whose series does not converge (the order is then skipped).
 */
export function rdpSubsampledGaussian(q: number, sigma: number, alpha: number): number {
  const gauss = alpha / (2 * sigma * sigma);
  if (q >= 1) return gauss;
  const logA = Number.isInteger(alpha)
    ? logASubsampledGaussianInt(q, sigma, alpha)
    : logASubsampledGaussianFrac(q, sigma, alpha);
  const r = logA / (alpha - 1);
  if (Number.isNaN(r)) return Infinity;
  return Math.max(0, Math.min(r, gauss));
}

/**
 * RDP of the Laplace mechanism with pure-DP parameter eps = 1/b (Mironov 2017, Prop. 6), alpha > 1:
 *   eps + log(1 + (alpha-1)/(2alpha-1) (e^{-(2alpha-1) eps} - 1)) / (alpha-1), always <= eps.
 */
export function rdpLaplace(eps: number, alpha: number): number {
  const r = eps + Math.log1p(((alpha - 1) / (2 * alpha - 1)) * Math.expm1(-(2 * alpha - 1) * eps)) / (alpha - 1);
  return Math.max(0, Math.min(r, eps));
}
