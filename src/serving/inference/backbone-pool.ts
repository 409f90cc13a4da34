import { OnnxExtractorThread, PassSession, type OnnxThreadConfig } from '../../training/backbones/engines/onnx-thread';
import type { PassImage, RawImage } from '../../training/backbones';
import type { PassOutput } from '../../training/backbones/pass';

/** A decoded mid-gray RGB image, size x size: what a pass is warmed up and timed on. */
export function grayImage(size: number): RawImage {
  return { data: new Uint8Array(size * size * 3).fill(128), width: size, height: size, channels: 3 };
}

/**
 * The fewest images per engine run whose measured rate is within `tolerance` of the best. The measurement
 * sees the passes alone; in the server a smaller run also leaves more of the caches to the event loop and
 * the decoding (at 32 clients on a 2-core VM, 0.46-0.48 ms of event loop per request with runs of 1
 * against 0.62-0.67 with runs of 4), and a server that measured runs of 2 at a few percent faster than 1,
 * in the noise of a shared machine, served 10% fewer images than one that kept 1 (docs/benchmarks.md).
 */
export function chooseImagesPerRun(rates: Map<number, number>, tolerance = 0.03): number {
  if (rates.size === 0) throw new Error('no engine run size measured');
  const best = Math.max(...rates.values());
  return Math.min(...[...rates].filter(([, rate]) => rate >= best * (1 - tolerance)).map(([size]) => size));
}

/** A session on the main thread for the pass of a request that is alone in the process. */
export interface InlinePassOptions {
  /** Its intra-op threads (all cores). */
  threads: number;
  /**
   * The longest pass it may block the event loop for: at start, a lone pass of one gray image is timed
   * on a serving thread with as many intra-op threads (the median of three after a first), and above this
   * the pool runs without an inline session. A request arriving during an inline pass waits that long.
   */
  maxMs: number;
  /** Whether no other request is being served in this process (nothing else needs the event loop). */
  alone: () => boolean;
}

/**
 * Where a backbone's forward passes run, each engine with its own session.
 *
 * - `size` narrow threads: on CPU, N single-threaded sessions running N batches side by side use the cores
 *   without the per-layer thread synchronisation of one multi-threaded session (which costs dearly when
 *   the cores are also busy with HTTP and decoding). This is the path under load.
 * - An optional solo thread whose session has `soloThreads` intra-op threads (all cores): used only when
 *   no other pass is in flight, so that a lone pass gets every core instead of waiting on one, and never
 *   competes with a narrow pass. Its pool threads spin between layers, as a lone pass has the cores to itself.
 * - An optional inline session, like the solo one but on the main thread: used instead of it when the
 *   request is also alone in the process (`alone`). The event loop has nothing else to do during that
 *   pass, and running it where the request is saves packing its pixels for a thread, waking that thread
 *   and being woken by it (0.15-0.3 ms of a 3 ms pass at 224 px on a 2-core VM). onnxruntime-node runs a
 *   session on the calling thread, so the loop is blocked for the pass: hence `maxMs`.
 * The micro-batcher gives the pool up to two passes per narrow thread (one running, one queued in the
 * thread; at most `size` run at once), and a narrow thread runs a pass in engine runs of `imagesPerRun`
 * images (tuneImagesPerRun). The narrow threads run at the
 * config's nice value (SERVING_BACKBONE_NICE), so that under load the event loop and the decode thread
 * preempt passes rather than queue behind them.
 */
export class BackbonePool {
  private readonly narrow: OnnxExtractorThread[];
  private readonly solo: OnnxExtractorThread | undefined;
  /** Passes given to each narrow thread and not yet returned. */
  private readonly passes: number[];
  private inline: PassSession | undefined;
  /** The inline session's latest pass (close waits for it before releasing the session). */
  private inlinePass: Promise<unknown> | undefined;
  private inFlight = 0;
  /** Passes run on the solo thread, inline and on each narrow thread (diagnostics). */
  soloPasses = 0;
  inlinePasses = 0;
  readonly narrowPasses: number[];
  /** A lone pass's time at start (ms, median of three), whether or not it qualified for the inline session. */
  inlineCalibrationMs: number | undefined;
  /**
   * Images per session.run on the narrow threads: a larger pass runs in chunks of this many, one after the
   * other (undefined: the whole pass at once). See tuneImagesPerRun.
   */
  imagesPerRun: number | undefined;

  constructor(
    private readonly config: OnnxThreadConfig,
    readonly size: number,
    private readonly opts: { soloThreads?: number; inline?: InlinePassOptions } = {},
  ) {
    this.narrow = Array.from({ length: size }, () => new OnnxExtractorThread(config));
    this.passes = new Array<number>(size).fill(0);
    this.narrowPasses = new Array<number>(size).fill(0);
    const soloThreads = opts.soloThreads ?? 0;
    // The solo pass runs only when nothing else does: nothing to yield to, so it keeps the process's priority.
    if (soloThreads > (config.threads ?? 1)) this.solo = new OnnxExtractorThread({ ...config, threads: soloThreads, spin: true, nice: 0 });
  }

