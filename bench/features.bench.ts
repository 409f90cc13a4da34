/**
 * Feature-extraction benchmark (`node dist/bench/features.bench.js`, ~2-3 minutes on 2 cores).
 *
 * 1. Images/s of the built-in backbone (block_13_expand_relu) at 96 and 224 px on each engine (ONNX
 *    Runtime CPU, TF.js on the selected backend), batch 1 / 16 / 64, on already-preprocessed tensors.
 * 2. The platform's full extraction path (raw 28x28 uint8 Fashion-MNIST-like images -> resize/replicate/
 *    scale -> engine, extractFeaturesFromRaw) vs a bare ONNX Runtime session on the same (pre-made) tensors,
 *    measured in the same run, interleaved; prints the ratio (target >= 0.8). Also the finetune worker's
 *    path: the same images in dataset batches of 256 through an extraction thread (OnnxExtractorThread,
 *    one batch computing while the next is sent, as datasetFeatures does in a worker process).
 *
 * Options: --quick (shorter timings), --sizes 96,224, --seconds S (per measurement, default 2).
 */
import { availableParallelism, cpus } from 'node:os';
import {
  extractFeaturesFromRaw,
  initTensorBackend,
  loadBackbone,
  MOBILENET_V2_SPEC,
  preprocessRawBatch,
  type FeatureExtractor,
  type RawImageBatch,
} from '../src/training/backbones';
import { createOnnxSession, ort } from '../src/training/backbones/engines/onnx-extractor';
import { OnnxExtractorThread, onnxThreadConfig } from '../src/training/backbones/engines/onnx-thread';

const args = process.argv.slice(2);
const arg = (k: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const seconds = Number(arg('--seconds') ?? (quick ? 0.7 : 2));
const sizes = (arg('--sizes') ?? '96,224').split(',').map(Number);

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296;
  }
  return x;
}

/** Images/s of `run(batch)` over at least `seconds` (after one warm-up call), at least 1 timed call. */
async function rate(batch: number, run: () => Promise<unknown>, minSeconds = seconds): Promise<number> {
  await run();
  let n = 0;
  const t0 = performance.now();
  while (n < batch || performance.now() - t0 < minSeconds * 1000) {
    await run();
    n += batch;
  }
  return (n * 1000) / (performance.now() - t0);
}

