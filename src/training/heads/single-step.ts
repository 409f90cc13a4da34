/**
 * SINGLE_STEP (Mehta et al. 2022): one full-batch DP gradient step of softmax cross-entropy from (near-)zero
 * initialisation.
 *
 *   G  = sum_i clip_C(g_i) + N(0, sigma^2 C^2 I_{K x D})      (one Gaussian release, sensitivity C)
 *   W1 = W0 - learningRate * G / declaredSize
 *
 * From W0 = 0 (the default) the prediction argmax_k (W1 x)_k depends neither on the learning rate nor on
 * declaredSize: W1 is a positive multiple of a noisy class-prototype matrix.
 *
 * Noise order: with initScale > 0, first K*D init draws N(0, initScale^2) (row-major theta), then the
 * release's K*D draws N(0, (sigma C)^2) (row-major, class k row, bias last). Without init: only the release.
 */
import { checkData, checkDeclaredSize, checkPrivacy, drawGaussian, invalidOption } from './guard';
import { clippedGradientSum, rowNormsSquared, thetaToHead, zeroInitClippedGradientSum } from './kernels';
import { FeatureMatrix, HeadResult, PrivacyEvent, PrivacyOptions } from './types';

export interface SingleStepOptions extends PrivacyOptions {
  /** Number of classes K (public: from the dataset's declared class list). */
  numClasses: number;
  /** PUBLIC declared dataset size n used as the divisor (never the count of rows actually seen). */
  declaredSize: number;
  /** eta; default 1 (irrelevant to predictions from zero init). */
  learningRate?: number;
  /** Append a constant feature 1 and learn its weight as the bias. Default false. */
  fitBias?: boolean;
  /** Std of a Gaussian random init W0 (drawn from `noise`); default 0 = exact zero init. */
  initScale?: number;
}

export function trainSingleStep(features: FeatureMatrix, labels: Int32Array, opts: SingleStepOptions): HeadResult {
  const priv = checkPrivacy(opts);
  checkData(features, labels, opts.numClasses);
  checkDeclaredSize(opts.declaredSize);
  const lr = opts.learningRate ?? 1;
  if (!(lr > 0) || !Number.isFinite(lr)) throw invalidOption('learningRate must be a finite number > 0', { learningRate: lr });
  const initScale = opts.initScale ?? 0;
  if (!(initScale >= 0) || !Number.isFinite(initScale)) throw invalidOption('initScale must be >= 0', { initScale });
  const withBias = opts.fitBias === true;
  const K = opts.numClasses;
  const d = features.cols;
  const D = withBias ? d + 1 : d;

  let theta0: Float64Array | null = null;
  if (initScale > 0) {
    const src = priv.noise ?? opts.noise;
    if (!src) throw invalidOption('initScale > 0 needs a noise source for the random init');
    theta0 = drawGaussian(src, K * D, initScale);
  }

  const grad = theta0
    ? clippedGradientSum(features, labels, K, withBias, theta0, rowNormsSquared(features, withBias), priv.clip).gradSum
    : zeroInitClippedGradientSum(features, labels, K, withBias, priv.clip);

  const events: PrivacyEvent[] = [];
  if (priv.isPrivate) {
    const noise = drawGaussian(priv.noise!, K * D, priv.sigma * priv.clip);
    for (let t = 0; t < K * D; t++) grad[t] += noise[t];
    events.push({ type: 'gaussian', noise_multiplier: priv.sigma, count: 1 });
  }

  const step = lr / opts.declaredSize;
  const theta = theta0 ?? new Float64Array(K * D);
  for (let t = 0; t < K * D; t++) theta[t] -= step * grad[t];

  return {
    method: 'SINGLE_STEP',
    ...thetaToHead(theta, K, d, withBias),
    events,
    releases: events.length,
    private: priv.isPrivate,
    noiseKind: priv.noiseKind,
    noiseMultiplier: priv.sigma,
    clipNorm: priv.clip,
  };
}
