import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrateNoiseMultiplier, computeEpsilon } from '../../src/privacy';
import { loadCalibration, relErr } from './fixtures';

for (const c of loadCalibration()) {
  test(`calibration: ${c.id}`, async (t) => {
    const base = { targetEpsilon: c.target_epsilon, delta: c.delta, samplingRate: c.sampling_rate, steps: c.steps };
    const check = (accountant: 'rdp' | 'pld' | 'exact', want: number) => {
      const r = calibrateNoiseMultiplier({ ...base, accountant });
      assert.equal(r.accountant, accountant);
      assert.ok(relErr(r.noiseMultiplier, want) <= 1e-3, `${accountant}: ${r.noiseMultiplier} vs ${want}`);
      assert.ok(r.epsilon <= c.target_epsilon, `achieved ${r.epsilon} > target`);
      const events =
        c.sampling_rate === 1
          ? [{ type: 'gaussian' as const, noise_multiplier: r.noiseMultiplier, count: c.steps }]
          : [{ type: 'poisson_subsampled_gaussian' as const, noise_multiplier: r.noiseMultiplier, sampling_rate: c.sampling_rate, count: c.steps }];
      const again = computeEpsilon(events, c.delta, accountant).epsilon;
      assert.ok(again <= c.target_epsilon, `recomputed ${again} > target`);
      return r;
    };
    await t.test('rdp', () => {
      const r = check('rdp', c.expected.noise_multiplier_rdp);
      assert.ok(relErr(r.noiseMultiplier, c.expected.noise_multiplier_rdp) <= 1e-5);
    });
    await t.test('pld', () => {
      check('pld', c.expected.noise_multiplier_pld);
    });
    if (c.expected.noise_multiplier_exact !== undefined) {
      const want = c.expected.noise_multiplier_exact;
      await t.test('exact', () => {
        const r = check('exact', want);
        assert.ok(relErr(r.noiseMultiplier, want) <= 1e-6);
        assert.equal(calibrateNoiseMultiplier(base).accountant, 'exact');
      });
    }
  });
}
