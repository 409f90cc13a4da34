/**
 * Backbones: ONNX export vs TF.js, extractor shapes and determinism, preprocessing, registered backbones,
 * verification fallback, public statistics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  affineOf,
  autoEngine,
  BackboneError,
  extractFeaturesFromRaw,
  initTensorBackend,
  loadBackbone,
  loadPublicStats,
  l2NormalisedMoments,
  MOBILENET_V2_SPEC,
  onnxArtifactPath,
  preprocessImages,
  preprocessRawBatch,
  validateBackboneSpec,
  verificationInputs,
  withoutNormalisation,
  type BackboneSpec,
  type FeatureExtractor,
  type PreprocessingSpec,
} from '../../src/training/backbones';
import { buildFeatureLayersModel } from '../../src/training/backbones/layers-model';
import { mobilenetV2Source } from '../../src/training/backbones/mobilenet-v2';
import { kerasToOnnx } from '../../src/training/backbones/onnx/keras-to-onnx';
import { encodeModel } from '../../src/training/backbones/onnx/protobuf';
import { createOnnxSession } from '../../src/training/backbones/engines/onnx-extractor';
import { BackbonesService } from '../../src/training/backbones/backbones.service';
import { loadConfig } from '../../src/config/config';
import type { DataSource } from 'typeorm';

let dir: string;
const quiet = () => undefined;

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296;
  }
  return x;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Fashion-MNIST-like raw batch: n 28x28 gray uint8 images. */
