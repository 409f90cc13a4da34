/**
 * Utility benchmark: `npm run bench:utility` (= `node dist/bench/utility.bench.js` after building).
 *
 * Fashion-MNIST (60,000 train / 10,000 test, IDX at /usr/share/datasets/fashion-mnist), built-in
 * MobileNetV2 backbone, platform pipeline (datasetFeatures -> L2, public z-score, L2). Test accuracy of
 * LEAST_SQUARES, DP_SGD and SINGLE_STEP at each epsilon (delta 1e-5), median over noise draws (CSPRNG
 * noise, noise multiplier from the platform's `chooseNoiseMultiplier`, hyperparameters from the platform's
 * documented defaults via `resolveFinetuneOptions`), next to the same head without noise and a non-private
 * multinomial logistic regression on the same features. Test labels are only used to score finished heads.
 *
 * How each method is run:
 * - LEAST_SQUARES: the clipped statistics are computed once per layer (`leastSquaresStatistics`), then every
 *   draw is `leastSquaresFromStatistics` (fresh noise, PSD-clipped ridge solve): the same mechanism as
 *   `trainLeastSquares`, which recomputes the statistics each time (test: heads-least-squares-from-stats).
 * - SINGLE_STEP: the platform's `trainHead`.
 * - DP_SGD: the same full-batch algorithm as `trainDpSgd` (the platform default: samplingRate 1, SGD with
 *   momentum, cosine schedule), with the clipped gradient sums of all draws computed together by ONNX
 *   Runtime (bench/dp-gd-ort.ts); checked against `trainDpSgd` with seeded noise at start-up.
 * - Logistic regression: L-BFGS on the full-batch mean cross-entropy plus (lambda / 2) ||theta||^2, no
 *   clipping, no noise.
 *
 * Environment knobs:
 *   BENCH_LAYERS    comma list (default block_13_expand_relu,out_relu)
 *   BENCH_METHODS   comma list (default LEAST_SQUARES,DP_SGD,SINGLE_STEP)
 *   BENCH_EPSILONS  comma list (default 0.1,0.5,1,3,8); BENCH_DELTA (default 1e-5)
 *   BENCH_DRAWS     noise draws per (method, epsilon) (default 5); BENCH_SGD_DRAWS overrides it for DP_SGD
 *   BENCH_BASELINES 0 to skip the noiseless heads and the logistic regression (default 1)
 *   BENCH_LOGREG_ITERS (L-BFGS iterations, default 300), BENCH_LOGREG_L2 (default 1e-6, chosen on a held-out training split: BENCH_TUNE=1)
 *   BENCH_SGD_STEPS / BENCH_SGD_LR / BENCH_SGD_MOMENTUM: override the DP_SGD defaults (default: platform's)
 *   BENCH_OUT       JSON results file (default var/bench-cache/utility-results.json)
 *   BENCH_CACHE_DIR feature cache (default var/bench-cache); BENCH_FASHION_DIR dataset directory
 *   BENCH_TUNE=1    run the DP_SGD hyperparameter selection on a held-out split of the TRAINING set instead
 *                   (bench/utility-tune.ts; never reads the test set)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { secureNoise, seededNoiseForTests } from '../src/privacy';
import { MOBILENET_V2_SPEC } from '../src/training/backbones';
import { trainHead } from '../src/training/finetune/train-head';
import { accuracy, FeatureMatrix, leastSquaresStatistics, LinearHead, trainSingleStep } from '../src/training/heads';
import { leastSquaresFromStatistics } from '../src/training/heads/least-squares';
import { chooseNoiseMultiplier, FinetuneMethod, resolveFinetuneOptions, ResolvedFinetuneOptions } from '../src/training/jobs/finetune-options';
import { GdModel, OrtGradient, trainFullBatchGd, verifyAgainstTrainDpSgd } from './dp-gd-ort';
import { LayerData, loadLayer } from './utility-data';

const K = 10;
const env = (k: string, d: string) => process.env[k] ?? d;
const list = (k: string, d: string) => env(k, d).split(',').map((s) => s.trim()).filter(Boolean);

export const config = {
  layers: list('BENCH_LAYERS', 'block_13_expand_relu,out_relu'),
  methods: list('BENCH_METHODS', 'LEAST_SQUARES,DP_SGD,SINGLE_STEP') as FinetuneMethod[],
  epsilons: list('BENCH_EPSILONS', '0.1,0.5,1,3,8').map(Number),
  delta: Number(env('BENCH_DELTA', '1e-5')),
  draws: Number(env('BENCH_DRAWS', '5')),
  sgdDraws: Number(env('BENCH_SGD_DRAWS', env('BENCH_DRAWS', '5'))),
  baselines: env('BENCH_BASELINES', '1') !== '0',
  logregIters: Number(env('BENCH_LOGREG_ITERS', '300')),
  logregL2: Number(env('BENCH_LOGREG_L2', '1e-6')),
  out: env('BENCH_OUT', 'var/bench-cache/utility-results.json'),
};

export function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function finetuneOptions(method: FinetuneMethod, layer: string): ResolvedFinetuneOptions {
  const input: Parameters<typeof resolveFinetuneOptions>[0] = { method, featureLayer: layer };
  if (method === 'DP_SGD') {
    if (process.env.BENCH_SGD_STEPS) input.steps = Number(process.env.BENCH_SGD_STEPS);
    if (process.env.BENCH_SGD_LR) input.learningRate = Number(process.env.BENCH_SGD_LR);
    if (process.env.BENCH_SGD_MOMENTUM) input.momentum = Number(process.env.BENCH_SGD_MOMENTUM);
  }
  return resolveFinetuneOptions(input, MOBILENET_V2_SPEC);
}

/**
 * Non-private multinomial logistic regression: L-BFGS (memory 10, backtracking Armijo line search) on the
 * full-batch mean cross-entropy + (l2 / 2) ||theta||^2 (bias included), no clipping, no noise. The loss and
 * gradient come from the same ONNX Runtime pass as the DP_SGD fast path (clip norm "infinite").
 */
