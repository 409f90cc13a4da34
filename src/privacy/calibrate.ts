/**
 * Noise calibration: the smallest noise multiplier sigma whose epsilon (after `eventsBefore` and `steps`
 * new releases at sampling rate q) does not exceed the target.
 *
 * Conservative by construction: the search keeps a bracket [lo, hi] with eps(lo) > target >= eps(hi),
 * where every value was actually evaluated with the chosen accountant, and returns hi. The bracket is
 * shrunk in log(sigma) by the Illinois variant of regula falsi (with bisection fallback) until
 * hi/lo - 1 <= relTol.
 */
import { AccountantNotApplicableError, PrivacyInputError } from './errors';
import { computeEpsilon, resolveAccountant, type AccountingOptions } from './accountant';
import {
  checkAccountant,
  checkDelta,
  checkEvents,
  MAX_EVENT_COUNT,
  normalizeEvents,
  type AccountantName,
  type ConcreteAccountant,
  type PrivacyEvent,
} from './events';
import { exactCurveOf } from './exact';

export interface CalibrationParams {
  targetEpsilon: number;
  delta: number;
  /** Poisson sampling rate of the new releases, (0, 1]; default 1 (no subsampling). */
  samplingRate?: number;
  /** number of new releases; default 1 */
  steps?: number;
  accountant?: AccountantName;
  /** already-spent events, composed with the new ones */
  eventsBefore?: PrivacyEvent[];
  /** accountant options (PLD grid, RDP orders) */
  options?: AccountingOptions;
  /** relative width of the final bracket on sigma; default 1e-7 */
  relTol?: number;
}

export interface CalibrationResult {
  noiseMultiplier: number;
  /** epsilon achieved with noiseMultiplier (<= targetEpsilon) */
  epsilon: number;
  accountant: ConcreteAccountant;
}

const SIGMA_MIN = 1e-6;
const SIGMA_MAX = 1e9;

function newEvent(sigma: number, q: number, steps: number): PrivacyEvent {
  return q === 1
    ? { type: 'gaussian', noise_multiplier: sigma, count: steps }
    : { type: 'poisson_subsampled_gaussian', noise_multiplier: sigma, sampling_rate: q, count: steps };
}

export function calibrateNoiseMultiplier(p: CalibrationParams): CalibrationResult {
  if (typeof p !== 'object' || p === null) throw new PrivacyInputError('params', 'must be an object');
  const target = p.targetEpsilon;
  if (typeof target !== 'number' || !Number.isFinite(target) || !(target > 0)) {
    throw new PrivacyInputError('targetEpsilon', `must be a finite number > 0 (got ${String(target)})`);
  }
  const delta = checkDelta(p.delta);
  const q = p.samplingRate ?? 1;
  if (typeof q !== 'number' || !Number.isFinite(q) || !(q > 0) || q > 1) {
    throw new PrivacyInputError('samplingRate', `must be a number in (0, 1] (got ${String(q)})`);
  }
  const steps = p.steps ?? 1;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1 || steps > MAX_EVENT_COUNT) {
    throw new PrivacyInputError('steps', `must be an integer in [1, ${MAX_EVENT_COUNT}] (got ${String(steps)})`);
  }
  const relTol = p.relTol ?? 1e-7;
  if (!(relTol > 0 && relTol < 0.1)) throw new PrivacyInputError('relTol', 'must be in (0, 0.1)');
  const before = normalizeEvents(checkEvents(p.eventsBefore ?? []));
  const requested = checkAccountant(p.accountant);
  const probe = [...before, newEvent(1, q, steps)];
  const acc = resolveAccountant(probe, requested);
  if (acc === 'exact') {
    const c = exactCurveOf(probe);
    if (c.kind === 'n/a') throw new AccountantNotApplicableError(c.field === 'events' ? 'samplingRate' : c.field, c.reason);
  }

  const epsAt = (sigma: number): number => {
    try {
      return computeEpsilon([...before, newEvent(sigma, q, steps)], delta, acc, p.options).epsilon;
    } catch (err) {
      if (err instanceof AccountantNotApplicableError) throw err;
      if (err instanceof PrivacyInputError) return Infinity; // e.g. sigma so small that epsilon overflows
      throw err;
    }
  };

  if (before.length > 0) {
    const spent = computeEpsilon(before, delta, resolveAccountant(before, acc === 'exact' ? 'exact' : acc), p.options).epsilon;
    if (spent >= target) {
      throw new PrivacyInputError(
        'targetEpsilon',
        `already exceeded by eventsBefore (epsilon ${spent.toPrecision(6)} >= ${target})`,
      );
    }
  }

  // Bracket.
  let lo = 1;
  let hi = 1;
  let fLo: number;
  let fHi: number;
  const e = epsAt(1);
  if (e <= target) {
    fHi = e - target;
    lo = 0.5;
    for (;;) {
      const v = epsAt(lo);
      if (v > target) {
        fLo = v - target;
        break;
      }
      hi = lo;
      fHi = v - target;
      lo /= 2;
      if (lo < SIGMA_MIN) return { noiseMultiplier: hi, epsilon: fHi + target, accountant: acc };
    }
  } else {
    fLo = e - target;
    hi = 2;
    for (;;) {
      const v = epsAt(hi);
      if (v <= target) {
        fHi = v - target;
        break;
      }
      lo = hi;
      fLo = v - target;
      hi *= 2;
      if (hi > SIGMA_MAX) {
        throw new PrivacyInputError('targetEpsilon', `unreachable with noise_multiplier <= ${SIGMA_MAX}`);
      }
    }
  }

  // Illinois regula falsi on x = log(sigma); fLo > 0 >= fHi. (sHi, eHi) is the best evaluated feasible point.
  let sHi = hi;
  let eHi = fHi + target;
  let xLo = Math.log(lo);
  let xHi = Math.log(hi);
  let gLo = Number.isFinite(fLo) ? fLo : 1e6;
  let gHi = fHi;
  let side = 0;
  for (let iter = 0; iter < 200; iter++) {
    if (Math.exp(xHi - xLo) - 1 <= relTol) break;
    let x = xHi - (gHi * (xHi - xLo)) / (gHi - gLo);
    const w = xHi - xLo;
    if (!(x > xLo + 0.02 * w && x < xHi - 0.02 * w) || !Number.isFinite(x)) x = 0.5 * (xLo + xHi);
    const s = Math.exp(x);
    const v = epsAt(s);
    const g = v - target;
    if (g <= 0) {
      xHi = x;
      gHi = g;
      sHi = s;
      eHi = v;
      if (side === 1) gLo *= 0.5;
      side = 1;
    } else {
      xLo = x;
      gLo = Number.isFinite(g) ? g : 1e6;
      if (side === -1) gHi *= 0.5;
      side = -1;
    }
  }
  return { noiseMultiplier: sHi, epsilon: eHi, accountant: acc };
}