function grayBatch(n: number, seed = 7) {
  const u = seeded(n * 784, seed);
  const data = new Uint8Array(n * 784);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(u[i] * 256);
  return { data, n, width: 28, height: 28, channels: 1 as const };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'privatune-backbones-'));
  await initTensorBackend();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ONNX export matches TF.js', () => {
  const cases: [string, number][] = [
    ['block_13_expand_relu', 96],
    ['out_relu', 96],
    ['block_13_expand_relu', 128],
    ['out_relu', 224],
  ];
  for (const [layer, size] of cases) {
    test(`${layer} at ${size} px: max abs diff <= 1e-4 on random inputs`, async () => {
      const built = await buildFeatureLayersModel(mobilenetV2Source(), layer, size, true);
      const bytes = encodeModel(kerasToOnnx(built.topology, (n) => built.weights.get(n), { inputSize: size }));
      const { session } = await createOnnxSession(bytes, { executionProviders: ['cpu'] });
      const n = size > 128 ? 2 : 3;
      const x = seeded(n * size * size * 3, size + layer.length);
      const ort = await import('onnxruntime-node');
      const r = await session.run({ input: new ort.Tensor('float32', x, [n, size, size, 3]) });
      const a = r.features.data as Float32Array;
      assert.deepEqual(r.features.dims, [n, layer === 'out_relu' ? 1280 : 576]);
      const t = tf.tensor4d(x, [n, size, size, 3]);
      const y = built.model.predict(t) as tf.Tensor;
      const b = (await y.data()) as Float32Array;
      t.dispose();
      y.dispose();
      built.model.dispose();
      await session.release();
      const d = maxAbsDiff(a, b);
      assert.ok(d <= 1e-4, `max abs diff ${d}`);
      assert.ok(Math.max(...b) > 0.1, 'features are not trivially zero');
    });
  }

  test('a graph that normalises its own input gives the features of the plain graph fed normalised pixels, exactly', async () => {
    // pixels / 255 (b = 0): float32(p) * float32(1/255) in the graph is the product JavaScript rounds once.
    const size = 96;
    const built = await buildFeatureLayersModel(mobilenetV2Source(), 'block_13_expand_relu', size, true);
    const pre = MOBILENET_V2_SPEC.preprocessing;
    const plain = encodeModel(kerasToOnnx(built.topology, (n) => built.weights.get(n), { inputSize: size }));
    const inGraph = encodeModel(kerasToOnnx(built.topology, (n) => built.weights.get(n), { inputSize: size, normalise: affineOf(pre) }));
    built.model.dispose();
    const ort = await import('onnxruntime-node');
    const run = async (bytes: Uint8Array, x: Float32Array) => {
      const { session } = await createOnnxSession(bytes, { threads: 1, executionProviders: ['cpu'] });
      const r = await session.run({ input: new ort.Tensor('float32', x, [3, size, size, 3]) });
      await session.release();
      return r.features.data as Float32Array;
    };
    const imgs = { data: Uint8Array.from(seeded(3 * size * size * 3, 17), (v) => Math.floor(v * 256)), n: 3, width: size, height: size, channels: 3 as const };
    const normalised = preprocessRawBatch(imgs, size, pre);
    const pixels = preprocessRawBatch(imgs, size, withoutNormalisation(pre));
    assert.deepEqual(pixels, Float32Array.from(imgs.data), 'without normalisation, pixels are only converted');
    assert.ok(Math.max(...pixels) > 250 && Math.max(...normalised) <= 1, 'pixels in, normalised values out');
    assert.deepEqual(await run(inGraph, pixels), await run(plain, normalised));
    // Per-channel means and deviations (ImageNet's) add an Add node after the transpose: the same features to rounding.
    const imagenet: PreprocessingSpec = { ...pre, scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    const built2 = await buildFeatureLayersModel(mobilenetV2Source(), 'block_13_expand_relu', size, true);
    const plain2 = encodeModel(kerasToOnnx(built2.topology, (n) => built2.weights.get(n), { inputSize: size }));
    const graph2 = kerasToOnnx(built2.topology, (n) => built2.weights.get(n), { inputSize: size, normalise: affineOf(imagenet) });
    built2.model.dispose();
    const x2 = preprocessRawBatch(imgs, size, imagenet);
    assert.ok(Math.min(...x2) < 0);
    assert.ok(maxAbsDiff(await run(encodeModel(graph2), pixels), await run(plain2, x2)) <= 1e-5);
    // Where the nodes go: uniform coefficients as scalars before the transpose, per-channel ones after it.
    const firstOps = (g: ReturnType<typeof kerasToOnnx>) => g.graph.nodes.slice(0, 3).map((n) => n.opType);
    assert.deepEqual(firstOps(graph2), ['Transpose', 'Mul', 'Add']);
    const built3 = await buildFeatureLayersModel(mobilenetV2Source(), 'block_13_expand_relu', size, true);
    assert.deepEqual(firstOps(kerasToOnnx(built3.topology, (n) => built3.weights.get(n), { inputSize: size, normalise: affineOf(pre) })).slice(0, 2), ['Mul', 'Transpose']);
    built3.model.dispose();
  });
});

