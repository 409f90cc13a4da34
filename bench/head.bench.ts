/**
 * DP heads benchmark: `node dist/bench/head.bench.js` (after building).
 *
 * 1. SINGLE_STEP on n x d random Float32 features (default 60,000 x 1280, K = 10) against one plain pass
 *    that reads every feature once (sum of all entries), measured in the same run. Target: ratio <= 4.
 *    Also one DP_SGD step's gradient (logits at a non-zero theta, clipped sum) on the same features.
 * 2. LEAST_SQUARES stages (clipped Gram + class sums, eigendecomposition, ridge solve) at d = 576 and 1280;
 *    the statistics again with the Gram split over the threads a finetune job uses (gramThreads).
 *
 * Environment: BENCH_ROWS (default 60000), BENCH_LS_ROWS (default 60000), BENCH_REPEATS (default 5).
 * The noise here comes from a local seeded generator (allowInsecureNoise: benchmark only); drawing K*d or
 * D(D+1)/2 values is a negligible part of the time either way.
 */
import { availableParallelism, loadavg } from 'node:os';
import type { NoiseSource } from '../src/privacy/noise-source';
import { eigenRidgeSolve, leastSquaresStatistics, symmetricEigen, trainSingleStep } from '../src/training/heads';
import { gramThreads } from '../src/training/heads/sharded-gram';
import { clippedGradientSum, rowNormsSquared } from '../src/training/heads/kernels';
import { gradientThreads, ShardedGradient } from '../src/training/heads/sharded-gradient';

class BenchNoise implements NoiseSource {
  readonly secure = false;
  readonly kind = 'seeded' as const;
  private s = 0x9e3779b9;
  private u(): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return (this.s + 0.5) / 4294967296;
  }
  fillGaussian(out: Float64Array, std: number): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = std * Math.sqrt(-2 * Math.log(this.u())) * Math.cos(2 * Math.PI * this.u());
    return out;
  }
  fillLaplace(out: Float64Array, scale: number): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = scale * Math.log(this.u() / this.u());
    return out;
  }
}

function randomFeatures(rows: number, cols: number, seed: number): Float32Array {
  const x = new Float32Array(rows * cols);
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  return x;
}

function best(repeats: number, fn: () => unknown): { ms: number; value: unknown } {
  let ms = Infinity;
  let value: unknown;
  for (let r = 0; r < repeats; r++) {
    const t = process.hrtime.bigint();
    value = fn();
    ms = Math.min(ms, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms, value };
}

function plainPass(x: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < x.length; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < x.length; i++) s0 += x[i];
  return s0 + s1 + s2 + s3;
}

