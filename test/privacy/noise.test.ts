import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secureNoise, seededNoiseForTests, PrivacyInputError } from '../../src/privacy';
import { normCdf } from '../../src/privacy/special';

function ksStatistic(sample: Float64Array, cdf: (x: number) => number): number {
  const s = Float64Array.from(sample).sort();
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  }
  return d;
}

const laplaceCdf = (b: number) => (x: number) => (x < 0 ? 0.5 * Math.exp(x / b) : 1 - 0.5 * Math.exp(-x / b));

// P(sqrt(n) D > 2.3) ~ 2 e^{-2 * 2.3^2} ~ 5e-5: negligible flake rate for the CSPRNG tests.
const KS_CRIT = 2.3;

for (const [name, make] of [
  ['secure', () => secureNoise()],
  ['seeded', () => seededNoiseForTests('ks-test')],
] as const) {
  test(`${name} Gaussian: moments and Kolmogorov-Smirnov`, () => {
    const src = make();
    const n = 50_000;
    const std = 2.5;
    const x = src.fillGaussian(new Float64Array(n), std);
    let m = 0;
    for (const v of x) m += v;
    m /= n;
    let v2 = 0;
    let m4 = 0;
    for (const v of x) {
      v2 += (v - m) ** 2;
      m4 += (v - m) ** 4;
    }
    v2 /= n;
    m4 /= n;
    assert.ok(Math.abs(m) < 5 * std / Math.sqrt(n), `mean ${m}`);
    assert.ok(Math.abs(v2 / (std * std) - 1) < 5 * Math.sqrt(2 / n), `variance ${v2}`);
    assert.ok(Math.abs(m4 / (v2 * v2) - 3) < 0.15, `kurtosis ${m4 / v2 / v2}`);
    const d = ksStatistic(x, (t) => normCdf(t / std));
    assert.ok(Math.sqrt(n) * d < KS_CRIT, `KS D=${d}`);
  });

  test(`${name} Laplace: moments and Kolmogorov-Smirnov`, () => {
    const src = make();
    const n = 50_000;
    const b = 0.7;
    const x = src.fillLaplace(new Float64Array(n), b);
    let m = 0;
    let abs = 0;
    for (const v of x) {
      m += v;
      abs += Math.abs(v);
    }
    m /= n;
    abs /= n;
    assert.ok(Math.abs(m) < 5 * Math.SQRT2 * b / Math.sqrt(n), `mean ${m}`);
    assert.ok(Math.abs(abs / b - 1) < 5 / Math.sqrt(n), `E|X| ${abs}`);
    const d = ksStatistic(x, laplaceCdf(b));
    assert.ok(Math.sqrt(n) * d < KS_CRIT, `KS D=${d}`);
  });
}

test('secure source is csprng/secure, seeded is deterministic and insecure', () => {
  const s = secureNoise();
  assert.equal(s.secure, true);
  assert.equal(s.kind, 'csprng');
  const a = seededNoiseForTests(7);
  const b = seededNoiseForTests(7);
  const c = seededNoiseForTests('other');
  assert.equal(a.secure, false);
  assert.equal(a.kind, 'seeded');
  const xa = a.fillGaussian(new Float64Array(10), 1);
  assert.deepEqual(xa, b.fillGaussian(new Float64Array(10), 1));
  assert.notDeepEqual(xa, c.fillGaussian(new Float64Array(10), 1));
  const s1 = s.fillGaussian(new Float64Array(10), 1);
  const s2 = secureNoise().fillGaussian(new Float64Array(10), 1);
  assert.notDeepEqual(s1, s2);
  for (const v of s.fillLaplace(new Float64Array(1000), 3)) assert.ok(Number.isFinite(v));
  for (const v of s.fillGaussian(new Float64Array(3), 0)) assert.ok(v === 0);
  assert.throws(() => s.fillGaussian(new Float64Array(1), -1), PrivacyInputError);
  assert.throws(() => s.fillLaplace(new Float64Array(1), NaN), PrivacyInputError);
});

test('secure Gaussian throughput is reasonable', () => {
  const s = secureNoise();
  const out = new Float64Array(1_000_000);
  const t0 = process.hrtime.bigint();
  s.fillGaussian(out, 1);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 2000, `1e6 Gaussians took ${ms} ms`);
});
