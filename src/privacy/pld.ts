/**
 * Privacy loss distribution (PLD) accountant.
 *
 * Representation: a PMF on the grid l_i = (offset + i) * h of privacy-loss values plus a mass at +infinity.
 * delta(eps) = infMass + sum_{l_i > eps} p_i (1 - e^{eps - l_i}).
 *
 *  - Discretisation: pessimistic "connect the dots" (Doroshenko et al. 2022). Given the exact curve
 *    delta(eps) of one use, the discrete PLD is the one whose curve, as a function of e^eps, linearly
 *    interpolates delta at the grid points. The true curve is convex in e^eps, so the chords lie above it:
 *    the discrete PLD dominates the mechanism. Mass above the grid goes to +infinity (delta(lossHi)), mass
 *    below is folded into the lowest point (total mass stays 1); both are pessimistic.
 *  - Gaussian events are first merged analytically (they compose exactly to one Gaussian with
 *    mu = sqrt(sum count/sigma^2)), so a Gaussian-only list costs one discretisation.
 *  - Composition (composeInFourier): the window of the composed loss is bounded by a Chernoff bound; each
 *    component's PMF is wrapped onto that window's power-of-two length and transformed once, its Fourier
 *    coefficients are raised to the component's count by repeated squaring (self-composition in
 *    O(log count) multiplications per coefficient, never count convolutions) and multiplied together, and
 *    one inverse FFT returns the composed PMF. Mass outside the window is at most `tau` per side; the upper
 *    part is charged to +infinity, so the result stays pessimistic (wrapped mass only adds delta).
 *    Tails are then trimmed pessimistically (upper tail to +infinity, lower tail folded upwards).
 *  - Add-or-remove: asymmetric mechanisms (subsampled Gaussian) are tracked in both directions ("remove"
 *    and "add" dominating pairs); the reported delta(eps) is the max of the two, eps(delta) the max too.
 */
import { PrivacyInputError } from './errors';
import type { PrivacyEvent } from './events';
import { fft, nextPow2 } from './fft';
import { gaussianCurve, mechanismOf, type LossCurve } from './mechanisms';

export const DEFAULT_PLD_DISCRETIZATION = 1e-4;
/** Largest grid of a single discretised mechanism, and largest FFT, before the grid is coarsened. */
const MAX_SINGLE_BINS = 1 << 20;
const MAX_FFT_SIZE = 1 << 21;

export interface DiscretePld {
  /** grid index of pmf[0] (loss value offset * h) */
  offset: number;
  pmf: Float64Array;
  infMass: number;
}

/** Thrown when the grid would be too fine; `factor` is by how much the interval must at least grow. */
class GridTooLarge extends Error {
  constructor(readonly factor = 2) {
    super('grid too large');
  }
}

/** Connect-the-dots discretisation of one use's curve on the grid of step h. */
export function discretize(curve: LossCurve, h: number): DiscretePld {
  let iLo = Math.floor(curve.lossLo / h);
  let iHi = Math.ceil(curve.lossHi / h);
  if (!Number.isFinite(iLo) || !Number.isFinite(iHi)) throw new GridTooLarge(1e6);
  if (iHi <= iLo) iHi = iLo + 1;
  const n = iHi - iLo + 1;
  if (n > MAX_SINGLE_BINS) throw new GridTooLarge(n / MAX_SINGLE_BINS);
  const d = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = curve.delta((iLo + j) * h);
  const em1 = Math.expm1(h);
  const eh = Math.exp(h);
  const pmf = new Float64Array(n);
  const infMass = Math.max(0, d[n - 1]);
  // mu_j = e^{eps_j} (s_j - s_{j-1}) with s_j = (d_{j+1} - d_j) / (e^{eps_{j+1}} - e^{eps_j})
  //      = [(d_{j+1} - d_j) - e^h (d_j - d_{j-1})] / (e^h - 1)
  let sum = 0;
  for (let j = 1; j < n - 1; j++) {
    const m = (d[j + 1] - d[j] - eh * (d[j] - d[j - 1])) / em1;
    const v = m > 0 ? m : 0;
    pmf[j] = v;
    sum += v;
  }
  const last = (-(d[n - 1] - d[n - 2]) * eh) / em1;
  pmf[n - 1] = last > 0 ? last : 0;
  sum += pmf[n - 1];
  pmf[0] = Math.max(0, 1 - infMass - sum);
  return trim({ offset: iLo, pmf, infMass }, 0);
}

