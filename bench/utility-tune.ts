/**
 * DP_SGD hyperparameter selection for the platform defaults (`BENCH_TUNE=1 npm run bench:utility`).
 *
 * Uses ONLY the Fashion-MNIST TRAINING set: rows with index % 6 === 5 (10,000) are a validation split, the
 * other 50,000 train (declared size 50,000). The test set is never loaded. This looks at private-like data
 * (the training labels of one dataset), so it is a one-time platform design decision, documented as such
 * in docs/benchmarks.md, not something a job does with a user's data.
 *
 * Grid (knobs): BENCH_TUNE_STEPS (default 100,300), BENCH_TUNE_LRS (default 0.25,0.5,1,2,4),
 * BENCH_TUNE_MOMENTUM (default 0.9), BENCH_TUNE_EPSILONS (default 1,3,8), BENCH_TUNE_DRAWS (default 1),
 * BENCH_TUNE_CLIPS (default 1), BENCH_LAYERS (first entry; default block_13_expand_relu). Cosine schedule,
 * full batch, bias as BENCH_TUNE_FIT_BIAS (default: the platform default, none).
 * Score: mean validation accuracy over the epsilons.
 *
 * Also (BENCH_TUNE_WHAT, default sgd,ridge,logreg): the LEAST_SQUARES ridge as a multiple of sigma
 * (BENCH_TUNE_RIDGES, default 3,10,30,100; 3 draws) and the logistic-regression baseline's L2
 * (BENCH_TUNE_L2, default 1e-4,1e-5,1e-6; 150 L-BFGS iterations).
 */
import { secureNoise } from '../src/privacy';
import { accuracy, FeatureMatrix, leastSquaresStatistics } from '../src/training/heads';
import { leastSquaresFromStatistics } from '../src/training/heads/least-squares';
import { logisticRegression } from './utility.bench';
import { chooseNoiseMultiplier, resolveFinetuneOptions } from '../src/training/jobs/finetune-options';
import { MOBILENET_V2_SPEC } from '../src/training/backbones';
import { GdModel, OrtGradient, trainFullBatchGd } from './dp-gd-ort';
import { loadLayer } from './utility-data';

const K = 10;
const nums = (k: string, d: string) => (process.env[k] ?? d).split(',').map(Number);
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

function split(x: FeatureMatrix, labels: Int32Array, keep: (i: number) => boolean): { x: FeatureMatrix; labels: Int32Array } {
  const idx: number[] = [];
  for (let i = 0; i < x.rows; i++) if (keep(i)) idx.push(i);
  const data = new Float32Array(idx.length * x.cols);
  idx.forEach((r, i) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols));
  return { x: { data, rows: idx.length, cols: x.cols }, labels: Int32Array.from(idx, (r) => labels[r]) };
}

