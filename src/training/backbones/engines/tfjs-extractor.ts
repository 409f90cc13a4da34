/**
 * TF.js engine: runs a LayersModel or GraphModel on the backend chosen by initTensorBackend.
 */
import { tf } from '../tf-backend';
import { BackboneError, type BackboneSpec, type ExtractorInfo } from '../types';
import { BatchExtractor } from './batch-extractor';

/** Runs one batch: input NHWC [b, S, S, 3] -> features [b, D] (pooling done inside). Must not leak tensors. */
export type TfjsRunner = (x: tf.Tensor4D) => Promise<tf.Tensor>;

export class TfjsExtractor extends BatchExtractor {
  readonly engine = 'tfjs' as const;

  constructor(
    spec: BackboneSpec,
    info: ExtractorInfo,
    private readonly runner: TfjsRunner,
    private readonly releaseModel: () => void,
  ) {
    super(spec, info);
  }

  async runBatch(pixels: Float32Array, b: number): Promise<Float32Array> {
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

  protected async release(): Promise<void> {
    this.releaseModel();
  }
}

/** Global average pool of a rank-4 output in the given layout, identity for rank 2. */
export function poolOutput(y: tf.Tensor, pooling: 'global-avg' | 'none', layout: 'NHWC' | 'NCHW'): tf.Tensor {
  if (y.rank === 4 && pooling === 'global-avg') return tf.tidy(() => y.mean(layout === 'NHWC' ? [1, 2] : [2, 3]));
  if (y.rank === 2) return y.clone();
  if (y.rank === 4 && pooling === 'none') return tf.tidy(() => y.reshape([y.shape[0], -1]));
  throw new BackboneError('BACKBONE_INVALID_MODEL', `feature output has rank ${y.rank}; expected 2 or 4`);
}
