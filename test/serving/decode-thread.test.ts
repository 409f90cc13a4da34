/**
 * The serving decode thread: the same pixels as decoding on this thread, decoding errors as BAD_USER_INPUT
 * reasons for the right image, concurrent decodes each answered with their own image, and a thread that
 * dies fails what it held and is replaced by the next decode.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { BadInputError } from '../../src/common/errors/domain-errors';
import { DecodeThread, DecodeThreads } from '../../src/serving/inference/decode-thread';
import { decodeEncoded, preprocessOne } from '../../src/serving/inference/image-decode';
import { checkImage, decodeChecked, prepareChecked } from '../../src/serving/inference/image-input';
import { MOBILENET_V2_SPEC } from '../../src/training/backbones';

const limits = { maxImageBytes: 1 << 20, maxImagePixels: 512 * 512 };

async function jpeg(seed: number, width = 40, height = 30, channels: 1 | 3 = 3): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 97) % 256;
  const img = sharp(raw, { raw: { width, height, channels } });
  return (channels === 1 ? img.toColourspace('b-w') : img).jpeg({ quality: 85 }).toBuffer();
}

describe('decode thread', () => {
  const thread = new DecodeThread();
  after(() => thread.close());

  it('gives the pixels sharp gives on this thread, for concurrent images each its own', async () => {
    const files = await Promise.all([jpeg(1), jpeg(2, 17, 23), jpeg(3, 64, 8, 1), await sharp(await jpeg(4)).png().toBuffer()]);
    const inThread = await Promise.all(files.map((f, i) => decodeChecked(checkImage({ data: f.toString('base64') }, i, limits), i, limits, thread.decode)));
    for (const [i, f] of files.entries()) {
      const here = await decodeEncoded(f, limits.maxImagePixels);
      assert.ok('image' in here);
      assert.deepEqual({ ...inThread[i], data: Buffer.from(inThread[i].data) }, { ...here.image, data: Buffer.from(here.image.data) });
    }
    // sharp hands a gray JPEG back as sRGB, on either thread.
    assert.deepEqual(inThread.map((im) => [im.width, im.height, im.channels]), [[40, 30, 3], [17, 23, 3], [64, 8, 3], [40, 30, 3]]);
  });

  it('preprocesses in the thread exactly the images larger than their preprocessed form, as this thread would', async () => {
    const target = { inputSize: 96, preprocessing: MOBILENET_V2_SPEC.preprocessing };
    const big = await jpeg(7, 640, 480); // 921,600 bytes of pixels > 96 x 96 x 3 float32 (110,592 bytes)
    const small = await jpeg(8, 100, 80);
    const [bigHere, smallHere] = await Promise.all([big, small].map((f) => decodeEncoded(f, 1 << 22)));
    assert.ok('image' in bigHere && 'image' in smallHere);
    const prepared = await Promise.all([big, small].map((f, i) => prepareChecked(checkImage({ data: f.toString('base64') }, i, limits), i, { ...limits, maxImagePixels: 1 << 22 }, target, thread.decodeForPass)));
    assert.ok(prepared[0] instanceof Float32Array, 'the large image arrives preprocessed');
    assert.deepEqual(prepared[0], preprocessOne(bigHere.image, target.inputSize, target.preprocessing));
    assert.ok(!(prepared[1] instanceof Float32Array), 'the small image arrives as pixels, preprocessed where the pass runs');
    assert.deepEqual(Buffer.from(prepared[1].data), Buffer.from(smallHere.image.data));
    // Raw pixel input is prepared on the calling thread by the same rule.
    const raw = Buffer.from(bigHere.image.data);
    const rawInput = checkImage({ data: raw.toString('base64'), width: 640, height: 480, channels: 3 }, 0, { maxImageBytes: 1 << 21, maxImagePixels: 1 << 22 });
    assert.deepEqual(await prepareChecked(rawInput, 0, limits, target, thread.decodeForPass), prepared[0]);
    await assert.rejects(
      prepareChecked(checkImage({ data: big.subarray(0, 300).toString('base64') }, 2, limits), 2, { ...limits, maxImagePixels: 1 << 22 }, target, thread.decodeForPass),
      (e: unknown) => e instanceof BadInputError && e.details?.reason === 'IMAGE_UNDECODABLE' && e.details?.field === 'images[2]',
    );
  });

  it('reports undecodable and oversized images for the right image', async () => {
    const good = await jpeg(5);
    const truncated = good.subarray(0, 200); // JPEG magic, then nothing decodable
    await assert.rejects(
      decodeChecked(checkImage({ data: truncated.toString('base64') }, 3, limits), 3, limits, thread.decode),
      (e: unknown) => e instanceof BadInputError && e.details?.reason === 'IMAGE_UNDECODABLE' && e.details?.field === 'images[3]',
    );
    const huge = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#777' } }).jpeg().toBuffer();
    await assert.rejects(
      decodeChecked(checkImage({ data: huge.toString('base64') }, 1, limits), 1, limits, thread.decode),
      (e: unknown) => e instanceof BadInputError && e.details?.reason === 'IMAGE_TOO_LARGE' && e.details?.field === 'images[1]',
    );
    // The caller's bytes are copied, not taken: its buffer is still whole.
    const bytes = Buffer.from(good);
    await thread.decode(bytes, limits.maxImagePixels);
    assert.deepEqual(bytes, good);
  });

  it('fails the decodes a dead thread held and starts a new one for the next', async () => {
    // Tens of ms to decode even natively (480 x 480 took 0.5 ms, and was sometimes decoded before the
    // thread stopped): the thread is stopped while it holds it.
    const file = await jpeg(6, 2000, 2000);
    const pixels = 1 << 22;
    await thread.decode(file, pixels); // the thread is up
    const worker = (thread as unknown as { worker: import('node:worker_threads').Worker }).worker;
    const held = thread.decode(file, pixels);
    await worker.terminate();
    await assert.rejects(held, /decode thread exited/);
    const again = await thread.decode(file, pixels);
    assert.ok('image' in again && again.image.width === 2000);
  });

  it('spreads concurrent decodes over a pool of threads, a lone one to the first, each answered with its own image', async () => {
    const pool = new DecodeThreads(2);
    try {
      const files = await Promise.all([11, 12, 13, 14, 15, 16].map((seed) => jpeg(seed, 300, 200)));
      const alone = await pool.decode(files[0], limits.maxImagePixels);
      assert.ok('image' in alone);
      assert.deepEqual(pool.threads.map((t) => t.decodes), [1, 0], 'a lone decode goes to the first thread');
      const together = await Promise.all(files.map((f) => pool.decode(f, limits.maxImagePixels)));
      assert.ok(pool.threads.every((t) => t.decodes >= 3), `decodes per thread: ${pool.threads.map((t) => t.decodes).join(', ')}`);
      for (const [i, f] of files.entries()) {
        const here = await decodeEncoded(f, limits.maxImagePixels);
        const there = together[i];
        assert.ok('image' in here && 'image' in there);
        assert.deepEqual(Buffer.from(there.image.data), Buffer.from(here.image.data), `image ${i}`);
      }
    } finally {
      await pool.close();
    }
    await assert.rejects(pool.decode(Buffer.alloc(4), 1), /closed/);
  });

  it('lets the decodes in flight finish when it is closed, then refuses new ones', async () => {
    const closing = new DecodeThread();
    const files = await Promise.all([1, 2, 3, 4].map((seed) => jpeg(seed, 500, 400)));
    const pending = files.map((f) => closing.decode(f, limits.maxImagePixels * 4));
    await closing.close();
    for (const r of await Promise.all(pending)) {
      assert.ok('image' in r, JSON.stringify(r));
      assert.equal(r.image.width * r.image.height, 500 * 400);
    }
    await assert.rejects(closing.decode(files[0], limits.maxImagePixels * 4), /closed/);
  });
});
