/** Writes small MNIST-style IDX datasets for tests (images: magic 0x803, labels: magic 0x801, big-endian). */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';

export function idxImages(images: Uint8Array[], rows: number, cols: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(images.length, 4);
  header.writeUInt32BE(rows, 8);
  header.writeUInt32BE(cols, 12);
  return Buffer.concat([header, ...images.map((im) => Buffer.from(im))]);
}

export function idxLabels(labels: number[]): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x00000801, 0);
  header.writeUInt32BE(labels.length, 4);
  return Buffer.concat([header, Buffer.from(labels)]);
}

/**
 * Writes `${prefix}-images-idx3-ubyte.gz` and `${prefix}-labels-idx1-ubyte.gz` with n synthetic 28x28 images of
 * `classes` classes (each class a bright square at its own place, plus noise). Returns the labels.
 */
export async function writeSyntheticIdx(prefix: string, n: number, classes = 10, seed = 1): Promise<number[]> {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % classes;
    const im = new Uint8Array(28 * 28);
    for (let p = 0; p < im.length; p++) im[p] = Math.floor(rand() * 40);
    const r0 = 2 + (label % 4) * 6;
    const c0 = 2 + Math.floor(label / 4) * 8;
    for (let r = r0; r < r0 + 6; r++) for (let c = c0; c < c0 + 6; c++) im[r * 28 + c] = 200 + Math.floor(rand() * 55);
    images.push(im);
    labels.push(label);
  }
  await mkdir(dirname(prefix), { recursive: true });
  await writeFile(`${prefix}-images-idx3-ubyte.gz`, gzipSync(idxImages(images, 28, 28)));
  await writeFile(`${prefix}-labels-idx1-ubyte.gz`, gzipSync(idxLabels(labels)));
  return labels;
}
