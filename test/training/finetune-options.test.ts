import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeEpsilon, seededNoiseForTests } from '../../src/privacy';
import { MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { noisyHoldoutAccuracy, splitHoldout } from '../../src/training/finetune/private-evaluation';
import { applyFeaturePreprocessing, featurePreprocessingFor } from '../../src/training/finetune/train-head';
import { loadPublicStats } from '../../src/training/backbones';
import { chooseNoiseMultiplier, finetuneEvents, heldOutCount, resolveFinetuneOptions } from '../../src/training/jobs/finetune-options';

describe('finetune options', () => {
  it('defaults to least squares on block 13 at 96 px, two Gaussian releases', () => {
    const o = resolveFinetuneOptions({}, MOBILENET_V2_SPEC);
    assert.equal(o.method, 'LEAST_SQUARES');
    assert.equal(o.featureLayer, 'block_13_expand_relu');
    assert.equal(o.inputSize, 96);
    assert.deepEqual(finetuneEvents(o, 3), [{ type: 'gaussian', noise_multiplier: 3, count: 2 }]);
  });

  it('learns no bias unless asked (it would share the clip norm with the features)', () => {
    for (const method of ['LEAST_SQUARES', 'SINGLE_STEP', 'DP_SGD'] as const) {
      assert.equal(resolveFinetuneOptions({ method }, MOBILENET_V2_SPEC).fitBias, false, method);
      assert.equal(resolveFinetuneOptions({ method, fitBias: true }, MOBILENET_V2_SPEC).fitBias, true, method);
    }
  });

  it('floors the public std at its median, so channels dead on the public data are not amplified', () => {
    const stats = loadPublicStats('mobilenet_v2', 'block_13_expand_relu', 96);
    assert.ok(stats, 'the built-in backbone ships public statistics');
    const pre = featurePreprocessingFor(stats);
    assert.equal(pre.kind, 'l2-zscore-l2');
    const sorted = [...stats.std].sort((a, b) => a - b);
    const median = (sorted[(sorted.length >> 1) - 1] + sorted[sorted.length >> 1]) / 2;
    assert.ok(sorted[0] < median / 10, 'the public statistics do have near-dead channels');
    pre.std!.forEach((s, j) => assert.equal(s, Math.max(stats.std[j], median)));
    assert.deepEqual(pre.mean, stats.mean);
    assert.match(pre.statsSource!, /floored at the public median/);
    // A feature alive only in the deadest public channel no longer dominates the normalised vector.
    const dead = stats.std.indexOf(sorted[0]);
    const x = new Float32Array(stats.dim).fill(1);
    x[dead] = 2;
    const out = applyFeaturePreprocessing({ data: x, rows: 1, cols: stats.dim }, pre).data;
    let norm = 0;
    for (const v of out) norm += v * v;
    assert.ok(Math.abs(norm - 1) < 1e-5);
    assert.ok(out[dead] ** 2 < 0.5, `dead channel holds ${(100 * out[dead] ** 2).toFixed(1)}% of the norm`);
    const unfloored = applyFeaturePreprocessing({ data: x, rows: 1, cols: stats.dim }, { ...pre, std: stats.std }).data;
    assert.ok(unfloored[dead] ** 2 > out[dead] ** 2, 'the floor is what keeps it small');
    assert.deepEqual(featurePreprocessingFor(undefined), { kind: 'l2' });
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
