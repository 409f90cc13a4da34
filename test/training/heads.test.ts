import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accuracy,
  computeFeatureStats,
  FeatureMatrix,
  HeadError,
  l2NormalizeRows,
  meanCrossEntropy,
  predictClasses,
  predictLogits,
  predictTopK,
  preprocessFeatures,
  trainDpSgd,
  trainLeastSquares,
  trainSingleStep,
} from '../../src/training/heads';
import { clippedGradientSum, rowNormsSquared } from '../../src/training/heads/kernels';
import { gaussianMixture, maxAbsDiff, pretendSecure, RecordingNoise, SeededRandom, seededUniform } from './heads-helpers';

const K = 5;
const D = 24;

function data(n = 600, seed = 7) {
  return gaussianMixture(n, D, K, seed, 2);
}

/** Independent closed form of the zero-init clipped sum (P - Y)^T diag(c) X (with optional bias column). */
function closedFormClippedSum(f: FeatureMatrix, y: Int32Array, k: number, clip: number, bias: boolean): Float64Array {
  const d = f.cols + (bias ? 1 : 0);
  const out = new Float64Array(k * d);
  for (let i = 0; i < f.rows; i++) {
    const x = Array.from(f.data.subarray(i * f.cols, (i + 1) * f.cols));
    if (bias) x.push(1);
    // explicit per-example gradient (p - e_y) x^T, materialised here in the test on purpose
    const g: number[] = [];
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) g.push((1 / k - (c === y[i] ? 1 : 0)) * x[j]);
    const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    const ci = Math.min(1, clip / norm);
    for (let t = 0; t < g.length; t++) out[t] += ci * g[t];
  }
  return out;
}

function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

function sub(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v - b[i]);
}

function dropRow(f: FeatureMatrix, y: Int32Array, r: number): { f: FeatureMatrix; y: Int32Array } {
  const data = new Float64Array((f.rows - 1) * f.cols);
  data.set(f.data.subarray(0, r * f.cols));
  data.set(f.data.subarray((r + 1) * f.cols), r * f.cols);
  const yy = new Int32Array(f.rows - 1);
  yy.set(y.subarray(0, r));
  yy.set(y.subarray(r + 1), r);
  return { f: { data, rows: f.rows - 1, cols: f.cols }, y: yy };
}