  get hasSolo(): boolean {
    return this.solo !== undefined;
  }

  get hasInline(): boolean {
    return this.inline !== undefined;
  }

  /** The narrow threads' nice value once started (undefined where it cannot be read). */
  get nice(): number | undefined {
    return this.narrow[0]?.nice;
  }

  /** Every serving thread: the narrow ones and the solo one. */
  private get threads(): OnnxExtractorThread[] {
    return this.solo ? [...this.narrow, this.solo] : this.narrow;
  }

  async start(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.start()));
    const inline = this.opts.inline;
    if (inline && inline.maxMs > 0) {
      // Timed on a thread with as many intra-op threads (so a slow backbone never blocks the loop to find
      // out), and the inline session opened only if it qualifies.
      this.inlineCalibrationMs = await this.timeLonePass(this.solo ?? this.narrow[0]);
      if (this.inlineCalibrationMs <= inline.maxMs) {
        const session = await PassSession.open({ ...this.config, threads: inline.threads, spin: true, nice: 0 });
        await session.run([grayImage(this.config.inputSize)]); // its first run allocates its buffers
        this.inline = session;
      }
    }
  }

  /** A lone pass of one image on this thread: the median of three, after a first run. */
  private async timeLonePass(thread: OnnxExtractorThread): Promise<number> {
    const gray = grayImage(this.config.inputSize);
    await thread.run([gray]);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await thread.run([gray]);
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[1];
  }

  /**
   * Measures the narrow threads' images/s at each number of images per session.run, on passes of
   * `passSize` gray images, every thread at once as under load, and keeps one (chooseImagesPerRun).
   * Batching a pass saves hand-offs between the event loop and a thread, but ONNX Runtime on CPU runs a
   * batch no faster per image, and on some machines slower: a batch's activations overflow the caches the
   * threads share (on a 2-core Zen 5 VM at 224 px, runs of 4 images at 0.81-0.95 of runs of 1). Each size
   * is measured `rounds` times, interleaved, and its best kept, so that a slow moment of a shared machine
   * can only understate a size; its first pass, which sizes the session's buffers for that shape, is not
   * timed.
   */
  async tuneImagesPerRun(sizes: number[], passSize: number, opts: { passesPerThread?: number; rounds?: number } = {}): Promise<Map<number, number>> {
    const pass = new Array<PassImage>(passSize).fill(grayImage(this.config.inputSize));
    const all = (batchSize: number, passes: number) =>
      Promise.all(
        this.narrow.map(async (t) => {
          for (let i = 0; i < passes; i++) await t.run(pass, { batchSize });
        }),
      );
    const rates = new Map<number, number>();
    for (const size of sizes) await all(size, 1);
    const passes = opts.passesPerThread ?? 2;
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      for (const size of sizes) {
        const started = performance.now();
        await all(size, passes);
        const rate = (this.size * passes * passSize * 1000) / (performance.now() - started);
        rates.set(size, Math.max(rates.get(size) ?? 0, rate));
      }
    }
    this.imagesPerRun = chooseImagesPerRun(rates);
    return rates;
  }

  /** One pass's features (see runTimed). */
  async run(images: PassImage[]): Promise<Float32Array> {
    return (await this.runTimed(images)).features;
  }

  /**
   * Runs inline when the request is alone, else on the solo thread when nothing else runs, else on the
   * narrow thread with the fewest passes; with the time the engine spent on it.
   */
  async runTimed(images: PassImage[]): Promise<PassOutput> {
    if (this.inFlight === 0) {
      const inline = this.inline && this.opts.inline!.alone() ? this.inline : undefined;
      if (inline || this.solo) {
        this.inFlight++;
        try {
          if (inline) {
            this.inlinePasses++;
            const started = performance.now();
            const pass = inline.run(images);
            this.inlinePass = pass.catch(() => undefined);
            return { features: await pass, computeMs: performance.now() - started };
          }
          this.soloPasses++;
          return await this.solo!.runTimed(images);
        } finally {
          this.inFlight--;
        }
      }
    }
    // The narrow thread with the fewest passes: a second one waits in its thread's queue and starts as
    // soon as the first returns, without waiting for the event loop to hand it over.
    let i = 0;
    for (let j = 1; j < this.size; j++) if (this.passes[j] < this.passes[i]) i = j;
    this.passes[i]++;
    this.narrowPasses[i]++;
    this.inFlight++;
    try {
      return await this.narrow[i].runTimed(images, { batchSize: this.imagesPerRun });
    } finally {
      this.passes[i]--;
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
    const inline = this.inline;
    this.inline = undefined;
    await this.inlinePass;
    await inline?.close();
  }
}
