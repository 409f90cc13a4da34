/**
 * Backbone features of a whole dataset, streamed in batches, cached on disk per (dataset fingerprint,
 * backbone, feature layer, input size) so that a second finetune on the same data does not recompute them.
 * Nothing here is a release: features stay inside the worker.
 *
 * Given the extractor's ONNX graph in a worker thread, batches run there: the event loop (which in an
 * API process also answers GraphQL and serves models) is never held by a forward pass, and the next batch
 * is read and decoded while the thread computes the current one.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extractFeaturesFromRaw, FeatureExtractor, PassImage, preprocessImages } from '../backbones';
import type { OnnxExtractorThread } from '../backbones/engines/onnx-thread';
import { DatasetSource, DecodedImage, readBatches } from '../data';

export interface DatasetFeatures {
  features: Float32Array;
  labels: Int32Array;
  rows: number;
  dim: number;
  cached: boolean;
}

export interface FeatureRequest {
  source: DatasetSource;
  fingerprint: string;
  /** Expected number of examples (the dataset's declared, verified size). */
  count: number;
  extractor: FeatureExtractor;
  /** The extractor's graph in a worker thread (onnxThreadConfig): batches run there instead of on the event loop. */
  thread?: OnnxExtractorThread;
  cacheDir: string;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Throws to stop early (e.g. a cancelled job). */
  checkpoint?: () => void | Promise<void>;
}

export function featureCacheKey(r: { fingerprint: string; extractor: FeatureExtractor }): string {
  const { spec, featureLayer, inputSize } = r.extractor;
  return createHash('sha256').update(`${r.fingerprint}|${spec.id}|${featureLayer}|${inputSize}|${JSON.stringify(spec.preprocessing)}`).digest('hex').slice(0, 32);
}

export async function datasetFeatures(r: FeatureRequest): Promise<DatasetFeatures> {
  const dim = r.extractor.featureDim;
  const key = featureCacheKey(r);
  const base = join(r.cacheDir, 'features', key);
  if (existsSync(`${base}.json`)) {
    const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as { rows: number; dim: number; fingerprint: string };
    if (meta.rows === r.count && meta.dim === dim && meta.fingerprint === r.fingerprint) {
      const [f, l] = await Promise.all([readFile(`${base}.f32`), readFile(`${base}.labels`)]);
      r.onProgress?.(r.count, r.count);
      return { features: bytesTo(Float32Array, f), labels: bytesTo(Int32Array, l), rows: meta.rows, dim, cached: true };
    }
  }

  const features = new Float32Array(r.count * dim);
  const labels = new Int32Array(r.count);
  const batchSize = r.batchSize ?? 256;
  let done = 0;
  let previous: Promise<void> | undefined;
  let latest: Promise<void> | undefined;
  try {
    // readBatches verifies the fingerprint before streaming and again at the end of the data.
    for await (const batch of readBatches(r.source, batchSize, { expectedFingerprint: r.fingerprint })) {
      await r.checkpoint?.();
      if (batch.offset + batch.labels.length > r.count) throw new Error(`the dataset holds more than the ${r.count} declared examples`);
      const passImages = r.thread && asPassImages(batch.images);
      const running = passImages ? r.thread!.run(passImages, { batchSize: r.extractor.info.batchSize }) : batchFeatures(r.extractor, batch.images);
      // The step keeps the batch's offset and labels, not its decoded images (the thread has its own copy).
      const { offset, labels: batchLabels } = batch;
      const step = running.then((f) => {
        features.set(f, offset * dim);
        labels.set(batchLabels, offset);
        done += batchLabels.length;
        r.onProgress?.(done, r.count);
      });
      step.catch(() => undefined); // awaited below; a failure while an earlier step is awaited is not unhandled
      latest = step;
      // In a thread, one batch computes while the next is read; on this thread, one at a time.
      if (!passImages) await step;
      await previous;
      previous = step;
    }
    await previous;
  } catch (err) {
    // Stopped (cancelled, the worker stopping, a failure): no pass of this job may still be running in the
    // thread when this returns, since the caller may close the thread next.
    await Promise.allSettled([previous, latest]);
    throw err;
  }
  if (done !== r.count) throw new Error(`the dataset holds ${done} examples, not the ${r.count} declared`);

  await mkdir(join(r.cacheDir, 'features'), { recursive: true });
  const tmp = `${base}.${process.pid}.tmp`;
  await writeFile(`${tmp}.f32`, Buffer.from(features.buffer, features.byteOffset, features.byteLength));
  await writeFile(`${tmp}.labels`, Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength));
  await rename(`${tmp}.f32`, `${base}.f32`);
  await rename(`${tmp}.labels`, `${base}.labels`);
  // The metadata file is written last: its presence means the cache entry is complete.
  await writeFile(`${tmp}.json`, JSON.stringify({ rows: r.count, dim, fingerprint: r.fingerprint, backbone: r.extractor.spec.id, layer: r.extractor.featureLayer, inputSize: r.extractor.inputSize }));
  await rename(`${tmp}.json`, `${base}.json`);
  return { features, labels, rows: r.count, dim, cached: false };
}

/** Features of decoded images: same-size images go through the packed fast path. */
export async function batchFeatures(extractor: FeatureExtractor, images: DecodedImage[]): Promise<Float32Array> {
  if (images.length === 0) return new Float32Array(0);
  const { width, height, channels } = images[0];
  const uniform = images.every((im) => im.width === width && im.height === height && im.channels === channels) && [1, 3, 4].includes(channels);
  if (uniform) {
    const plane = width * height * channels;
    const data = new Uint8Array(images.length * plane);
    images.forEach((im, i) => data.set(im.data, i * plane));
    return extractFeaturesFromRaw(extractor, { data, n: images.length, width, height, channels: channels as 1 | 3 | 4 });
  }
  const pixels = await preprocessImages(
    images.map((im) => ({ data: im.data, width: im.width, height: im.height, channels: im.channels as 1 | 3 | 4 })),
    extractor.inputSize,
    extractor.inputPreprocessing,
  );
  return extractor.extract(pixels, images.length);
}

/** The batch as pass images for an engine thread; undefined for channel counts only the main-thread path handles. */
function asPassImages(images: DecodedImage[]): PassImage[] | undefined {
  if (!images.every((im) => im.channels === 1 || im.channels === 3 || im.channels === 4)) return undefined;
  return images.map((im) => ({ data: im.data, width: im.width, height: im.height, channels: im.channels as 1 | 3 | 4 }));
}

function bytesTo<T extends Float32Array | Int32Array>(Ctor: { new (b: ArrayBuffer, o: number, l: number): T; BYTES_PER_ELEMENT: number }, buf: Buffer): T {
  // Copy into an aligned buffer (a Buffer's offset need not be a multiple of 4).
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return new Ctor(copy, 0, buf.byteLength / Ctor.BYTES_PER_ELEMENT);
}

export async function clearFeatureCache(cacheDir: string): Promise<void> {
  await rm(join(cacheDir, 'features'), { recursive: true, force: true });
}
