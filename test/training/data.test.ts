import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { DatasetFormatError, DatasetSource, ImageBatch, inspectDataset, readBatches } from '../../src/training/data';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'privatune-data-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function idxImages(n: number, h: number, w: number, fill: (i: number, p: number) => number): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x00000803, 0);
  head.writeUInt32BE(n, 4);
  head.writeUInt32BE(h, 8);
  head.writeUInt32BE(w, 12);
  const body = Buffer.alloc(n * h * w);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) body[i * h * w + p] = fill(i, p) & 255;
  return Buffer.concat([head, body]);
}

function idxLabels(labels: number[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x00000801, 0);
  head.writeUInt32BE(labels.length, 4);
  return Buffer.concat([head, Buffer.from(labels)]);
}

const N = 37;
const H = 4;
const W = 3;
const LABELS = Array.from({ length: N }, (_, i) => (i * 7) % 5);
const pixel = (i: number, p: number) => i * 13 + p;

/** Writes an IDX pair under prefix `name` in a fresh subdirectory; returns the prefix path. */
async function writeIdx(
  name: string,
  opts: { gz?: boolean; images?: Buffer; labels?: Buffer; sub?: string } = {},
): Promise<string> {
  const sub = join(dir, opts.sub ?? name);
  await mkdir(sub, { recursive: true });
  const images = opts.images ?? idxImages(N, H, W, pixel);
  const labels = opts.labels ?? idxLabels(LABELS);
  const ext = opts.gz ? '.gz' : '';
  await writeFile(join(sub, `${name}-images-idx3-ubyte${ext}`), opts.gz ? gzipSync(images) : images);
  await writeFile(join(sub, `${name}-labels-idx1-ubyte${ext}`), opts.gz ? gzipSync(labels) : labels);
  return join(sub, name);
}

async function collect(src: DatasetSource, batch: number, expectedFingerprint?: string): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of readBatches(src, batch, { expectedFingerprint })) out.push(b);
  return out;
}

function code(c: string) {
  return (e: unknown) => e instanceof DatasetFormatError && e.code === c;
}

