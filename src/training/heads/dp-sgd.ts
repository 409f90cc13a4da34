/**
 * DP_SGD on the linear head (Mehta et al. 2022's multi-step variants): T noisy steps of softmax CE.
 *
 * Each step t:
 *   batch  = all rows (full batch, samplingRate undefined or 1) or a Poisson sample: row i is included
 *            independently with probability q, using uniforms from a `UniformSource` (node:crypto by default)
 *   G_t    = sum_{i in batch} clip_C(g_i) + N(0, sigma^2 C^2 I_{K x D})   (fresh noise every step)
 *   g-hat  = G_t / (q * declaredSize)     (q = 1 for full batch; the EXPECTED batch size, never the
 *                                          realised count)
 *   theta  <- optimizer(theta, g-hat)    (SGD with momentum, Adam or LAMB: post-processing of g-hat)
 *
 * Events: full batch -> [{gaussian, sigma, count T}]; Poisson -> [{poisson_subsampled_gaussian, sigma, q,
 * count T}]. The events are created only after all T steps ran; if anything throws (including the progress
 * callback), no head is returned, so nothing computed from the partial run is released.
 *
 * Library defaults (chosen from METHOD.md and the problem's scale, not from any private data or test
 * labels; finetune jobs pass the platform's defaults from jobs/finetune-options.ts instead): 300 full-batch
 * steps of SGD with momentum 0.9, learning rate 1 (for unit-norm preprocessed features the softmax-CE curvature is at most ||x||^2 / 2 = 1/2, and heavy-ball momentum is stable for
 * lr < 2 (1 + momentum) / L = 7.6); Adam and LAMB default to lr 0.01, betas (0.9, 0.999), eps 1e-8.
 * Constant schedule unless `schedule: 'cosine'` (decay to 0 at T, after optional linear warmup).
 *
 * Noise order per step: (Poisson only) one uniform per feature row, in row order, then K*D Gaussian
 * draws (row-major K x D, bias last). With initScale > 0 the K*D init draws come first of all.
 */
import { randomFillSync } from 'node:crypto';
import { checkData, checkDeclaredSize, checkPrivacy, drawGaussian, invalidOption } from './guard';
import { clippedGradientSum, rowNormsSquared, thetaToHead } from './kernels';
import { ShardedGradient } from './sharded-gradient';
import { FeatureMatrix, HeadError, HeadResult, PrivacyEvent, PrivacyOptions } from './types';

/** Source of independent uniforms in [0, 1) for Poisson sampling. */
export interface UniformSource {
  readonly secure: boolean;
  readonly kind: 'csprng' | 'seeded';
  fillUniform(out: Float64Array): Float64Array;
}

/** node:crypto-backed uniforms with 53 random bits each. */
export function cryptoUniformSource(): UniformSource {
  return {
    secure: true,
    kind: 'csprng',
    fillUniform(out: Float64Array): Float64Array {
      const CHUNK = 8192;
      const words = new Uint32Array(2 * Math.min(CHUNK, out.length));
      for (let start = 0; start < out.length; start += CHUNK) {
        const m = Math.min(CHUNK, out.length - start);
        randomFillSync(words);
        for (let i = 0; i < m; i++) {
          const hi = words[2 * i] >>> 5; // 27 bits
          const lo = words[2 * i + 1] >>> 6; // 26 bits
          out[start + i] = (hi * 67108864 + lo) / 9007199254740992;
        }
      }
      return out;
    },
  };
}

export type OptimizerName = 'sgd' | 'adam' | 'lamb';

