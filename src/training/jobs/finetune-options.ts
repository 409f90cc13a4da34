/**
 * Finetune request options: validation, documented defaults and the exact privacy events each method
 * performs. Defaults were fixed from the method papers and public data only (METHOD.md), never by looking
 * at private data or test labels:
 * - LEAST_SQUARES (default): clip norm 1 on unit-norm features (so clipping is a no-op), ridge lambda = 10 sigma.
 * - No learned bias by default (any method): the appended constant 1 doubles each row's squared norm, so
 *   clipping to 1 halves the feature signal against the same noise (measured: -2 points for LEAST_SQUARES,
 *   -0.5 for DP_SGD on the validation split below). The preprocessed features are already centred on public
 *   statistics, which is what a bias would mostly learn.
 * - SINGLE_STEP: clip norm 1, zero init, learning rate 1 (from zero init the prediction does not depend on it).
 * - DP_SGD: 1000 full-batch steps, SGD with momentum 0.9, learning rate 256, clip norm 0.1, cosine schedule.
 *   Learning rate, clip norm and steps are the one exception to "public data only": they were selected
 *   once, as a platform design decision, on a held-out split of the Fashion-MNIST TRAINING set (never its
 *   test set), by mean validation accuracy at epsilon 1, 3, 8 over steps 300 / 600 / 1000, clip norms
 *   0.1 / 0.2 / 0.25 / 0.5 / 1 and learning rates 8 to 512 (bench/utility-tune.ts, docs/benchmarks.md
 *   "Utility"). A small clip norm with a large rate acts like normalised gradients: most examples are
 *   clipped, so each step's signal is as large as the noise allows.
 * - Private evaluation (opt-in): every m-th example (m = round(1 / fraction), a rule that does not look at
 *   the data) is held out; the number of correct predictions on them is released with Gaussian noise of
 *   multiplier 20 (count sensitivity 1) and charged to the ledger with the training releases.
 */
import { BadInputError } from '../../common/errors/domain-errors';
import { calibrateNoiseMultiplier, PrivacyEvent } from '../../privacy';
import type { BackboneSpec } from '../backbones';
import { resolveFeatureLayer, resolveInputSize } from '../backbones';

export type FinetuneMethod = 'LEAST_SQUARES' | 'SINGLE_STEP' | 'DP_SGD';
export type OptimizerChoice = 'SGD' | 'ADAM' | 'LAMB';

export interface FinetuneOptionsInput {
  method?: FinetuneMethod;
  featureLayer?: string;
  inputSize?: number;
  clipNorm?: number;
  /** LEAST_SQUARES: ridge lambda; default 10 * sigma. */
  ridge?: number;
  /** DP_SGD */
  steps?: number;
  samplingRate?: number;
  optimizer?: OptimizerChoice;
  learningRate?: number;
  momentum?: number;
  fitBias?: boolean;
  /** Optional PUBLIC evaluation data (not charged): accuracy is reported as a plain number. */
  publicEvaluation?: { format: 'IDX' | 'IMAGE_FOLDER'; location: string };
  /** Optional private held-out split: its accuracy is a noisy count, charged to the ledger. */
  privateEvaluation?: { fraction: number; noiseMultiplier?: number };
}

export interface ResolvedFinetuneOptions {
  method: FinetuneMethod;
  backboneId: string;
  featureLayer: string;
  inputSize: number;
  clipNorm: number;
  ridge: number | null;
  steps: number;
  samplingRate: number;
  optimizer: OptimizerChoice;
  learningRate: number;
  momentum: number;
  fitBias: boolean;
  publicEvaluation: { format: 'IDX' | 'IMAGE_FOLDER'; location: string } | null;
  /** Hold out every `every`-th example (index % every === every - 1); release its correct count with this noise. */
  privateEvaluation: { every: number; noiseMultiplier: number } | null;
}

export const DEFAULT_EVALUATION_NOISE_MULTIPLIER = 20;

const positive = (v: number | undefined, name: string, fallback: number, max = Number.MAX_VALUE): number => {
  if (v === undefined || v === null) return fallback;
  if (!Number.isFinite(v) || v <= 0 || v > max) throw new BadInputError(`${name} must be a positive number${max < Number.MAX_VALUE ? ` up to ${max}` : ''}`, { field: name });
  return v;
};

