/**
 * Serving threads on the built-in backbone's verified ONNX graph: features equal the platform extractor's,
 * a lone pass takes the solo (all-core) session, and passes that overlap run on the narrow sessions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BackbonePool, threadConfigFor } from '../../src/serving/inference/backbone-thread';
import { FeatureExtractor, loadBackbone, MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../src/training/backbones/onnx/keras-to-onnx';

const SIZE = 96;

function images(n: number, seed: number): Float32Array {
  const x = new Float32Array(n * SIZE * SIZE * 3);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    x[i] = (s / 2147483648) * 2 - 1; // MobileNetV2 input range
  }
  return x;
}

describe('backbone serving pool', () => {
  let fx: FeatureExtractor;
  let pool: BackbonePool;

  before(async () => {
    fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', featureLayer: 'block_13_expand_relu', inputSize: SIZE });
    const config = threadConfigFor(fx, { exportedInput: ONNX_INPUT_NAME, exportedOutput: ONNX_OUTPUT_NAME });
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
    const a = images(3, 1);
    const expectedA = await fx.extract(a.slice(), 3, { batchSize: 3 });
    const lone = await pool.run(a.slice(), 3);
    assert.equal(pool.soloPasses, 1);
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.equal(lone.length, 3 * fx.featureDim);
    assert.ok(maxDiff(lone, expectedA) < 1e-4, `solo pass differs by ${maxDiff(lone, expectedA)}`);

    const b = images(2, 2);
    const expectedB = await fx.extract(b.slice(), 2, { batchSize: 2 });
    const [ra, rb] = await Promise.all([pool.run(a.slice(), 3), pool.run(b.slice(), 2)]);
    assert.equal(pool.soloPasses, 2, 'only the first of two overlapping passes takes the solo session');
    assert.ok(maxDiff(ra, expectedA) < 1e-4);
    assert.ok(maxDiff(rb, expectedB) < 1e-4, `narrow pass differs by ${maxDiff(rb, expectedB)}`);
  });

  it('has no solo session when it would not have more threads than the narrow ones', () => {
    const config = threadConfigFor(fx, { exportedInput: ONNX_INPUT_NAME, exportedOutput: ONNX_OUTPUT_NAME })!;
    assert.equal(new BackbonePool({ ...config, threads: 2 }, 1, { soloThreads: 2 }).hasSolo, false);
    assert.equal(new BackbonePool({ ...config, threads: 1 }, 2).hasSolo, false);
  });
});
