/**
 * IMAGE_FOLDER datasets: `root/<class>/**.png|jpg|jpeg`. Classes are the sorted names of root's
 * subfolders (label = index); files are the sorted relative paths under each class folder (searched
 * recursively). Sorting is by UTF-16 code units (locale-independent). Names starting with '.' are ignored,
 * as are plain files directly under root; any other non-image file inside a class folder is an error
 * (DATASET_PARSE_ERROR) rather than being silently skipped.
 *
 * Images are decoded with sharp to 8-bit RGB (alpha dropped, greyscale expanded), row-major HWC.
 */
import { createHash, Hash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { DatasetFormatError } from './errors';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface FolderEntry {
  /** Relative path with '/' separators, e.g. 'cat/001.png'. */
  rel: string;
  abs: string;
  label: number;
}

export interface FolderListing {
  classNames: string[];
  files: FolderEntry[];
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function walk(dir: string, rel: string, out: string[]): Promise<void> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort(byCodeUnits);
  for (const name of names) {
    const abs = join(dir, name);
    const r = `${rel}/${name}`;
    const st = await stat(abs);
    if (st.isDirectory()) await walk(abs, r, out);
    else if (st.isFile()) {
      if (!IMAGE_EXT.test(name)) {
        throw new DatasetFormatError('DATASET_PARSE_ERROR', `unsupported file ${r} in image folder (only .png, .jpg, .jpeg)`, { file: r });
      }
      out.push(r);
    }
  }
}

export async function listImageFolder(root: string): Promise<FolderListing> {
  if (!(await isDirectory(root))) {
    throw new DatasetFormatError('DATASET_NOT_FOUND', `image folder ${root} does not exist or is not a directory`, { location: root });
  }
  const classNames: string[] = [];
  for (const name of (await readdir(root)).filter((n) => !n.startsWith('.')).sort(byCodeUnits)) {
    if (await isDirectory(join(root, name))) classNames.push(name);
  }
  if (classNames.length === 0) throw new DatasetFormatError('DATASET_EMPTY', `image folder ${root} has no class subfolders`);
  const files: FolderEntry[] = [];
  for (let label = 0; label < classNames.length; label++) {
    const rels: string[] = [];
    await walk(join(root, classNames[label]), classNames[label], rels);
    rels.sort(byCodeUnits);
    for (const rel of rels) files.push({ rel, abs: join(root, ...rel.split('/')), label });
  }
  if (files.length === 0) throw new DatasetFormatError('DATASET_EMPTY', `image folder ${root} contains no images`);
  return { classNames, files };
}

/**
 * Canonical hash of a folder dataset: a header naming every class, then for each file in order its
 * relative path, its byte length and its bytes (length-prefixed, so the encoding is unambiguous).
 */
export class FolderHasher {
  private readonly hash: Hash = createHash('sha256');
  constructor(classNames: string[]) {
    this.hash.update(`privatune-dataset/v1\nIMAGE_FOLDER\nclasses ${JSON.stringify(classNames)}\n`);
  }
  addFile(rel: string, bytes: Buffer): void {
    this.hash.update(`file ${JSON.stringify(rel)} ${bytes.length}\n`);
    this.hash.update(bytes);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

export async function readFileBytes(entry: FolderEntry): Promise<Buffer> {
  try {
    return await readFile(entry.abs);
  } catch (err) {
    throw new DatasetFormatError('DATASET_NOT_FOUND', `cannot read ${entry.rel}: ${(err as Error).message}`, { file: entry.rel });
  }
}

export interface RawImage {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export async function decodeImage(rel: string, bytes: Buffer): Promise<RawImage> {
  try {
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `cannot decode ${rel}: ${(err as Error).message}`, { file: rel });
  }
}

/** Header-only size of an image (no full decode). */
export async function imageSize(rel: string, bytes: Buffer): Promise<{ width: number; height: number }> {
  try {
    const meta = await sharp(bytes).metadata();
    if (meta.format !== 'png' && meta.format !== 'jpeg') throw new Error(`format ${meta.format} is not PNG or JPEG`);
    if (!meta.width || !meta.height) throw new Error('missing dimensions');
    return { width: meta.width, height: meta.height };
  } catch (err) {
    throw new DatasetFormatError('DATASET_PARSE_ERROR', `cannot read image header of ${rel}: ${(err as Error).message}`, { file: rel });
  }
}