/**
 * Pessimistic tail trimming: drops the largest-loss bins holding at most tau in total (to +infinity) and
 * folds the smallest-loss bins holding at most tau into the first kept bin. Negative FFT round-off is
 * clamped to 0 first.
 */
export function trim(p: DiscretePld, tau: number): DiscretePld {
  const a = p.pmf;
  const n = a.length;
  for (let i = 0; i < n; i++) if (!(a[i] > 0)) a[i] = 0;
  let hi = n - 1;
  let upper = 0;
  while (hi > 0 && upper + a[hi] <= tau) upper += a[hi--];
  let lo = 0;
  let lower = 0;
  while (lo < hi && lower + a[lo] <= tau) lower += a[lo++];
  if (lo === 0 && hi === n - 1) return { offset: p.offset, pmf: a, infMass: p.infMass + upper };
  const out = a.slice(lo, hi + 1);
  out[0] += lower;
  return { offset: p.offset + lo, pmf: out, infMass: Math.min(1, p.infMass + upper) };
}

/**
 * log sum_i p_i e^{t l_i} over the finite part (l_i = (offset + i) h). Walks from the end where e^{t l} is
 * largest with a geometric recurrence (no exp per bin) and stops once the factor underflows.
 */
export function logMgf(p: DiscretePld, h: number, t: number): number {
  const a = p.pmf;
  const n = a.length;
  const r = Math.exp(-Math.abs(t) * h);
  let v = 1;
  let s = 0;
  if (t >= 0) {
    for (let i = n - 1; i >= 0 && v > 1e-300; i--, v *= r) s += a[i] * v;
    return t * (p.offset + n - 1) * h + Math.log(s);
  }
  for (let i = 0; i < n && v > 1e-300; i++, v *= r) s += a[i] * v;
  return t * p.offset * h + Math.log(s);
}

/** delta(eps) of a discrete PLD. */
export function deltaOfPld(p: DiscretePld, h: number, eps: number): number {
  let d = p.infMass;
  const a = p.pmf;
  for (let i = a.length - 1; i >= 0; i--) {
    const l = (p.offset + i) * h;
    if (l <= eps) break;
    d += a[i] * -Math.expm1(eps - l);
  }
  return Math.min(1, d);
}

/** Smallest eps >= 0 with delta(eps) <= delta for a discrete PLD; Infinity if infMass > delta. */
export function epsilonOfPld(p: DiscretePld, h: number, delta: number): number {
  if (p.infMass > delta) return Infinity;
  const a = p.pmf;
  const n = a.length;
  // Invariant at index j: A = infMass + sum_{i>j} p_i, C = sum_{i>j} p_i e^{l_j - l_i};
  // on [l_j, l_{j+1}] delta(eps) = A - e^{eps - l_j} C.
  let A = p.infMass;
  let C = 0;
  const emh = Math.exp(-h);
  let j = n - 1;
  for (; j >= -1; j--) {
    const lj = (p.offset + j) * h;
    if (lj <= 0 || j === -1) {
      const d0 = A - Math.exp(-lj) * C;
      if (d0 <= delta) return 0;
      return Math.max(0, lj + Math.log((A - delta) / C));
    }
    if (A - C > delta) return Math.max(0, lj + Math.log((A - delta) / C));
    if (j >= 0) {
      A += a[j];
      C = (C + a[j]) * emh;
    }
  }
  return 0;
}

function eventKey(e: PrivacyEvent): string {
  return e.type === 'poisson_subsampled_gaussian'
    ? `${e.type}|${e.noise_multiplier}|${e.sampling_rate}`
    : `${e.type}|${e.noise_multiplier}`;
}

