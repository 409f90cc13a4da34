/**
 * bench:serving's raw engine as the server runs it under load: one single-threaded ONNX Runtime session
 * in a thread of its own (one such thread per core, started by the bench), looping over already prepared
 * images at a given batch size, the model's head applied, no HTTP, no hand-offs. The bench starts the
 * threads, lets them load and warm up, then starts them together and sums their images/s.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PassSession, type OnnxThreadConfig } from '../src/training/backbones/engines/onnx-thread';
import { ServedModel } from '../src/serving/inference/served-model';
import type { TrainedModel } from '../src/serving/models/model.entity';

export interface RawThreadData {
  config: OnnxThreadConfig;
  /** The model's row; its Buffers arrive as Uint8Arrays. */
  model: TrainedModel;
  /** Prepared images, at least `batch` of them. */
  pixels: Float32Array;
}

/** From the bench: run `batch` images per pass for `seconds`; the thread answers with its images/s. */
export interface RawThreadRun {
  batch: number;
  seconds: number;
}

const asBuffer = (b: Uint8Array | null) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : b);

async function main(): Promise<void> {
  const { config, model, pixels } = workerData as RawThreadData;
  const pass = await PassSession.open({ ...config, threads: 1, spin: false });
  const served = new ServedModel({ ...model, weights: asBuffer(model.weights)!, bias: asBuffer(model.bias) } as TrainedModel);
  const plane = config.inputSize * config.inputSize * 3;
  const run = async (b: number) => served.classify(await pass.extractor.extract(pixels.subarray(0, b * plane), b, { batchSize: b }), b, 5);
  await run(1);
  parentPort!.on('message', async ({ batch, seconds }: RawThreadRun) => {
    await run(batch);
    let n = 0;
    const t = performance.now();
    while (performance.now() - t < seconds * 1000) {
      await run(batch);
      n += batch;
    }
    parentPort!.postMessage(n / ((performance.now() - t) / 1000));
  });
  parentPort!.postMessage('ready');
}

void main();
