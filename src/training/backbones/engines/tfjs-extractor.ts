/**
 * TF.js engine: runs a LayersModel or GraphModel on the backend chosen by initTensorBackend.
 */
import { tf } from '../tf-backend';
import { BackboneError, type BackboneSpec, type ExtractOptions, type ExtractorInfo, type FeatureExtractor } from '../types';

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
      const x = tf.tensor4d(pixels.subarray(s * plane, (s + b) * plane), [b, S, S, 3]);
      let y: tf.Tensor | undefined;
      try {
        y = await this.runner(x);
        if (y.size !== b * D) throw new BackboneError('BACKBONE_INVALID_MODEL', `model returned shape [${y.shape.join(', ')}], expected [${b}, ${D}]`);
        out.set((await y.data()) as Float32Array, s * D);
      } finally {
        x.dispose();
        y?.dispose();
      }
      opts.onProgress?.(s + b, n);
    }
    return out;
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
