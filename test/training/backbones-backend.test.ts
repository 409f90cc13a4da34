/**
 * TF.js backend selection (own file: the backend is process-global).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTensorBackend, getTensorBackendInfo } from '../../src/training/backbones';

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const tfjsNodePresent = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

test('default selection reports a backend and why the others were skipped', async () => {
  const info = await initTensorBackend();
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(info.backend));
  assert.equal(tf.getBackend(), info.backend);
  assert.ok(info.tried.length >= 1);
  for (const a of info.tried) assert.ok(a.reason.length > 0, `attempt ${a.name} has a reason`);
  assert.deepEqual(await getTensorBackendInfo(), info);
  if (!tfjsNodePresent) {
    const tfAttempt = info.tried.find((a) => a.name === 'tensorflow');
    assert.ok(tfAttempt && !tfAttempt.ok);
    assert.match(tfAttempt.reason, /not installed/);
    // wasm is the expected pick here (SIMD available on Node 20); cpu only if wasm failed, with its reason.
    if (info.backend === 'wasm') {
      const w = info.tried.find((a) => a.name === 'wasm')!;
      assert.ok(w.ok);
      assert.match(w.reason, /SIMD/);
      assert.equal(info.simd, true);
      assert.ok((info.threads ?? 0) >= 1);
    } else {
      assert.equal(info.backend, 'cpu');
      assert.equal(info.tried.find((a) => a.name === 'wasm')?.ok, false);
    }
  }
  // The selected backend computes.
  const y = tf.tidy(() => tf.tensor1d([1, 2, 3]).square().sum());
  assert.equal((await y.data())[0], 14);
  y.dispose();
});

test('memoised: a second call returns the same selection', async () => {
  const a = await initTensorBackend();
  const b = await initTensorBackend();
  assert.equal(a, b);
});

test('when wasm is unavailable the selection falls to cpu and records why', async () => {
  const info = await initTensorBackend(undefined, { exclude: ['wasm'], force: true });
  if (!tfjsNodePresent) {
    assert.equal(info.backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.deepEqual(
      info.tried.map((a) => [a.name, a.ok]),
      [
        ['tensorflow', false],
        ['wasm', false],
        ['cpu', true],
      ],
    );
  }
});

test('an explicit preference (TFJS_BACKEND / argument) is tried first', async () => {
  const info = await initTensorBackend('cpu');
  assert.equal(info.backend, 'cpu');
  assert.equal(info.tried[0].name, 'cpu');
  const back = await initTensorBackend('wasm');
  assert.equal(back.tried[0].name, 'wasm');
  assert.ok(back.backend === 'wasm' || back.backend === 'cpu');
});