export function resolveFinetuneOptions(input: FinetuneOptionsInput, backbone: BackboneSpec): ResolvedFinetuneOptions {
  const method = input.method ?? 'LEAST_SQUARES';
  if (!['LEAST_SQUARES', 'SINGLE_STEP', 'DP_SGD'].includes(method)) throw new BadInputError(`unknown method ${method}`, { field: 'method' });
  let layer;
  let inputSize;
  try {
    layer = resolveFeatureLayer(backbone, input.featureLayer ?? undefined);
    inputSize = resolveInputSize(backbone, layer, input.inputSize ?? undefined);
  } catch (err) {
    throw new BadInputError((err as Error).message, { field: input.featureLayer ? 'featureLayer' : 'inputSize' });
  }
  const steps = method === 'DP_SGD' ? positive(input.steps, 'steps', 1000, 100_000) : method === 'LEAST_SQUARES' ? 2 : 1;
  if (method === 'DP_SGD' && !Number.isInteger(steps)) throw new BadInputError('steps must be an integer', { field: 'steps' });
  const samplingRate = method === 'DP_SGD' ? positive(input.samplingRate, 'samplingRate', 1, 1) : 1;
  if (method !== 'DP_SGD' && (input.steps !== undefined || input.samplingRate !== undefined)) {
    throw new BadInputError(`steps and samplingRate apply to DP_SGD only`, { field: input.steps !== undefined ? 'steps' : 'samplingRate' });
  }
  const optimizer = input.optimizer ?? 'SGD';
  if (!['SGD', 'ADAM', 'LAMB'].includes(optimizer)) throw new BadInputError(`unknown optimizer ${optimizer}`, { field: 'optimizer' });
  const momentum = input.momentum ?? 0.9;
  if (!Number.isFinite(momentum) || momentum < 0 || momentum >= 1) throw new BadInputError('momentum must be in [0, 1)', { field: 'momentum' });
  return {
    method,
    backboneId: backbone.id,
    featureLayer: layer.name,
    inputSize,
    clipNorm: positive(input.clipNorm, 'clipNorm', method === 'DP_SGD' ? 0.1 : 1),
    ridge: method === 'LEAST_SQUARES' && input.ridge !== undefined && input.ridge !== null ? positive(input.ridge, 'ridge', 1) : null,
    steps,
    samplingRate,
    optimizer,
    learningRate: positive(input.learningRate, 'learningRate', method === 'DP_SGD' ? (optimizer === 'SGD' ? 256 : 0.01) : 1),
    momentum,
    fitBias: input.fitBias ?? false,
    publicEvaluation: input.publicEvaluation ?? null,
    privateEvaluation: resolvePrivateEvaluation(input.privateEvaluation),
  };
}

function resolvePrivateEvaluation(e: FinetuneOptionsInput['privateEvaluation']): ResolvedFinetuneOptions['privateEvaluation'] {
  if (!e) return null;
  if (!Number.isFinite(e.fraction) || e.fraction <= 0 || e.fraction > 0.5) {
    throw new BadInputError('privateEvaluation.fraction must be in (0, 0.5]', { field: 'privateEvaluation.fraction' });
  }
  return { every: Math.max(2, Math.round(1 / e.fraction)), noiseMultiplier: positive(e.noiseMultiplier, 'privateEvaluation.noiseMultiplier', DEFAULT_EVALUATION_NOISE_MULTIPLIER) };
}

/** Held-out rows of a private evaluation split: decided by index only, so sizes are public given n. */
export function isHeldOut(index: number, every: number): boolean {
  return index % every === every - 1;
}

export function heldOutCount(n: number, every: number): number {
  return Math.floor(n / every);
}

/** Exactly the releases of a job: the head's, then the private evaluation count's, if any. */
export function finetuneEvents(options: ResolvedFinetuneOptions, sigma: number): PrivacyEvent[] {
  return [...headEvents(options, sigma), ...evaluationEvents(options)];
}

function evaluationEvents(options: ResolvedFinetuneOptions): PrivacyEvent[] {
  return options.privateEvaluation ? [{ type: 'gaussian', noise_multiplier: options.privateEvaluation.noiseMultiplier, count: 1 }] : [];
}

/** Exactly the releases the head performs with noise multiplier sigma (what the heads emit). */
export function headEvents(options: ResolvedFinetuneOptions, sigma: number): PrivacyEvent[] {
  switch (options.method) {
    case 'LEAST_SQUARES':
      // Noisy Gram matrix (sensitivity C^2) and noisy class sums (sensitivity C), each with multiplier sigma.
      return [{ type: 'gaussian', noise_multiplier: sigma, count: 2 }];
    case 'SINGLE_STEP':
      return [{ type: 'gaussian', noise_multiplier: sigma, count: 1 }];
    case 'DP_SGD':
      return options.samplingRate < 1
        ? [{ type: 'poisson_subsampled_gaussian', noise_multiplier: sigma, sampling_rate: options.samplingRate, count: options.steps }]
        : [{ type: 'gaussian', noise_multiplier: sigma, count: options.steps }];
  }
}

/**
 * The head's noise multiplier: given, or the smallest one whose epsilon (the job's releases together, the
 * private evaluation included, at delta) does not exceed the target.
 */
export function chooseNoiseMultiplier(options: ResolvedFinetuneOptions, p: { targetEpsilon?: number | null; noiseMultiplier?: number | null; delta: number }): number {
  const hasTarget = p.targetEpsilon !== undefined && p.targetEpsilon !== null;
  const hasSigma = p.noiseMultiplier !== undefined && p.noiseMultiplier !== null;
  if (hasTarget === hasSigma) throw new BadInputError('give exactly one of targetEpsilon or noiseMultiplier', { field: 'targetEpsilon' });
  if (hasSigma) return positive(p.noiseMultiplier!, 'noiseMultiplier', 1);
  const target = positive(p.targetEpsilon!, 'targetEpsilon', 1, 1000);
  const steps = options.method === 'DP_SGD' ? options.steps : options.method === 'LEAST_SQUARES' ? 2 : 1;
  return calibrateNoiseMultiplier({ targetEpsilon: target, delta: p.delta, samplingRate: options.samplingRate, steps, accountant: 'auto', eventsBefore: evaluationEvents(options) })
    .noiseMultiplier;
}
