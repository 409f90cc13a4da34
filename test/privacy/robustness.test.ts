import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccountantNotApplicableError,
  calibrateNoiseMultiplier,
  computeDelta,
  computeEpsilon,
  parsePrivacyEvents,
  PrivacyInputError,
  type PrivacyEvent,
} from '../../src/privacy';

const g = (s: number, count = 1): PrivacyEvent => ({ type: 'gaussian', noise_multiplier: s, count });
const sgm = (s: number, q: number, count = 1): PrivacyEvent => ({ type: 'poisson_subsampled_gaussian', noise_multiplier: s, sampling_rate: q, count });

function throwsInput(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PrivacyInputError, `not a PrivacyInputError: ${String(err)}`);
    assert.equal(err.code, 'INVALID_PRIVACY_INPUT');
    assert.match(err.message, field);
    return true;
  });
}

test('parsePrivacyEvents validates untrusted JSON and names the field', () => {
  assert.deepEqual(parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: 1, count: 2, extra: 1 }]), [g(1, 2)]);
  assert.deepEqual(parsePrivacyEvents([]), []);
  throwsInput(() => parsePrivacyEvents({}), /^events:/);
  throwsInput(() => parsePrivacyEvents([null]), /events\[0\]/);
  throwsInput(() => parsePrivacyEvents([{ type: 'exponential', noise_multiplier: 1, count: 1 }]), /events\[0\]\.type/);
  throwsInput(() => parsePrivacyEvents([g(1), { type: 'gaussian', noise_multiplier: 0, count: 1 }]), /events\[1\]\.noise_multiplier/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: -1, count: 1 }]), /noise_multiplier/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: NaN, count: 1 }]), /noise_multiplier/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: Infinity, count: 1 }]), /noise_multiplier/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: '1', count: 1 }]), /noise_multiplier/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: 1, count: 1.5 }]), /count/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: 1, count: 0 }]), /count/);
  throwsInput(() => parsePrivacyEvents([{ type: 'gaussian', noise_multiplier: 1, count: 2e9 }]), /count/);
  throwsInput(() => parsePrivacyEvents([{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 0, count: 1 }]), /sampling_rate/);
  throwsInput(() => parsePrivacyEvents([{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 1.01, count: 1 }]), /sampling_rate/);
  throwsInput(() => parsePrivacyEvents([{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, count: 1 }]), /sampling_rate/);
});

test('invalid delta / epsilon / accountant / options are PrivacyInputErrors', () => {
  for (const d of [0, 1, -1e-5, 2, NaN, Infinity]) throwsInput(() => computeEpsilon([g(1)], d), /^delta/);
  for (const e of [-1, NaN, Infinity]) throwsInput(() => computeDelta([g(1)], e), /^epsilon/);
  throwsInput(() => computeEpsilon([g(1)], 1e-5, 'moments' as never), /^accountant/);
  throwsInput(() => computeEpsilon([g(1)], 1e-5, 'pld', { pldDiscretization: 0 }), /pldDiscretization/);
  throwsInput(() => computeEpsilon([g(0)], 1e-5), /noise_multiplier/);
  throwsInput(() => calibrateNoiseMultiplier({ targetEpsilon: 0, delta: 1e-5 }), /targetEpsilon/);
  throwsInput(() => calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, samplingRate: 0 }), /samplingRate/);
  throwsInput(() => calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, steps: 2.5 }), /steps/);
  throwsInput(() => calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, eventsBefore: [g(0.1, 10)] }), /targetEpsilon/);
});

test('exact refuses what it cannot treat exactly', () => {
  const notApplicable = (events: PrivacyEvent[]) =>
    assert.throws(() => computeEpsilon(events, 1e-5, 'exact'), (e: unknown) => e instanceof AccountantNotApplicableError && e instanceof PrivacyInputError);
  notApplicable([sgm(1, 0.1)]);
  notApplicable([{ type: 'laplace', noise_multiplier: 1, count: 2 }]);
  notApplicable([g(1), { type: 'laplace', noise_multiplier: 1, count: 1 }]);
  assert.throws(() => calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, samplingRate: 0.1, accountant: 'exact' }), AccountantNotApplicableError);
  // auto falls back to pld
  assert.equal(computeEpsilon([sgm(1, 0.1, 3)], 1e-5).accountant, 'pld');
  assert.equal(computeEpsilon([{ type: 'laplace', noise_multiplier: 1, count: 1 }], 1e-5).accountant, 'exact');
});