describe('built-in extractor', () => {
  let onnx96: FeatureExtractor;
  let tfjs96: FeatureExtractor;
  before(async () => {
    onnx96 = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', artifactDir: dir, logger: quiet });
    tfjs96 = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'tfjs', artifactDir: dir, logger: quiet });
  });
  after(async () => {
    await onnx96.dispose();
    await tfjs96.dispose();
  });

  test(
    'training extraction runs below the serving passes in a process that serves the API, at the process priority in a worker',
    { skip: process.platform !== 'linux' && 'Linux thread priorities' },
    async () => {
      const cases: [Record<string, string>, number, boolean][] = [
        [{ PRIVATUNE_ROLE: 'all' }, 19, false],
        [{ PRIVATUNE_ROLE: 'all', WORKER_EXTRACTION_NICE: '12' }, 12, false],
        [{ PRIVATUNE_ROLE: 'worker' }, 0, true],
      ];
      for (const [env, nice, spin] of cases) {
        const service = new BackbonesService({} as DataSource, loadConfig(env));
        try {
          const thread = service.extractionThread(onnx96)!;
          await thread.start();
          assert.equal(thread.nice, nice, JSON.stringify(env));
          assert.equal(thread.config.spin, spin, JSON.stringify(env));
          // Below the serving passes' default (SERVING_BACKBONE_NICE=10), so that they preempt it.
          if (env.PRIVATUNE_ROLE === 'all' && !env.WORKER_EXTRACTION_NICE) assert.ok(nice > loadConfig(env).serving.backboneNice);
          const x = seeded(2 * 96 * 96 * 3, 5);
          assert.deepEqual(await thread.run([x.subarray(0, 96 * 96 * 3), x.subarray(96 * 96 * 3)]), await onnx96.extract(x, 2));
        } finally {
          await service.onApplicationShutdown();
        }
      }
    },
  );

  test('defaults: block_13_expand_relu, 96 px, 576-d; ONNX verified and cached', async () => {
    assert.equal(onnx96.engine, 'onnx');
    assert.equal(onnx96.backend, 'onnxruntime-cpu');
    assert.equal(onnx96.featureLayer, 'block_13_expand_relu');
    assert.equal(onnx96.inputSize, 96);
    assert.equal(onnx96.featureDim, 576);
    assert.ok(onnx96.info.verification?.ok);
    assert.ok(onnx96.info.verification!.maxAbsDiff <= 1e-4);
    assert.ok(onnx96.info.threads >= 1);
    assert.equal(onnx96.info.fallbackReason, undefined);
    // The exported graph normalises its input: it takes pixels; TF.js takes them normalised.
    assert.equal(onnx96.info.normalisesInGraph, true);
    assert.deepEqual(onnx96.inputPreprocessing, withoutNormalisation(MOBILENET_V2_SPEC.preprocessing));
    assert.equal(tfjs96.inputPreprocessing, MOBILENET_V2_SPEC.preprocessing);
    assert.ok(readFileSync(onnx96.info.onnxPath!).length > 1_000_000);
    assert.equal(tfjs96.engine, 'tfjs');
    assert.ok(['wasm', 'cpu', 'tensorflow'].includes(tfjs96.backend));
  });

  test('n x 576 features, deterministic, same on both engines', async () => {
    const n = 5;
    // The same seeded pixels, prepared for each engine.
    const x = verificationInputs(onnx96.inputPreprocessing, n, 96, 3);
    const xt = verificationInputs(tfjs96.inputPreprocessing, n, 96, 3);
    const a = await onnx96.extract(x, n, { batchSize: 2 });
    const a2 = await onnx96.extract(x, n, { batchSize: 4 });
    const b = await tfjs96.extract(xt, n);
    assert.equal(a.length, n * 576);
    assert.deepEqual(a, await onnx96.extract(x, n, { batchSize: 2 }));
    assert.ok(maxAbsDiff(a, a2) <= 1e-5, 'batching does not change features');
    assert.ok(maxAbsDiff(a, b) <= 1e-4);
    assert.deepEqual(b, await tfjs96.extract(xt, n));
  });

  test('grayscale 28x28 uint8 path (replicate + bilinear resize) and progress', async () => {
    const imgs = grayBatch(7);
    const progress: number[] = [];
    const f = await extractFeaturesFromRaw(onnx96, imgs, { batchSize: 3, onProgress: (d) => progress.push(d) });
    assert.equal(f.length, 7 * 576);
    assert.deepEqual(progress, [3, 6, 7]);
    const x = preprocessRawBatch(imgs, 96, onnx96.inputPreprocessing);
    assert.ok(maxAbsDiff(f, await onnx96.extract(x, 7)) <= 1e-5);
    assert.ok(f.every((v) => Number.isFinite(v) && v >= 0));
    assert.deepEqual(f, await extractFeaturesFromRaw(onnx96, imgs, { batchSize: 3 }));
  });

  test("'auto' takes TF.js only where TF.js alone has a GPU", async () => {
    assert.equal(autoEngine({ onnxGpu: false, tfjsGpu: false }), 'onnx');
    assert.equal(autoEngine({ onnxGpu: true, tfjsGpu: false }), 'onnx');
    assert.equal(autoEngine({ onnxGpu: true, tfjsGpu: true }), 'onnx');
    assert.equal(autoEngine({ onnxGpu: false, tfjsGpu: true }), 'tfjs');
  });

  test('out_relu gives n x 1280 (ONNX at 96 px, TF.js at 128 px)', async () => {
    const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'auto', featureLayer: 'out_relu', inputSize: 96, artifactDir: dir, logger: quiet });
    assert.equal(fx.engine, 'onnx');
    assert.equal(fx.featureDim, 1280);
    const f = await fx.extract(seeded(2 * 96 * 96 * 3, 5), 2);
    assert.equal(f.length, 2 * 1280);
    await fx.dispose();
    const ft = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'tfjs', featureLayer: 'out_relu', inputSize: 128, logger: quiet });
    assert.equal((await ft.extract(seeded(128 * 128 * 3, 6), 1)).length, 1280);
    await ft.dispose();
  });

  test('typed errors: unknown layer, bad size, bad tensor length', async () => {
    await assert.rejects(loadBackbone(MOBILENET_V2_SPEC, { featureLayer: 'nope' }), (e: unknown) => e instanceof BackboneError && e.code === 'BACKBONE_FEATURE_LAYER');
    await assert.rejects(loadBackbone(MOBILENET_V2_SPEC, { inputSize: 1000 }), (e: unknown) => e instanceof BackboneError && e.code === 'BACKBONE_INPUT_SIZE');
    await assert.rejects(onnx96.extract(new Float32Array(10), 1), (e: unknown) => e instanceof BackboneError && e.code === 'BACKBONE_BAD_INPUT');
  });

  test('ONNX export is cached per (layer, size)', async () => {
    const again = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', artifactDir: dir, logger: quiet });
    assert.equal(again.info.onnxPath, onnx96.info.onnxPath);
    await again.dispose();
  });

  test('a new export deletes the exports it supersedes (same layer and size, another key), nothing else', async () => {
    const art = join(dir, 'superseded');
    const backboneDir = join(art, MOBILENET_V2_SPEC.id);
    mkdirSync(backboneDir, { recursive: true });
    const layer = MOBILENET_V2_SPEC.featureLayers[0].name;
    const files = {
      superseded: `${layer}-96px-0123456789abcdef.onnx`,
      otherSize: `${layer}-224px-0123456789abcdef.onnx`,
      otherLayer: `out_relu-96px-0123456789abcdef.onnx`,
      notAnExport: `${layer}-96px-notes.txt`,
    };
    for (const f of Object.values(files)) writeFileSync(join(backboneDir, f), 'old');
    const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', featureLayer: layer, inputSize: 96, artifactDir: art, logger: quiet });
    try {
      assert.equal(fx.engine, 'onnx');
      const left = readdirSync(backboneDir).sort();
      assert.deepEqual(left, [basename(fx.info.onnxPath!), files.otherSize, files.otherLayer, files.notAnExport].sort());
    } finally {
      await fx.dispose();
    }
  });
});

