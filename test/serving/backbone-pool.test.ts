/**
 * Serving threads on the built-in backbone's verified ONNX graph: features equal the platform extractor's
 * on the training path's preprocessing (decoded pixels of any size and channel count are resized and
 * normalised in the thread), a lone pass takes the solo (all-core) session, and passes that overlap run
 * on the narrow sessions; the pass of a request alone in the process runs inline on the calling thread.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { BackbonePool, chooseImagesPerRun } from '../../src/serving/inference/backbone-pool';
import { preprocessOne } from '../../src/serving/inference/image-decode';
import { FeatureExtractor, loadBackbone, MOBILENET_V2_SPEC, PassImage, PreprocessingSpec, preprocessPass, preprocessRawBatch, RawImage } from '../../src/training/backbones';
import { OnnxExtractorThread, onnxThreadConfig } from '../../src/training/backbones/engines/onnx-thread';

const SIZE = 96;

function pixels(width: number, height: number, channels: 1 | 3 | 4, seed: number): RawImage {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s % 256;
  }
  return { data, width, height, channels };
}

/** Raw images at the input size and not (resized in the thread), gray and RGBA, and one preprocessed image. */
/** What the extractor's input is prepared with (its graph normalises its own input: pixels). */
let prepared: PreprocessingSpec = MOBILENET_V2_SPEC.preprocessing;

function images(seed: number): PassImage[] {
  return [pixels(SIZE, SIZE, 3, seed), pixels(50, 70, 1, seed + 1), pixels(120, 80, 4, seed + 2), preprocessOne(pixels(SIZE, SIZE, 3, seed + 3), SIZE, prepared)];
}

/** What training extracts for the same images: the training path's preprocessing, then the extractor. */
async function expected(fx: FeatureExtractor, items: PassImage[]): Promise<Float32Array> {
  const plane = SIZE * SIZE * 3;
  const x = new Float32Array(items.length * plane);
  items.forEach((img, i) => {
    if (img instanceof Float32Array) x.set(img, i * plane);
    else preprocessRawBatch({ ...img, n: 1 }, SIZE, fx.inputPreprocessing, x, { outOffset: i });
  });
  return fx.extract(x, items.length, { batchSize: items.length });
}