function main(): void {
  const rows = Number(process.env.BENCH_ROWS ?? 60000);
  const lsRows = Number(process.env.BENCH_LS_ROWS ?? 60000);
  const repeats = Number(process.env.BENCH_REPEATS ?? 5);
  const K = 10;
  const d = 1280;
  console.log(`node ${process.version}, ${rows} x ${d} float32 features, K = ${K}, best of ${repeats}; load average ${loadavg()[0].toFixed(2)} on ${availableParallelism()} CPUs`);

  const data = randomFeatures(rows, d, 1);
  const labels = Int32Array.from({ length: rows }, (_, i) => (i * 7919) % K);
  const features = { data, rows, cols: d };
  const opts = { numClasses: K, declaredSize: rows, noiseMultiplier: 1, clipNorm: 1, allowInsecureNoise: true, fitBias: true };
  // warm-up, then interleave the two measurements so that both see the same machine load
  plainPass(data);
  trainSingleStep(features, labels, { ...opts, noise: new BenchNoise() });
  const plain = { ms: Infinity };
  const single = { ms: Infinity };
  for (let r = 0; r < repeats; r++) {
    plain.ms = Math.min(plain.ms, best(1, () => plainPass(data)).ms);
    single.ms = Math.min(single.ms, best(1, () => trainSingleStep(features, labels, { ...opts, noise: new BenchNoise() })).ms);
  }
  // One DP_SGD step's gradient: every logit at a general theta, then the clipped sum (what 300+ steps repeat).
  const theta = Float64Array.from(randomFeatures(1, K * (d + 1), 3), (v) => v * 0.1);
  const normsSq = rowNormsSquared(features, true);
  const sgd = best(Math.min(repeats, 3), () => clippedGradientSum(features, labels, K, true, theta, normsSq, 1));
  // The same pass split over the threads a finetune job uses (rows in blocks, helpers in worker threads).
  const threads = gradientThreads(rows, d, K);
  let shardedMs = NaN;
  if (threads > 1) {
    const sharded = new ShardedGradient(features, labels, K, true, normsSq, threads);
    shardedMs = best(Math.min(repeats, 3) + 1, () => sharded.pass(theta, 1)).ms; // the first pass also starts the helpers
    sharded.close();
  }
  const lines: string[] = [];
  lines.push(`| plain pass (sum of all ${rows} x ${d} entries) | ${plain.ms.toFixed(1)} ms | 1.00x |`);
  lines.push(`| SINGLE_STEP (clip + class sums + noise + update, bias) | ${single.ms.toFixed(1)} ms | ${(single.ms / plain.ms).toFixed(2)}x |`);
  lines.push(`| DP_SGD step gradient at theta != 0 (logits + clipped sum, bias) | ${sgd.ms.toFixed(1)} ms | ${(sgd.ms / plain.ms).toFixed(2)}x |`);
  if (threads > 1) {
    lines.push(`| same, split over ${threads} threads (as finetune jobs run it) | ${shardedMs.toFixed(1)} ms | ${(shardedMs / plain.ms).toFixed(2)}x (${(sgd.ms / shardedMs).toFixed(2)}x faster) |`);
  }

  for (const dim of [576, 1280]) {
    const n = lsRows;
    const x = dim === d && n <= rows ? data.subarray(0, n * d) : randomFeatures(n, dim, 2);
    const y = labels.length >= n ? labels.subarray(0, n) : Int32Array.from({ length: n }, (_, i) => i % K);
    const f = { data: x, rows: n, cols: dim };
    const t0 = process.hrtime.bigint();
    const stats = leastSquaresStatistics(f, y, K, 1, true);
    const t1 = process.hrtime.bigint();
    const eig = symmetricEigen(stats.gram, stats.dim);
    const t2 = process.hrtime.bigint();
    eigenRidgeSolve(eig, stats.classSums, K, 10);
    const t3 = process.hrtime.bigint();
    const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
    const D = stats.dim;
    const gflop = (n * D * (D + 1)) / 1e9; // multiply-adds counted as 2 flops, upper triangle only
    lines.push(
      `| LEAST_SQUARES n = ${n}, D = ${D}: Gram + class sums | ${ms(t0, t1).toFixed(0)} ms | ${(gflop / (ms(t0, t1) / 1e3)).toFixed(1)} GFLOP/s |`,
    );
    const gThreads = gramThreads(n, D);
    if (gThreads > 1) {
      // The same statistics with the Gram split over the threads a finetune job uses (helper start included).
      const t4 = process.hrtime.bigint();
      leastSquaresStatistics(f, y, K, 1, true, gThreads);
      const t5 = process.hrtime.bigint();
      lines.push(`| same, Gram split over ${gThreads} threads (as finetune jobs run it) | ${ms(t4, t5).toFixed(0)} ms | ${(ms(t0, t1) / ms(t4, t5)).toFixed(2)}x faster |`);
    }
    lines.push(`| LEAST_SQUARES D = ${D}: symmetric eigendecomposition | ${ms(t1, t2).toFixed(0)} ms | |`);
    lines.push(`| LEAST_SQUARES D = ${D}: PSD-clipped ridge solve | ${ms(t2, t3).toFixed(0)} ms | |`);
    lines.push(`| LEAST_SQUARES n = ${n}, D = ${D}: total | ${ms(t0, t3).toFixed(0)} ms | |`);
  }
  console.log('| stage | time | ratio / rate |');
  console.log('|---|---|---|');
  for (const l of lines) console.log(l);
  console.log(`single step / plain pass = ${(single.ms / plain.ms).toFixed(2)} (target <= 4)`);
}

main();