describe('verification failure falls back to TF.js', () => {
  test('a tampered ONNX file in the artifact cache is refused', async () => {
    const art = join(dir, 'tampered');
    const layer = MOBILENET_V2_SPEC.featureLayers[0];
    const src = mobilenetV2Source();
    const built = await buildFeatureLayersModel(src, layer.node, 96, true);
    // Same graph with one weight tensor perturbed by 5 %: loads fine, computes the wrong features.
    const bytes = encodeModel(
      kerasToOnnx(built.topology, (n) => {
        const w = built.weights.get(n);
        if (w && n === 'block_12_project/kernel') return { shape: w.shape, data: w.data.map((v) => v * 1.05) };
        return w;
      }, { inputSize: 96 }),
    );
    built.model.dispose();
    const path = onnxArtifactPath(art, MOBILENET_V2_SPEC, src.sha256, layer.name, 96);
    mkdirSync(join(art, MOBILENET_V2_SPEC.id), { recursive: true });
    writeFileSync(path, bytes);
    const warnings: string[] = [];
    const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', artifactDir: art, logger: (lvl, msg) => lvl === 'warn' && warnings.push(msg) });
    assert.equal(fx.engine, 'tfjs');
    assert.equal(fx.info.requestedEngine, 'onnx');
    assert.equal(fx.info.verification?.ok, false);
    assert.ok(fx.info.verification!.maxAbsDiff > 1e-4);
    assert.match(fx.info.fallbackReason ?? '', /failed verification/);
    assert.equal(warnings.length, 1);
    assert.equal((await fx.extract(seeded(96 * 96 * 3, 1), 1)).length, 576);
    await fx.dispose();

    // A corrupt file (not protobuf) is refused the same way.
    writeFileSync(path, Buffer.from('this is not an onnx model'));
    const fx2 = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'auto', artifactDir: art, logger: quiet });
    assert.equal(fx2.engine, 'tfjs');
    assert.match(fx2.info.fallbackReason ?? '', /ONNX/);
    await fx2.dispose();
  });
});