describe('IDX reader', () => {
  it('reads plain and gzipped files identically, with the same fingerprint', async () => {
    const plain = await writeIdx('plain');
    const gz = await writeIdx('gz', { gz: true });
    const a = await inspectDataset({ format: 'IDX', location: plain });
    const b = await inspectDataset({ format: 'IDX', location: gz });
    assert.equal(a.count, N);
    assert.deepEqual(a.classNames, ['0', '1', '2', '3', '4']);
    assert.deepEqual(a.imageShape, { height: H, width: W, channels: 1 });
    assert.match(a.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(a.fingerprint, b.fingerprint);
    for (const loc of [plain, gz]) {
      const batches = await collect({ format: 'IDX', location: loc }, 10);
      assert.deepEqual(batches.map((x) => x.offset), [0, 10, 20, 30]);
      assert.deepEqual(batches.map((x) => x.labels.length), [10, 10, 10, 7]);
      const labels = batches.flatMap((x) => Array.from(x.labels));
      assert.deepEqual(labels, LABELS);
      const img = batches[2].images[3]; // example 23
      assert.equal(img.width, W);
      assert.equal(img.height, H);
      assert.equal(img.channels, 1);
      assert.deepEqual(Array.from(img.data), Array.from({ length: H * W }, (_, p) => pixel(23, p) & 255));
    }
  });

  it('accepts a directory holding exactly one pair; rejects ambiguous or empty directories', async () => {
    const prefix = await writeIdx('only', { gz: true });
    const info = await inspectDataset({ format: 'IDX', location: join(dir, 'only') });
    assert.equal(info.count, N);
    assert.equal(info.fingerprint, (await inspectDataset({ format: 'IDX', location: prefix })).fingerprint);
    await writeIdx('second', { sub: 'only' });
    await assert.rejects(inspectDataset({ format: 'IDX', location: join(dir, 'only') }), code('DATASET_AMBIGUOUS'));
    await mkdir(join(dir, 'empty'));
    await assert.rejects(inspectDataset({ format: 'IDX', location: join(dir, 'empty') }), code('DATASET_NOT_FOUND'));
  });

  it('reports missing files', async () => {
    await assert.rejects(inspectDataset({ format: 'IDX', location: join(dir, 'nope', 'train') }), code('DATASET_NOT_FOUND'));
    const sub = join(dir, 'nolabels');
    await mkdir(sub);
    await writeFile(join(sub, 'x-images-idx3-ubyte'), idxImages(2, 2, 2, pixel));
    await assert.rejects(inspectDataset({ format: 'IDX', location: join(sub, 'x') }), code('DATASET_NOT_FOUND'));
  });

  it('rejects bad magic, wrong element type, count mismatch, truncation and trailing bytes', async () => {
    const bad = idxImages(N, H, W, pixel);
    bad[0] = 0x1a;
    await assert.rejects(inspectDataset({ format: 'IDX', location: await writeIdx('magic', { images: bad }) }), code('DATASET_PARSE_ERROR'));
    const float = idxImages(N, H, W, pixel);
    float[2] = 0x0d;
    await assert.rejects(inspectDataset({ format: 'IDX', location: await writeIdx('float', { images: float }) }), code('DATASET_PARSE_ERROR'));
    const rank = idxLabels(LABELS);
    rank[3] = 2;
    await assert.rejects(inspectDataset({ format: 'IDX', location: await writeIdx('rank', { labels: rank }) }), code('DATASET_PARSE_ERROR'));
    const fewer = idxLabels(LABELS.slice(1));
    await assert.rejects(inspectDataset({ format: 'IDX', location: await writeIdx('mismatch', { labels: fewer }) }), code('DATASET_COUNT_MISMATCH'));
    const full = idxImages(N, H, W, pixel);
    for (const gz of [false, true]) {
      const cut = await writeIdx(`trunc${gz}`, { images: full.subarray(0, full.length - 5), gz });
      await assert.rejects(inspectDataset({ format: 'IDX', location: cut }), code('DATASET_TRUNCATED'));
      await assert.rejects(collect({ format: 'IDX', location: cut }, 8), code('DATASET_TRUNCATED'));
      const header = await writeIdx(`hdr${gz}`, { images: full.subarray(0, 10), gz });
      await assert.rejects(inspectDataset({ format: 'IDX', location: header }), code('DATASET_TRUNCATED'));
    }
    // a gzip stream cut in the middle
    const gzPrefix = await writeIdx('gzcut', { gz: true });
    const gzFile = `${gzPrefix}-images-idx3-ubyte.gz`;
    const bytes = await readFile(gzFile);
    await writeFile(gzFile, bytes.subarray(0, bytes.length - 12));
    await assert.rejects(inspectDataset({ format: 'IDX', location: gzPrefix }), code('DATASET_TRUNCATED'));
    const extra = await writeIdx('trailing', { labels: Buffer.concat([idxLabels(LABELS), Buffer.from([1, 2])]) });
    await assert.rejects(inspectDataset({ format: 'IDX', location: extra }), code('DATASET_PARSE_ERROR'));
  });

  it('fingerprint changes when one byte changes; readBatches then refuses with DATASET_CHANGED before yielding', async () => {
    const prefix = await writeIdx('fp');
    const src: DatasetSource = { format: 'IDX', location: prefix };
    const before = await inspectDataset(src);
    const ok = await collect(src, 16, before.fingerprint);
    assert.equal(ok.reduce((s, b) => s + b.labels.length, 0), N);
    const file = `${prefix}-images-idx3-ubyte`;
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(file, bytes);
    const afterInfo = await inspectDataset(src);
    assert.notEqual(afterInfo.fingerprint, before.fingerprint);
    let yielded = 0;
    await assert.rejects(
      (async () => {
        for await (const b of readBatches(src, 16, { expectedFingerprint: before.fingerprint })) yielded += b.labels.length;
      })(),
      code('DATASET_CHANGED'),
    );
    assert.equal(yielded, 0);
    // the label file also counts
    const lfile = `${prefix}-labels-idx1-ubyte`;
    const lbytes = await readFile(lfile);
    lbytes[9] = (lbytes[9] + 1) % 5;
    await writeFile(lfile, lbytes);
    assert.notEqual((await inspectDataset(src)).fingerprint, afterInfo.fingerprint);
  });

  it('stops cleanly when the consumer breaks early', async () => {
    const prefix = await writeIdx('early', { gz: true });
    let seen = 0;
    for await (const b of readBatches({ format: 'IDX', location: prefix }, 5)) {
      seen += b.labels.length;
      if (seen >= 10) break;
    }
    assert.equal(seen, 10);
  });

  it('real Fashion-MNIST train split has 60000 examples', { timeout: 30_000 }, async (t) => {
    const root = '/usr/share/datasets/fashion-mnist';
    if (!existsSync(join(root, 'train-images-idx3-ubyte.gz'))) {
      t.skip(`Fashion-MNIST not installed at ${root}`);
      return;
    }
    const info = await inspectDataset({ format: 'IDX', location: join(root, 'train') });
    assert.equal(info.count, 60000);
    assert.deepEqual(info.imageShape, { height: 28, width: 28, channels: 1 });
    assert.equal(info.classNames.length, 10);
    let n = 0;
    for await (const b of readBatches({ format: 'IDX', location: join(root, 't10k') }, 4096)) n += b.labels.length;
    assert.equal(n, 10000);
  });
});

describe('IMAGE_FOLDER reader', () => {
  async function makeFolder(name: string): Promise<string> {
    const root = join(dir, name);
    // classes deliberately created out of order; 'b_cat' has a nested subfolder
    const spec: [string, string, number, number, 'png' | 'jpeg', number][] = [
      ['c_dog', 'x2.png', 4, 3, 'png', 1],
      ['a_ant', 'z.png', 4, 3, 'png', 3],
      ['a_ant', 'a.jpg', 4, 3, 'jpeg', 1],
      ['b_cat', 'sub/m.png', 4, 3, 'png', 4],
      ['b_cat', 'k.png', 4, 3, 'png', 1],
      ['c_dog', 'x1.jpeg', 4, 3, 'jpeg', 3],
    ];
    for (const [cls, file, w, h, fmt, ch] of spec) {
      const path = join(root, cls, file);
      await mkdir(join(path, '..'), { recursive: true });
      const raw = Buffer.alloc(w * h * ch, (cls.charCodeAt(0) * 3 + file.length * 17) & 255);
      const img = sharp(raw, { raw: { width: w, height: h, channels: ch as 1 | 3 | 4 } });
      await writeFile(path, await (fmt === 'png' ? img.png() : img.jpeg()).toBuffer());
    }
    await writeFile(join(root, 'README.txt'), 'top-level files are ignored');
    await writeFile(join(root, 'a_ant', '.DS_Store'), 'hidden files are ignored');
    return root;
  }

  it('sorted classes and files, labels = class index, RGB decode, fingerprint', async () => {
    const root = await makeFolder('folder');
    const src: DatasetSource = { format: 'IMAGE_FOLDER', location: root };
    const info = await inspectDataset(src);
    assert.deepEqual(info.classNames, ['a_ant', 'b_cat', 'c_dog']);
    assert.equal(info.count, 6);
    assert.deepEqual(info.imageShape, { height: 3, width: 4, channels: 3 });
    const batches = await collect(src, 4, info.fingerprint);
    assert.deepEqual(batches.map((b) => Array.from(b.labels)), [[0, 0, 1, 1], [2, 2]]);
    for (const b of batches) {
      for (const img of b.images) {
        assert.equal(img.channels, 3);
        assert.equal(img.data.length, img.width * img.height * 3);
      }
    }
    // file order within a class: 'a.jpg' < 'z.png'; 'k.png' < 'sub/m.png'; greyscale PNG decodes to equal RGB
    const first = batches[0].images[0].data; // a_ant/a.jpg (greyscale JPEG)
    assert.equal(first[0], first[1]);
    // changing one byte changes the fingerprint and readBatches refuses
    const file = join(root, 'b_cat', 'k.png');
    const bytes = await readFile(file);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 20] ^= 0xff; // inside the IDAT/IEND area
    await writeFile(file, tampered);
    assert.notEqual((await inspectDataset(src).catch(() => null))?.fingerprint, info.fingerprint);
    await writeFile(file, bytes);
    assert.equal((await inspectDataset(src)).fingerprint, info.fingerprint);
    // renaming a file changes it too
    await writeFile(join(root, 'c_dog', 'x3.png'), await readFile(join(root, 'c_dog', 'x2.png')));
    const grown = await inspectDataset(src);
    assert.equal(grown.count, 7);
    assert.notEqual(grown.fingerprint, info.fingerprint);
    await assert.rejects(collect(src, 4, info.fingerprint), code('DATASET_CHANGED'));
  });

  it('ends folder batches at maxBatchBytes of decoded pixels (large photos), in order, nothing skipped', async () => {
    const root = await makeFolder('budget');
    const src: DatasetSource = { format: 'IMAGE_FOLDER', location: root };
    const info = await inspectDataset(src);
    const read = async (opts: { concurrency: number; maxBatchBytes: number }) => {
      const out: ImageBatch[] = [];
      for await (const b of readBatches(src, 5, { expectedFingerprint: info.fingerprint, ...opts })) out.push(b);
      return out;
    };
    const all = await read({ concurrency: 4, maxBatchBytes: 1e9 });
    assert.deepEqual(all.map((b) => b.labels.length), [5, 1], 'batchSize bounds batches under a large budget');
    // Each image decodes to 4 x 3 x 3 = 36 bytes: a 100-byte budget closes a batch after its third image.
    const small = await read({ concurrency: 1, maxBatchBytes: 100 });
    assert.deepEqual(small.map((b) => b.labels.length), [3, 3]);
    assert.deepEqual(small.map((b) => b.offset), [0, 3]);
    // Decoding goes in groups of `concurrency`: the budget is checked after each group.
    assert.deepEqual((await read({ concurrency: 4, maxBatchBytes: 100 })).map((b) => b.labels.length), [4, 2]);
    const flat = (bs: ImageBatch[]) => bs.flatMap((b) => b.images.map((im, i) => [b.labels[i], ...im.data]));
    assert.deepEqual(flat(small), flat(all), 'same images and labels, in the same order');
    await assert.rejects(read({ concurrency: 1, maxBatchBytes: 0 }), /maxBatchBytes must be > 0/);
  });

  it('data changed while streaming (after the pre-check): the last batch is withheld and DATASET_CHANGED thrown', async () => {
    const root = await makeFolder('racy');
    const src: DatasetSource = { format: 'IMAGE_FOLDER', location: root };
    const info = await inspectDataset(src);
    const offsets: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const b of readBatches(src, 2, { expectedFingerprint: info.fingerprint })) {
          offsets.push(b.offset);
          if (offsets.length === 1) {
            // replace the last file (read in the third batch) with another valid image
            const other = await sharp(Buffer.alloc(36, 9), { raw: { width: 4, height: 3, channels: 3 } }).png().toBuffer();
            await writeFile(join(root, 'c_dog', 'x2.png'), other);
          }
        }
      })(),
      code('DATASET_CHANGED'),
    );
    assert.ok(!offsets.includes(4), `the final batch was released: ${offsets}`);
  });

  it('imageShape is null when sizes vary; errors for missing, empty, unsupported and corrupt inputs', async () => {
    const root = join(dir, 'mixed');
    await mkdir(join(root, 'a'), { recursive: true });
    await mkdir(join(root, 'b'), { recursive: true });
    await writeFile(join(root, 'a', '1.png'), await sharp(Buffer.alloc(12), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer());
    await writeFile(join(root, 'b', '1.png'), await sharp(Buffer.alloc(27), { raw: { width: 3, height: 3, channels: 3 } }).png().toBuffer());
    const info = await inspectDataset({ format: 'IMAGE_FOLDER', location: root });
    assert.equal(info.imageShape, null);
    const batches = await collect({ format: 'IMAGE_FOLDER', location: root }, 8);
    assert.deepEqual(batches[0].images.map((i) => [i.width, i.height]), [[2, 2], [3, 3]]);

    await assert.rejects(inspectDataset({ format: 'IMAGE_FOLDER', location: join(dir, 'missing') }), code('DATASET_NOT_FOUND'));
    await mkdir(join(dir, 'noclasses'));
    await assert.rejects(inspectDataset({ format: 'IMAGE_FOLDER', location: join(dir, 'noclasses') }), code('DATASET_EMPTY'));
    await mkdir(join(dir, 'noimages', 'a'), { recursive: true });
    await assert.rejects(inspectDataset({ format: 'IMAGE_FOLDER', location: join(dir, 'noimages') }), code('DATASET_EMPTY'));
    await writeFile(join(root, 'a', 'notes.txt'), 'x');
    await assert.rejects(inspectDataset({ format: 'IMAGE_FOLDER', location: root }), code('DATASET_PARSE_ERROR'));
    await rm(join(root, 'a', 'notes.txt'));
    await writeFile(join(root, 'a', '2.png'), Buffer.from('not a png at all'));
    await assert.rejects(inspectDataset({ format: 'IMAGE_FOLDER', location: root }), code('DATASET_PARSE_ERROR'));
    await assert.rejects(collect({ format: 'IMAGE_FOLDER', location: root }, 8), code('DATASET_PARSE_ERROR'));
  });
});
