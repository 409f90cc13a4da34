/**
 * TF.js engine: runs a LayersModel or GraphModel on the backend chosen by initTensorBackend.
 */
import { tf } from '../tf-backend';
import { BackboneError, extractInBatches, type BackboneSpec, type ExtractOptions, type ExtractorInfo, type FeatureExtractor } from '../types';

/** Runs one batch: input NHWC [b, S, S, 3] -> features [b, D] (pooling done inside). Must not leak tensors. */
export type TfjsRunner = (x: tf.Tensor4D) => Promise<tf.Tensor>;

export class TfjsExtractor implements FeatureExtractor {
  readonly engine = 'tfjs' as const;
  readonly backend: string;
  readonly inputSize: number;
  readonly featureDim: number;
  readonly featureLayer: string;
  private disposed = false;

  constructor(
    readonly spec: BackboneSpec,
    readonly info: ExtractorInfo,
    private readonly runner: TfjsRunner,
    private readonly release: () => void,
  ) {
    this.backend = info.backend;
    this.inputSize = info.inputSize;
    this.featureDim = info.featureDim;
    this.featureLayer = info.featureLayer;
  }

  async extract(pixels: Float32Array, n: number, opts: ExtractOptions = {}): Promise<Float32Array> {
    if (this.disposed) throw new BackboneError('BACKBONE_BAD_INPUT', 'extractor disposed');
    return extractInBatches(this, pixels, n, opts.batchSize ?? this.info.batchSize, (x, b) => this.runBatch(x, b), opts.onProgress);
  }

  /** Runs one batch (b images, NHWC) and returns b x D features. */
  private async runBatch(pixels: Float32Array, b: number): Promise<Float32Array> {
    const S = this.inputSize;
    const D = this.featureDim;
    const x = tf.tensor4d(pixels, [b, S, S, 3]);
    let y: tf.Tensor | undefined;
    try {
      y = await this.runner(x);
      if (y.size !== b * D) throw new BackboneError('BACKBONE_INVALID_MODEL', `model returned shape [${y.shape.join(', ')}], expected [${b}, ${D}]`);
      return (await y.data()) as Float32Array;
    } finally {
      x.dispose();
      y?.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.release();
  }
}

/** Global average pool of a rank-4 output in the given layout, identity for rank 2. */
export function poolOutput(y: tf.Tensor, pooling: 'global-avg' | 'none', layout: 'NHWC' | 'NCHW'): tf.Tensor {
  if (y.rank === 4 && pooling === 'global-avg') return tf.tidy(() => y.mean(layout === 'NHWC' ? [1, 2] : [2, 3]));
  if (y.rank === 2) return y.clone();
  if (y.rank === 4 && pooling === 'none') return tf.tidy(() => y.reshape([y.shape[0], -1]));
  throw new BackboneError('BACKBONE_INVALID_MODEL', `feature output has rank ${y.rank}; expected 2 or 4`);
}