describe('SINGLE_STEP', () => {
  it('from zero init, predictions do not depend on the learning rate or the declared size', () => {
    const { features, labels } = data();
    const test = data(300, 99);
    const base = { numClasses: K, noiseMultiplier: 2, clipNorm: 1, allowInsecureNoise: true, fitBias: true };
    const a = trainSingleStep(features, labels, { ...base, noise: new RecordingNoise(5), learningRate: 1, declaredSize: 600 });
    const b = trainSingleStep(features, labels, { ...base, noise: new RecordingNoise(5), learningRate: 0.003, declaredSize: 123457 });
    assert.deepEqual(predictClasses(a, test.features), predictClasses(b, test.features));
    // the weights are a positive multiple of each other
    const ratio = (1 / 600) / (0.003 / 123457);
    assert.ok(maxAbsDiff(a.weights, b.weights.map((v) => v * ratio)) < 1e-9 * frob(a.weights));
  });

  it('with sigma = 0 (non-private mode) equals the closed-form class-sum classifier', () => {
    const f = gaussianMixture(200, D, K, 3, 2, false); // unnormalised rows: some are clipped
    for (const bias of [false, true]) {
      const clip = 0.4;
      const r = trainSingleStep(f.features, f.labels, {
        numClasses: K,
        noiseMultiplier: 0,
        nonPrivate: true,
        clipNorm: clip,
        declaredSize: 1000,
        learningRate: 0.5,
        fitBias: bias,
      });
      const g = closedFormClippedSum(f.features, f.labels, K, clip, bias);
      const dd = D + (bias ? 1 : 0);
      for (let c = 0; c < K; c++) {
        for (let j = 0; j < D; j++) assert.ok(Math.abs(r.weights[c * D + j] - (-0.5 * g[c * dd + j]) / 1000) < 1e-13);
        if (bias) assert.ok(Math.abs(r.bias![c] - (-0.5 * g[c * dd + D]) / 1000) < 1e-13);
      }
      assert.equal(r.private, false);
      assert.equal(r.events.length, 0);
      assert.equal(r.releases, 0);
      assert.equal(r.noiseKind, 'none');
    }
  });

  it('one release: one gaussian event, K*D fresh draws of std sigma*C', () => {
    const { features, labels } = data();
    const noise = new RecordingNoise(11);
    const r = trainSingleStep(features, labels, {
      numClasses: K,
      noiseMultiplier: 1.5,
      clipNorm: 0.7,
      noise,
      allowInsecureNoise: true,
      declaredSize: 600,
      fitBias: true,
    });
    assert.deepEqual(r.events, [{ type: 'gaussian', noise_multiplier: 1.5, count: 1 }]);
    assert.equal(r.releases, 1);
    assert.equal(r.noiseKind, 'seeded');
    assert.equal(noise.calls.length, 1);
    assert.equal(noise.calls[0].length, K * (D + 1));
    assert.ok(Math.abs(noise.calls[0].std - 1.05) < 1e-15);
  });

  it('noise added to different classes is independent (correlation ~ 0)', () => {
    const d = 2000;
    const k = 6;
    const f = gaussianMixture(60, d, k, 4, 2);
    const common = { numClasses: k, clipNorm: 1, declaredSize: 1, learningRate: 1 };
    const noisy = trainSingleStep(f.features, f.labels, { ...common, noiseMultiplier: 1, noise: new RecordingNoise(21), allowInsecureNoise: true });
    const clean = trainSingleStep(f.features, f.labels, { ...common, noiseMultiplier: 0, nonPrivate: true });
    const z = sub(clean.weights, noisy.weights); // = applied noise (W = -G)
    const bound = 4.5 / Math.sqrt(d);
    for (let a = 0; a < k; a++) {
      for (let b = a + 1; b < k; b++) {
        let sab = 0, saa = 0, sbb = 0;
        for (let j = 0; j < d; j++) {
          sab += z[a * d + j] * z[b * d + j];
          saa += z[a * d + j] ** 2;
          sbb += z[b * d + j] ** 2;
        }
        const corr = sab / Math.sqrt(saa * sbb);
        assert.ok(Math.abs(corr) < bound, `classes ${a},${b}: correlation ${corr}`);
      }
      // and the noise has the right scale: std sigma*C = 1
      let s = 0;
      for (let j = 0; j < d; j++) s += z[a * d + j] ** 2;
      assert.ok(Math.abs(Math.sqrt(s / d) - 1) < 0.08);
    }
  });

  it('clipping: one example changes the clipped sum by at most C (zero and random init)', () => {
    const f = gaussianMixture(80, D, K, 8, 2, false);
    const scaled = { ...f.features, data: f.features.data.map((v, i) => (Math.floor(i / D) % 3 === 0 ? v * 25 : v * 0.01)) };
    const clip = 0.3;
    for (const initScale of [0, 0.5]) {
      const run = (feat: FeatureMatrix, y: Int32Array) =>
        trainSingleStep(feat, y, {
          numClasses: K,
          noiseMultiplier: 0,
          nonPrivate: true,
          clipNorm: clip,
          declaredSize: 1,
          learningRate: 1,
          fitBias: true,
          initScale,
          noise: new RecordingNoise(3), // only used for the random init
        });
      const all = run(scaled, f.labels);
      let maxNorm = 0;
      for (const r of [0, 1, 3, 7]) {
        const without = dropRow(scaled, f.labels, r);
        const w = run(without.f, without.y);
        const diff = [...sub(all.weights, w.weights), ...sub(all.bias!, w.bias!)];
        const nrm = frob(diff);
        maxNorm = Math.max(maxNorm, nrm);
        assert.ok(nrm <= clip * (1 + 1e-12), `row ${r}: contribution norm ${nrm} > C`);
      }
      // large rows are actually clipped to exactly C
      assert.ok(Math.abs(maxNorm - clip) < 1e-9, `max contribution ${maxNorm}`);
    }
  });
});

