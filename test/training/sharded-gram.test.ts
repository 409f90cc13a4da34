/**
 * The LEAST_SQUARES Gram split over helper threads equals the single-thread accumulation (rows in blocks,
 * summed in shard order), and trainLeastSquares gives the same head and releases with threads as without
 * for the same seeded noise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trainLeastSquares } from '../../src/training/heads';
import { clipFactor } from '../../src/training/heads/kernels';
import { accumulateClippedGram } from '../../src/training/heads/linalg';
import { gramThreads, shardedClippedGram } from '../../src/training/heads/sharded-gram';
import { gaussianMixture, maxAbsDiff, RecordingNoise } from './heads-helpers';

describe('sharded Gram', () => {
  for (const [threads, bias, float32, rows] of [[2, false, true, 1003], [3, true, false, 1001], [4, true, true, 3]] as const) {
    it(`${threads} threads (bias ${bias}, ${float32 ? 'float32' : 'float64'} features, ${rows} rows) equal one thread`, () => {
      const f = gaussianMixture(rows, 37, 4, threads + rows, 1.5);
      const data = float32 ? Float32Array.from(f.features.data) : f.features.data;
      const scale = Float64Array.from({ length: rows }, (_, i) => clipFactor(0.7, 1 + (i % 5) / 4));
      const D = bias ? 38 : 37;
      const want = new Float64Array(D * D);
      accumulateClippedGram(data, rows, 37, scale, bias, want);
      const got = shardedClippedGram(data, rows, 37, scale, bias, threads);
      assert.equal(got.length, D * D);
      assert.ok(want.some((v) => v !== 0));
      const tol = 1e-12 * Math.max(...want.map(Math.abs));
      assert.ok(maxAbsDiff(got, want) <= tol, `max diff ${maxAbsDiff(got, want)}`);
      // Only the upper triangle is accumulated: the strictly lower one stays zero (mirrorUpper fills it).
      for (let i = 1; i < D; i++) for (let j = 0; j < i; j++) assert.equal(got[i * D + j], 0);
    });
  }

  it('trainLeastSquares trains the same head with threads as without, for the same seeded noise', () => {
    const f = gaussianMixture(2400, 40, 5, 7, 1.5);
    const run = (threads: number) =>
      trainLeastSquares(f.features, f.labels, { numClasses: 5, noiseMultiplier: 3, clipNorm: 1, noise: new RecordingNoise(5), allowInsecureNoise: true, fitBias: true, threads });
    const one = run(1);
    const three = run(3);
    assert.ok(maxAbsDiff(one.weights, three.weights) < 1e-9, `max diff ${maxAbsDiff(one.weights, three.weights)}`);
    assert.ok(maxAbsDiff(one.bias!, three.bias!) < 1e-9);
    assert.deepEqual(three.events, one.events);
    assert.throws(() => run(0), /threads must be an integer >= 1/);
  });

  it('uses threads only where the work pays for them', () => {
    assert.equal(gramThreads(1000, 577, 8), 1, '1000 x 577: ~170M multiply-adds, one thread');
    assert.equal(gramThreads(60000, 577, 2), 2);
    assert.equal(gramThreads(60000, 1281, 64), 16, 'capped at 16');
    assert.equal(gramThreads(60000, 577, 1), 1, 'never more than the cores');
  });
});
