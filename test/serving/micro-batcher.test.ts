/**
 * The per-backbone micro-batcher on a fake backbone: concurrent requests share forward passes, every
 * caller gets its own rows in order, the queue is bounded, abandoned requests cost no compute, failures
 * reach exactly the callers of the failed pass, and a lone request is not held back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MicroBatcher } from '../../src/serving/inference/micro-batcher';
import { OverloadedError } from '../../src/serving/serving.errors';

const L = 4; // values per image
const D = 2; // features per image

/** Fake backbone: feature row of an image = [sum of its values, first value]; records batch sizes. */
function fakeBackbone(delayMs = 5, fail?: (n: number) => boolean) {
  const calls: number[] = [];
  const run = async (images: Float32Array[]): Promise<Float32Array> => {
    const n = images.length;
    calls.push(n);
    await new Promise((r) => setTimeout(r, delayMs));
    if (fail?.(n)) throw new Error('backbone exploded');
    const out = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < L; j++) s += images[i][j];
      out[i * D] = s;
      out[i * D + 1] = images[i][0];
    }
    return out;
  };
  return { calls, run };
}

const image = (v: number) => Float32Array.from({ length: L }, () => v);

async function request(b: MicroBatcher<Float32Array>, values: number[], prepareMs = 0): Promise<number[]> {
  const t = b.admit(values.length);
  try {
    if (prepareMs) await new Promise((r) => setTimeout(r, prepareMs));
    const rows = await b.submit(t, values.map(image));
    return rows.map((r) => r[1]);
  } finally {
    b.release(t);
  }
}

describe('micro-batcher', () => {
  it('gathers concurrent requests into fewer forward passes, each caller getting its own rows', async () => {
    const fb = fakeBackbone(10);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 8, maxDelayMs: 20, maxQueue: 100, featureDim: D, run: fb.run });
    const n = 20;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => request(b, [i, i + 0.5], i % 3)));
    answers.forEach((a, i) => assert.deepEqual(a, [i, i + 0.5]));
    assert.equal(fb.calls.reduce((s, c) => s + c, 0), 2 * n);
    assert.ok(fb.calls.length < n, `${fb.calls.length} forward passes for ${n} requests`);
    assert.ok(Math.max(...fb.calls) <= 8);
    assert.equal(b.load, 0);
  });

  it('runs a lone request at once (no waiting when nothing else is coming)', async () => {
    const fb = fakeBackbone(0);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 32, maxDelayMs: 1000, maxQueue: 100, featureDim: D, run: fb.run });
    const t0 = performance.now();
    assert.deepEqual(await request(b, [7]), [7]);
    assert.ok(performance.now() - t0 < 200, 'not held for maxDelayMs');
  });

  it('waits at most maxDelayMs for images still being prepared', async () => {
    const fb = fakeBackbone(0);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 32, maxDelayMs: 30, maxQueue: 100, featureDim: D, run: fb.run });
    const slow = b.admit(1); // admitted, never submitted in time
    const t0 = performance.now();
    assert.deepEqual(await request(b, [1]), [1]);
    const waited = performance.now() - t0;
    assert.ok(waited >= 25 && waited < 500, `waited ${waited} ms`);
    b.release(slow);
  });

  it('refuses requests beyond the queue bound with OVERLOADED, and frees room on release', async () => {
    const fb = fakeBackbone(20);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 4, maxDelayMs: 1, maxQueue: 6, featureDim: D, run: fb.run });
    const first = request(b, [1, 2, 3, 4]);
    assert.throws(() => b.admit(3), (e: unknown) => e instanceof OverloadedError && e.code === 'OVERLOADED' && /4 of 6 images/.test(e.message));
    const small = request(b, [5, 6]);
    assert.deepEqual(await first, [1, 2, 3, 4]);
    assert.deepEqual(await small, [5, 6]);
    assert.equal(b.load, 0);
    assert.deepEqual(await request(b, [1, 2, 3]), [1, 2, 3]);
  });

  it('drops the queued images of a released (timed-out) request', async () => {
    const fb = fakeBackbone(30);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 1, maxDelayMs: 0, maxQueue: 100, featureDim: D, run: fb.run });
    const running = request(b, [1]);
    const t = b.admit(3);
    void b.submit(t, [image(2), image(3), image(4)]);
    b.release(t); // gives up while its images wait behind the running pass
    assert.deepEqual(await running, [1]);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(fb.calls, [1], 'the abandoned images were never computed');
    assert.equal(b.load, 0);
  });

  it('fails the callers of a failed pass only, and keeps serving', async () => {
    let failNext = true;
    const fb = fakeBackbone(5, () => {
      const f = failNext;
      failNext = false;
      return f;
    });
    const b = new MicroBatcher({ name: 't', maxBatchSize: 2, maxDelayMs: 0, maxQueue: 100, featureDim: D, run: fb.run });
    await assert.rejects(request(b, [1, 2]), /backbone exploded/);
    assert.deepEqual(await request(b, [3, 4]), [3, 4]);
    assert.equal(b.load, 0);
  });

  it('counts the time a pass waited in its engine\'s own queue as queue time, not compute time', async () => {
    const fb = fakeBackbone(20);
    const batches: { computeMs: number; queueMs: number[] }[] = [];
    const b = new MicroBatcher({
      name: 't',
      maxBatchSize: 2,
      maxDelayMs: 0,
      maxQueue: 100,
      featureDim: D,
      // The engine says it spent 5 of the ~20 ms on the pass (it queued the pass behind another).
      run: async (images: Float32Array[]) => ({ features: await fb.run(images), computeMs: 5 }),
      onBatch: ({ computeMs, queueMs }) => batches.push({ computeMs, queueMs }),
    });
    assert.deepEqual(await request(b, [3, 4]), [3, 4]);
    assert.equal(batches.length, 1);
    assert.equal(batches[0].computeMs, 5);
    for (const q of batches[0].queueMs) assert.ok(q >= 14, `queue time ${q} ms includes the ~15 ms waited in the engine`);
    // An engine that gives only features: the whole pass is compute time.
    const plain: number[] = [];
    const c = new MicroBatcher({ name: 't', maxBatchSize: 2, maxDelayMs: 0, maxQueue: 100, featureDim: D, run: fakeBackbone(20).run, onBatch: ({ computeMs }) => plain.push(computeMs) });
    await request(c, [1]);
    assert.ok(plain[0] >= 19, `compute ${plain[0]} ms`);
  });

  it('rejects mismatched submissions', async () => {
    const fb = fakeBackbone(0);
    const b = new MicroBatcher({ name: 't', maxBatchSize: 2, maxDelayMs: 0, maxQueue: 10, featureDim: D, run: fb.run });
    const t = b.admit(2);
    await assert.rejects(b.submit(t, [image(1)]), /admitted 2 images, submitted 1/);
    b.release(t);
    assert.equal(b.load, 0);
  });
});
