import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeEpsilon, seededNoiseForTests } from '../../src/privacy';
import { MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { noisyHoldoutAccuracy, splitHoldout } from '../../src/training/finetune/private-evaluation';
import { chooseNoiseMultiplier, finetuneEvents, heldOutCount, resolveFinetuneOptions } from '../../src/training/jobs/finetune-options';

describe('finetune options', () => {
  it('defaults to least squares on block 13 at 96 px, two Gaussian releases', () => {
    const o = resolveFinetuneOptions({}, MOBILENET_V2_SPEC);
    assert.equal(o.method, 'LEAST_SQUARES');
    assert.equal(o.featureLayer, 'block_13_expand_relu');
    assert.equal(o.inputSize, 96);
    assert.deepEqual(finetuneEvents(o, 3), [{ type: 'gaussian', noise_multiplier: 3, count: 2 }]);
  });

  it('describes DP-SGD releases: full batch as Gaussians, Poisson sampling as subsampled Gaussians', () => {
    assert.deepEqual(finetuneEvents(resolveFinetuneOptions({ method: 'DP_SGD', steps: 50 }, MOBILENET_V2_SPEC), 2), [{ type: 'gaussian', noise_multiplier: 2, count: 50 }]);
    assert.deepEqual(finetuneEvents(resolveFinetuneOptions({ method: 'DP_SGD', steps: 50, samplingRate: 0.1 }, MOBILENET_V2_SPEC), 2), [
      { type: 'poisson_subsampled_gaussian', noise_multiplier: 2, sampling_rate: 0.1, count: 50 },
    ]);
    assert.throws(() => resolveFinetuneOptions({ method: 'SINGLE_STEP', steps: 5 }, MOBILENET_V2_SPEC), /DP_SGD only/);
    assert.throws(() => resolveFinetuneOptions({ featureLayer: 'nope' }, MOBILENET_V2_SPEC), /feature layers/);
    assert.throws(() => resolveFinetuneOptions({ inputSize: 4000 }, MOBILENET_V2_SPEC), /input sizes/);
  });

  it('calibrates conservatively to the target, private evaluation included', () => {
    for (const input of [{}, { method: 'SINGLE_STEP' as const }, { method: 'DP_SGD' as const, steps: 100, samplingRate: 0.05 }, { privateEvaluation: { fraction: 0.1 } }]) {
      const o = resolveFinetuneOptions(input, MOBILENET_V2_SPEC);
      for (const target of [0.3, 1, 4]) {
        const sigma = chooseNoiseMultiplier(o, { targetEpsilon: target, delta: 1e-5 });
        const eps = computeEpsilon(finetuneEvents(o, sigma), 1e-5, 'auto').epsilon;
        assert.ok(eps <= target, `${JSON.stringify(input)} target ${target}: ${eps}`);
        assert.ok(eps > target * 0.99, `${JSON.stringify(input)} target ${target}: tight (${eps})`);
      }
    }
    assert.throws(() => chooseNoiseMultiplier(resolveFinetuneOptions({}, MOBILENET_V2_SPEC), { targetEpsilon: 1, noiseMultiplier: 1, delta: 1e-5 }), /exactly one/);
  });
});

describe('private held-out evaluation', () => {
  it('splits by index only, with public sizes', () => {
    const n = 103;
    const features = { data: Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2)), rows: n, cols: 2 };
    const labels = Int32Array.from({ length: n }, (_, i) => i);
    const s = splitHoldout(features, labels, 5);
    assert.equal(s.holdout.labels.length, heldOutCount(n, 5));
    assert.equal(s.train.labels.length + s.holdout.labels.length, n);
    assert.deepEqual(Array.from(s.holdout.labels.slice(0, 3)), [4, 9, 14]);
    assert.equal(s.holdout.features.data[2], 9, 'rows move with their labels');
  });

  it('releases a noisy accuracy with the declared noise', () => {
    const head = { numClasses: 2, dim: 1, weights: Float64Array.from([-1, 1]), bias: null };
    const holdout = { features: { data: Float32Array.from([1, -1, 1, 1]), rows: 4, cols: 1 }, labels: Int32Array.from([1, 0, 1, 0]) };
    const accs = Array.from({ length: 200 }, (_, i) => noisyHoldoutAccuracy(head, holdout, 2, seededNoiseForTests(i)).accuracy);
    const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
    assert.ok(Math.abs(mean - 0.75) < 0.15, `centred on the true accuracy 0.75 (mean ${mean}, clamped to [0, 1])`);
    assert.ok(new Set(accs).size > 100, 'noisy');
    assert.ok(accs.every((a) => a >= 0 && a <= 1));
  });
});
