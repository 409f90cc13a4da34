/**
 * Special functions in float64 with full relative accuracy in the tails.
 *
 * The core is the scaled complementary error function erfcx(x) = exp(x^2) erfc(x) for x >= 0:
 *  - reference values come from the Maclaurin series of erf (x < 1) and the Laplace continued fraction of
 *    erfc (x >= 1, modified Lentz);
 *  - for 0 <= x < 8 the function is replaced by piecewise Chebyshev interpolants (degree 24) of those
 *    reference values, built lazily once (~1 ms), so evaluation costs a Clenshaw recurrence;
 *  - for x >= 8 the continued fraction converges in a dozen terms and is used directly.
 * Everything else (erfc, Phi, log Phi, the analytic Gaussian privacy curve) is derived from erfcx, which
 * keeps relative accuracy ~1e-15 even where erfc itself underflows.
 */

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT2 = Math.SQRT2;
const LN2 = Math.LN2;

/** Maclaurin series of erf, accurate for |x| <= 1 (terms alternate but never exceed ~1). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x; // (-1)^n x^(2n+1) / n!
  let sum = x;
  for (let n = 1; n < 60; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-18 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * sum;
}

/** erfcx via the continued fraction erfc(x) = e^{-x^2}/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))). */
function erfcxContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 2e-17) break;
  }
  return 1 / (SQRT_PI * f);
}

function erfcxReference(x: number): number {
  if (x < 1) return Math.exp(x * x) * (1 - erfSeries(x));
  return erfcxContinuedFraction(x);
}

const CHEB_BREAKS = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 8];
const CHEB_DEGREE = 24;
let chebCoeffs: Float64Array[] | null = null;

function buildChebyshev(): Float64Array[] {
  const n = CHEB_DEGREE + 1;
  const out: Float64Array[] = [];
  for (let k = 0; k + 1 < CHEB_BREAKS.length; k++) {
    const a = CHEB_BREAKS[k];
    const b = CHEB_BREAKS[k + 1];
    const f = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const t = Math.cos((Math.PI * (j + 0.5)) / n);
      f[j] = erfcxReference(0.5 * (a + b) + 0.5 * (b - a) * t);
    }
    const c = new Float64Array(n);
    for (let m = 0; m < n; m++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += f[j] * Math.cos((Math.PI * m * (j + 0.5)) / n);
      c[m] = (2 / n) * s;
    }
    c[0] *= 0.5;
    out.push(c);
  }
  return out;
}

/** Scaled complementary error function exp(x^2) erfc(x); finite for every finite x (overflows only for x < -26.6). */
export function erfcx(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) {
    // erfcx(-x) = 2 exp(x^2) - erfcx(x)
    return 2 * Math.exp(x * x) - erfcx(-x);
  }
  if (x >= 8) {
    if (x > 1e8) return 1 / (SQRT_PI * x);
    return erfcxContinuedFraction(x);
  }
  if (chebCoeffs === null) chebCoeffs = buildChebyshev();
  let k = 0;
  while (x >= CHEB_BREAKS[k + 1]) k++;
  const a = CHEB_BREAKS[k];
  const b = CHEB_BREAKS[k + 1];
  const t = (2 * x - a - b) / (b - a);
  const c = chebCoeffs[k];
  // Clenshaw recurrence
  let b1 = 0;
  let b2 = 0;
  const t2 = 2 * t;
  for (let m = CHEB_DEGREE; m >= 1; m--) {
    const tmp = t2 * b1 - b2 + c[m];
    b2 = b1;
    b1 = tmp;
  }
  return t * b1 - b2 + c[0];
}

/** Complementary error function with full relative accuracy for large x. */
export function erfc(x: number): number {
  if (x >= 0) {
    if (x > 27.3) return 0;
    return Math.exp(-x * x) * erfcx(x);
  }
  return 2 - erfc(-x);
}

/** log(erfc(x)) for any finite x (no underflow for large x). */
export function logErfc(x: number): number {
  if (x >= 0) return -x * x + Math.log(erfcx(x));
  return Math.log(2 - erfc(-x));
}

/** Standard normal CDF Phi(x). */
export function normCdf(x: number): number {
  return 0.5 * erfc(-x / SQRT2);
}

/** log Phi(x), accurate for very negative x. */
export function logNormCdf(x: number): number {
  if (x < -1) {
    const t = -x / SQRT2;
    return -t * t + Math.log(0.5 * erfcx(t));
  }
  return Math.log1p(-0.5 * erfc(x / SQRT2));
}

/** log(exp(a) + exp(b)). */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** log(1 - exp(x)) for x <= 0 (accurate near 0 and for very negative x). */
export function log1mExp(x: number): number {
  if (x > -LN2) return Math.log(-Math.expm1(x));
  return Math.log1p(-Math.exp(x));
}

/** log(1 + exp(x)) without overflow. */
export function log1pExp(x: number): number {
  if (x > 35) return x + Math.exp(-x);
  return Math.log1p(Math.exp(x));
}

/**
 * log delta(eps) of the analytic Gaussian curve of a mu-GDP mechanism (Balle & Wang 2018):
 *   delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2).
 * Valid for every real eps (negative eps included). In the tail (a = -eps/mu + mu/2 < 0) it uses the identity
 *   delta = 1/2 exp(-a^2/2) [erfcx(-a/sqrt2) - erfcx(-(a - mu)/sqrt2)],
 * (the e^eps factor cancels exactly), which avoids the catastrophic cancellation of the textbook form.
 */
export function gaussianLogDelta(eps: number, mu: number): number {
  if (!(mu > 0)) return eps >= 0 ? -Infinity : log1mExp(eps);
  if (eps === Infinity) return -Infinity;
  const a = -eps / mu + mu / 2;
  const b = a - mu;
  if (a < 0) {
    const s = -a / SQRT2;
    const u = -b / SQRT2;
    const diff = erfcx(s) - erfcx(u);
    if (!(diff > 0)) return -Infinity;
    return -0.5 * a * a + Math.log(0.5 * diff);
  }
  // a >= 0: Phi(a) >= 1/2, the subtraction is benign.
  const pa = normCdf(a);
  const second = Math.exp(eps + logNormCdf(b));
  const d = pa - second;
  if (!(d > 0)) return -Infinity;
  return Math.log(d);
}

/** delta(eps) of the analytic Gaussian curve (see gaussianLogDelta). */
export function gaussianDelta(eps: number, mu: number): number {
  return Math.exp(gaussianLogDelta(eps, mu));
}

/**
 * Finds the smallest x in [lo, hi] with pred(x) true, for a predicate that is monotone (false ... true),
 * by bisection until the bracket is relTol-relative (or absTol) small. Returns the upper end, for which
 * pred holds (it must hold at hi).
 */
export function bisectMonotone(
  pred: (x: number) => boolean,
  lo: number,
  hi: number,
  relTol = 1e-15,
  absTol = 0,
  maxIter = 400,
): number {
  for (let i = 0; i < maxIter; i++) {
    const mid = 0.5 * (lo + hi);
    if (!(mid > lo && mid < hi)) break;
    if (hi - lo <= Math.max(absTol, relTol * Math.max(Math.abs(lo), Math.abs(hi)))) break;
    if (pred(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