test('q = 1 equals the plain Gaussian in every accountant', () => {
  for (const acc of ['exact', 'rdp', 'pld'] as const) {
    const a = computeEpsilon([sgm(1.3, 1, 7)], 1e-6, acc).epsilon;
    const b = computeEpsilon([g(1.3, 7)], 1e-6, acc).epsilon;
    assert.equal(a, b);
  }
});

test('extreme parameters give finite results or clear errors, never NaN/Infinity', () => {
  const finiteOrInputError = (fn: () => { epsilon?: number; delta?: number }) => {
    try {
      const r = fn();
      const v = r.epsilon ?? r.delta!;
      assert.ok(Number.isFinite(v) && v >= 0, `bad value ${v}`);
    } catch (err) {
      assert.ok(err instanceof PrivacyInputError, `unexpected ${String(err)}`);
    }
  };
  for (const s of [1e-4, 0.05, 1, 1e3, 1e6]) {
    for (const delta of [1e-300, 1e-12, 1e-5, 0.5, 1 - 1e-12]) {
      for (const acc of ['exact', 'rdp'] as const) finiteOrInputError(() => computeEpsilon([g(s, 3)], delta, acc));
      finiteOrInputError(() => computeEpsilon([sgm(s, 0.01, 1000)], delta, 'rdp'));
    }
    for (const delta of [1e-300, 1e-5, 1 - 1e-12]) {
      finiteOrInputError(() => computeEpsilon([sgm(s, 0.01, 1000)], delta, 'pld'));
      // PLD of Gaussians is finite (or a clear error) and never below the exact value
      try {
        const pld = computeEpsilon([g(s, 3)], delta, 'pld').epsilon;
        const exact = computeEpsilon([g(s, 3)], delta, 'exact').epsilon;
        assert.ok(Number.isFinite(pld), `s=${s} delta=${delta}: ${pld}`);
        // Near delta = 1 float64 cannot resolve 1 - delta finely enough for the comparison to be meaningful.
        if (delta <= 0.5) assert.ok(pld >= exact * (1 - 1e-12), `s=${s} delta=${delta}: pld ${pld} < exact ${exact}`);
      } catch (err) {
        assert.ok(err instanceof PrivacyInputError, String(err));
      }
    }
    for (const acc of ['exact', 'rdp', 'pld'] as const) finiteOrInputError(() => computeDelta([g(s, 3)], 1, acc));
  }
  for (const b of [1e-3, 1, 1e4]) {
    for (const acc of ['rdp', 'pld'] as const) finiteOrInputError(() => computeEpsilon([{ type: 'laplace', noise_multiplier: b, count: 5 }], 1e-6, acc));
  }
});

test('very large and very small noise behave sensibly', () => {
  // huge noise: epsilon tiny but positive-or-zero, delta at eps=0 small
  const e = computeEpsilon([g(1e6)], 1e-5, 'exact').epsilon;
  assert.ok(e >= 0 && e < 1e-5);
  const r = computeEpsilon([sgm(1e4, 0.01, 1000)], 1e-5, 'rdp').epsilon;
  assert.ok(r >= 0 && r < 1e-2);
  // tiny noise: large but finite exact epsilon (mu = 1e4 -> eps ~ mu^2/2)
  const big = computeEpsilon([g(1e-4)], 1e-5, 'exact').epsilon;
  assert.ok(Number.isFinite(big) && big > 4e7);
  // delta near 1: epsilon 0
  assert.equal(computeEpsilon([g(1)], 1 - 1e-9, 'exact').epsilon, 0);
});

test('counts up to 1e6 are handled quickly by every accountant', () => {
  const ev = [sgm(2, 0.001, 1_000_000)];
  const rdp = computeEpsilon(ev, 1e-5, 'rdp').epsilon;
  const pld = computeEpsilon(ev, 1e-5, 'pld').epsilon;
  assert.ok(Number.isFinite(rdp) && Number.isFinite(pld));
  assert.ok(pld <= rdp * 1.001, `pld ${pld} rdp ${rdp}`);
  const exact = computeEpsilon([g(100, 1_000_000)], 1e-5, 'exact').epsilon;
  const pldG = computeEpsilon([g(100, 1_000_000)], 1e-5, 'pld').epsilon;
  assert.ok(pldG >= exact && pldG - exact < 1e-3);
  const lap = computeEpsilon([{ type: 'laplace', noise_multiplier: 1000, count: 1_000_000 }], 1e-5, 'pld').epsilon;
  assert.ok(Number.isFinite(lap) && lap < 1000);
});

test('empty event list spends nothing', () => {
  for (const acc of ['exact', 'rdp', 'pld', 'auto'] as const) {
    assert.equal(computeEpsilon([], 1e-5, acc).epsilon, 0);
    assert.equal(computeDelta([], 0, acc).delta, 0);
  }
});