describe('privacy guards', () => {
  const { features, labels } = data(100);
  const common = { numClasses: K, clipNorm: 1, declaredSize: 100 };
  const trainers = {
    SINGLE_STEP: (o: object) => trainSingleStep(features, labels, { ...common, noiseMultiplier: 1, ...o }),
    LEAST_SQUARES: (o: object) => trainLeastSquares(features, labels, { ...common, noiseMultiplier: 1, ...o }),
    DP_SGD: (o: object) => trainDpSgd(features, labels, { ...common, noiseMultiplier: 1, steps: 2, ...o }),
  };
  for (const [name, train] of Object.entries(trainers)) {
    it(`${name}: refuses insecure noise without the test flag, before drawing anything`, () => {
      const noise = new RecordingNoise(1);
      assert.throws(() => train({ noise }), (e: unknown) => e instanceof HeadError && e.code === 'INSECURE_NOISE_REFUSED');
      assert.equal(noise.calls.length, 0);
      assert.throws(() => train({ noise, allowInsecureNoise: false }), (e: unknown) => e instanceof HeadError && e.code === 'INSECURE_NOISE_REFUSED');
    });
    it(`${name}: sigma 0 requires nonPrivate; nonPrivate requires sigma 0; private needs a noise source`, () => {
      const inv = (e: unknown) => e instanceof HeadError && e.code === 'INVALID_HEAD_OPTIONS';
      assert.throws(() => train({ noiseMultiplier: 0, noise: new RecordingNoise(1), allowInsecureNoise: true }), inv);
      assert.throws(() => train({ noiseMultiplier: 1, nonPrivate: true }), inv);
      assert.throws(() => train({}), inv);
      assert.throws(() => train({ noise: new RecordingNoise(1), allowInsecureNoise: true, clipNorm: 0 }), inv);
      assert.throws(() => train({ noise: new RecordingNoise(1), allowInsecureNoise: true, numClasses: 3 }), inv); // labels up to 4
    });
  }
  it('DP_SGD: refuses a non-secure Poisson sampler even with secure noise', () => {
    assert.throws(
      () => trainDpSgd(features, labels, { ...common, noiseMultiplier: 1, steps: 1, samplingRate: 0.1, noise: pretendSecure(new RecordingNoise(1)), uniform: seededUniform(1) }),
      (e: unknown) => e instanceof HeadError && e.code === 'INSECURE_NOISE_REFUSED',
    );
  });
});

describe('events equal the releases performed', () => {
  const { features, labels } = data(300);
  const base = { numClasses: K, clipNorm: 1, declaredSize: 300, allowInsecureNoise: true, fitBias: true };
  const P = K * (D + 1);
  const sumCounts = (ev: { count: number }[]) => ev.reduce((s, e) => s + e.count, 0);

  it('single step: 1', () => {
    const noise = new RecordingNoise(2);
    const r = trainSingleStep(features, labels, { ...base, noiseMultiplier: 3, noise });
    assert.equal(r.releases, 1);
    assert.equal(sumCounts(r.events), 1);
    assert.equal(noise.draws, r.releases * P);
  });

  it('least squares: 2 gaussian events with the same sigma (Gram: D(D+1)/2 draws of sigma C^2; sums: K*D of sigma C)', () => {
    const noise = new RecordingNoise(2);
    const r = trainLeastSquares(features, labels, { ...base, clipNorm: 2, noiseMultiplier: 3, noise });
    assert.deepEqual(r.events, [
      { type: 'gaussian', noise_multiplier: 3, count: 1 },
      { type: 'gaussian', noise_multiplier: 3, count: 1 },
    ]);
    assert.equal(r.releases, 2);
    assert.deepEqual(
      noise.calls.map((c) => [c.length, c.std]),
      [
        [((D + 1) * (D + 2)) / 2, 12],
        [P, 6],
      ],
    );
  });

  it('DP-SGD full batch: T steps -> gaussian count T, T fresh K*D draws, none reused', () => {
    const noise = new RecordingNoise(2, true);
    const T = 7;
    const seen: number[] = [];
    const r = trainDpSgd(features, labels, { ...base, noiseMultiplier: 2, noise, steps: T, onProgress: (s, total) => seen.push(s / total) });
    assert.deepEqual(r.events, [{ type: 'gaussian', noise_multiplier: 2, count: T }]);
    assert.equal(r.releases, T);
    assert.equal(noise.calls.length, T);
    assert.equal(noise.draws, r.releases * P);
    assert.equal(seen.length, T);
    const values = new Set<number>();
    for (const c of noise.calls) for (const v of c.values) values.add(v);
    assert.equal(values.size, T * P, 'a noise value was reused');
  });

  it('DP-SGD Poisson: poisson_subsampled_gaussian with rate q, count T', () => {
    const noise = new RecordingNoise(2);
    const uniform = seededUniform(9);
    const r = trainDpSgd(features, labels, { ...base, noiseMultiplier: 1.1, noise, steps: 4, samplingRate: 0.25, uniform });
    assert.deepEqual(r.events, [{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1.1, sampling_rate: 0.25, count: 4 }]);
    assert.equal(r.releases, 4);
    assert.equal(noise.draws, 4 * P);
    assert.equal(uniform.draws, 4 * 300);
  });
});

