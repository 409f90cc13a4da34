/**
 * Dataset readers (pure: no NestJS, no database): IDX (MNIST-style, gzipped or not) and IMAGE_FOLDER
 * (one subfolder per class, PNG/JPEG decoded with sharp).
 *
 * Fingerprints (sha256 hex, format-tagged, independent of compression):
 * - IDX: sha256 over a short header plus sha256(decompressed images file) and sha256(decompressed labels
 *   file). The same data gzipped or not has the same fingerprint.
 * - IMAGE_FOLDER: sha256 over the class list, then every file in order as (relative path, length, bytes).
 *
 * `readBatches(src, n, { expectedFingerprint })` never lets a consumer complete on changed data:
 *   1. before yielding anything it runs the full validation pass of `inspectDataset` and throws
 *      DATASET_CHANGED if the fingerprint differs;
 *   2. while streaming it hashes exactly the bytes it decodes and holds back the LAST batch until the end
 *      of the data has been read and the hash compared; on a mismatch (the data changed between the two
 *      passes) it throws DATASET_CHANGED instead of yielding that batch.
 * So a consumer that only releases after the iteration finished normally (as every training job does)
 * never releases anything computed on data other than the fingerprinted data.
 * Without expectedFingerprint nothing is verified; the data is still fully validated while streaming.
 */
import { DatasetFormatError } from './errors';
import { checkNoTrailing, idxFingerprint, inspectIdx, openIdx, resolveIdxFiles } from './idx';
import { decodeImage, FolderHasher, imageSize, listImageFolder, readFileBytes } from './image-folder';

export { DatasetFormatError } from './errors';
export type { DatasetErrorCode } from './errors';
export { resolveIdxFiles } from './idx';
export type { IdxFiles } from './idx';

export type DatasetFormat = 'IDX' | 'IMAGE_FOLDER';

export interface DatasetSource {
  format: DatasetFormat;
  /** IDX: path prefix P (P-images-idx3-ubyte[.gz]) or a directory with exactly one pair; folder: root dir. */
  location: string;
}

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export interface DatasetInfo {
  format: DatasetFormat;
  count: number;
  /** IDX: '0' .. String(maxLabel); IMAGE_FOLDER: the sorted class folder names. */
  classNames: string[];
  /** Shape of every decoded image, or null when folder images differ in size. Folder images decode to RGB. */
  imageShape: ImageShape | null;
  /** sha256 hex over the canonical content (see module doc). */
  fingerprint: string;
}

/** One decoded image: 8-bit pixels, row-major height x width x channels. */
export interface DecodedImage {
  width: number;
  height: number;
  /** IDX: the file's channel count (1 for MNIST-style rank-3 files); IMAGE_FOLDER: 3 (RGB). */
  channels: number;
  data: Uint8Array;
}

export interface ImageBatch {
  /** Index of the batch's first example in dataset order. */
  offset: number;
  /** Class index per example. */
  labels: Int32Array;
  images: DecodedImage[];
}

export interface ReadOptions {
  /** If set, the data must still match this fingerprint (else DATASET_CHANGED; see module doc). */
  expectedFingerprint?: string;
  /** Folder decoding parallelism within a batch (default 4). */
  concurrency?: number;
  /**
   * Folder batches end early once their decoded pixels reach this many bytes (default 256 MiB), so that a
   * folder of large photos (36 MB each decoded at 12 megapixels) never holds hundreds of them at once.
   */
  maxBatchBytes?: number;
}

export const DEFAULT_MAX_BATCH_BYTES = 256 * 1024 * 1024;

function validateSource(src: DatasetSource): void {
  if (!src || (src.format !== 'IDX' && src.format !== 'IMAGE_FOLDER')) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `unsupported dataset format ${String(src?.format)}`);
  }
  if (typeof src.location !== 'string' || src.location.length === 0) {
    throw new DatasetFormatError('DATASET_NOT_FOUND', 'dataset location is empty');
  }
}

/** Validates the whole dataset, counts it and fingerprints it, streaming with bounded memory. */
export async function inspectDataset(src: DatasetSource): Promise<DatasetInfo> {
  validateSource(src);
  if (src.format === 'IDX') {
    const r = await inspectIdx(src.location);
    return {
      format: 'IDX',
      count: r.header.count,
      classNames: Array.from({ length: r.maxLabel + 1 }, (_, i) => String(i)),
      imageShape: { height: r.header.height, width: r.header.width, channels: r.header.channels },
      fingerprint: r.fingerprint,
    };
  }
  const listing = await listImageFolder(src.location);
  const hasher = new FolderHasher(listing.classNames);
  let shape: { width: number; height: number } | null = null;
  let uniform = true;
  for (const entry of listing.files) {
    const bytes = await readFileBytes(entry);
    hasher.addFile(entry.rel, bytes);
    const size = await imageSize(entry.rel, bytes);
    if (!shape) shape = size;
    else if (shape.width !== size.width || shape.height !== size.height) uniform = false;
  }
  return {
    format: 'IMAGE_FOLDER',
    count: listing.files.length,
    classNames: listing.classNames,
    imageShape: uniform && shape ? { height: shape.height, width: shape.width, channels: 3 } : null,
    fingerprint: hasher.digest(),
  };
}