export async function logisticRegression(train: { x: FeatureMatrix; labels: Int32Array }, l2: number, iterations: number, onIter?: (t: number, loss: number) => void): Promise<LinearHead> {
  const n = train.x.rows;
  const d = train.x.cols;
  const D = d + 1;
  const P = K * D;
  const grad = await OrtGradient.create(train.x, train.labels, K, true, 1);
  const evaluate = async (th: Float64Array): Promise<[number, Float64Array]> => {
    const { grads, losses } = await grad.gradients([th], [Infinity]);
    const g = grads[0];
    let reg = 0;
    for (let e = 0; e < P; e++) {
      g[e] = g[e] / n + l2 * th[e];
      reg += th[e] * th[e];
    }
    return [losses[0] / n + (l2 / 2) * reg, g];
  };
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let e = 0; e < a.length; e++) s += a[e] * b[e];
    return s;
  };
  let theta: Float64Array = new Float64Array(P);
  let [f, g] = await evaluate(theta);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  for (let it = 1; it <= iterations; it++) {
    // two-loop recursion: direction = -H g
    const q = Float64Array.from(g);
    const alphas: number[] = [];
    for (let j = S.length - 1; j >= 0; j--) {
      const a = dot(S[j], q) / dot(Y[j], S[j]);
      alphas[j] = a;
      for (let e = 0; e < P; e++) q[e] -= a * Y[j][e];
    }
    const gamma = S.length ? dot(S[S.length - 1], Y[Y.length - 1]) / dot(Y[Y.length - 1], Y[Y.length - 1]) : 1 / Math.sqrt(dot(g, g));
    for (let e = 0; e < P; e++) q[e] *= gamma;
    for (let j = 0; j < S.length; j++) {
      const b = dot(Y[j], q) / dot(Y[j], S[j]);
      for (let e = 0; e < P; e++) q[e] += S[j][e] * (alphas[j] - b);
    }
    const dir = q.map((v) => -v);
    let slope = dot(dir, g);
    if (!(slope < 0)) {
      S.length = 0;
      Y.length = 0;
      for (let e = 0; e < P; e++) dir[e] = -g[e];
      slope = dot(dir, g);
    }
    let step = 1;
    let next: Float64Array = theta;
    let fn = f;
    let gn: Float64Array = g;
    for (;;) {
      next = theta.map((v, e) => v + step * dir[e]);
      [fn, gn] = await evaluate(next);
      if (fn <= f + 1e-4 * step * slope || step < 1e-8) break;
      step /= 2;
    }
    const s = next.map((v, e) => v - theta[e]);
    const y = gn.map((v, e) => v - g[e]);
    if (dot(s, y) > 1e-12) {
      S.push(s);
      Y.push(y);
      if (S.length > 10) {
        S.shift();
        Y.shift();
      }
    }
    theta = next;
    f = fn;
    g = gn;
    onIter?.(it, f);
  }
  await grad.release();
  const weights = new Float64Array(K * d);
  const bias = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    weights.set(theta.subarray(k * D, k * D + d), k * d);
    bias[k] = theta[k * D + d];
  }
  return { numClasses: K, dim: d, weights, bias };
}

interface Row {
  layer: string;
  method: string;
  epsilon: number | null;
  sigma: number | null;
  accuracies: number[];
  median: number;
  seconds: number;
  note?: string;
}