export interface PldOptions {
  /** value discretisation interval h (default 1e-4) */
  discretization?: number;
  /** total probability budget for truncated tails (charged pessimistically); default 1e-20 */
  tailBudget?: number;
}

export interface PldState {
  /** one PLD per direction (one if every mechanism is symmetric) */
  directions: DiscretePld[];
  h: number;
}

/** Builds the composed PLD(s). Coarsens the grid (x2 steps) if the requested one would be too large. */
export function buildPld(events: readonly PrivacyEvent[], options: PldOptions = {}): PldState {
  let h = options.discretization ?? DEFAULT_PLD_DISCRETIZATION;
  if (!(h > 0) || !Number.isFinite(h)) {
    throw new PrivacyInputError('pldDiscretization', `must be a finite number > 0 (got ${h})`);
  }
  const budget = Math.max(options.tailBudget ?? 1e-20, 1e-300);
  for (let attempt = 0; attempt < 64; attempt++) {
    try {
      return { directions: buildAt(events, h, budget), h };
    } catch (err) {
      if (!(err instanceof GridTooLarge)) throw err;
      h *= Math.max(2, nextPow2(Math.ceil(err.factor)));
    }
  }
  throw new PrivacyInputError('events', 'privacy loss range too large for the PLD accountant');
}

interface Component {
  /** discretised single use, per direction (length 1 when the mechanism is symmetric) */
  pmfs: DiscretePld[];
  count: number;
}

function buildAt(events: readonly PrivacyEvent[], h: number, budget: number): DiscretePld[] {
  // Merge Gaussian-equivalent events analytically, group identical other events.
  let mu2 = 0;
  let totalCount = 0;
  const groups = new Map<string, { event: PrivacyEvent; count: number }>();
  for (const e of events) {
    totalCount += e.count;
    const mu = mechanismOf(e).gdpMu(e);
    if (mu !== undefined) {
      mu2 += e.count * mu * mu;
      continue;
    }
    const key = eventKey(e);
    const g = groups.get(key);
    if (g) g.count += e.count;
    else groups.set(key, { event: e, count: e.count });
  }
  const perUseTail = Math.max(1e-300, Math.min(1e-15, budget / Math.max(1, totalCount)));
  const tau = Math.max(1e-300, Math.min(1e-15, budget / 64));

  const comps: Component[] = [];
  const checkRange = (c: LossCurve) => {
    const bins = (c.lossHi - c.lossLo) / h;
    if (!(bins <= MAX_SINGLE_BINS)) throw new GridTooLarge(Number.isFinite(bins) ? bins / MAX_SINGLE_BINS : 1e6);
    return c;
  };
  if (mu2 > 0) {
    const mu = Math.sqrt(mu2);
    if (!Number.isFinite(mu)) throw new PrivacyInputError('events', 'noise_multiplier too small: privacy loss overflows');
    comps.push({ pmfs: [trim(discretize(checkRange(gaussianCurve(mu, perUseTail)), h), tau)], count: 1 });
  }
  for (const { event, count } of groups.values()) {
    const curves = mechanismOf(event).curves(event, perUseTail).map(checkRange);
    comps.push({ pmfs: curves.map((c) => trim(discretize(c, h), tau)), count });
  }
  if (comps.length === 0) return [{ offset: 0, pmf: Float64Array.of(1), infMass: 0 }];
  const nDir = comps.some((c) => c.pmfs.length > 1) ? 2 : 1;
  if (comps.length === 1 && comps[0].count === 1) return comps[0].pmfs.slice();
  return composeInFourier(comps, nDir, h, tau);
}

