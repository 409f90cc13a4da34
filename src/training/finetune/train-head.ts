/**
 * Trains the chosen DP head on raw backbone features: public-statistics preprocessing (costs no privacy),
 * then the method's noisy releases. The caller has already reserved exactly `finetuneEvents(options, sigma)`
 * and marked the reservation released; this function checks that the head performed exactly those.
 */
import type { PrivacyEvent } from '../../privacy';
import { compactEvents } from '../../modules/ledger/budget';
import { canonicalJson } from '../../modules/ledger/hash-chain';
import type { FeaturePreprocessing } from '../../serving/models/model.entity';
import { PublicFeatureStats } from '../backbones';
import { FeatureMatrix, HeadResult, l2NormalizeRows, NoiseSource, preprocessFeatures, trainDpSgd, trainLeastSquares, trainSingleStep } from '../heads';
import { gradientThreads } from '../heads/sharded-gradient';
import { gramThreads } from '../heads/sharded-gram';
import { headEvents, ResolvedFinetuneOptions } from '../jobs/finetune-options';

/**
 * The preprocessing a job applies (and stores with its model, so serving applies the same): L2, public
 * z-score, L2. The public std is floored at the median public std: channels that are nearly dead on the
 * public set (std ~1e-5) but alive on the private data would otherwise be amplified by up to 100x and
 * dominate every normalised feature vector (measured on Fashion-MNIST with the mnist-digit statistics: the
 * lowest 5% of stds took 64% of the squared norm). The floor uses public statistics only: no privacy cost.
 */
export function featurePreprocessingFor(stats: PublicFeatureStats | undefined): FeaturePreprocessing {
  if (!stats) return { kind: 'l2' };
  const floor = medianOf(stats.std);
  return {
    kind: 'l2-zscore-l2',
    mean: stats.mean,
    std: stats.std.map((s) => Math.max(s, floor)),
    statsSource: `${stats.dataset} (${stats.count} public images, ${stats.engine}); std floored at the public median ${floor.toPrecision(4)}`,
  };
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The same preprocessing at training and at serving time. */
export function applyFeaturePreprocessing(features: FeatureMatrix, p: FeaturePreprocessing): FeatureMatrix {
  if (p.kind === 'l2') return l2NormalizeRows(features);
  return preprocessFeatures(features, { mean: Float64Array.from(p.mean!), std: Float64Array.from(p.std!) });
}

export function trainHead(p: {
  features: FeatureMatrix;
  labels: Int32Array;
  numClasses: number;
  declaredSize: number;
  options: ResolvedFinetuneOptions;
  noiseMultiplier: number;
  noise: NoiseSource;
  allowInsecureNoise?: boolean;
  onProgress?: (step: number, total: number) => void;
}): HeadResult {
  const { options: o } = p;
  const privacy = { noiseMultiplier: p.noiseMultiplier, clipNorm: o.clipNorm, noise: p.noise, allowInsecureNoise: p.allowInsecureNoise };
  let head: HeadResult;
  switch (o.method) {
    case 'LEAST_SQUARES':
      head = trainLeastSquares(p.features, p.labels, {
        ...privacy,
        numClasses: p.numClasses,
        ridge: o.ridge ?? undefined,
        fitBias: o.fitBias,
        threads: gramThreads(p.features.rows, p.features.cols + (o.fitBias ? 1 : 0)),
      });
      break;
    case 'SINGLE_STEP':
      head = trainSingleStep(p.features, p.labels, { ...privacy, numClasses: p.numClasses, declaredSize: p.declaredSize, learningRate: o.learningRate, fitBias: o.fitBias });
      break;
    case 'DP_SGD':
      head = trainDpSgd(p.features, p.labels, {
        ...privacy,
        numClasses: p.numClasses,
        declaredSize: p.declaredSize,
        steps: o.steps,
        samplingRate: o.samplingRate,
        optimizer: o.optimizer.toLowerCase() as 'sgd' | 'adam' | 'lamb',
        learningRate: o.learningRate,
        momentum: o.momentum,
        fitBias: o.fitBias,
        schedule: 'cosine',
        onProgress: p.onProgress,
        threads: gradientThreads(p.features.rows, p.features.cols, p.numClasses),
      });
      break;
  }
  assertSameEvents(head.events, headEvents(o, p.noiseMultiplier));
  return head;
}

/** The ledger must hold exactly what ran: a head that performed other releases is a bug, never stored. */
export function assertSameEvents(performed: PrivacyEvent[], reserved: PrivacyEvent[]): void {
  if (canonicalJson(compactEvents(performed)) !== canonicalJson(compactEvents(reserved))) {
    throw new Error(`releases performed ${canonicalJson(performed)} differ from those reserved ${canonicalJson(reserved)}`);
  }
}
