/**
 * The DP_SGD gradient pass split over helper threads equals the single-thread pass (rows in blocks, summed
 * in a fixed order), step after step and with a Poisson sample; trainDpSgd gives the same head with and
 * without threads for the same seeded noise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trainHeadInThread } from '../../src/training/finetune/head-thread';
import { accuracy, trainDpSgd } from '../../src/training/heads';
import { resolveFinetuneOptions } from '../../src/training/jobs/finetune-options';
import { MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { clippedGradientSum, rowNormsSquared } from '../../src/training/heads/kernels';
import { gradientThreads, ShardedGradient } from '../../src/training/heads/sharded-gradient';
import { gaussianMixture, maxAbsDiff, RecordingNoise, SeededRandom } from './heads-helpers';

describe('sharded gradient pass', () => {
  for (const [threads, bias, float32] of [[2, false, true], [3, true, false]] as const) {
    it(`${threads} threads (bias ${bias}, ${float32 ? 'float32' : 'float64'} features) equal one thread, pass after pass`, () => {
      const f = gaussianMixture(1003, 17, 5, threads, 1.5);
      const features = float32 ? { ...f.features, data: Float32Array.from(f.features.data) } : f.features;
      const normsSq = rowNormsSquared(features, bias);
      const sharded = new ShardedGradient(features, f.labels, 5, bias, normsSq, threads);
      try {
        const rng = new SeededRandom(threads);
        const P = 5 * (17 + (bias ? 1 : 0));
        for (let pass = 0; pass < 4; pass++) {
          const theta = Float64Array.from({ length: P }, () => rng.gaussian());
          const include = pass % 2 === 1 ? Uint8Array.from({ length: 1003 }, () => (rng.gaussian() > 0 ? 1 : 0)) : undefined;
          const want = clippedGradientSum(features, f.labels, 5, bias, theta, normsSq, 0.4, include);
          const got = sharded.pass(theta, 0.4, include);
          assert.ok(maxAbsDiff(got.gradSum, want.gradSum) < 1e-11, `pass ${pass}: max diff ${maxAbsDiff(got.gradSum, want.gradSum)}`);
          assert.ok(Math.abs(got.lossSum - want.lossSum) < 1e-9 * want.lossSum);
          assert.equal(got.included, want.included);
        }
      } finally {
        sharded.close();
      }
      assert.throws(() => sharded.pass(new Float64Array(5 * 17), 1), /closed/);
    });
  }

  it('trainDpSgd trains the same head with threads as without, for the same seeded noise', () => {
    const f = gaussianMixture(1200, 24, 4, 9, 1.5);
    const run = (threads: number) =>
      trainDpSgd(f.features, f.labels, {
        numClasses: 4,
        declaredSize: 1200,
        noiseMultiplier: 2,
        clipNorm: 0.5,
        noise: new RecordingNoise(21),
        allowInsecureNoise: true,
        steps: 12,
        learningRate: 4,
        schedule: 'cosine',
        threads,
      });
    const one = run(1);
    const three = run(3);
    assert.ok(maxAbsDiff(one.weights, three.weights) < 1e-9, `max diff ${maxAbsDiff(one.weights, three.weights)}`);
    assert.deepEqual(three.events, one.events);
    assert.throws(() => run(0), /threads/);
  });

  it('uses helper threads only when a pass is big enough to pay for them', () => {
    assert.equal(gradientThreads(1000, 576, 10, 8), 1);
    assert.equal(gradientThreads(60000, 576, 10, 2), 2);
    assert.equal(gradientThreads(60000, 1280, 10, 64), 16);
  });

  it('a finetune head thread runs DP_SGD with its gradient helpers (features shared, not copied)', async () => {
    // 12,000 x 100 x 10 classes: big enough for helper threads on a multi-core machine.
    const f = gaussianMixture(12000, 100, 10, 4, 2);
    const features = { ...f.features, data: Float32Array.from(f.features.data) };
    const options = resolveFinetuneOptions({ method: 'DP_SGD', steps: 30 }, MOBILENET_V2_SPEC);
    const progress: number[] = [];
    const head = await trainHeadInThread({ features, labels: f.labels, numClasses: 10, declaredSize: 12000, options, noiseMultiplier: 5 }, (step) => progress.push(step));
    assert.deepEqual(head.events, [{ type: 'gaussian', noise_multiplier: 5, count: 30 }]);
    assert.equal(progress.at(-1), 30);
    assert.ok(accuracy(head, f.features, f.labels) > 0.9, `accuracy ${accuracy(head, f.features, f.labels)}`);
  });
});