async function benchLayer(data: LayerData, rows: Row[]): Promise<void> {
  const { layer, train, test } = data;
  const n = train.x.rows;
  const acc = (h: LinearHead) => accuracy(h, test.x, test.labels);
  const push = (r: Omit<Row, 'median'>) => {
    const row = { ...r, median: median(r.accuracies) };
    rows.push(row);
    log(
      `${layer} ${r.method.padEnd(16)} eps ${String(r.epsilon ?? '-').padEnd(4)} sigma ${r.sigma === null ? '-' : r.sigma.toFixed(3).padEnd(7)} ` +
        `median ${(100 * row.median).toFixed(2)}%  [${r.accuracies.map((a) => (100 * a).toFixed(2)).join(', ')}]  ${r.seconds.toFixed(1)} s`,
    );
  };
  const timed = <T>(fn: () => T): [T, number] => {
    const t0 = performance.now();
    const v = fn();
    return [v, (performance.now() - t0) / 1000];
  };

  for (const method of config.methods) {
    const o = finetuneOptions(method, layer);
    const sigmas = config.epsilons.map((eps) => chooseNoiseMultiplier(o, { targetEpsilon: eps, delta: config.delta }));
    log(`${layer} ${method}: ${JSON.stringify({ clip: o.clipNorm, ridge: o.ridge ?? 'default 10 sigma', steps: o.steps, lr: o.learningRate, momentum: o.momentum, fitBias: o.fitBias })}, sigma ${sigmas.map((s) => s.toFixed(3)).join(' / ')}`);

    if (method === 'LEAST_SQUARES') {
      const [stats, statSec] = timed(() => leastSquaresStatistics(train.x, train.labels, K, o.clipNorm, o.fitBias));
      log(`${layer} LEAST_SQUARES statistics (n = ${n}, D = ${stats.dim}) in ${statSec.toFixed(1)} s`);
      const base = { numClasses: K, clipNorm: o.clipNorm, fitBias: o.fitBias, ridge: o.ridge ?? undefined };
      if (config.baselines) {
        const [h, s] = timed(() => leastSquaresFromStatistics(stats, { ...base, noiseMultiplier: 0, nonPrivate: true }));
        push({ layer, method: 'LEAST_SQUARES', epsilon: null, sigma: 0, accuracies: [acc(h)], seconds: s, note: 'no noise (ridge 1e-3)' });
      }
      config.epsilons.forEach((eps, e) => {
        const t0 = performance.now();
        const accs: number[] = [];
        for (let r = 0; r < config.draws; r++) accs.push(acc(leastSquaresFromStatistics(stats, { ...base, noiseMultiplier: sigmas[e], noise: secureNoise() })));
        push({ layer, method, epsilon: eps, sigma: sigmas[e], accuracies: accs, seconds: (performance.now() - t0) / 1000 });
      });
    } else if (method === 'SINGLE_STEP') {
      if (config.baselines) {
        const [h, s] = timed(() => trainSingleStep(train.x, train.labels, { numClasses: K, declaredSize: n, noiseMultiplier: 0, clipNorm: o.clipNorm, nonPrivate: true, fitBias: o.fitBias, learningRate: o.learningRate }));
        push({ layer, method, epsilon: null, sigma: 0, accuracies: [acc(h)], seconds: s, note: 'no noise' });
      }
      config.epsilons.forEach((eps, e) => {
        const t0 = performance.now();
        const accs: number[] = [];
        for (let r = 0; r < config.draws; r++) {
          accs.push(acc(trainHead({ features: train.x, labels: train.labels, numClasses: K, declaredSize: n, options: o, noiseMultiplier: sigmas[e], noise: secureNoise() })));
        }
        push({ layer, method, epsilon: eps, sigma: sigmas[e], accuracies: accs, seconds: (performance.now() - t0) / 1000 });
      });
    } else if (method === 'DP_SGD') {
      if (o.samplingRate !== 1 || o.optimizer !== 'SGD') throw new Error('the benchmark fast path covers full-batch SGD (the platform default) only');
      // All epsilons x draws (+ the noiseless run) in one lockstep batch.
      const models: (GdModel & { eps: number | null })[] = [];
      if (config.baselines) models.push({ eps: null, sigma: 0, clip: o.clipNorm, noise: null, learningRate: o.learningRate, momentum: o.momentum });
      config.epsilons.forEach((eps, e) => {
        for (let r = 0; r < config.sgdDraws; r++) models.push({ eps, sigma: sigmas[e], clip: o.clipNorm, noise: secureNoise(), learningRate: o.learningRate, momentum: o.momentum });
      });
      const t0 = performance.now();
      const grad = await OrtGradient.create(train.x, train.labels, K, o.fitBias, models.length);
      const heads = await trainFullBatchGd(grad, models, {
        steps: o.steps,
        schedule: 'cosine',
        declaredSize: n,
        fitBias: o.fitBias,
        onStep: (t) => {
          if (t % 50 === 0) log(`${layer} DP_SGD step ${t}/${o.steps} (${models.length} runs in lockstep, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        },
      });
      await grad.release();
      const seconds = (performance.now() - t0) / 1000;
      if (config.baselines) push({ layer, method, epsilon: null, sigma: 0, accuracies: [acc(heads[0])], seconds, note: 'no noise (clip 1)' });
      config.epsilons.forEach((eps, e) => {
        const accs = heads.filter((_, i) => models[i].eps === eps).map(acc);
        push({ layer, method, epsilon: eps, sigma: sigmas[e], accuracies: accs, seconds, note: 'time is for all DP_SGD runs together' });
      });
    }
  }

  if (config.baselines) {
    const t0 = performance.now();
    let last = 0;
    const head = await logisticRegression(train, config.logregL2, config.logregIters, (t, loss) => {
      last = loss;
      if (t % 50 === 0) log(`${layer} logistic regression L-BFGS iteration ${t}: training loss ${loss.toFixed(5)}`);
    });
    push({ layer, method: 'LOGREG (non-private)', epsilon: null, sigma: null, accuracies: [acc(head)], seconds: (performance.now() - t0) / 1000, note: `L2 ${config.logregL2}, ${config.logregIters} L-BFGS iterations, final training loss ${last.toFixed(4)}` });
  }
}

function table(rows: Row[]): string {
  const out: string[] = [];
  for (const layer of [...new Set(rows.map((r) => r.layer))]) {
    const lr = rows.filter((r) => r.layer === layer);
    out.push(`\n${layer}`);
    out.push(`| method | no noise | ${config.epsilons.map((e) => `eps ${e}`).join(' | ')} |`);
    out.push(`|---|---|${config.epsilons.map(() => '---').join('|')}|`);
    for (const method of [...new Set(lr.map((r) => r.method))]) {
      const mr = lr.filter((r) => r.method === method);
      const cell = (r: Row | undefined) => (r ? (100 * r.median).toFixed(1) : '');
      out.push(`| ${method} | ${cell(mr.find((r) => r.epsilon === null))} | ${config.epsilons.map((e) => cell(mr.find((r) => r.epsilon === e))).join(' | ')} |`);
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.env.BENCH_TUNE === '1') {
    const { tune } = await import('./utility-tune');
    await tune();
    return;
  }
  const t0 = performance.now();
  log(`node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0].toFixed(2)}; ${JSON.stringify(config)}`);
  if (config.methods.includes('DP_SGD')) {
    // Small synthetic check that the fast DP_SGD path is trainDpSgd (seeded noise, float32 vs float64).
    const n = 600, d = 24;
    const data = new Float64Array(n * d);
    const labels = new Int32Array(n);
    const rnd = seededNoiseForTests('utility-bench-check').fillGaussian(new Float64Array(n * d), 1);
    for (let i = 0; i < n; i++) {
      labels[i] = i % K;
      for (let j = 0; j < d; j++) data[i * d + j] = rnd[i * d + j] + (j % K === labels[i] ? 1.5 : 0);
    }
    const diff = await verifyAgainstTrainDpSgd({ data, rows: n, cols: d }, labels, K, (s) => seededNoiseForTests(s), 10);
    log(`DP_SGD fast path vs trainDpSgd (10 steps, seeded noise): max relative weight difference ${diff.toExponential(2)}`);
    if (!(diff < 1e-4)) throw new Error('the DP_SGD fast path disagrees with trainDpSgd');
  }
  const rows: Row[] = [];
  const layers: Record<string, unknown> = {};
  for (const layer of config.layers) {
    const tl = performance.now();
    const data = await loadLayer(layer);
    log(`${data.layer} @ ${data.inputSize} px: ${data.train.x.rows} train + ${data.test.x.rows} test x ${data.dim}, features ${data.cached ? 'from cache' : `extracted in ${data.extractSeconds.toFixed(0)} s`}; preprocessing l2-zscore-l2 (${data.statsSource})`);
    await benchLayer(data, rows);
    layers[layer] = { inputSize: data.inputSize, dim: data.dim, cached: data.cached, extractSeconds: data.extractSeconds, seconds: (performance.now() - tl) / 1000 };
    log(`${layer} done in ${((performance.now() - tl) / 1000).toFixed(0)} s`);
  }
  const total = (performance.now() - t0) / 1000;
  console.log(`\nTest accuracy (%), median of ${config.draws} draws (DP_SGD: ${config.sgdDraws}), delta ${config.delta}:` + table(rows));
  console.log(`\ntotal ${total.toFixed(0)} s`);
  mkdirSync(dirname(config.out), { recursive: true });
  writeFileSync(config.out, JSON.stringify({ config, layers, rows, totalSeconds: total, node: process.version, at: new Date().toISOString() }, null, 1));
  log(`results written to ${config.out}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
