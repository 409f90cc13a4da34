import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrateNoiseMultiplier, computeEpsilon, computeDelta, naiveEpsilonSum, type PrivacyEvent } from '../../src/privacy';

/** small deterministic PRNG for property tests */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

test('epsilon decreases as noise grows (all accountants)', () => {
  for (const acc of ['exact', 'rdp', 'pld'] as const) {
    let prev = Infinity;
    for (const s of [0.6, 0.9, 1.3, 2, 4, 9]) {
      const e = computeEpsilon([{ type: 'gaussian', noise_multiplier: s, count: 20 }], 1e-5, acc).epsilon;
      assert.ok(e < prev, `${acc}: ${e} !< ${prev}`);
      prev = e;
    }
  }
  for (const acc of ['rdp', 'pld'] as const) {
    let prev = Infinity;
    for (const s of [0.7, 1, 1.5, 3]) {
      const e = computeEpsilon([{ type: 'poisson_subsampled_gaussian', noise_multiplier: s, sampling_rate: 0.05, count: 200 }], 1e-5, acc).epsilon;
      assert.ok(e < prev, `${acc}: ${e} !< ${prev}`);
      prev = e;
    }
  }
});

test('epsilon decreases as delta grows; delta decreases as epsilon grows', () => {
  const ev: PrivacyEvent[] = [
    { type: 'gaussian', noise_multiplier: 3, count: 2 },
    { type: 'poisson_subsampled_gaussian', noise_multiplier: 1.2, sampling_rate: 0.02, count: 300 },
  ];
  for (const acc of ['rdp', 'pld'] as const) {
    let prev = Infinity;
    for (const d of [1e-10, 1e-7, 1e-5, 1e-3, 0.05]) {
      const e = computeEpsilon(ev, d, acc).epsilon;
      assert.ok(e < prev, `${acc} delta=${d}`);
      prev = e;
    }
    let prevD = 2;
    for (const e of [0, 0.5, 1, 2, 4]) {
      const d = computeDelta(ev, e, acc).delta;
      assert.ok(d <= prevD, `${acc} eps=${e}`);
      prevD = d;
    }
  }
});

test('composition is order independent', () => {
  const a: PrivacyEvent[] = [
    { type: 'gaussian', noise_multiplier: 2, count: 3 },
    { type: 'laplace', noise_multiplier: 15, count: 2 },
    { type: 'poisson_subsampled_gaussian', noise_multiplier: 1.1, sampling_rate: 0.03, count: 50 },
  ];
  const b = [a[2], a[0], a[1]];
  for (const acc of ['rdp', 'pld'] as const) {
    const ea = computeEpsilon(a, 1e-6, acc).epsilon;
    const eb = computeEpsilon(b, 1e-6, acc).epsilon;
    // identical up to float round-off of the FFT (different packing order)
    assert.ok(Math.abs(ea - eb) <= 1e-8 * ea, `${acc}: ${ea} vs ${eb}`);
  }
  // splitting counts does not change the result
  const split: PrivacyEvent[] = [
    { type: 'gaussian', noise_multiplier: 2, count: 1 },
    { type: 'poisson_subsampled_gaussian', noise_multiplier: 1.1, sampling_rate: 0.03, count: 20 },
    { type: 'gaussian', noise_multiplier: 2, count: 2 },
    { type: 'laplace', noise_multiplier: 15, count: 2 },
    { type: 'poisson_subsampled_gaussian', noise_multiplier: 1.1, sampling_rate: 0.03, count: 30 },
  ];
  for (const acc of ['rdp', 'pld'] as const) {
    const ea = computeEpsilon(a, 1e-6, acc).epsilon;
    const es = computeEpsilon(split, 1e-6, acc).epsilon;
    assert.ok(Math.abs(ea - es) <= 1e-8 * ea, `${acc} split: ${ea} vs ${es}`);
  }
});

test('exact and pld agree on Gaussian lists; rdp is never below exact', () => {
  const r = rng(7);
  for (let i = 0; i < 12; i++) {
    const n = 1 + Math.floor(r() * 3);
    const ev: PrivacyEvent[] = [];
    for (let k = 0; k < n; k++) ev.push({ type: 'gaussian', noise_multiplier: 0.5 + 10 * r(), count: 1 + Math.floor(r() * 50) });
    const delta = Math.pow(10, -2 - 8 * r());
    const exact = computeEpsilon(ev, delta, 'exact').epsilon;
    const pld = computeEpsilon(ev, delta, 'pld').epsilon;
    const rdp = computeEpsilon(ev, delta, 'rdp').epsilon;
    assert.ok(pld >= exact && pld - exact <= 1e-4 * Math.max(1, exact), `pld ${pld} exact ${exact}`);
    assert.ok(rdp >= exact, `rdp ${rdp} < exact ${exact}`);
  }
});

