/**
 * The platform's full extraction path: raw uint8 images (a dataset shard) -> preprocess -> engine ->
 * features. Batches are preprocessed while the engine runs the previous batch (the engine call is
 * started before the next batch is prepared), so preprocessing overlaps inference when the engine runs
 * off the JS thread.
 */
import { preprocessRawBatch, type RawImageBatch } from './preprocess';
import { BackboneError, type FeatureExtractor } from './types';

export interface ExtractImagesOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Features (n x featureDim) of a packed batch of same-size uint8 images. */
export async function extractFeaturesFromRaw(extractor: FeatureExtractor, images: RawImageBatch, opts: ExtractImagesOptions = {}): Promise<Float32Array> {
  const n = images.n;
  const S = extractor.inputSize;
  const D = extractor.featureDim;
  const bs = Math.max(1, opts.batchSize ?? extractor.info.batchSize);
  if (!Number.isInteger(n) || n < 0) throw new BackboneError('BACKBONE_BAD_INPUT', 'n must be a non-negative integer');
  const out = new Float32Array(n * D);
  const plane = S * S * 3;
  // Two buffers: one being read by the engine, one being filled.
  const bufs = [new Float32Array(Math.min(bs, n) * plane), new Float32Array(Math.min(bs, n) * plane)];
  const prepare = (start: number, which: number): Float32Array => {
    const end = Math.min(start + bs, n);
    const buf = bufs[which];
    preprocessRawBatch(images, S, extractor.inputPreprocessing, buf, { start, end, outOffset: 0 });
    return (end - start) * plane === buf.length ? buf : buf.subarray(0, (end - start) * plane);
  };
  if (n === 0) return out;
  let current = prepare(0, 0);
  let which = 0;
  for (let s = 0; s < n; s += bs) {
    const b = Math.min(bs, n - s);
    const running = extractor.extract(current, b, { batchSize: b });
    const next = s + bs < n ? prepare(s + bs, 1 - which) : undefined;
    out.set(await running, s * D);
    opts.onProgress?.(s + b, n);
    if (next) {
      current = next;
      which = 1 - which;
    }
  }
  return out;
}