/**
 * Composes all components (each self-composed `count` times) for every direction at once:
 *  1. a Chernoff bound on the sum gives each direction's window [lo, hi] (mass outside <= tau per side);
 *  2. each component's PMF is wrapped onto a common power-of-two length N >= window widths; two real
 *     sequences share one complex FFT;
 *  3. every Fourier coefficient is raised to the component's count by repeated squaring and multiplied into
 *     the direction's spectrum;
 *  4. one inverse FFT returns both directions (direction 0 in the real part, 1 in the imaginary part).
 * Upper truncated mass (<= tau) is charged to +infinity; wrapped (aliased) mass can only add delta.
 */
export function composeInFourier(comps: Component[], nDir: number, h: number, tau: number): DiscretePld[] {
  const logTau = Math.log(tau);
  const windows: { lo: number; hi: number; supLo: number; infMass: number }[] = [];
  for (let d = 0; d < nDir; d++) {
    let variance = 0;
    let supLo = 0;
    let supHi = 0;
    let logNotInf = 0;
    for (const c of comps) {
      const p = c.pmfs[Math.min(d, c.pmfs.length - 1)];
      let mean = 0;
      let m2 = 0;
      let mass = 0;
      for (let i = 0; i < p.pmf.length; i++) {
        const l = (p.offset + i) * h;
        mean += p.pmf[i] * l;
        m2 += p.pmf[i] * l * l;
        mass += p.pmf[i];
      }
      mean /= mass;
      variance += c.count * Math.max(m2 / mass - mean * mean, 0);
      supLo += c.count * p.offset;
      supHi += c.count * (p.offset + p.pmf.length - 1);
      logNotInf += c.count * Math.log1p(-Math.min(p.infMass, 1 - 1e-16));
    }
    const tStar = 8 / Math.sqrt(Math.max(variance, h * h));
    let upper = Infinity;
    let lower = -Infinity;
    for (let j = -10; j <= 5; j++) {
      const t = tStar * Math.pow(2, j);
      let lmPos = 0;
      let lmNeg = 0;
      for (const c of comps) {
        const p = c.pmfs[Math.min(d, c.pmfs.length - 1)];
        lmPos += c.count * logMgf(p, h, t);
        lmNeg += c.count * logMgf(p, h, -t);
      }
      upper = Math.min(upper, (lmPos - logTau) / t);
      lower = Math.max(lower, (logTau - lmNeg) / t);
    }
    const lo = Number.isFinite(lower) ? Math.max(supLo, Math.floor(lower / h)) : supLo;
    let hi = Number.isFinite(upper) ? Math.min(supHi, Math.ceil(upper / h)) : supHi;
    if (hi < lo) hi = lo;
    const infMass = Math.min(1, -Math.expm1(logNotInf) + (hi < supHi ? tau : 0));
    windows.push({ lo, hi, supLo, infMass });
  }
  let N = 2;
  for (const w of windows) N = Math.max(N, nextPow2(w.hi - w.lo + 1));
  if (N > MAX_FFT_SIZE) throw new GridTooLarge(N / MAX_FFT_SIZE);

  // Real sequences to transform, each feeding some directions.
  const seqs: { p: DiscretePld; count: number; dirs: number[] }[] = [];
  for (const c of comps) {
    if (c.pmfs.length === 1) seqs.push({ p: c.pmfs[0], count: c.count, dirs: nDir === 2 ? [0, 1] : [0] });
    else c.pmfs.forEach((p, d) => seqs.push({ p, count: c.count, dirs: [d] }));
  }
  const accRe: Float64Array[] = [];
  const accIm: Float64Array[] = [];
  for (let d = 0; d < nDir; d++) {
    accRe.push(new Float64Array(N).fill(1));
    accIm.push(new Float64Array(N));
  }
  const zr = new Float64Array(N);
  const zi = new Float64Array(N);
  const mask = N - 1;
  for (let s = 0; s < seqs.length; s += 2) {
    const x = seqs[s];
    const y = s + 1 < seqs.length ? seqs[s + 1] : null;
    zr.fill(0);
    zi.fill(0);
    for (let i = 0; i < x.p.pmf.length; i++) zr[i & mask] += x.p.pmf[i];
    if (y) for (let i = 0; i < y.p.pmf.length; i++) zi[i & mask] += y.p.pmf[i];
    fft(zr, zi);
    for (let f = 0; f < N; f++) {
      const g = (N - f) & mask;
      const ar = zr[f];
      const ai = zi[f];
      const cr = zr[g];
      const ci = -zi[g];
      // X_f = (Z_f + conj Z_{N-f})/2, Y_f = (Z_f - conj Z_{N-f})/(2i)
      mulPowInto(accRe, accIm, x.dirs, f, 0.5 * (ar + cr), 0.5 * (ai + ci), x.count);
      if (y) mulPowInto(accRe, accIm, y.dirs, f, 0.5 * (ai - ci), -0.5 * (ar - cr), y.count);
    }
  }
  let outRe: Float64Array;
  let outIm: Float64Array;
  if (nDir === 2) {
    // IFFT(S0 + i S1) = s0 + i s1 since both results are real.
    outRe = accRe[0];
    outIm = accIm[0];
    const r1 = accRe[1];
    const i1 = accIm[1];
    for (let f = 0; f < N; f++) {
      outRe[f] -= i1[f];
      outIm[f] += r1[f];
    }
  } else {
    outRe = accRe[0];
    outIm = accIm[0];
  }
  fft(outRe, outIm, true);
  const result: DiscretePld[] = [];
  for (let d = 0; d < nDir; d++) {
    const w = windows[d];
    const src = d === 0 ? outRe : outIm;
    const width = w.hi - w.lo + 1;
    const out = new Float64Array(width);
    const shift = (((w.lo - w.supLo) % N) + N) % N;
    for (let m = 0; m < width; m++) out[m] = src[(shift + m) & mask];
    result.push(trim({ offset: w.lo, pmf: out, infMass: w.infMass }, tau));
  }
  return result;
}

