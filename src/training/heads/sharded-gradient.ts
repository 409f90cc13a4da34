/**
 * The DP_SGD gradient pass split over threads: the clipped gradient sum is a sum over rows, so each
 * thread sums a contiguous block of rows and the blocks are added in a fixed order. The privacy
 * analysis is unchanged (the noise is added once, to the total, by the caller).
 *
 * Synchronous on purpose, so that `trainDpSgd` stays a plain loop: the calling thread (a worker, such as
 * the head-training thread; Node also allows it on a main thread) publishes theta and the sample in
 * shared memory, bumps a generation counter, sums its own block, and waits (Atomics.wait) for the helper
 * threads' blocks. Features, labels and row norms are shared, never copied per step.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { clippedGradientSum, GradientPass } from './kernels';
import { FeatureMatrix } from './types';

// Control words (Int32): the step generation the helpers follow, how many helpers finished it, a stop flag,
// and an error flag a helper sets when its block failed.
const GEN = 0;
const DONE = 1;
const STOP = 2;
const FAILED = 3;
/** A helper that does not answer within this time is treated as dead (the pass fails; nothing is released). */
const HELPER_TIMEOUT_MS = 120_000;

interface HelperData extends SharedFeatureBuffer {
  shardedGradientHelper: true;
  rows: number;
  cols: number;
  labels: SharedArrayBuffer;
  normsSq: SharedArrayBuffer;
  theta: SharedArrayBuffer;
  include: SharedArrayBuffer;
  out: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  control: SharedArrayBuffer;
  numClasses: number;
  withBias: boolean;
  /** This helper's shard index (1..) and the row range of every shard. */
  shard: number;
  bounds: number[];
}

