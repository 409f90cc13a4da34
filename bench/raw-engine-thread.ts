/**
 * bench:serving's raw engine as the server runs it under load: one single-threaded ONNX Runtime session
 * in a thread of its own (one such thread per core, started by the bench), looping over already prepared
 * images at a given batch size, the model's head applied, no HTTP, no hand-offs. The bench starts the
 * threads, lets them load and warm up, then starts them together and sums their images/s.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
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

/**
 * Images/s of `run(batch)` in a closed loop for `seconds` (at least four passes), after one pass that is
 * not counted: how bench:serving measures the raw engine in its own thread and in these.
 */
export async function closedLoopRate(run: (batch: number) => Promise<unknown>, batch: number, seconds: number): Promise<number> {
  await run(batch);
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < seconds * 1000 || n < 4 * batch) {
    await run(batch);
    n += batch;
  }
  return n / ((performance.now() - t) / 1000);
}

const asBuffer = (b: Uint8Array | null) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : b);

async function main(): Promise<void> {
  const { config, model, pixels } = workerData as RawThreadData;
  const pass = await PassSession.open({ ...config, threads: 1, spin: false });
  const served = new ServedModel({ ...model, weights: asBuffer(model.weights)!, bias: asBuffer(model.bias) } as TrainedModel);
  const plane = config.inputSize * config.inputSize * 3;
  const run = async (b: number) => served.classify(await pass.extractor.extract(pixels.subarray(0, b * plane), b, { batchSize: b }), b, 5);
  await run(1);
  parentPort!.on('message', async ({ batch, seconds }: RawThreadRun) => parentPort!.postMessage(await closedLoopRate(run, batch, seconds)));
  parentPort!.postMessage('ready');
}

// The bench imports closedLoopRate from this file too; only its threads run the loop.
if (!isMainThread) void main();
