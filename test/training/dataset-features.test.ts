/**
 * Dataset features through an extraction thread (what the finetune worker uses for ONNX backbones): the
 * same features and labels as the main-thread path on real images, the main thread never runs the
 * backbone, progress is reported in order, and a failing thread or a cancelled job fails the extraction
 * without writing a cache entry or leaving an unhandled rejection behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FeatureExtractor, loadBackbone, MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { OnnxExtractorThread, onnxThreadConfig } from '../../src/training/backbones/engines/onnx-thread';
import { inspectDataset } from '../../src/training/data';
import { datasetFeatures } from '../../src/training/finetune/dataset-features';
import { writeRealSubset } from '../support/real-data';

const N = 300;
const BATCH = 64; // 5 dataset batches, the last one partial

describe('dataset features in an extraction thread', () => {
  let dir: string;
  let fx: FeatureExtractor;
  let thread: OnnxExtractorThread;
  let source: { format: 'IDX'; location: string };
  let fingerprint: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    dir = await mkdtemp(join(tmpdir(), 'privatune-features-'));
    const data = await writeRealSubset(join(dir, 'data'), N, 1);
    source = { format: 'IDX', location: data.train };
    fingerprint = (await inspectDataset(source)).fingerprint;
    fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', featureLayer: 'block_13_expand_relu', inputSize: 96, batchSize: 16, artifactDir: join(dir, 'backbones') });
    const config = onnxThreadConfig(fx);
    assert.ok(config, 'the built-in backbone runs on ONNX Runtime');
    thread = new OnnxExtractorThread(config);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await thread?.close();
    await fx?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const request = (cacheDir: string) => ({ source, fingerprint, count: N, extractor: fx, cacheDir: join(dir, cacheDir), batchSize: BATCH });

  it('equals the main-thread features, and the main thread runs no forward pass', async () => {
    const onMain = await datasetFeatures(request('cache-main'));
    const mainRuns = countExtractCalls(fx);
    const progress: number[] = [];
    const threaded = await datasetFeatures({ ...request('cache-thread'), thread, onProgress: (done) => progress.push(done) });
    assert.equal(mainRuns.stop(), 0, 'no session.run on the calling thread');
    assert.equal(threaded.cached, false);
    assert.equal(threaded.rows, N);
    assert.deepEqual(threaded.labels, onMain.labels);
    let maxDiff = 0;
    for (let i = 0; i < onMain.features.length; i++) maxDiff = Math.max(maxDiff, Math.abs(onMain.features[i] - threaded.features[i]));
    assert.ok(maxDiff < 1e-4, `thread features differ by ${maxDiff}`);
    assert.ok(onMain.features.some((v) => v !== 0));
    assert.deepEqual(progress, [64, 128, 192, 256, 300]);
    // The result was cached: a second request reads it back.
    assert.equal((await datasetFeatures({ ...request('cache-thread'), thread })).cached, true);
  });

  it('fails with the thread’s error and writes no cache entry when the thread cannot start', async () => {
    const broken = new OnnxExtractorThread({ ...onnxThreadConfig(fx)!, onnxPath: join(dir, 'missing.onnx') });
    await assert.rejects(datasetFeatures({ ...request('cache-broken'), thread: broken }), /backbone thread could not start/);
    assert.equal(existsSync(join(dir, 'cache-broken', 'features')), false);
    await broken.close();
  });

  it('stops at the checkpoint of a cancelled job once the batch in flight is done, leaving nothing behind', async () => {
    let batches = 0;
    const cancelled = new Error('cancelled');
    // The thread as datasetFeatures sees it, counting passes still running when it gives up: a stopping
    // worker closes the thread right after, and must not do so under a running pass.
    let running = 0;
    let runningAtReturn = -1;
    const counting = { run: (images, opts) => (running++, thread.run(images, opts).finally(() => running--)) } as OnnxExtractorThread;
    await assert.rejects(
      datasetFeatures({
        ...request('cache-cancelled'),
        thread: counting,
        checkpoint: () => {
          if (++batches === 3) throw cancelled;
        },
      }).finally(() => (runningAtReturn = running)),
      (err) => err === cancelled,
    );
    assert.equal(runningAtReturn, 0, 'no pass of the stopped job is still running');
    const entries = existsSync(join(dir, 'cache-cancelled', 'features')) ? await readdir(join(dir, 'cache-cancelled', 'features')) : [];
    assert.deepEqual(entries, []);
    // The thread is still usable afterwards.
    const again = await datasetFeatures({ ...request('cache-after-cancel'), thread });
    assert.equal(again.rows, N);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  });
});

/** Counts calls of the extractor's own (calling-thread) extract until stop(). */
function countExtractCalls(fx: FeatureExtractor): { stop(): number } {
  const original = fx.extract;
  let calls = 0;
  fx.extract = (...args) => {
    calls++;
    return original.apply(fx, args);
  };
  return {
    stop() {
      fx.extract = original;
      return calls;
    },
  };
}