function changed(expected: string, actual: string): DatasetFormatError {
  return new DatasetFormatError('DATASET_CHANGED', 'the dataset no longer matches its registered fingerprint', { expected, actual });
}

/**
 * Streams the dataset in order as batches of at most `batchSize` examples (folder batches also end at
 * `maxBatchBytes` of decoded pixels). Memory: one batch (plus one held-back batch when verifying) and the
 * stream buffers.
 */
export async function* readBatches(src: DatasetSource, batchSize: number, opts: ReadOptions = {}): AsyncGenerator<ImageBatch> {
  validateSource(src);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be an integer >= 1');
  if (opts.maxBatchBytes !== undefined && !(opts.maxBatchBytes > 0)) throw new RangeError('maxBatchBytes must be > 0');
  const expected = opts.expectedFingerprint;
  if (expected !== undefined) {
    const info = await inspectDataset(src);
    if (info.fingerprint !== expected) throw changed(expected, info.fingerprint);
  }
  const inner = src.format === 'IDX' ? idxBatches(src.location, batchSize) : folderBatches(src.location, batchSize, opts.concurrency ?? 4, opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES);
  // Hold back one batch so that the last one is only yielded after the end-of-data fingerprint check.
  let pending: ImageBatch | null = null;
  let final = '';
  try {
    for (;;) {
      const r = await inner.next();
      if (r.done) {
        final = r.value;
        break;
      }
      if (pending) yield pending;
      pending = r.value;
    }
  } finally {
    // closes the underlying streams when the consumer stops early or an error is thrown
    await inner.return('');
  }
  if (expected !== undefined && final !== expected) throw changed(expected, final);
  if (pending) yield pending;
}

/** Yields batches; returns the fingerprint of exactly the bytes read. */
async function* idxBatches(location: string, batchSize: number): AsyncGenerator<ImageBatch, string> {
  const files = await resolveIdxFiles(location);
  const { header, images, labels } = await openIdx(files);
  try {
    const { count, height, width, channels } = header;
    const per = height * width * channels;
    for (let offset = 0; offset < count; offset += batchSize) {
      const m = Math.min(batchSize, count - offset);
      const pixels = new Uint8Array(m * per);
      pixels.set(await images.readExact(m * per, `images ${offset}..${offset + m - 1}`));
      const lab = await labels.readExact(m, `labels ${offset}..${offset + m - 1}`);
      const batch: ImageBatch = { offset, labels: Int32Array.from(lab), images: new Array(m) };
      for (let i = 0; i < m; i++) batch.images[i] = { width, height, channels, data: pixels.subarray(i * per, (i + 1) * per) };
      yield batch;
    }
    await checkNoTrailing(images);
    await checkNoTrailing(labels);
    return idxFingerprint(images.hash.digest('hex'), labels.hash.digest('hex'));
  } finally {
    images.close();
    labels.close();
  }
}

async function* folderBatches(root: string, batchSize: number, concurrency: number, maxBatchBytes: number): AsyncGenerator<ImageBatch, string> {
  const listing = await listImageFolder(root);
  const hasher = new FolderHasher(listing.classNames);
  const files = listing.files;
  for (let offset = 0; offset < files.length; ) {
    const images: DecodedImage[] = [];
    let bytes = 0;
    // A batch ends at batchSize images, or once its decoded pixels reach maxBatchBytes.
    while (offset + images.length < files.length && images.length < batchSize && bytes < maxBatchBytes) {
      const start = offset + images.length;
      const group = files.slice(start, Math.min(start + concurrency, offset + batchSize));
      const raw = await Promise.all(group.map((e) => readFileBytes(e)));
      // hash in dataset order, exactly the bytes that are decoded
      group.forEach((e, i) => hasher.addFile(e.rel, raw[i]));
      for (const img of await Promise.all(group.map((e, i) => decodeImage(e.rel, raw[i])))) {
        images.push(img);
        bytes += img.data.length;
      }
    }
    yield { offset, labels: Int32Array.from(files.slice(offset, offset + images.length), (e) => e.label), images };
    offset += images.length;
  }
  return hasher.digest();
}
