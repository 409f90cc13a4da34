import { withoutNormalisation } from '../preprocess';
import { BackboneError, type BackboneSpec, type ExtractOptions, type ExtractorInfo, type FeatureExtractor, type PreprocessingSpec } from '../types';

/**
 * What both engines share: the extractor's identity from its info (and from it what its input is prepared
 * with), and `extract`, which checks that the pixels hold n prepared images, runs them `batchSize` at a
 * time through the engine's `runBatch` (b images -> b x featureDim features) and gathers the features, reporting progress after each batch.
 */
export abstract class BatchExtractor implements FeatureExtractor {
  abstract readonly engine: FeatureExtractor['engine'];
  readonly backend: string;
  readonly inputSize: number;
  readonly featureDim: number;
  readonly featureLayer: string;
  readonly inputPreprocessing: PreprocessingSpec;
  private disposed = false;

  constructor(
    readonly spec: BackboneSpec,
    readonly info: ExtractorInfo,
  ) {
    this.backend = info.backend;
    this.inputSize = info.inputSize;
    this.featureDim = info.featureDim;
    this.featureLayer = info.featureLayer;
    this.inputPreprocessing = info.normalisesInGraph ? withoutNormalisation(spec.preprocessing) : spec.preprocessing;
  }

  /** Runs one batch (b images, NHWC float32) and returns b x featureDim features. */
  abstract runBatch(x: Float32Array, b: number): Promise<Float32Array>;

  /** Frees the engine's model (called once). */
  protected abstract release(): Promise<void>;

  async extract(pixels: Float32Array, n: number, opts: ExtractOptions = {}): Promise<Float32Array> {
    if (this.disposed) throw new BackboneError('BACKBONE_BAD_INPUT', 'extractor disposed');
    const S = this.inputSize;
    const plane = S * S * 3;
    if (!Number.isInteger(n) || n < 0 || pixels.length !== n * plane) {
      throw new BackboneError('BACKBONE_BAD_INPUT', `expected ${n} x ${S} x ${S} x 3 = ${n * plane} values, got ${pixels.length}`);
    }
    const D = this.featureDim;
    const out = new Float32Array(n * D);
    const bs = Math.max(1, opts.batchSize ?? this.info.batchSize);
    for (let s = 0; s < n; s += bs) {
      const b = Math.min(bs, n - s);
      out.set(await this.runBatch(pixels.subarray(s * plane, (s + b) * plane), b), s * D);
      opts.onProgress?.(s + b, n);
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.release();
  }
}
