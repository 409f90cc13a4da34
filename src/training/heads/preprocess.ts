/**
 * Feature preprocessing that costs no privacy: every step is either per-example (L2 normalisation) or uses
 * statistics computed on PUBLIC features only (z-scoring). Never call `computeFeatureStats` on private
 * features: the statistics would be an unaccounted release.
 *
 * Pipeline (`preprocessFeatures`): L2-normalise each row -> z-score each dimension with public mean/std ->
 * L2-normalise each row again. Output rows have unit norm (zero rows stay zero), so a clip norm C = 1 is
 * the natural scale for every head.
 */
import { FeatureMatrix } from './types';

export interface FeatureStats {
  mean: Float64Array;
  std: Float64Array;
}

/** Returns a new Float32Array matrix whose rows have unit L2 norm (zero rows stay zero). */
export function l2NormalizeRows(features: FeatureMatrix): FeatureMatrix {
  const { rows, cols, data } = features;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += data[o + j] * data[o + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < cols; j++) out[o + j] = data[o + j] * inv;
  }
  return { data: out, rows, cols };
}

/**
 * Per-dimension mean and standard deviation of PUBLIC features, computed after L2-normalising each row (the
 * same stage at which `preprocessFeatures` applies them). Two-pass, float64.
 */
export function computeFeatureStats(publicFeatures: FeatureMatrix): FeatureStats {
  const { rows, cols } = publicFeatures;
  if (rows < 1) throw new Error('computeFeatureStats needs at least one public row');
  const x = l2NormalizeRows(publicFeatures).data;
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) mean[j] += x[o + j];
  }
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  const std = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) {
      const t = x[o + j] - mean[j];
      std[j] += t * t;
    }
  }
  for (let j = 0; j < cols; j++) std[j] = Math.sqrt(std[j] / rows);
  return { mean, std };
}

/**
 * L2-normalise, z-score with the given public stats (std values below `minStd` are replaced by `minStd`,
 * default 1e-6, so constant dimensions do not blow up), L2-normalise again. Returns a new Float32Array matrix.
 */
export function preprocessFeatures(features: FeatureMatrix, stats: FeatureStats, opts: { minStd?: number } = {}): FeatureMatrix {
  const { rows, cols, data } = features;
  if (stats.mean.length !== cols || stats.std.length !== cols) {
    throw new Error(`feature stats have dimension ${stats.mean.length}/${stats.std.length}, features have ${cols}`);
  }
  const minStd = opts.minStd ?? 1e-6;
  const invStd = new Float64Array(cols);
  for (let j = 0; j < cols; j++) invStd[j] = 1 / Math.max(stats.std[j], minStd);
  const out = new Float32Array(rows * cols);
  const tmp = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += data[o + j] * data[o + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    let s2 = 0;
    for (let j = 0; j < cols; j++) {
      const z = (data[o + j] * inv - stats.mean[j]) * invStd[j];
      tmp[j] = z;
      s2 += z * z;
    }
    const inv2 = s2 > 0 ? 1 / Math.sqrt(s2) : 0;
    for (let j = 0; j < cols; j++) out[o + j] = tmp[j] * inv2;
  }
  return { data: out, rows, cols };
}