describe('DP_SGD', () => {
  const { features, labels } = gaussianMixture(1500, 32, K, 12, 0.5);
  const initial = Math.log(K);
  for (const optimizer of ['sgd', 'adam', 'lamb'] as const) {
    it(`full batch with ${optimizer} reduces the loss at sigma = 1`, () => {
      const r = trainDpSgd(features, labels, {
        numClasses: K,
        declaredSize: 1500,
        noiseMultiplier: 1,
        clipNorm: 1,
        noise: new RecordingNoise(31),
        allowInsecureNoise: true,
        steps: 60,
        optimizer,
        learningRate: optimizer === 'sgd' ? 1 : optimizer === 'adam' ? 0.05 : 0.1,
        fitBias: true,
        schedule: 'cosine',
      });
      const loss = meanCrossEntropy(r, features, labels);
      assert.ok(loss < 0.5 * initial, `${optimizer}: loss ${loss} vs initial ${initial}`);
      assert.ok(accuracy(r, features, labels) > 0.85);
    });
  }

  it('Poisson variant divides by the expected batch size q * n, not the realised count', () => {
    const f = gaussianMixture(400, 10, 3, 5, 2, false);
    const q = 0.3;
    const n = 400;
    const r = trainDpSgd(f.features, f.labels, {
      numClasses: 3,
      declaredSize: n,
      noiseMultiplier: 0,
      nonPrivate: true,
      clipNorm: 0.5,
      steps: 1,
      samplingRate: q,
      uniform: seededUniform(77),
      optimizer: 'sgd',
      momentum: 0,
      learningRate: 1,
    });
    // replay the sample with the same seed
    const u = new Float64Array(n);
    seededUniform(77).fillUniform(u);
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (u[i] < q) keep.push(i);
    assert.ok(keep.length > 90 && keep.length < 150 && keep.length !== q * n);
    const sub = {
      data: Float64Array.from(keep.flatMap((i) => Array.from(f.features.data.subarray(i * 10, i * 10 + 10)))),
      rows: keep.length,
      cols: 10,
    };
    const g = closedFormClippedSum(sub, Int32Array.from(keep.map((i) => f.labels[i])), 3, 0.5, false);
    const expected = g.map((v) => -v / (q * n));
    assert.ok(maxAbsDiff(r.weights, expected) < 1e-13);
  });

  it('is deterministic for a seeded source (documented noise order)', () => {
    const run = () =>
      trainDpSgd(features, labels, { numClasses: K, declaredSize: 1500, noiseMultiplier: 1, clipNorm: 1, noise: new RecordingNoise(4), allowInsecureNoise: true, steps: 3 });
    assert.deepEqual(run().weights, run().weights);
  });
});