describe('registered backbones', () => {
  let onnxPath: string;
  before(async () => {
    const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', artifactDir: dir, logger: quiet });
    onnxPath = fx.info.onnxPath!;
    await fx.dispose();
  });

  const registered = (path: string, over: Partial<BackboneSpec> = {}): BackboneSpec => ({
    id: 'custom-onnx',
    name: 'Exported MobileNetV2 registered as ONNX',
    description: 'test',
    source: { kind: 'onnx', path },
    input: { layout: 'NHWC', minSize: 96, maxSize: 96, defaultSize: 96 },
    preprocessing: { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'bilinear', alignCorners: false },
    featureLayers: [{ name: 'pooled', node: 'features', dim: 576, pooling: 'none', defaultSize: 96 }],
    defaultFeatureLayer: 'pooled',
    provenance: { origin: 'test export', trainingData: 'public' },
    ...over,
  });

  test('an ONNX file registered with its own preprocessing runs through the same interface', async () => {
    const spec = registered(onnxPath);
    validateBackboneSpec(spec);
    const fx = await loadBackbone(spec, { engine: 'auto' });
    assert.equal(fx.engine, 'onnx');
    assert.equal(fx.featureDim, 576);
    const imgs = grayBatch(3, 11);
    const f = await extractFeaturesFromRaw(fx, imgs);
    assert.equal(f.length, 3 * 576);
    // Its preprocessing is used: (p/255 - 0.5) / 0.5 differs from p/255.
    const x = preprocessRawBatch(imgs, 96, spec.preprocessing);
    assert.ok(Math.min(...x) < 0);
    assert.deepEqual(f, await fx.extract(x, 3));
    await fx.dispose();
  });

  test('bad files and specs give clear typed errors', async () => {
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const code = (c: string) => (e: unknown) => e instanceof BackboneError && e.code === c;
    await assert.rejects(loadBackbone(registered(bad)), code('BACKBONE_INVALID_MODEL'));
    await assert.rejects(loadBackbone(registered(join(dir, 'missing.onnx'))), code('BACKBONE_FILE_NOT_FOUND'));
    await assert.rejects(
      loadBackbone(registered(onnxPath, { featureLayers: [{ name: 'x', node: 'no_such_output', dim: 576, pooling: 'none', defaultSize: 96 }], defaultFeatureLayer: 'x' })),
      code('BACKBONE_FEATURE_LAYER'),
    );
    await assert.rejects(
      loadBackbone(registered(onnxPath, { featureLayers: [{ name: 'x', node: 'features', dim: 100, pooling: 'none', defaultSize: 96 }], defaultFeatureLayer: 'x' })),
      code('BACKBONE_INVALID_SPEC'),
    );
    await assert.rejects(loadBackbone(registered(onnxPath), { engine: 'tfjs' }), code('BACKBONE_ENGINE_UNAVAILABLE'));
    assert.throws(() => validateBackboneSpec({ ...registered(onnxPath), preprocessing: { ...registered(onnxPath).preprocessing, std: [1, 0, 1] } }), code('BACKBONE_INVALID_SPEC'));
  });

  test('a registered TF.js Layers model (model.json + shard) runs on TF.js and exports to verified ONNX', async () => {
    const src = mobilenetV2Source();
    const mdir = join(dir, 'tfjs-model');
    mkdirSync(mdir, { recursive: true });
    const specs = src.order.map((n) => ({ name: n, shape: src.weights.get(n)!.shape, dtype: 'float32' }));
    const parts = src.order.map((n) => Buffer.from(src.weights.get(n)!.data.buffer.slice(0)));
    writeFileSync(join(mdir, 'weights.bin'), Buffer.concat(parts));
    writeFileSync(join(mdir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: src.topology, weightsManifest: [{ paths: ['weights.bin'], weights: specs }] }));
    const spec: BackboneSpec = {
      ...MOBILENET_V2_SPEC,
      id: 'registered-tfjs',
      source: { kind: 'tfjs-layers', modelJsonPath: join(mdir, 'model.json') },
      input: { layout: 'NHWC', minSize: 96, maxSize: 160, defaultSize: 96 },
      featureLayers: [{ name: 'b13', node: 'block_13_expand_relu', dim: 576, pooling: 'global-avg', defaultSize: 96 }],
      defaultFeatureLayer: 'b13',
    };
    const builtin = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'tfjs' });
    const t = await loadBackbone(spec, { engine: 'tfjs' });
    const o = await loadBackbone(spec, { engine: 'auto', artifactDir: dir, logger: quiet });
    assert.equal(t.engine, 'tfjs');
    assert.equal(o.engine, 'onnx');
    assert.ok(o.info.verification?.ok);
    const x = verificationInputs(spec.preprocessing, 2, 96, 9);
    const ref = await builtin.extract(x, 2);
    assert.ok(maxAbsDiff(ref, await t.extract(x, 2)) <= 1e-6);
    // Its export normalises inside the graph: the same pixels, not normalised.
    assert.ok(maxAbsDiff(ref, await o.extract(verificationInputs(o.inputPreprocessing, 2, 96, 9), 2)) <= 1e-4);
    await Promise.all([builtin.dispose(), t.dispose(), o.dispose()]);
  });
});