describe('backbone serving pool', () => {
  let fx: FeatureExtractor;
  let pool: BackbonePool;

  before(async () => {
    fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', featureLayer: 'block_13_expand_relu', inputSize: SIZE });
    prepared = fx.inputPreprocessing;
    const config = onnxThreadConfig(fx);
    assert.ok(config, 'the built-in backbone runs on ONNX Runtime');
    pool = new BackbonePool({ ...config, threads: 1 }, 2, { soloThreads: 2 });
    await pool.start();
  });

  after(async () => {
    await pool?.close();
    await fx?.dispose();
  });

  it('gives the extractor features; a lone pass runs solo, overlapping passes on narrow sessions', async () => {
    assert.equal(pool.hasSolo, true);
    const a = images(1);
    const expectedA = await expected(fx, a);
    const lone = await pool.run(a);
    assert.equal(pool.soloPasses, 1);
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.equal(lone.length, a.length * fx.featureDim);
    assert.ok(maxDiff(lone, expectedA) < 1e-4, `solo pass differs by ${maxDiff(lone, expectedA)}`);

    const b = images(7).slice(1, 3);
    const expectedB = await expected(fx, b);
    const [ra, rb] = await Promise.all([pool.run(a), pool.run(b)]);
    assert.equal(pool.soloPasses, 2, 'only the first of two overlapping passes takes the solo session');
    assert.ok(maxDiff(ra, expectedA) < 1e-4);
    assert.ok(maxDiff(rb, expectedB) < 1e-4, `narrow pass differs by ${maxDiff(rb, expectedB)}`);
    assert.ok(maxDiff(ra.subarray(0, fx.featureDim), rb.subarray(0, fx.featureDim)) > 1e-3, 'different images give different features');
  });

  it('queues a second pass in each narrow thread (two per thread), each with its own features and the thread\'s own time', async () => {
    const sets = [images(11), images(12).slice(0, 2), images(13).slice(1, 4), images(14).slice(2, 3), images(15).slice(0, 1)];
    const wanted = await Promise.all(sets.map((s) => expected(fx, s)));
    const solo = pool.soloPasses;
    const narrow = [...pool.narrowPasses];
    const started = performance.now();
    const outs = await Promise.all(sets.map(async (s) => ({ out: await pool.runTimed(s), elapsed: performance.now() - started })));
    assert.equal(pool.soloPasses, solo + 1, 'the first takes the solo session');
    assert.deepEqual(pool.narrowPasses.map((n, i) => n - narrow[i]), [2, 2], 'the other four go two to each narrow thread');
    outs.forEach(({ out }, i) => {
      assert.equal(out.features.length, sets[i].length * fx.featureDim);
      assert.ok(out.features.every((v, j) => Math.abs(v - wanted[i][j]) < 1e-4), `pass ${i} got its own features`);
      assert.ok(out.computeMs > 0);
    });
    // Passes 1 and 3 went to thread 0, 2 and 4 to thread 1 (the fewest, in order): 3 and 4 waited in their
    // thread for the whole of the pass before them, which their own time does not count.
    for (const [queued, before] of [[3, 1], [4, 2]]) {
      const { elapsed, out } = outs[queued];
      assert.ok(elapsed >= outs[before].out.computeMs + out.computeMs - 0.1, `pass ${queued}: waited ${elapsed.toFixed(2)} ms, ran ${out.computeMs.toFixed(2)} ms after pass ${before}'s ${outs[before].out.computeMs.toFixed(2)} ms`);
    }
  });

  it('runs the pass of a request alone in the process inline, with the same features; with company, on a thread', async () => {
    let alone = true;
    const inlined = new BackbonePool({ ...onnxThreadConfig(fx)!, threads: 1 }, 2, { soloThreads: 2, inline: { threads: 2, maxMs: 1000, alone: () => alone } });
    try {
      await inlined.start();
      assert.equal(inlined.hasInline, true);
      assert.ok(inlined.inlineCalibrationMs! > 0 && inlined.inlineCalibrationMs! < 1000, `calibration pass: ${inlined.inlineCalibrationMs} ms`);
      const a = images(41);
      const b = images(43).slice(0, 2);
      const [ea, eb] = [await expected(fx, a), await expected(fx, b)];
      const close = (x: Float32Array, y: Float32Array, what: string) => assert.ok(x.length === y.length && x.every((v, i) => Math.abs(v - y[i]) < 1e-4), what);

      close(await inlined.run(a), ea, 'inline pass');
      close(await inlined.run(b), eb, 'a smaller inline pass after a larger one');
      assert.deepEqual([inlined.inlinePasses, inlined.soloPasses], [2, 0]);

      // Another request in the process: the loop has its work to do, so the lone pass goes to the solo thread.
      alone = false;
      close(await inlined.run(a), ea, 'solo pass');
      assert.deepEqual([inlined.inlinePasses, inlined.soloPasses], [2, 1]);

      // Alone, but a pass already runs: the second goes to a narrow thread.
      alone = true;
      const [ra, rb] = await Promise.all([inlined.run(a), inlined.run(b)]);
      close(ra, ea, 'inline pass beside a narrow one');
      close(rb, eb, 'narrow pass beside an inline one');
      assert.deepEqual([inlined.inlinePasses, inlined.soloPasses], [3, 1]);

      // close waits for an inline pass in flight (releasing its session under session.run would crash).
      const pending = inlined.run(a);
      await inlined.close();
      close(await pending, ea, 'inline pass across close');
    } finally {
      await inlined.close();
    }
  });

  it('keeps passes off the event loop when one takes longer than maxMs, or when maxMs is 0', async () => {
    const config = { ...onnxThreadConfig(fx)!, threads: 1 };
    const slow = new BackbonePool(config, 1, { inline: { threads: 2, maxMs: 0.001, alone: () => true } });
    const off = new BackbonePool(config, 1, { inline: { threads: 2, maxMs: 0, alone: () => true } });
    try {
      await Promise.all([slow.start(), off.start()]);
      assert.equal(slow.hasInline, false);
      assert.ok(slow.inlineCalibrationMs! > 0.001, 'the calibration pass was timed');
      assert.equal(off.hasInline, false);
      assert.equal(off.inlineCalibrationMs, undefined, 'no inline session opened');
      const a = images(51);
      const ea = await expected(fx, a);
      for (const p of [slow, off]) {
        const r = await p.run(a);
        assert.ok(r.every((v, i) => Math.abs(v - ea[i]) < 1e-4));
        assert.equal(p.inlinePasses, 0);
      }
    } finally {
      await Promise.all([slow.close(), off.close()]);
    }
  });

  it('measures its narrow threads at each number of images per engine run, keeps the fewest within 3% of the fastest, and runs narrow passes in runs of it', async () => {
    const tuned = new BackbonePool({ ...onnxThreadConfig(fx)!, threads: 1 }, 2, { soloThreads: 2 });
    const asked: (number | undefined)[] = [];
    const runTimed = OnnxExtractorThread.prototype.runTimed;
    try {
      await tuned.start();
      assert.equal(tuned.imagesPerRun, undefined, 'a whole pass per run until measured');
      const rates = await tuned.tuneImagesPerRun([1, 2, 4], 4, { passesPerThread: 1, rounds: 2 });
      assert.deepEqual([...rates.keys()], [1, 2, 4]);
      for (const [n, rate] of rates) assert.ok(Number.isFinite(rate) && rate > 0, `${n} per run: ${rate} images/s`);
      assert.equal(tuned.imagesPerRun, chooseImagesPerRun(rates));
      assert.equal(tuned.soloPasses + tuned.narrowPasses.reduce((a, b) => a + b, 0), 0, 'measured on the threads, not counted as served passes');

      OnnxExtractorThread.prototype.runTimed = function (this: OnnxExtractorThread, imgs, opts) {
        asked.push(opts?.batchSize);
        return runTimed.call(this, imgs, opts);
      };
      tuned.imagesPerRun = 1;
      const a = images(41);
      const b = images(42).slice(0, 3);
      const [ea, eb] = [await expected(fx, a), await expected(fx, b)];
      const [lone, ra, rb] = await Promise.all([tuned.run(images(43)), tuned.run(a), tuned.run(b)]);
      assert.equal(lone.length, 4 * fx.featureDim);
      assert.ok(ra.every((v, i) => Math.abs(v - ea[i]) < 1e-4), 'narrow pass a, one image per run');
      assert.ok(rb.every((v, i) => Math.abs(v - eb[i]) < 1e-4), 'narrow pass b, one image per run');
      assert.deepEqual(asked, [undefined, 1, 1], 'the solo pass runs whole; the narrow passes in runs of imagesPerRun');
    } finally {
      OnnxExtractorThread.prototype.runTimed = runTimed;
      await tuned.close();
    }
  });

  it('keeps the fewest images per engine run within 3% of the fastest measured', () => {
    const choose = (entries: [number, number][]) => chooseImagesPerRun(new Map(entries));
    assert.equal(choose([[1, 690], [2, 657], [4, 564]]), 1);
    assert.equal(choose([[1, 690], [2, 705], [4, 564]]), 1, 'runs of 2 only 2% faster: 1');
    assert.equal(choose([[1, 600], [2, 645], [4, 660]]), 2, 'runs of 2 within 3% of runs of 4');
    assert.equal(choose([[1, 500], [2, 560], [4, 600]]), 4);
    assert.equal(choose([[4, 10]]), 4);
    assert.throws(() => choose([]), /no engine run size/);
  });

  it('has no solo session when it would not have more threads than the narrow ones', () => {
    const config = onnxThreadConfig(fx)!;
    assert.equal(new BackbonePool({ ...config, threads: 2 }, 1, { soloThreads: 2 }).hasSolo, false);
    assert.equal(new BackbonePool({ ...config, threads: 1 }, 2).hasSolo, false);
  });

  it('runs its narrow threads at the nice value asked for, the solo thread and the process at their own', { skip: process.platform !== 'linux' && 'Linux thread priorities' }, async () => {
    /** Nice values of this process's threads (field 19 of /proc/self/task/<tid>/stat, after the command name). */
    const niceOfThreads = () =>
      readdirSync('/proc/self/task').map((tid) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]));
    const before = niceOfThreads().filter((n) => n === 7).length;
    const niced = new BackbonePool({ ...onnxThreadConfig(fx)!, threads: 1, nice: 7 }, 2, { soloThreads: 2 });
    try {
      await niced.start();
      assert.equal(niced.nice, 7);
      assert.equal(niceOfThreads().filter((n) => n === 7).length - before, 2, 'exactly the two narrow threads');
      assert.equal(getPriority(process.pid), 0, 'the main thread keeps its priority');
      const a = images(3);
      const [x, y] = await Promise.all([niced.run(a), niced.run(a)]);
      assert.deepEqual(x, y);
      assert.ok(x.every(Number.isFinite));
    } finally {
      await niced.close();
    }
  });

  it('gives each pass its own features while the thread reuses its input tensor (smaller, larger, overlapping, chunked)', async () => {
    const thread = new OnnxExtractorThread({ ...onnxThreadConfig(fx)!, threads: 1 });
    try {
      const a = images(11);
      const b = images(21).slice(1, 3);
      const [ea, eb] = [await expected(fx, a), await expected(fx, b)];
      const close = (x: Float32Array, y: Float32Array, what: string) => assert.ok(x.every((v, i) => Math.abs(v - y[i]) < 1e-4), what);
      close(await thread.run(a), ea, 'first pass');
      // A smaller pass after a larger one: any value left from the previous pass would change its features.
      close(await thread.run(b), eb, 'smaller pass after a larger one');
      const [ra, rb] = await Promise.all([thread.run(a), thread.run(b)]);
      close(ra, ea, 'overlapping pass a');
      close(rb, eb, 'overlapping pass b');
      close(await thread.run([...a, ...b], { batchSize: 3 }), new Float32Array([...ea, ...eb]), 'chunked pass');
    } finally {
      await thread.close();
    }
  });

  it('preprocesses a pass into a given buffer as into a fresh one, and refuses one too small', () => {
    const plane = SIZE * SIZE * 3;
    const a = images(5);
    const fresh = preprocessPass(a, SIZE, MOBILENET_V2_SPEC.preprocessing);
    const buffer = new Float32Array((a.length + 1) * plane).fill(Number.NaN);
    const filled = preprocessPass(a, SIZE, MOBILENET_V2_SPEC.preprocessing, buffer);
    assert.equal(filled.buffer, buffer.buffer);
    assert.deepEqual(filled, fresh);
    assert.ok(Number.isNaN(buffer[a.length * plane]), 'nothing written past the pass');
    assert.throws(() => preprocessPass(a, SIZE, MOBILENET_V2_SPEC.preprocessing, new Float32Array(plane)), /needs/);
  });

  it('stops the spinning of a spinning session when its pass returns (it burnt a core for ~30 ms after each)', async () => {
    const solo = new OnnxExtractorThread({ ...onnxThreadConfig(fx)!, threads: 2, spin: true });
    try {
      const image = pixels(SIZE, SIZE, 3, 31);
      const idleCpuMs: number[] = [];
      for (let i = 0; i < 7; i++) {
        await solo.run([image]);
        const before = process.cpuUsage();
        await new Promise((r) => setTimeout(r, 50));
        const used = process.cpuUsage(before);
        idleCpuMs.push((used.user + used.system) / 1000);
      }
      idleCpuMs.sort((a, b) => a - b);
      // Spinning on: ~30 ms of CPU in the 50 ms after each pass on the project's VM; stopped: well under 1 ms.
      assert.ok(idleCpuMs[3] < 10, `median CPU in the 50 ms after a pass: ${idleCpuMs[3].toFixed(2)} ms`);
    } finally {
      await solo.close();
    }
  });

  it('lets a pass in flight finish when a thread is closed (terminating under session.run would abort the process)', async () => {
    const thread = new OnnxExtractorThread({ ...onnxThreadConfig(fx)!, threads: 1 });
    await thread.start();
    const batch = Array.from({ length: 24 }, (_, i) => pixels(SIZE, SIZE, 3, 100 + i));
    const pass = thread.run(batch);
    await new Promise((r) => setTimeout(r, 5));
    await thread.close();
    const features = await pass;
    assert.equal(features.length, batch.length * fx.featureDim);
    assert.ok(features.every(Number.isFinite));
    await assert.rejects(thread.run(batch.slice(0, 1)), /closed/);
  });
});
