/**
 * Exact accountant.
 *  - Gaussian lists (incl. Poisson-subsampled with q = 1): k Gaussians compose exactly to mu-GDP with
 *    mu = sqrt(sum count_i / sigma_i^2); the tight curve is the analytic Gaussian one (Balle & Wang 2018).
 *  - A single Laplace release (one event, count 1): delta(eps) = 1 - exp((eps - 1/b)/2) for eps < 1/b.
 * Anything else has no closed-form tight curve here and raises AccountantNotApplicableError.
 */
import { AccountantNotApplicableError, PrivacyInputError } from './errors';
import type { PrivacyEvent } from './events';
import { mechanismOf, subsampledGaussianCurves } from './mechanisms';
import { bisectMonotone, gaussianLogDelta } from './special';

export type ExactCurve =
  | { kind: 'gaussian'; mu: number }
  | { kind: 'laplace'; b: number }
  | { kind: 'none' };

/** Classifies the list; returns the reason when exact accounting does not apply. */
export function exactCurveOf(events: readonly PrivacyEvent[]): ExactCurve | { kind: 'n/a'; reason: string; field: string } {
  if (events.length === 0) return { kind: 'none' };
  if (events.length === 1 && events[0].type === 'laplace') {
    if (events[0].count === 1) return { kind: 'laplace', b: events[0].noise_multiplier };
    return {
      kind: 'n/a',
      field: 'events[0].count',
      reason: 'exact accounting covers a single Laplace release only (count 1); use pld or rdp for compositions',
    };
  }
  let mu2 = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const mu = mechanismOf(e).gdpMu(e);
    if (mu === undefined) {
      return {
        kind: 'n/a',
        field: `events[${i}].type`,
        reason:
          e.type === 'laplace'
            ? 'exact accounting cannot compose Laplace with other events; use pld or rdp'
            : 'exact accounting applies to Gaussian events only (subsampling q < 1 has no closed form); use pld or rdp',
      };
    }
    mu2 += e.count * mu * mu;
  }
  const mu = Math.sqrt(mu2);
  if (!Number.isFinite(mu)) {
    throw new PrivacyInputError('events', 'noise_multiplier too small: the composed privacy loss overflows float64');
  }
  return { kind: 'gaussian', mu };
}

export function isExactApplicable(events: readonly PrivacyEvent[]): boolean {
  return exactCurveOf(events).kind !== 'n/a';
}

function requireExact(events: readonly PrivacyEvent[]): Exclude<ExactCurve, { kind: 'n/a' }> {
  const c = exactCurveOf(events);
  if (c.kind === 'n/a') throw new AccountantNotApplicableError(c.field, c.reason);
  return c;
}

/** eps(delta) for mu-GDP: the root of log delta(eps) = log delta, by bisection to full precision. */
export function gaussianEpsilon(mu: number, delta: number): number {
  const logTarget = Math.log(delta);
  if (gaussianLogDelta(0, mu) <= logTarget) return 0;
  // delta(eps) <= Phi(-eps/mu + mu/2) <= exp(-(eps/mu - mu/2)^2/2) once eps > mu^2/2.
  let hi = (mu * mu) / 2 + mu * Math.sqrt(2 * -logTarget) + 1;
  let guard = 0;
  while (gaussianLogDelta(hi, mu) > logTarget) {
    hi *= 2;
    if (++guard > 2000 || !Number.isFinite(hi)) {
      throw new PrivacyInputError('events', 'epsilon exceeds the float64 range (noise_multiplier too small)');
    }
  }
  return bisectMonotone((e) => gaussianLogDelta(e, mu) <= logTarget, 0, hi, 4e-16);
}

export function laplaceEpsilon(b: number, delta: number): number {
  return Math.max(0, 1 / b + 2 * Math.log1p(-delta));
}

export function laplaceDelta(b: number, eps: number): number {
  return eps >= 1 / b ? 0 : -Math.expm1((eps - 1 / b) / 2);
}

export function exactEpsilon(events: readonly PrivacyEvent[], delta: number): number {
  const c = requireExact(events);
  if (c.kind === 'none') return 0;
  if (c.kind === 'laplace') return laplaceEpsilon(c.b, delta);
  return gaussianEpsilon(c.mu, delta);
}

export function exactDelta(events: readonly PrivacyEvent[], eps: number): number {
  const c = requireExact(events);
  if (c.kind === 'none') return 0;
  if (c.kind === 'laplace') return laplaceDelta(c.b, eps);
  return Math.min(1, Math.exp(gaussianLogDelta(eps, c.mu)));
}

/**
 * Tight epsilon at delta of ONE release of the event's mechanism (count ignored): analytic for Gaussian
 * and Laplace, and for a single Poisson-subsampled Gaussian by root-finding on the exact curve
 * max(delta_remove, delta_add).
 */
export function singleReleaseEpsilon(e: PrivacyEvent, delta: number): number {
  switch (e.type) {
    case 'gaussian':
      return gaussianEpsilon(1 / e.noise_multiplier, delta);
    case 'laplace':
      return laplaceEpsilon(e.noise_multiplier, delta);
    case 'poisson_subsampled_gaussian': {
      if (e.sampling_rate === 1) return gaussianEpsilon(1 / e.noise_multiplier, delta);
      const curves = subsampledGaussianCurves(e.sampling_rate, e.noise_multiplier, 1e-300);
      const d = (eps: number) => Math.max(...curves.map((c) => c.delta(eps)));
      if (d(0) <= delta) return 0;
      let hi = 1;
      while (d(hi) > delta) {
        hi *= 2;
        if (!Number.isFinite(hi)) throw new PrivacyInputError('events', 'epsilon exceeds the float64 range');
      }
      return bisectMonotone((x) => d(x) <= delta, 0, hi, 4e-16);
    }
  }
}