describe('clipped gradient kernel at a general theta', () => {
  /** Materialises every per-example gradient (p_i - e_y) x~_i^T, clips its Frobenius norm, sums. */
  function reference(f: FeatureMatrix, y: Int32Array, k: number, theta: Float64Array, clip: number, bias: boolean, include?: Uint8Array) {
    const d = f.cols + (bias ? 1 : 0);
    const out = new Float64Array(k * d);
    let loss = 0;
    for (let i = 0; i < f.rows; i++) {
      if (include && !include[i]) continue;
      const x = Array.from(f.data.subarray(i * f.cols, (i + 1) * f.cols));
      if (bias) x.push(1);
      const z = Array.from({ length: k }, (_, c) => x.reduce((s, v, j) => s + theta[c * d + j] * v, 0));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((s, v) => s + v, 0);
      loss += -Math.log(e[y[i]] / sum);
      const g: number[] = [];
      for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) g.push((e[c] / sum - (c === y[i] ? 1 : 0)) * x[j]);
      const ci = Math.min(1, clip / Math.sqrt(g.reduce((s, v) => s + v * v, 0)));
      for (let t = 0; t < g.length; t++) out[t] += ci * g[t];
    }
    return { out, loss };
  }

  // Row counts that are not multiples of the kernel's block of four, odd and even class counts.
  for (const [n, k, bias] of [[203, 5, false], [202, 10, true], [7, 3, true], [1, 2, false]] as const) {
    it(`matches materialised per-example gradients (n ${n}, K ${k}, bias ${bias}), with and without a sample`, () => {
      const f = gaussianMixture(n, 13, k, 5 + n, 1.5);
      const d = 13 + (bias ? 1 : 0);
      const rng = new SeededRandom(n);
      const theta = Float64Array.from({ length: k * d }, () => rng.gaussian());
      const include = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 1 ? 0 : 1));
      for (const sample of [undefined, include]) {
        const got = clippedGradientSum(f.features, f.labels, k, bias, theta, rowNormsSquared(f.features, bias), 0.3, sample);
        const want = reference(f.features, f.labels, k, theta, 0.3, bias, sample);
        assert.ok(maxAbsDiff(got.gradSum, want.out) < 1e-12, `max diff ${maxAbsDiff(got.gradSum, want.out)}`);
        assert.ok(Math.abs(got.lossSum - want.loss) < 1e-9 * Math.max(1, want.loss));
        assert.equal(got.included, sample ? sample.reduce((s, v) => s + v, 0) : n);
      }
    });
  }
});

describe('preprocessing and prediction', () => {
  it('preprocessFeatures: unit rows, z-scored with public stats', () => {
    const rng = new SeededRandom(3);
    const mk = (n: number): FeatureMatrix => ({ data: Float64Array.from({ length: n * 6 }, (_, i) => rng.gaussian() + (i % 6) * 2), rows: n, cols: 6 });
    const pub = mk(500);
    const stats = computeFeatureStats(pub);
    const normed = l2NormalizeRows(pub);
    for (let j = 0; j < 6; j++) {
      let m = 0;
      for (let i = 0; i < 500; i++) m += normed.data[i * 6 + j];
      assert.ok(Math.abs(m / 500 - stats.mean[j]) < 1e-6);
    }
    const out = preprocessFeatures(mk(50), stats);
    assert.ok(out.data instanceof Float32Array);
    for (let i = 0; i < 50; i++) {
      let s = 0;
      for (let j = 0; j < 6; j++) s += out.data[i * 6 + j] ** 2;
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
    // the public set itself becomes ~ centred before the last normalisation
    const z = preprocessFeatures(pub, stats);
    let m0 = 0;
    for (let i = 0; i < 500; i++) m0 += z.data[i * 6];
    assert.ok(Math.abs(m0 / 500) < 0.1);
  });

  it('logits, classes and top-k probabilities', () => {
    const head = { numClasses: 3, dim: 2, weights: Float64Array.from([1, 0, 0, 1, -1, -1]), bias: Float64Array.from([0, 0.5, 0]) };
    const x = Float64Array.from([2, 1]);
    assert.deepEqual(Array.from(predictLogits(head, { data: x, rows: 1, cols: 2 })), [2, 1.5, -3]);
    assert.deepEqual(Array.from(predictClasses(head, { data: x, rows: 1, cols: 2 })), [0]);
    const top = predictTopK(head, x, 2);
    assert.deepEqual(top.map((t) => t.classIndex), [0, 1]);
    const z = Math.exp(2) + Math.exp(1.5) + Math.exp(-3);
    assert.ok(Math.abs(top[0].probability - Math.exp(2) / z) < 1e-15);
    assert.ok(top[0].probability > top[1].probability);
  });
});