function fashionLike(n: number): RawImageBatch {
  // Smooth blobs + noise, 28x28 gray uint8: shape and value statistics like Fashion-MNIST.
  const data = new Uint8Array(n * 784);
  const u = seeded(n * 4, 99);
  for (let k = 0; k < n; k++) {
    const cx = 8 + u[4 * k] * 12, cy = 8 + u[4 * k + 1] * 12, r = 5 + u[4 * k + 2] * 7, v = 120 + u[4 * k + 3] * 135;
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const d = Math.hypot(x - cx, y - cy) / r;
        data[k * 784 + y * 28 + x] = d < 1 ? Math.round(v * (1 - 0.5 * d * d)) : 0;
      }
  }
  return { data, n, width: 28, height: 28, channels: 1 };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const tfInfo = await initTensorBackend();
  const lines: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    process.stdout.write(s + '\n');
  };
  out(`cores: ${availableParallelism()} (${cpus()[0]?.model ?? '?'}), node ${process.version}, tfjs backend: ${tfInfo.backend} (${tfInfo.tried.map((a) => `${a.name}: ${a.reason}`).join(' | ')})`);
  out('');
  out('| size | engine | backend | threads | batch 1 | batch 16 | batch 64 |');
  out('|---:|---|---|---:|---:|---:|---:|');
  const extractors: FeatureExtractor[] = [];
  for (const size of sizes) {
    for (const engine of ['onnx', 'tfjs'] as const) {
      const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine, inputSize: size });
      extractors.push(fx);
      const cells: string[] = [];
      for (const b of [1, 16, 64]) {
        const x = seeded(b * size * size * 3, b + size);
        const r = await rate(b, () => fx.extract(x, b, { batchSize: b }));
        cells.push(r.toFixed(r < 100 ? 1 : 0));
      }
      out(`| ${size} | ${fx.engine} | ${fx.backend} | ${fx.info.threads} | ${cells.join(' | ')} |`);
      await fx.dispose();
    }
  }
  for (const fx of extractors) await fx.dispose();

  // Full path vs bare ONNX Runtime (block_13_expand_relu @ 96 px, same batch size), interleaved rounds.
  out('');
  const batch = Number(arg('--batch') ?? 32);
  const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'onnx', batchSize: batch });
  if (fx.engine !== 'onnx') throw new Error(`ONNX engine unavailable: ${fx.info.fallbackReason}`);
  const N = quick ? 512 : 2048;
  const images = fashionLike(N);
  const tensors = preprocessRawBatch(images, fx.inputSize, fx.inputPreprocessing);
  const bare = await createOnnxSession(fx.info.onnxPath!, {});
  const o = ort();
  const plane = fx.inputSize * fx.inputSize * 3;
  const bareRun = async () => {
    for (let s = 0; s < N; s += batch) {
      const b = Math.min(batch, N - s);
      const r = await bare.session.run({ input: new o.Tensor('float32', tensors.subarray(s * plane, (s + b) * plane), [b, fx.inputSize, fx.inputSize, 3]) });
      r.features.dispose?.();
    }
  };
  const platformRun = () => extractFeaturesFromRaw(fx, images, { batchSize: batch });
  // As in a worker process (PRIVATUNE_ROLE=worker): the session's threads spin between layers.
  const thread = new OnnxExtractorThread({ ...onnxThreadConfig(fx)!, spin: true });
  const perImage = Array.from({ length: N }, (_, i) => ({ data: images.data.subarray(i * 784, (i + 1) * 784), width: 28, height: 28, channels: 1 as const }));
  const threadRun = async () => {
    let previous: Promise<unknown> | undefined;
    for (let s = 0; s < N; s += 256) {
      const running = thread.run(perImage.slice(s, s + 256), { batchSize: batch });
      await previous;
      previous = running;
    }
    await previous;
  };
  const ratios: number[] = [];
  const threadRatios: number[] = [];
  const bareRates: number[] = [];
  const platRates: number[] = [];
  const threadRates: number[] = [];
  const rounds = quick ? 3 : 5;
  await bareRun();
  await platformRun();
  await threadRun();
  for (let i = 0; i < rounds; i++) {
    // Alternate the order so drifting machine load does not favour one side.
    const first = i % 2 === 0;
    const a = first ? await rate(N, bareRun, 0) : 0;
    const p = await rate(N, platformRun, 0);
    const t = await rate(N, threadRun, 0);
    const b = first ? a : await rate(N, bareRun, 0);
    bareRates.push(b);
    platRates.push(p);
    threadRates.push(t);
    ratios.push(p / b);
    threadRatios.push(t / b);
  }
  await thread.close();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const chunk = new Float32Array(batch * plane);
  const pre = await rate(N, async () => {
    for (let s = 0; s < N; s += batch) preprocessRawBatch(images, fx.inputSize, fx.inputPreprocessing, chunk, { start: s, end: Math.min(s + batch, N) });
  }, 0);
  out(`full path (raw 28x28 uint8 -> features, ${N} images, batch ${batch}, 96 px, block_13_expand_relu): median ${median(platRates).toFixed(0)} img/s`);
  out(`bare ONNX Runtime session on the same pre-made tensors: median ${median(bareRates).toFixed(0)} img/s`);
  out(`ratio full / bare (median of ${rounds} interleaved rounds): ${median(ratios).toFixed(3)} (target >= 0.8); rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
  out(`finetune worker path (dataset batches of 256 through an extraction thread, preprocessing in the thread, worker role: spinning): median ${median(threadRates).toFixed(0)} img/s, ratio to bare ${median(threadRatios).toFixed(3)}; rounds: ${threadRatios.map((r) => r.toFixed(2)).join(', ')}`);
  out(`preprocessing alone (28x28 gray -> 96x96x3 float32, reused batch buffer): ${pre.toFixed(0)} img/s`);
  await bare.session.release();
  await fx.dispose();
  out(`total bench time: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