export interface DpSgdOptions extends PrivacyOptions {
  numClasses: number;
  /** PUBLIC declared dataset size n. */
  declaredSize: number;
  /** T, default 300. */
  steps?: number;
  /** Poisson sampling rate q in (0, 1]; undefined or 1 = full batch. */
  samplingRate?: number;
  optimizer?: OptimizerName;
  learningRate?: number;
  /** SGD momentum, default 0.9. */
  momentum?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay for adam/lamb, L2 term added to g-hat for sgd. Default 0. */
  weightDecay?: number;
  schedule?: 'constant' | 'cosine';
  warmupSteps?: number;
  fitBias?: boolean;
  /** Std of a Gaussian random init (drawn from `noise`), default 0 = zero init. */
  initScale?: number;
  /** Uniforms for Poisson sampling; default node:crypto. Must be secure unless allowInsecureNoise. */
  uniform?: UniformSource;
  onProgress?: (step: number, total: number) => void;
  /**
   * Threads for each step's gradient pass (rows split in blocks, summed in a fixed order; see
   * sharded-gradient.ts). Default 1: this thread only.
   */
  threads?: number;
}

export function learningRateAt(step: number, total: number, base: number, schedule: 'constant' | 'cosine', warmup: number): number {
  if (warmup > 0 && step < warmup) return (base * (step + 1)) / warmup;
  if (schedule === 'constant') return base;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return 0.5 * base * (1 + Math.cos(Math.PI * progress));
}