/** acc[d][f] *= (br + i bi)^k for each d in dirs (k-th power by repeated squaring). */
function mulPowInto(accRe: Float64Array[], accIm: Float64Array[], dirs: number[], f: number, br: number, bi: number, k: number): void {
  let rr = 1;
  let ri = 0;
  if (k === 1) {
    rr = br;
    ri = bi;
  } else {
    let e = k;
    for (;;) {
      if (e % 2 === 1) {
        const t = rr * br - ri * bi;
        ri = rr * bi + ri * br;
        rr = t;
      }
      e = Math.floor(e / 2);
      if (e === 0) break;
      const t = br * br - bi * bi;
      bi = 2 * br * bi;
      br = t;
      if (br * br + bi * bi < 1e-280) {
        rr = 0;
        ri = 0;
        break;
      }
    }
  }
  for (const d of dirs) {
    const ar = accRe[d][f];
    const ai = accIm[d][f];
    accRe[d][f] = ar * rr - ai * ri;
    accIm[d][f] = ar * ri + ai * rr;
  }
}

export function pldEpsilonFromState(state: PldState, delta: number): number {
  let eps = 0;
  for (const p of state.directions) eps = Math.max(eps, epsilonOfPld(p, state.h, delta));
  return eps;
}

export function pldDeltaFromState(state: PldState, eps: number): number {
  let d = 0;
  for (const p of state.directions) d = Math.max(d, deltaOfPld(p, state.h, eps));
  return d;
}

export function pldEpsilon(events: readonly PrivacyEvent[], delta: number, discretization?: number): number {
  const state = buildPld(events, { discretization, tailBudget: Math.min(1e-20, delta * 1e-7) });
  const eps = pldEpsilonFromState(state, delta);
  if (!Number.isFinite(eps)) {
    const inf = Math.max(...state.directions.map((p) => p.infMass));
    throw new PrivacyInputError(
      'delta',
      `is below the PLD accountant's resolution: the probability of an unbounded privacy loss is ${inf.toExponential(3)}` +
        ' (noise too small for this delta)',
    );
  }
  return eps;
}

export function pldDelta(events: readonly PrivacyEvent[], eps: number, discretization?: number): number {
  return pldDeltaFromState(buildPld(events, { discretization }), eps);
}
