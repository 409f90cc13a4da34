/**
 * The clipped Gram matrix of LEAST_SQUARES split over threads. X-bar^T X-bar is a sum over rows, so each
 * thread accumulates a contiguous block of rows into its own D x D upper triangle (shared memory) and the
 * caller adds the blocks in shard order. The noise is added once, to the total, by the caller: the
 * release and its privacy analysis are those of the total, whatever order its terms were added in.
 *
 * Synchronous (the caller sums its own block, then waits with Atomics.wait), like ShardedGradient, so that
 * trainLeastSquares stays a plain function. The helpers are started per Gram and exit when done: a Gram is
 * computed once per job, and a thread start (tens of ms) is small against the work that warrants one.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { accumulateClippedGram } from './linalg';
import { featureBuffer, featureView, SharedFeatureBuffer, sharedFeatureData, toShared, waitForHelpers } from './sharded-gradient';

// Control words (Int32): helpers finished, and a failure flag.
const DONE = 0;
const FAILED = 1;
/** A helper that does not answer within this time is treated as dead (the Gram fails; nothing is released). */
const HELPER_TIMEOUT_MS = 600_000;

interface HelperData extends SharedFeatureBuffer {
  shardedGramHelper: true;
  rows: number;
  cols: number;
  scale: SharedArrayBuffer;
  withBias: boolean;
  /** The helper's own D x D accumulator. */
  out: SharedArrayBuffer;
  control: SharedArrayBuffer;
  start: number;
  end: number;
}

/** How many threads a Gram of this size is worth (1: none). */
export function gramThreads(rows: number, dim: number, cores = availableParallelism()): number {
  // About 250M multiply-adds (~50 ms at this kernel's 5 GFLOP/s) per thread before a helper pays for its start.
  const work = (rows * dim * dim) / 2;
  return Math.max(1, Math.min(cores, Math.floor(work / 250_000_000), 16));
}

/**
 * The upper triangle (diagonal included) of sum_i (scale_i x~_i)(scale_i x~_i)^T, D x D row-major, as
 * `accumulateClippedGram` computes it on one thread, with rows split over `threads` threads.
 */
export function shardedClippedGram(data: Float32Array | Float64Array, rows: number, cols: number, scale: Float64Array, withBias: boolean, threads: number): Float64Array {
  const D = withBias ? cols + 1 : cols;
  const gram = new Float64Array(D * D);
  const shards = Math.max(1, Math.min(threads, rows));
  if (shards === 1) {
    accumulateClippedGram(data, rows, cols, scale, withBias, gram);
    return gram;
  }
  const features = sharedFeatureData(data);
  const sharedScale = toShared(scale, (b) => new Float64Array(b));
  const control = new Int32Array(new SharedArrayBuffer(8));
  const bounds = Array.from({ length: shards + 1 }, (_, s) => Math.round((s * rows) / shards));
  const partials: Float64Array[] = [];
  const helpers: Worker[] = [];
  try {
    for (let s = 1; s < shards; s++) {
      const out = new Float64Array(new SharedArrayBuffer(8 * D * D));
      partials.push(out);
      const helper: HelperData = {
        shardedGramHelper: true,
        ...featureBuffer(features),
        rows,
        cols,
        scale: sharedScale.buffer as SharedArrayBuffer,
        withBias,
        out: out.buffer as SharedArrayBuffer,
        control: control.buffer as SharedArrayBuffer,
        start: bounds[s],
        end: bounds[s + 1],
      };
      const w = new Worker(__filename, { workerData: helper });
      w.unref();
      // This thread blocks until the helpers are done, so a dying helper is found by the timeout; the
      // listener only keeps its error from being re-thrown here once this thread's event loop runs again.
      w.on('error', () => undefined);
      helpers.push(w);
    }
    accumulateClippedGram(features, rows, cols, sharedScale, withBias, gram, bounds[0], bounds[1]);
    waitForHelpers(control, { done: DONE, failed: FAILED }, helpers.length, HELPER_TIMEOUT_MS, 'Gram');
    for (const p of partials) for (let e = 0; e < gram.length; e++) gram[e] += p[e];
    return gram;
  } finally {
    for (const w of helpers) void w.terminate();
  }
}

// ---- a helper thread -----------------------------------------------------------------------------------

if (!isMainThread && (workerData as HelperData | undefined)?.shardedGramHelper) {
  const d = workerData as HelperData;
  const control = new Int32Array(d.control);
  try {
    accumulateClippedGram(featureView(d), d.rows, d.cols, new Float64Array(d.scale), d.withBias, new Float64Array(d.out), d.start, d.end);
  } catch {
    Atomics.store(control, FAILED, 1);
  }
  Atomics.add(control, DONE, 1);
  Atomics.notify(control, DONE);
}
