/**
 * Argument checks and the one place where heads draw noise.
 *
 * Noise ordering (deterministic, so a seeded test source reproduces a run exactly): each release draws
 * ONE fresh Float64Array from `noise.fillGaussian`, filled in the release's row-major order, and the
 * buffer is never reused for another release. The order of releases is documented by each head.
 */
import { FeatureMatrix, HeadError, NoiseSource, PrivacyOptions } from './types';

export interface CheckedPrivacy {
  isPrivate: boolean;
  sigma: number;
  clip: number;
  noise: NoiseSource | null;
  noiseKind: 'csprng' | 'seeded' | 'none';
}

function invalid(message: string, details?: Record<string, unknown>): HeadError {
  return new HeadError('INVALID_HEAD_OPTIONS', message, details);
}

/** Validates the privacy options; throws before any computation on private data. */
export function checkPrivacy(opts: PrivacyOptions): CheckedPrivacy {
  const sigma = opts.noiseMultiplier;
  const clip = opts.clipNorm;
  if (!(typeof sigma === 'number') || !Number.isFinite(sigma) || sigma < 0) {
    throw invalid('noiseMultiplier must be a finite number >= 0', { noiseMultiplier: sigma });
  }
  if (!(typeof clip === 'number') || Number.isNaN(clip) || clip <= 0) {
    throw invalid('clipNorm must be > 0', { clipNorm: clip });
  }
  if (opts.nonPrivate) {
    if (sigma !== 0) throw invalid('nonPrivate mode requires noiseMultiplier 0', { noiseMultiplier: sigma });
    return { isPrivate: false, sigma: 0, clip, noise: null, noiseKind: 'none' };
  }
  if (sigma === 0) {
    throw invalid('noiseMultiplier 0 is only allowed with nonPrivate: true (a noiseless, non-private baseline)');
  }
  if (!Number.isFinite(clip)) throw invalid('clipNorm must be finite for a private head', { clipNorm: clip });
  const noise = opts.noise;
  if (!noise) throw invalid('a NoiseSource is required for a private head');
  if (!noise.secure && opts.allowInsecureNoise !== true) {
    throw new HeadError(
      'INSECURE_NOISE_REFUSED',
      `refusing to release with a non-secure noise source (kind '${noise.kind}'); only the CSPRNG source is allowed`,
      { kind: noise.kind },
    );
  }
  return { isPrivate: true, sigma, clip, noise, noiseKind: noise.secure ? 'csprng' : noise.kind };
}

export function checkData(features: FeatureMatrix, labels: Int32Array, numClasses: number): void {
  const { rows, cols, data } = features;
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 1) {
    throw invalid('features must have integer rows >= 0 and cols >= 1', { rows, cols });
  }
  if (data.length !== rows * cols) throw invalid('features.data length != rows * cols', { length: data.length, rows, cols });
  if (!(labels instanceof Int32Array) || labels.length !== rows) {
    throw invalid('labels must be an Int32Array with one label per row', { labels: labels?.length, rows });
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) throw invalid('numClasses must be an integer >= 2', { numClasses });
  for (let i = 0; i < rows; i++) {
    const y = labels[i];
    if (y < 0 || y >= numClasses) throw invalid(`label ${y} at row ${i} is outside [0, ${numClasses})`);
  }
}

export function checkDeclaredSize(declaredSize: number): void {
  if (!Number.isFinite(declaredSize) || declaredSize <= 0) {
    throw invalid('declaredSize (the public, declared dataset size) must be > 0', { declaredSize });
  }
}

export function invalidOption(message: string, details?: Record<string, unknown>): HeadError {
  return invalid(message, details);
}

/** Draws one fresh buffer of `length` independent N(0, std^2) values for a single release. */
export function drawGaussian(noise: NoiseSource, length: number, std: number): Float64Array {
  const buf = new Float64Array(length);
  const out = noise.fillGaussian(buf, std);
  if (out !== buf && out.length !== length) throw new Error('NoiseSource.fillGaussian returned a buffer of the wrong length');
  const result = out === buf ? buf : out;
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(result[i])) throw new Error('NoiseSource produced a non-finite value');
  }
  return result;
}