export async function tune(): Promise<void> {
  const layer = (process.env.BENCH_LAYERS ?? 'block_13_expand_relu').split(',')[0];
  const stepsList = nums('BENCH_TUNE_STEPS', '100,300');
  const lrs = nums('BENCH_TUNE_LRS', '0.25,0.5,1,2,4');
  const clips = nums('BENCH_TUNE_CLIPS', '1');
  const momentum = Number(process.env.BENCH_TUNE_MOMENTUM ?? '0.9');
  const epsilons = nums('BENCH_TUNE_EPSILONS', '1,3,8');
  const draws = Number(process.env.BENCH_TUNE_DRAWS ?? '1');
  const delta = Number(process.env.BENCH_DELTA ?? '1e-5');
  const data = await loadLayer(layer);
  const fit = split(data.train.x, data.train.labels, (i) => i % 6 !== 5);
  const val = split(data.train.x, data.train.labels, (i) => i % 6 === 5);
  const what = (process.env.BENCH_TUNE_WHAT ?? 'sgd,ridge,logreg').split(',');
  if (what.includes('logreg')) {
    for (const l2 of nums('BENCH_TUNE_L2', '1e-4,1e-5,1e-6')) {
      const t0 = performance.now();
      let last = 0;
      const h = await logisticRegression(fit, l2, 150, (_, loss) => (last = loss));
      log(`logistic regression L2 ${l2}: validation accuracy ${(100 * accuracy(h, val.x, val.labels)).toFixed(2)}% (training loss ${last.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  if (what.includes('ridge')) {
    const o = resolveFinetuneOptions({ method: 'LEAST_SQUARES', featureLayer: layer }, MOBILENET_V2_SPEC);
    const stats = leastSquaresStatistics(fit.x, fit.labels, K, o.clipNorm, o.fitBias);
    console.log(`\nLEAST_SQUARES validation accuracy (%), median of 3 draws:\n| ridge / sigma | ${epsilons.map((e) => `eps ${e}`).join(' | ')} |\n|---|${epsilons.map(() => '---').join('|')}|`);
    for (const r of nums('BENCH_TUNE_RIDGES', '3,10,30,100')) {
      const cells = epsilons.map((eps) => {
        const sigma = chooseNoiseMultiplier(o, { targetEpsilon: eps, delta });
        const accs = [0, 1, 2].map(() => accuracy(leastSquaresFromStatistics(stats, { numClasses: K, clipNorm: o.clipNorm, fitBias: o.fitBias, noiseMultiplier: sigma, ridge: r * sigma, noise: secureNoise() }), val.x, val.labels)).sort();
        return (100 * accs[1]).toFixed(2);
      });
      console.log(`| ${r} | ${cells.join(' | ')} |`);
    }
  }
  if (!what.includes('sgd')) return;
  log(`tuning DP_SGD on ${layer}: fit ${fit.x.rows}, validation ${val.x.rows} (training set only), momentum ${momentum}, ${draws} draw(s)`);
  const results: { steps: number; clip: number; lr: number; eps: number; acc: number[] }[] = [];
  for (const steps of stepsList) {
    const bias = process.env.BENCH_TUNE_FIT_BIAS;
    const o = resolveFinetuneOptions({ method: 'DP_SGD', featureLayer: layer, steps, momentum, fitBias: bias === undefined ? undefined : bias === '1' }, MOBILENET_V2_SPEC);
    const sigmas = epsilons.map((eps) => chooseNoiseMultiplier(o, { targetEpsilon: eps, delta }));
    const models: (GdModel & { lr: number; eps: number })[] = [];
    for (const clip of clips) for (const lr of lrs) epsilons.forEach((eps, e) => {
      for (let r = 0; r < draws; r++) models.push({ lr, eps, sigma: sigmas[e], clip, noise: secureNoise(), learningRate: lr, momentum });
    });
    const t0 = performance.now();
    const grad = await OrtGradient.create(fit.x, fit.labels, K, o.fitBias, models.length);
    const heads = await trainFullBatchGd(grad, models, { steps, schedule: 'cosine', declaredSize: fit.x.rows, fitBias: o.fitBias });
    await grad.release();
    for (const clip of clips) for (const lr of lrs) for (const eps of epsilons) {
      const acc = heads.filter((_, i) => models[i].clip === clip && models[i].lr === lr && models[i].eps === eps).map((h) => accuracy(h, val.x, val.labels));
      results.push({ steps, clip, lr, eps, acc });
    }
    log(`steps ${steps}: ${models.length} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s; sigma ${sigmas.map((s) => s.toFixed(2)).join(' / ')}`);
  }
  console.log(`\nvalidation accuracy (%) (mean of ${draws} draw(s)), momentum ${momentum}, cosine:`);
  console.log(`| steps | clip | lr | ${epsilons.map((e) => `eps ${e}`).join(' | ')} | mean |`);
  console.log(`|---|---|---|${epsilons.map(() => '---').join('|')}|---|`);
  let best = { score: -1, steps: 0, clip: 0, lr: 0 };
  for (const steps of stepsList) for (const clip of clips) for (const lr of lrs) {
    const accs = epsilons.map((eps) => {
      const a = results.find((r) => r.steps === steps && r.clip === clip && r.lr === lr && r.eps === eps)!.acc;
      return a.reduce((s, v) => s + v, 0) / a.length;
    });
    const score = accs.reduce((s, v) => s + v, 0) / accs.length;
    if (score > best.score) best = { score, steps, clip, lr };
    console.log(`| ${steps} | ${clip} | ${lr} | ${accs.map((a) => (100 * a).toFixed(2)).join(' | ')} | ${(100 * score).toFixed(2)} |`);
  }
  console.log(`\nselected: steps ${best.steps}, clip norm ${best.clip}, learning rate ${best.lr} (mean validation accuracy ${(100 * best.score).toFixed(2)}%)`);
}