export function trainDpSgd(features: FeatureMatrix, labels: Int32Array, opts: DpSgdOptions): HeadResult {
  const priv = checkPrivacy(opts);
  checkData(features, labels, opts.numClasses);
  checkDeclaredSize(opts.declaredSize);
  const steps = opts.steps ?? 300;
  if (!Number.isInteger(steps) || steps < 1) throw invalidOption('steps must be an integer >= 1', { steps });
  const q = opts.samplingRate ?? 1;
  if (!(q > 0 && q <= 1)) throw invalidOption('samplingRate must be in (0, 1]', { samplingRate: q });
  const poisson = q < 1;
  const optimizer = opts.optimizer ?? 'sgd';
  if (!['sgd', 'adam', 'lamb'].includes(optimizer)) throw invalidOption(`unknown optimizer ${optimizer}`);
  const lr = opts.learningRate ?? (optimizer === 'sgd' ? 1 : 0.01);
  const momentum = opts.momentum ?? 0.9;
  const beta1 = opts.beta1 ?? 0.9;
  const beta2 = opts.beta2 ?? 0.999;
  const eps = opts.epsilon ?? 1e-8;
  const wd = opts.weightDecay ?? 0;
  const schedule = opts.schedule ?? 'constant';
  const warmup = opts.warmupSteps ?? 0;
  const initScale = opts.initScale ?? 0;
  if (!(lr > 0) || !Number.isFinite(lr)) throw invalidOption('learningRate must be > 0', { learningRate: lr });
  if (!(momentum >= 0 && momentum < 1)) throw invalidOption('momentum must be in [0, 1)', { momentum });
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw invalidOption('betas must be in [0, 1)');
  if (!(wd >= 0) || !(eps > 0) || !(initScale >= 0) || !(warmup >= 0)) throw invalidOption('invalid optimizer options');

  let uniform: UniformSource | null = null;
  if (poisson) {
    uniform = opts.uniform ?? cryptoUniformSource();
    if (priv.isPrivate && !uniform.secure && opts.allowInsecureNoise !== true) {
      throw new HeadError('INSECURE_NOISE_REFUSED', `refusing Poisson sampling with a non-secure uniform source (kind '${uniform.kind}')`, {
        kind: uniform.kind,
      });
    }
  }

  const K = opts.numClasses;
  const d = features.cols;
  const withBias = opts.fitBias === true;
  const D = withBias ? d + 1 : d;
  const P = K * D;
  const rows = features.rows;

  let theta: Float64Array = new Float64Array(P);
  if (initScale > 0) {
    const src = priv.noise ?? opts.noise;
    if (!src) throw invalidOption('initScale > 0 needs a noise source for the random init');
    theta = drawGaussian(src, P, initScale);
  }
  const normsSq = rowNormsSquared(features, withBias);
  const m1 = new Float64Array(P);
  const m2 = optimizer === 'sgd' ? null : new Float64Array(P);
  const include = poisson ? new Uint8Array(rows) : undefined;
  const u = poisson ? new Float64Array(rows) : null;
  const divisor = q * opts.declaredSize;
  const noiseStd = priv.sigma * priv.clip;

  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw invalidOption('threads must be an integer >= 1', { threads });
  const sharded = threads > 1 ? new ShardedGradient(features, labels, K, withBias, normsSq, threads) : null;
  try {
    for (let t = 0; t < steps; t++) {
      if (poisson) {
        uniform!.fillUniform(u!);
        for (let i = 0; i < rows; i++) include![i] = u![i] < q ? 1 : 0;
      }
      const { gradSum } = sharded ? sharded.pass(theta, priv.clip, include) : clippedGradientSum(features, labels, K, withBias, theta, normsSq, priv.clip, include);
      if (priv.isPrivate) {
        const noise = drawGaussian(priv.noise!, P, noiseStd);
        for (let e = 0; e < P; e++) gradSum[e] += noise[e];
      }
      const g = gradSum;
      for (let e = 0; e < P; e++) g[e] /= divisor;
      const rate = learningRateAt(t, steps, lr, schedule, warmup);
      if (optimizer === 'sgd') {
        for (let e = 0; e < P; e++) {
          m1[e] = momentum * m1[e] + g[e] + wd * theta[e];
          theta[e] -= rate * m1[e];
        }
      } else {
        const c1 = 1 - beta1 ** (t + 1);
        const c2 = 1 - beta2 ** (t + 1);
        const upd = g; // reuse the buffer for the update direction
        for (let e = 0; e < P; e++) {
          m1[e] = beta1 * m1[e] + (1 - beta1) * g[e];
          m2![e] = beta2 * m2![e] + (1 - beta2) * g[e] * g[e];
          upd[e] = m1[e] / c1 / (Math.sqrt(m2![e] / c2) + eps) + wd * theta[e];
        }
        if (optimizer === 'adam') {
          for (let e = 0; e < P; e++) theta[e] -= rate * upd[e];
        } else {
          // LAMB: layer-wise trust ratio ||theta|| / ||update||, the weight matrix and the bias as two layers.
          applyTrust(theta, upd, rate, K, D, 0, d);
          if (withBias) applyTrust(theta, upd, rate, K, D, d, D);
        }
      }
      opts.onProgress?.(t + 1, steps);
    }
  } finally {
    sharded?.close();
  }

  const events: PrivacyEvent[] = [];
  if (priv.isPrivate) {
    events.push(
      poisson
        ? { type: 'poisson_subsampled_gaussian', noise_multiplier: priv.sigma, sampling_rate: q, count: steps }
        : { type: 'gaussian', noise_multiplier: priv.sigma, count: steps },
    );
  }
  return {
    method: 'DP_SGD',
    ...thetaToHead(theta, K, d, withBias),
    events,
    releases: priv.isPrivate ? steps : 0,
    private: priv.isPrivate,
    noiseKind: priv.noiseKind,
    noiseMultiplier: priv.sigma,
    clipNorm: priv.clip,
  };
}

/** theta[:, c0:c1] -= rate * r * upd[:, c0:c1] with r = ||theta part|| / ||upd part|| (1 if either is 0). */
function applyTrust(theta: Float64Array, upd: Float64Array, rate: number, K: number, D: number, c0: number, c1: number): void {
  let tn = 0;
  let un = 0;
  for (let k = 0; k < K; k++) {
    for (let j = c0; j < c1; j++) {
      tn += theta[k * D + j] ** 2;
      un += upd[k * D + j] ** 2;
    }
  }
  const ratio = tn > 0 && un > 0 ? Math.sqrt(tn) / Math.sqrt(un) : 1;
  for (let k = 0; k < K; k++) {
    for (let j = c0; j < c1; j++) theta[k * D + j] -= rate * ratio * upd[k * D + j];
  }
}
