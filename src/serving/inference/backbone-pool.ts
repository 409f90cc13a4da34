import { OnnxExtractorThread, type OnnxThreadConfig } from '../../training/backbones/engines/onnx-thread';
import type { PassImage } from '../../training/backbones';

/**
 * Serving threads on one backbone, each with its own session.
 *
 * - `size` narrow threads: on CPU, N single-threaded sessions running N batches side by side use the cores
 *   without the per-layer thread synchronisation of one multi-threaded session (which costs dearly when
 *   the cores are also busy with HTTP and decoding). This is the path under load.
 * - An optional solo thread whose session has `soloThreads` intra-op threads (all cores): used only when
 *   no other pass is in flight, so that a lone request (the latency case: concurrency 1) gets every core
 *   instead of waiting on one, and never competes with a narrow pass. Its pool threads spin between
 *   layers, as a lone pass has the cores to itself.
 * At most `size` passes run at once (the micro-batcher's maxInFlight). The narrow threads run at the
 * config's nice value (SERVING_BACKBONE_NICE), so that under load the event loop and the decode thread
 * preempt passes rather than queue behind them.
 */
export class BackbonePool {
  private readonly narrow: OnnxExtractorThread[];
  private readonly solo: OnnxExtractorThread | undefined;
  private readonly busy: boolean[];
  private inFlight = 0;
  /** Passes run on the solo thread (diagnostics). */
  soloPasses = 0;

  constructor(config: OnnxThreadConfig, readonly size: number, opts: { soloThreads?: number } = {}) {
    this.narrow = Array.from({ length: size }, () => new OnnxExtractorThread(config));
    this.busy = new Array<boolean>(size).fill(false);
    const soloThreads = opts.soloThreads ?? 0;
    // The solo pass runs only when nothing else does: nothing to yield to, so it keeps the process's priority.
    if (soloThreads > (config.threads ?? 1)) this.solo = new OnnxExtractorThread({ ...config, threads: soloThreads, spin: true, nice: 0 });
  }

  get hasSolo(): boolean {
    return this.solo !== undefined;
  }

  /** The narrow threads' nice value once started (undefined where it cannot be read). */
  get nice(): number | undefined {
    return this.narrow[0]?.nice;
  }

  async start(): Promise<void> {
    await Promise.all([...this.narrow, ...(this.solo ? [this.solo] : [])].map((t) => t.start()));
  }

  /** Runs on the solo thread when nothing else runs, else on a free narrow thread. */
  async run(images: PassImage[]): Promise<Float32Array> {
    if (this.solo && this.inFlight === 0) {
      this.inFlight++;
      this.soloPasses++;
      try {
        return await this.solo.run(images);
      } finally {
        this.inFlight--;
      }
    }
    let i = this.busy.indexOf(false);
    if (i < 0) i = 0;
    this.busy[i] = true;
    this.inFlight++;
    try {
      return await this.narrow[i].run(images);
    } finally {
      this.busy[i] = false;
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.narrow, ...(this.solo ? [this.solo] : [])].map((t) => t.close()));
  }
}
