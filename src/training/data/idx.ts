/**
 * IDX (MNIST-style) datasets: an images file `P-images-idx3-ubyte[.gz]` (unsigned bytes, rank 3: n x h x w,
 * or rank 4: n x h x w x c) and a labels file `P-labels-idx1-ubyte[.gz]` (unsigned bytes, rank 1: n).
 * Header: two zero bytes, type byte 0x08 (ubyte), rank byte, then `rank` big-endian uint32 dimensions.
 *
 * Location: either the prefix P, or a directory holding exactly one `*-images-idx3-ubyte[.gz]` with its
 * matching labels file. Gzip is detected from the content (magic 1f 8b), not the name.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ByteStream } from './byte-stream';
import { DatasetFormatError } from './errors';

export interface IdxFiles {
  images: string;
  labels: string;
}

export interface IdxHeader {
  count: number;
  height: number;
  width: number;
  channels: number;
}

const IMAGES_RE = /^(.+)-images-idx3-ubyte(\.gz)?$/;

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function pick(prefix: string, kind: 'images-idx3' | 'labels-idx1'): Promise<string> {
  const plain = `${prefix}-${kind}-ubyte`;
  const gz = `${plain}.gz`;
  const [a, b] = await Promise.all([exists(plain), exists(gz)]);
  if (a && b) {
    throw new DatasetFormatError('DATASET_AMBIGUOUS', `both ${plain} and ${gz} exist; keep one`, { prefix });
  }
  if (!a && !b) throw new DatasetFormatError('DATASET_NOT_FOUND', `missing IDX file ${plain}[.gz]`, { prefix });
  return a ? plain : gz;
}

/** Resolves the images and labels files of an IDX location (prefix or directory). */
export async function resolveIdxFiles(location: string): Promise<IdxFiles> {
  let isDir = false;
  try {
    isDir = (await stat(location)).isDirectory();
  } catch {
    isDir = false;
  }
  if (isDir) {
    const names = (await readdir(location)).filter((n) => IMAGES_RE.test(n));
    const prefixes = [...new Set(names.map((n) => IMAGES_RE.exec(n)![1]))].sort();
    if (prefixes.length === 0) {
      throw new DatasetFormatError('DATASET_NOT_FOUND', `no *-images-idx3-ubyte[.gz] file in directory ${location}`, { location });
    }
    if (prefixes.length > 1 || names.length > 1) {
      throw new DatasetFormatError(
        'DATASET_AMBIGUOUS',
        `directory ${location} holds several IDX image files (${names.sort().join(', ')}); pass a prefix such as ${join(location, prefixes[0])}`,
        { location, candidates: names },
      );
    }
    const prefix = join(location, prefixes[0]);
    return { images: await pick(prefix, 'images-idx3'), labels: await pick(prefix, 'labels-idx1') };
  }
  const dir = dirname(location);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new DatasetFormatError('DATASET_NOT_FOUND', `IDX location ${location} does not exist`, { location });
  }
  const prefix = join(dir, basename(location));
  return { images: await pick(prefix, 'images-idx3'), labels: await pick(prefix, 'labels-idx1') };
}

async function readHeader(s: ByteStream, expectedRanks: number[]): Promise<number[]> {
  const magic = await s.readExact(4, 'the IDX magic number');
  if (magic[0] !== 0 || magic[1] !== 0) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `${s.path}: bad IDX magic number (not an IDX file)`, { path: s.path });
  }
  if (magic[2] !== 0x08) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `${s.path}: IDX element type 0x${magic[2].toString(16)} is not unsigned byte (0x08)`, {
      path: s.path,
    });
  }
  const rank = magic[3];
  if (!expectedRanks.includes(rank)) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `${s.path}: IDX rank ${rank}, expected ${expectedRanks.join(' or ')}`, { path: s.path });
  }
  const dimsBuf = await s.readExact(4 * rank, 'the IDX dimensions');
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(dimsBuf.readUInt32BE(4 * i));
  return dims;
}

export interface OpenIdx {
  header: IdxHeader;
  images: ByteStream;
  labels: ByteStream;
}

/** Opens both files and validates their headers (magic, rank, matching counts). */
export async function openIdx(files: IdxFiles): Promise<OpenIdx> {
  const images = await ByteStream.open(files.images);
  let labels: ByteStream | null = null;
  try {
    labels = await ByteStream.open(files.labels);
    const idims = await readHeader(images, [3, 4]);
    const ldims = await readHeader(labels, [1]);
    const [count, height, width] = idims;
    const channels = idims.length === 4 ? idims[3] : 1;
    if (height < 1 || width < 1 || channels < 1) {
      throw new DatasetFormatError('DATASET_PARSE_ERROR', `${files.images}: zero image dimension ${idims.join('x')}`);
    }
    if (count !== ldims[0]) {
      throw new DatasetFormatError(
        'DATASET_COUNT_MISMATCH',
        `${files.images} declares ${count} images but ${files.labels} declares ${ldims[0]} labels`,
        { images: count, labels: ldims[0] },
      );
    }
    if (count === 0) throw new DatasetFormatError('DATASET_EMPTY', `${files.images} holds no examples`);
    return { header: { count, height, width, channels }, images, labels };
  } catch (err) {
    images.close();
    labels?.close();
    throw err;
  }
}

/** Fingerprint over the decompressed bytes of both files (see DatasetInfo.fingerprint). */
export function idxFingerprint(imagesSha: string, labelsSha: string): string {
  return createHash('sha256').update(`privatune-dataset/v1\nIDX\nimages ${imagesSha}\nlabels ${labelsSha}\n`).digest('hex');
}

export async function checkNoTrailing(s: ByteStream): Promise<void> {
  const extra = await s.drain();
  if (extra > 0) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `${s.path}: ${extra} trailing bytes after the declared data`, {
      path: s.path,
      trailingBytes: extra,
    });
  }
}

export interface IdxInspection {
  header: IdxHeader;
  maxLabel: number;
  fingerprint: string;
}

/** Full validation pass: headers, exact lengths, no trailing bytes; bounded memory. */
export async function inspectIdx(location: string): Promise<IdxInspection> {
  const files = await resolveIdxFiles(location);
  const { header, images, labels } = await openIdx(files);
  try {
    const imageBytes = header.count * header.height * header.width * header.channels;
    await images.consume(imageBytes, 'image data');
    await checkNoTrailing(images);
    let maxLabel = 0;
    await labels.consume(header.count, 'labels', (bytes) => {
      for (let i = 0; i < bytes.length; i++) if (bytes[i] > maxLabel) maxLabel = bytes[i];
    });
    await checkNoTrailing(labels);
    const fingerprint = idxFingerprint(images.hash.digest('hex'), labels.hash.digest('hex'));
    return { header, maxLabel, fingerprint };
  } finally {
    images.close();
    labels.close();
  }
}
