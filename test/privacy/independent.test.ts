/** Checks against independent computations (numerical integration, direct sums, known constants). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeEpsilon, computeDelta } from '../../src/privacy';
import { erfc, gaussianDelta, normCdf } from '../../src/privacy/special';
import { rdpSubsampledGaussian } from '../../src/privacy/rdp-mechanisms';
import { subsampledGaussianCurves } from '../../src/privacy/mechanisms';
import { singleReleaseEpsilon } from '../../src/privacy/exact';
import { fft, convolveReal } from '../../src/privacy/fft';
import { relErr } from './fixtures';

/** Composite Simpson on [a, b] with n (even) panels. */
function simpson(f: (x: number) => number, a: number, b: number, n = 20000): number {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

test('erfc against reference constants', () => {
  const ref: [number, number][] = [
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [5, 1.5374597944280349e-12],
    [10, 2.088487583762545e-45],
    [-1, 1.8427007929497148],
  ];
  for (const [x, want] of ref) assert.ok(relErr(erfc(x), want) < 1e-14, `erfc(${x}) = ${erfc(x)}`);
});

test('normal CDF against Simpson integration of the density', () => {
  for (const x of [-6, -3.3, -1, -0.2, 0.7, 2.5]) {
    const integral = simpson(phi, -40, x, 40000);
    assert.ok(relErr(normCdf(x), integral) < 1e-10, `Phi(${x})`);
  }
});

test('exact Gaussian delta(eps) vs brute-force integration of the privacy loss', () => {
  // delta(eps) = E_{x~N(0,1)}[(1 - e^{eps - L(x)})_+] with P = N(mu,1), Q = N(0,1), L(x) = mu x - mu^2/2 under P:
  // integrate over x ~ P = N(mu, 1).
  for (const mu of [0.3, 1, 2.5]) {
    for (const eps of [0, 0.5, 2, 4]) {
      const f = (x: number) => {
        const L = mu * x - (mu * mu) / 2;
        return L > eps ? phi(x - mu) * -Math.expm1(eps - L) : 0;
      };
      const brute = simpson(f, (eps + (mu * mu) / 2) / mu, mu + 40, 200000);
      const analytic = gaussianDelta(eps, mu);
      if (brute < 1e-300) continue;
      assert.ok(relErr(analytic, brute) < 1e-8, `mu=${mu} eps=${eps}: ${analytic} vs ${brute}`);
    }
  }
});

test('exact epsilon round-trips through delta and equals the GDP closed form for composed Gaussians', () => {
  const events = [
    { type: 'gaussian' as const, noise_multiplier: 2, count: 3 },
    { type: 'gaussian' as const, noise_multiplier: 4, count: 5 },
  ];
  const mu = Math.sqrt(3 / 4 + 5 / 16);
  const r = computeEpsilon(events, 1e-6, 'exact');
  assert.ok(relErr(gaussianDelta(r.epsilon, mu), 1e-6) < 1e-9);
});

/** density of N(0,s^2) at x times ((1-q) + q e^{(2x-1)/(2s^2)})^alpha, combined in log space */
function integrandA(x: number, q: number, s: number, alpha: number): number {
  const y = (2 * x - 1) / (2 * s * s);
  const logRatio = y > 0 ? y + Math.log(q + (1 - q) * Math.exp(-y)) : Math.log1p(q * Math.expm1(y));
  return Math.exp(-(x * x) / (2 * s * s) - Math.log(s * Math.sqrt(2 * Math.PI)) + alpha * logRatio);
}

test('RDP of the subsampled Gaussian at integer orders vs numerical integration of A_alpha', () => {
  // A_alpha = E_{x~N(0,s^2)}[((1-q) + q e^{(2x-1)/(2s^2)})^alpha]
  for (const [q, s] of [
    [0.01, 1],
    [0.1, 2],
    [0.3, 0.8],
  ]) {
    for (const alpha of [2, 3, 8, 20]) {
      const f = (x: number) => integrandA(x, q, s, alpha);
      const A = simpson(f, -40 * s, 40 * s + alpha, 400000);
      const want = Math.log(A) / (alpha - 1);
      const got = rdpSubsampledGaussian(q, s, alpha);
      assert.ok(relErr(got, want) < 1e-7, `q=${q} s=${s} a=${alpha}: ${got} vs ${want}`);
    }
  }
});

test('RDP fractional orders are upper bounds within 1% of the integral', () => {
  for (const [q, s] of [
    [0.01, 1],
    [0.1, 2],
  ]) {
    for (const alpha of [2.5, 5.4, 12.3]) {
      const f = (x: number) => integrandA(x, q, s, alpha);
      const want = Math.log(simpson(f, -40 * s, 40 * s + alpha, 400000)) / (alpha - 1);
      const got = rdpSubsampledGaussian(q, s, alpha);
      assert.ok(got >= want * (1 - 1e-9), `q=${q} s=${s} a=${alpha}: ${got} < ${want}`);
      assert.ok(got <= want * 1.01, `q=${q} s=${s} a=${alpha}: ${got} >> ${want}`);
    }
  }
});

test('PLD of a single Gaussian vs exact at several sigma', () => {
  for (const sigma of [0.7, 1.5, 3, 8, 25]) {
    const ev = [{ type: 'gaussian' as const, noise_multiplier: sigma, count: 1 }];
    for (const delta of [1e-3, 1e-6]) {
      const exact = computeEpsilon(ev, delta, 'exact').epsilon;
      const pld = computeEpsilon(ev, delta, 'pld').epsilon;
      assert.ok(pld >= exact, `sigma=${sigma}: pld ${pld} < exact ${exact}`);
      assert.ok(pld - exact < 1e-4 * Math.max(1, exact), `sigma=${sigma}: pld ${pld} vs exact ${exact}`);
    }
  }
});

test('PLD of one subsampled Gaussian vs its exact single-release curve', () => {
  for (const [q, s] of [
    [0.01, 0.8],
    [0.2, 1.5],
    [0.5, 3],
  ]) {
    const ev = { type: 'poisson_subsampled_gaussian' as const, noise_multiplier: s, sampling_rate: q, count: 1 };
    const exact = singleReleaseEpsilon(ev, 1e-5);
    const pld = computeEpsilon([ev], 1e-5, 'pld').epsilon;
    assert.ok(pld >= exact - 1e-12, `q=${q}: pld ${pld} < exact ${exact}`);
    assert.ok(pld - exact < 2e-4 * Math.max(1, exact), `q=${q}: pld ${pld} vs exact ${exact}`);
  }
});

test('subsampled Gaussian curves: remove-direction delta vs numerical hockey-stick integral', () => {
  const q = 0.1;
  const s = 1.2;
  const [remove, add] = subsampledGaussianCurves(q, s, 1e-20);
  const pdf = (x: number, m: number) => Math.exp(-((x - m) ** 2) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI));
  for (const eps of [-0.05, 0.2, 1, 2]) {
    // remove: P = mixture, Q = N(0,s^2); delta = int (P - e^eps Q)_+
    const fr = (x: number) => Math.max(0, (1 - q) * pdf(x, 0) + q * pdf(x, 1) - Math.exp(eps) * pdf(x, 0));
    const fa = (x: number) => Math.max(0, pdf(x, 0) - Math.exp(eps) * ((1 - q) * pdf(x, 0) + q * pdf(x, 1)));
    const br = simpson(fr, -30, 30, 400000);
    const ba = simpson(fa, -30, 30, 400000);
    assert.ok(Math.abs(remove.delta(eps) - br) < 1e-9 * Math.max(1, br) + 1e-14, `remove eps=${eps}: ${remove.delta(eps)} vs ${br}`);
    assert.ok(Math.abs(add.delta(eps) - ba) < 1e-9 * Math.max(1, ba) + 1e-14, `add eps=${eps}: ${add.delta(eps)} vs ${ba}`);
  }
});