describe('preprocessing', () => {
  const pre = MOBILENET_V2_SPEC.preprocessing;

  test('bilinear align-corners resize matches tf.image.resizeBilinear (as nsfwjs does)', async () => {
    const W = 13, H = 9, S = 32;
    const u = seeded(W * H * 3, 21);
    const rgb = Uint8Array.from(u, (v) => Math.floor(v * 256));
    const ours = preprocessRawBatch({ data: rgb, n: 1, width: W, height: H, channels: 3 }, S, pre);
    const ref = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(rgb, [H, W, 3], 'int32').toFloat().div(255) as tf.Tensor3D, [S, S], true));
    assert.ok(maxAbsDiff(ours, (await ref.data()) as Float32Array) < 1e-5);
    ref.dispose();
    const half = preprocessRawBatch({ data: rgb, n: 1, width: W, height: H, channels: 3 }, S, { ...pre, alignCorners: false });
    const refHalf = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(rgb, [H, W, 3], 'int32').toFloat().div(255) as tf.Tensor3D, [S, S], false, true));
    assert.ok(maxAbsDiff(half, (await refHalf.data()) as Float32Array) < 1e-5);
    refHalf.dispose();
  });

  test('gray is replicated to RGB; alpha is dropped; mean/std applied per channel', () => {
    const g = { data: Uint8Array.from([0, 255, 51, 102]), n: 1, width: 2, height: 2, channels: 1 as const };
    const x = preprocessRawBatch(g, 2, pre);
    assert.deepEqual(Array.from(x.slice(0, 6)), [0, 0, 0, 1, 1, 1]);
    const rgba = { data: Uint8Array.from([255, 0, 51, 7]), n: 1, width: 1, height: 1, channels: 4 as const };
    const y = preprocessRawBatch(rgba, 1, { ...pre, scale: 1, mean: [128, 0, 1], std: [2, 1, 2] });
    assert.deepEqual(Array.from(y), [63.5, 0, 25]);
  });

  test('images already at the input size: each channel count, a batch range and an output offset, exactly per the spec', () => {
    const S = 5;
    const spec: PreprocessingSpec = { ...pre, scale: 1 / 255, mean: [0.5, 0.25, 0.75], std: [0.5, 0.25, 2] };
    for (const C of [1, 3, 4] as const) {
      const n = 3;
      const data = Uint8Array.from(seeded(n * S * S * C, 40 + C), (v) => Math.floor(v * 256));
      const out = new Float32Array(4 * S * S * 3).fill(NaN);
      preprocessRawBatch({ data, n, width: S, height: S, channels: C }, S, spec, out, { start: 1, end: 3, outOffset: 2 });
      assert.ok(out.subarray(0, 2 * S * S * 3).every(Number.isNaN), 'nothing written before the offset');
      for (let k = 0; k < 2; k++) {
        for (let p = 0; p < S * S; p++) {
          for (let c = 0; c < 3; c++) {
            const v = data[((1 + k) * S * S + p) * C + (C === 1 ? 0 : c)];
            const expected = Math.fround((v * spec.scale - spec.mean[c]) / spec.std[c]);
            const got = out[(2 + k) * S * S * 3 + p * 3 + c];
            assert.ok(Math.abs(got - expected) < 1e-6, `C=${C} image ${1 + k} pixel ${p} channel ${c}: ${got} vs ${expected}`);
          }
        }
      }
    }
  });

  test('encoded PNG (sharp) gives the same tensor as its raw pixels', async () => {
    const sharp = (await import('sharp')).default;
    const imgs = grayBatch(1, 5);
    const png = await sharp(Buffer.from(imgs.data), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    const a = await preprocessImages([png], 96, pre);
    const b = await preprocessImages([{ data: imgs.data, width: 28, height: 28, channels: 1 }], 96, pre);
    assert.deepEqual(a, b);
    await assert.rejects(preprocessImages([Buffer.from('garbage')], 96, pre), (e: unknown) => e instanceof BackboneError && e.code === 'BACKBONE_BAD_INPUT');
  });
});