test('pld is never above rdp by more than its grid error on subsampled lists', () => {
  const ev: PrivacyEvent[] = [{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 0.02, count: 500 }];
  const pld = computeEpsilon(ev, 1e-5, 'pld').epsilon;
  const rdp = computeEpsilon(ev, 1e-5, 'rdp').epsilon;
  assert.ok(pld < rdp);
});

test('calibration is conservative for many random targets (exact, rdp) and some (pld)', () => {
  const r = rng(42);
  for (let i = 0; i < 40; i++) {
    const targetEpsilon = 0.2 + 9 * r();
    const delta = Math.pow(10, -3 - 6 * r());
    const subsampled = r() < 0.6;
    const samplingRate = subsampled ? 0.001 + 0.3 * r() : 1;
    const steps = 1 + Math.floor(r() * (subsampled ? 3000 : 50));
    const accountant = subsampled ? 'rdp' : r() < 0.5 ? 'exact' : 'rdp';
    const res = calibrateNoiseMultiplier({ targetEpsilon, delta, samplingRate, steps, accountant });
    assert.ok(res.epsilon <= targetEpsilon, `case ${i}: ${res.epsilon} > ${targetEpsilon}`);
    const events: PrivacyEvent[] = subsampled
      ? [{ type: 'poisson_subsampled_gaussian', noise_multiplier: res.noiseMultiplier, sampling_rate: samplingRate, count: steps }]
      : [{ type: 'gaussian', noise_multiplier: res.noiseMultiplier, count: steps }];
    assert.ok(computeEpsilon(events, delta, accountant).epsilon <= targetEpsilon);
    // and it is (nearly) the smallest: 0.1% less noise exceeds the target
    const smaller = events.map((e) => ({ ...e, noise_multiplier: e.noise_multiplier * 0.999 }));
    assert.ok(computeEpsilon(smaller, delta, accountant).epsilon > targetEpsilon, `case ${i}: not minimal`);
  }
  for (let i = 0; i < 4; i++) {
    const targetEpsilon = 0.5 + 5 * r();
    const res = calibrateNoiseMultiplier({ targetEpsilon, delta: 1e-5, samplingRate: 0.01 + 0.1 * r(), steps: 20 + Math.floor(200 * r()), accountant: 'pld', relTol: 1e-5, options: { pldDiscretization: 1e-3 } });
    assert.ok(res.epsilon <= targetEpsilon);
  }
});

test('calibration with eventsBefore composes with spent budget', () => {
  const before: PrivacyEvent[] = [{ type: 'gaussian', noise_multiplier: 4, count: 3 }];
  const fresh = calibrateNoiseMultiplier({ targetEpsilon: 3, delta: 1e-5, steps: 10, accountant: 'exact' });
  const after = calibrateNoiseMultiplier({ targetEpsilon: 3, delta: 1e-5, steps: 10, accountant: 'exact', eventsBefore: before });
  assert.ok(after.noiseMultiplier > fresh.noiseMultiplier);
  const total = computeEpsilon([...before, { type: 'gaussian', noise_multiplier: after.noiseMultiplier, count: 10 }], 1e-5, 'exact');
  assert.ok(total.epsilon <= 3);
  const sub = calibrateNoiseMultiplier({ targetEpsilon: 3, delta: 1e-5, steps: 100, samplingRate: 0.1, eventsBefore: before, relTol: 1e-5 });
  assert.equal(sub.accountant, 'pld');
  assert.ok(sub.epsilon <= 3);
});

test('naiveEpsilonSum: sum of per-release tight epsilons, larger than composed accounting', () => {
  const ev: PrivacyEvent[] = [{ type: 'gaussian', noise_multiplier: 5, count: 10 }];
  const single = computeEpsilon([{ type: 'gaussian', noise_multiplier: 5, count: 1 }], 1e-5, 'exact').epsilon;
  assert.ok(Math.abs(naiveEpsilonSum(ev, 1e-5) - 10 * single) < 1e-9);
  assert.ok(naiveEpsilonSum(ev, 1e-5) > computeEpsilon(ev, 1e-5).epsilon);
  const mixed: PrivacyEvent[] = [
    { type: 'laplace', noise_multiplier: 2, count: 3 },
    { type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 0.1, count: 4 },
  ];
  const n = naiveEpsilonSum(mixed, 1e-5);
  assert.ok(Number.isFinite(n) && n > computeEpsilon(mixed, 1e-5, 'pld').epsilon);
});