/** The array itself when it already fills a SharedArrayBuffer, else a copy in one (posting it to a thread then shares it). */
export function toShared<T extends Float32Array | Float64Array | Int32Array>(a: T, make: (b: SharedArrayBuffer) => T): T {
  if (a.buffer instanceof SharedArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a;
  const copy = make(new SharedArrayBuffer(a.byteLength));
  copy.set(a);
  return copy;
}

/** Feature data in shared memory (see toShared), keeping its element type. */
export function sharedFeatureData(data: Float32Array | Float64Array): Float32Array | Float64Array {
  return data instanceof Float32Array ? toShared(data, (b) => new Float32Array(b)) : toShared(data, (b) => new Float64Array(b));
}

/**
 * Blocks (Atomics.wait) until `count` helper threads have counted themselves in control[slots.done];
 * throws when one set control[slots.failed] or when `timeoutMs` passes (a dead helper never counts itself).
 */
export function waitForHelpers(control: Int32Array, slots: { done: number; failed: number }, count: number, timeoutMs: number, what: string): void {
  const deadline = Date.now() + timeoutMs;
  for (let done = Atomics.load(control, slots.done); done < count; done = Atomics.load(control, slots.done)) {
    if (Atomics.load(control, slots.failed)) break;
    if (Date.now() > deadline) throw new Error(`${what} helper threads did not answer within ${timeoutMs / 1000} s`);
    Atomics.wait(control, slots.done, done, 1000);
  }
  if (Atomics.load(control, slots.failed)) throw new Error(`a ${what} helper thread failed`);
}

/** Feature data as a helper thread receives it: the shared buffer and its element type. */
export interface SharedFeatureBuffer {
  features: SharedArrayBuffer;
  float64: boolean;
}

/** The buffer of feature data already in shared memory (sharedFeatureData), for a helper thread. */
export function featureBuffer(shared: Float32Array | Float64Array): SharedFeatureBuffer {
  return { features: shared.buffer as SharedArrayBuffer, float64: shared instanceof Float64Array };
}

/** The feature data a helper thread received (featureBuffer), as an array of its element type. */
export function featureView(b: SharedFeatureBuffer): Float32Array | Float64Array {
  return b.float64 ? new Float64Array(b.features) : new Float32Array(b.features);
}

/** The rows one shard sums, as views of the shared arrays. */
interface ShardRows {
  features: FeatureMatrix;
  labels: Int32Array;
  normsSq: Float64Array;
}

/** One shard's clipped gradient sum: rows start..end, through the same kernel as the single-thread pass. */
function shardPass(r: ShardRows, start: number, end: number, numClasses: number, withBias: boolean, theta: Float64Array, clip: number, include?: Uint8Array): GradientPass {
  const { cols } = r.features;
  const features = { data: r.features.data.subarray(start * cols, end * cols), rows: end - start, cols };
  return clippedGradientSum(features, r.labels.subarray(start, end), numClasses, withBias, theta, r.normsSq.subarray(start, end), clip, include?.subarray(start, end));
}

/** How many threads a gradient pass over this many multiply-adds is worth (1: no helpers). */
export function gradientThreads(rows: number, cols: number, numClasses: number, cores = availableParallelism()): number {
  // Below ~4M multiply-adds per pass a step takes a few ms and the hand-off would cost more than it saves.
  const work = rows * cols * numClasses;
  return Math.max(1, Math.min(cores, Math.floor(work / 4_000_000), 16));
}

export class ShardedGradient {
  private readonly helpers: Worker[] = [];
  private readonly control: Int32Array;
  private readonly theta: Float64Array;
  private readonly include: Uint8Array;
  private readonly out: Float64Array;
  private readonly stats: Float64Array;
  private readonly rows: ShardRows;
  private readonly bounds: number[];
  private readonly P: number;
  private generation = 0;
  private closed = false;

  /** `threads` counts the calling thread: threads - 1 helpers are started. */
  constructor(
    features: FeatureMatrix,
    labels: Int32Array,
    private readonly numClasses: number,
    private readonly withBias: boolean,
    normsSq: Float64Array,
    readonly threads: number,
  ) {
    if (!(threads >= 2)) throw new Error('a sharded gradient needs at least 2 threads');
    this.rows = {
      features: { data: sharedFeatureData(features.data), rows: features.rows, cols: features.cols },
      labels: toShared(labels, (b) => new Int32Array(b)),
      normsSq: toShared(normsSq, (b) => new Float64Array(b)),
    };
    const D = withBias ? features.cols + 1 : features.cols;
    this.P = numClasses * D;
    this.theta = new Float64Array(new SharedArrayBuffer(8 * this.P));
    this.include = new Uint8Array(new SharedArrayBuffer(features.rows));
    this.out = new Float64Array(new SharedArrayBuffer(8 * this.P * threads));
    this.stats = new Float64Array(new SharedArrayBuffer(16 * threads)); // lossSum, included per shard
    this.control = new Int32Array(new SharedArrayBuffer(16));
    this.bounds = Array.from({ length: threads + 1 }, (_, s) => Math.round((s * features.rows) / threads));
    for (let shard = 1; shard < threads; shard++) {
      const data: HelperData = {
        shardedGradientHelper: true,
        ...featureBuffer(this.rows.features.data),
        rows: features.rows,
        cols: features.cols,
        labels: this.rows.labels.buffer as SharedArrayBuffer,
        normsSq: this.rows.normsSq.buffer as SharedArrayBuffer,
        theta: this.theta.buffer as SharedArrayBuffer,
        include: this.include.buffer as SharedArrayBuffer,
        out: this.out.buffer as SharedArrayBuffer,
        stats: this.stats.buffer as SharedArrayBuffer,
        control: this.control.buffer as SharedArrayBuffer,
        numClasses,
        withBias,
        shard,
        bounds: this.bounds,
      };
      const w = new Worker(__filename, { workerData: data });
      w.unref();
      // Passes block this thread, so a dying helper is found by the pass's timeout; the listener only keeps
      // its error from being re-thrown here once this thread's event loop runs again.
      w.on('error', () => undefined);
      this.helpers.push(w);
    }
  }

  /** The same pass as `clippedGradientSum` over all rows (block sums added in shard order). */
  pass(theta: Float64Array, clip: number, include?: Uint8Array): GradientPass {
    if (this.closed) throw new Error('sharded gradient closed');
    if (theta.length !== this.P) throw new Error(`theta has ${theta.length} entries, expected ${this.P}`);
    this.theta.set(theta);
    if (include) this.include.set(include);
    this.params[0] = clip;
    this.params[1] = include ? 1 : 0;
    Atomics.store(this.control, DONE, 0);
    this.generation++;
    Atomics.store(this.control, GEN, this.generation);
    Atomics.notify(this.control, GEN);

    const own = shardPass(this.rows, this.bounds[0], this.bounds[1], this.numClasses, this.withBias, this.theta, clip, include ? this.include : undefined);
    waitForHelpers(this.control, { done: DONE, failed: FAILED }, this.threads - 1, HELPER_TIMEOUT_MS, 'gradient');
    const gradSum = own.gradSum;
    let lossSum = own.lossSum;
    let included = own.included;
    for (let s = 1; s < this.threads; s++) {
      const o = s * this.P;
      for (let e = 0; e < this.P; e++) gradSum[e] += this.out[o + e];
      lossSum += this.stats[2 * s];
      included += this.stats[2 * s + 1];
    }
    return { gradSum, lossSum, included };
  }

  /** The step's clip norm and sampling flag, in shard 0's stats slots (shard 0 reports by return value). */
  private get params(): Float64Array {
    return this.stats.subarray(0, 2);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control, STOP, 1);
    this.generation++;
    Atomics.store(this.control, GEN, this.generation);
    Atomics.notify(this.control, GEN);
    for (const w of this.helpers) void w.terminate();
  }
}

// ---- a helper thread -----------------------------------------------------------------------------------

if (!isMainThread && (workerData as HelperData | undefined)?.shardedGradientHelper) {
  const d = workerData as HelperData;
  const control = new Int32Array(d.control);
  const rows: ShardRows = {
    features: { data: featureView(d), rows: d.rows, cols: d.cols },
    labels: new Int32Array(d.labels),
    normsSq: new Float64Array(d.normsSq),
  };
  const theta = new Float64Array(d.theta);
  const include = new Uint8Array(d.include);
  const P = theta.length;
  const out = new Float64Array(d.out, 8 * P * d.shard, P);
  const stats = new Float64Array(d.stats);
  const [start, end] = [d.bounds[d.shard], d.bounds[d.shard + 1]];
  const helpers = d.bounds.length - 2;
  let seen = 0;
  for (;;) {
    Atomics.wait(control, GEN, seen);
    seen = Atomics.load(control, GEN);
    if (Atomics.load(control, STOP)) break;
    try {
      const r = shardPass(rows, start, end, d.numClasses, d.withBias, theta, stats[0], stats[1] === 1 ? include : undefined);
      out.set(r.gradSum);
      stats[2 * d.shard] = r.lossSum;
      stats[2 * d.shard + 1] = r.included;
    } catch {
      Atomics.store(control, FAILED, 1);
    }
    if (Atomics.add(control, DONE, 1) + 1 === helpers) Atomics.notify(control, DONE);
  }
}