describe('public statistics', () => {
  test('stored for both offered layers at their default sizes, of L2-normalised features', () => {
    for (const layer of MOBILENET_V2_SPEC.featureLayers) {
      const s = loadPublicStats(MOBILENET_V2_SPEC.id, layer.name, layer.defaultSize);
      assert.ok(s, `stats for ${layer.name}@${layer.defaultSize}`);
      assert.equal(s.dim, layer.dim);
      assert.equal(s.mean.length, layer.dim);
      assert.equal(s.std.length, layer.dim);
      assert.equal(s.normalisation, 'l2');
      assert.ok(s.count >= 1000);
      assert.ok(s.std.every((v) => v > 0));
      // Means of unit vectors: the mean vector's norm is at most 1.
      assert.ok(Math.hypot(...s.mean) <= 1 + 1e-6);
    }
    assert.equal(loadPublicStats(MOBILENET_V2_SPEC.id, 'block_13_expand_relu', 97), undefined);
  });

  test('l2NormalisedMoments', () => {
    const { mean, std } = l2NormalisedMoments(Float32Array.from([3, 4, 0, 2, 0, 0]), 3, 2);
    // rows: (0.6, 0.8), (0, 1), (0, 0)
    assert.ok(Math.abs(mean[0] - 0.2) < 1e-12 && Math.abs(mean[1] - 0.6) < 1e-12);
    assert.ok(Math.abs(std[0] - Math.sqrt((0.36 + 0 + 0) / 3 - 0.04)) < 1e-12);
  });
});
