/**
 * Mechanism registry: everything the accountants need to know about one kind of privacy event lives here.
 * Adding a mechanism = adding one entry to MECHANISMS (plus its `type` in events.ts).
 *
 *  - gdpMu:  mu if one use is exactly mu-GDP (the `exact` accountant composes these analytically);
 *  - rdp:    Renyi DP of one use at order alpha (> 1);
 *  - curves: the privacy curve(s) delta(eps) of one use as hockey-stick divergences of the dominating
 *            pair(s) under add-or-remove. Asymmetric mechanisms return two curves (the "remove" pair (P,Q)
 *            and the "add" pair (Q,P)); symmetric ones return one. The PLD accountant discretises these.
 */
import type { PrivacyEvent, PrivacyEventType } from './events';
import { rdpLaplace, rdpSubsampledGaussian } from './rdp-mechanisms';
import { gaussianDelta, logAddExp, logNormCdf, bisectMonotone } from './special';

/** One dominating pair (P, Q): delta(eps) = E_P[(1 - e^{eps - L})_+] with L = log(dP/dQ). */
export interface LossCurve {
  /** Hockey-stick divergence at any real eps, in [0, 1]. */
  delta(eps: number): number;
  /** P(L < lossLo) <= tail (folded upwards, pessimistic); P(L > lossHi) <= tail (moved to +infinity). */
  lossLo: number;
  lossHi: number;
}

export interface MechanismSpec<E extends PrivacyEvent = PrivacyEvent> {
  type: E['type'];
  gdpMu(e: E): number | undefined;
  rdp(e: E, order: number): number;
  /** `tail` is the probability mass allowed outside [lossLo, lossHi] per use. */
  curves(e: E, tail: number): LossCurve[];
}

/** z with P(N(0,1) > z) = p (p in (0, 0.5)), by bisection on log Phi. */
export function normalUpperQuantile(p: number): number {
  const lp = Math.log(p);
  return bisectMonotone((z) => logNormCdf(-z) <= lp, 0, 40, 1e-13);
}

export function gaussianCurve(mu: number, tail: number): LossCurve {
  const z = normalUpperQuantile(tail);
  // Under P the privacy loss is N(mu^2/2, mu^2).
  return {
    delta: (eps) => gaussianDelta(eps, mu),
    lossLo: (mu * mu) / 2 - z * mu,
    lossHi: (mu * mu) / 2 + z * mu,
  };
}

/**
 * Poisson-subsampled Gaussian, sampling rate q in (0,1), noise sigma.
 * remove pair: P = (1-q) N(0,s^2) + q N(1,s^2), Q = N(0,s^2); L(x) = log(1 - q + q e^{(2x-1)/(2 s^2)}).
 *   delta_A(eps) = q * deltaGauss(log w; 1/s), w = (e^eps - 1 + q)/q   (eps > log(1-q); else 1 - e^eps)
 * add pair: P = N(0,s^2), Q = mixture; delta_B(eps) = (1 - e^eps (1-q)) * deltaGauss(-log w'; 1/s),
 *   w' = (e^-eps - 1 + q)/q                                             (eps < -log(1-q); else 0)
 * Both follow from the analytic Gaussian curve by the change of variables x -> log w (L is monotone in x);
 * they are checked against numerical hockey-stick integrals in test/privacy/independent.test.ts.
 */
export function subsampledGaussianCurves(q: number, sigma: number, tail: number): LossCurve[] {
  const mu = 1 / sigma;
  const log1mq = Math.log1p(-q);
  const logq = Math.log(q);
  const z = normalUpperQuantile(tail);
  const deltaRemove = (eps: number): number => {
    if (eps <= log1mq) return -Math.expm1(eps);
    let logw: number;
    if (eps > 1) logw = eps - logq + Math.log1p(-(1 - q) * Math.exp(-eps));
    else {
      const num = Math.expm1(eps) + q;
      if (!(num > 0)) return -Math.expm1(eps);
      logw = Math.log(num) - logq;
    }
    return Math.min(1, q * gaussianDelta(logw, mu));
  };
  const deltaAdd = (eps: number): number => {
    if (eps >= -log1mq) return 0;
    let logw: number;
    if (-eps > 1) logw = -eps - logq + Math.log1p(-(1 - q) * Math.exp(eps));
    else {
      const num = Math.expm1(-eps) + q;
      if (!(num > 0)) return 0;
      logw = Math.log(num) - logq;
    }
    const factor = -Math.expm1(eps + log1mq);
    return Math.min(1, factor * gaussianDelta(-logw, mu));
  };
  const s2 = sigma * sigma;
  return [
    {
      delta: deltaRemove,
      lossLo: log1mq,
      // L at x = 1 + sigma z: P(X > x) <= tail for both mixture components.
      lossHi: logAddExp(log1mq, logq + (1 + 2 * sigma * z) / (2 * s2)),
    },
    {
      delta: deltaAdd,
      // L_B at x = sigma z: P(X > x) <= tail under P = N(0, s^2).
      lossLo: -logAddExp(log1mq, logq + (2 * sigma * z - 1) / (2 * s2)),
      lossHi: -log1mq,
    },
  ];
}

/** Laplace(0, b), sensitivity 1: delta(eps) = 1 - exp((eps - 1/b)/2) on [-1/b, 1/b] (symmetric pair). */
export function laplaceCurve(b: number): LossCurve {
  const e0 = 1 / b;
  return {
    delta: (eps) => {
      if (eps >= e0) return 0;
      if (eps <= -e0) return -Math.expm1(eps);
      return -Math.expm1((eps - e0) / 2);
    },
    lossLo: -e0,
    lossHi: e0,
  };
}

type SpecMap = { [T in PrivacyEventType]: MechanismSpec<Extract<PrivacyEvent, { type: T }>> };

export const MECHANISMS: SpecMap = {
  gaussian: {
    type: 'gaussian',
    gdpMu: (e) => 1 / e.noise_multiplier,
    rdp: (e, a) => a / (2 * e.noise_multiplier * e.noise_multiplier),
    curves: (e, tail) => [gaussianCurve(1 / e.noise_multiplier, tail)],
  },
  poisson_subsampled_gaussian: {
    type: 'poisson_subsampled_gaussian',
    gdpMu: (e) => (e.sampling_rate === 1 ? 1 / e.noise_multiplier : undefined),
    rdp: (e, a) => rdpSubsampledGaussian(e.sampling_rate, e.noise_multiplier, a),
    curves: (e, tail) =>
      e.sampling_rate === 1
        ? [gaussianCurve(1 / e.noise_multiplier, tail)]
        : subsampledGaussianCurves(e.sampling_rate, e.noise_multiplier, tail),
  },
  laplace: {
    type: 'laplace',
    gdpMu: () => undefined,
    rdp: (e, a) => rdpLaplace(1 / e.noise_multiplier, a),
    curves: (e) => [laplaceCurve(e.noise_multiplier)],
  },
};

export function mechanismOf<E extends PrivacyEvent>(e: E): MechanismSpec<E> {
  return MECHANISMS[e.type] as unknown as MechanismSpec<E>;
}
