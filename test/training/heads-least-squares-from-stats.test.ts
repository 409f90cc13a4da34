import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadError, leastSquaresStatistics, trainLeastSquares } from '../../src/training/heads';
import { leastSquaresFromStatistics } from '../../src/training/heads/least-squares';
import { gaussianMixture, maxAbsDiff, RecordingNoise } from './heads-helpers';

describe('leastSquaresFromStatistics', () => {
  const K = 4;
  const { features, labels } = gaussianMixture(300, 12, K, 3);
  // Rows of norm up to 2 so that a clip norm of 0.7 really clips.
  const scaled = { ...features, data: Float64Array.from(features.data, (v, i) => v * (1 + (Math.floor(i / 12) % 3) / 2)) };

  for (const [name, opts] of [
    ['bias, default ridge, clipping', { numClasses: K, noiseMultiplier: 1.7, clipNorm: 0.7, fitBias: true }],
    ['no bias, explicit ridge', { numClasses: K, noiseMultiplier: 0.4, clipNorm: 1, ridge: 0.3 }],
  ] as const) {
    it(`equals trainLeastSquares given the same noise (${name})`, () => {
      const a = trainLeastSquares(scaled, labels, { ...opts, noise: new RecordingNoise(11), allowInsecureNoise: true });
      const stats = leastSquaresStatistics(scaled, labels, K, opts.clipNorm, 'fitBias' in opts && opts.fitBias === true);
      const gramBefore = Float64Array.from(stats.gram);
      const sumsBefore = Float64Array.from(stats.classSums);
      const noise = new RecordingNoise(11);
      const b = leastSquaresFromStatistics(stats, { ...opts, noise, allowInsecureNoise: true });
      assert.ok(maxAbsDiff(a.weights, b.weights) < 1e-12, 'weights');
      assert.equal(a.bias === null, b.bias === null);
      if (a.bias && b.bias) assert.ok(maxAbsDiff(a.bias, b.bias) < 1e-12, 'bias');
      assert.deepEqual(b.events, a.events);
      assert.equal(b.releases, 2);
      assert.equal(b.noiseKind, 'seeded');
      assert.equal(b.dim, 12);
      // fresh noise per release: two fills, Gram triangle then class sums
      const D = stats.dim;
      assert.deepEqual(noise.calls.map((c) => [c.length, c.std]), [
        [(D * (D + 1)) / 2, opts.noiseMultiplier * opts.clipNorm * opts.clipNorm],
        [K * D, opts.noiseMultiplier * opts.clipNorm],
      ]);
      // the statistics are reusable: not modified
      assert.deepEqual(stats.gram, gramBefore);
      assert.deepEqual(stats.classSums, sumsBefore);
    });
  }

  it('equals trainLeastSquares in non-private mode and refuses insecure noise', () => {
    const stats = leastSquaresStatistics(features, labels, K, 1, true);
    const opts = { numClasses: K, noiseMultiplier: 0, clipNorm: 1, fitBias: true, nonPrivate: true };
    const a = trainLeastSquares(features, labels, opts);
    const b = leastSquaresFromStatistics(stats, opts);
    assert.ok(maxAbsDiff(a.weights, b.weights) < 1e-12);
    assert.deepEqual(b.events, []);
    assert.equal(b.private, false);
    assert.throws(
      () => leastSquaresFromStatistics(stats, { numClasses: K, noiseMultiplier: 1, clipNorm: 1, fitBias: true, noise: new RecordingNoise(1) }),
      (e: unknown) => e instanceof HeadError && e.code === 'INSECURE_NOISE_REFUSED',
    );
    assert.throws(() => leastSquaresFromStatistics(stats, { ...opts, numClasses: K + 1 }), (e: unknown) => e instanceof HeadError && e.code === 'INVALID_HEAD_OPTIONS');
  });
});