test('Laplace: exact single release and PLD composition vs direct convolution', () => {
  const b = 2;
  assert.ok(relErr(computeEpsilon([{ type: 'laplace', noise_multiplier: b, count: 1 }], 1e-4, 'exact').epsilon, 1 / b + 2 * Math.log1p(-1e-4)) < 1e-12);
  // pure DP: k-fold Laplace is (k/b, 0)-DP, so delta(k/b) = 0 and eps(delta) <= k/b.
  const ev = [{ type: 'laplace' as const, noise_multiplier: b, count: 10 }];
  assert.ok(computeEpsilon(ev, 1e-9, 'pld').epsilon <= 10 / b + 1e-3);
  assert.ok(computeDelta(ev, 10 / b + 1e-3, 'pld').delta < 1e-12);
});

test('FFT: matches a direct DFT and convolution', () => {
  const n = 64;
  const re = new Float64Array(n).map((_, i) => Math.sin(i * 0.7) + (i % 5));
  const im = new Float64Array(n).map((_, i) => Math.cos(i * 0.3));
  const r0 = re.slice();
  const i0 = im.slice();
  fft(re, im);
  for (let k = 0; k < n; k += 7) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < n; j++) {
      const a = (-2 * Math.PI * j * k) / n;
      sr += r0[j] * Math.cos(a) - i0[j] * Math.sin(a);
      si += r0[j] * Math.sin(a) + i0[j] * Math.cos(a);
    }
    assert.ok(Math.abs(sr - re[k]) < 1e-10 && Math.abs(si - im[k]) < 1e-10);
  }
  fft(re, im, true);
  for (let j = 0; j < n; j++) assert.ok(Math.abs(re[j] - r0[j]) < 1e-12);
  const a = new Float64Array(300).map((_, i) => (i * 37) % 11);
  const b = new Float64Array(200).map((_, i) => (i * 13) % 7);
  const c = convolveReal(a, b);
  for (const k of [0, 1, 150, 320, 498]) {
    let s = 0;
    for (let i = 0; i < a.length; i++) if (k - i >= 0 && k - i < b.length) s += a[i] * b[k - i];
    assert.ok(Math.abs(c[k] - s) < 1e-8 * Math.max(1, s));
  }
});
