/**
 * Dynamic micro-batching for one backbone (pure: no NestJS, no database).
 *
 * Requests are admitted first (`admit`: bounded, refused with OVERLOADED when the backbone already holds
 * `maxQueue` images being decoded, queued or computed), then submit their preprocessed images (`submit`).
 * Queued images from any number of requests and models are run as ONE backbone forward pass when:
 *   - `maxBatchSize` images are queued, or
 *   - the backbone is idle and no admitted image is still being decoded (nothing more is coming, so
 *     waiting would only add latency: a lone request runs at once), or
 *   - the oldest queued image has waited `maxDelayMs` (images still being decoded are not waited for
 *     any longer than that).
 * At most `maxInFlight` batches are out at once per backbone (the server gives two per engine thread: one
 * running, the next queued in the thread); while they are, new images queue up and form the next batch.
 * Each caller gets the feature rows of its own images, in order.
 * Images are opaque here (`T`): `run` turns a pass's images into the backbone's input.
 */
import type { PassOutput } from '../../training/backbones/pass';
import { OverloadedError } from '../serving.errors';

export interface MicroBatcherOptions<T> {
  /** For messages and metrics, e.g. `mobilenet_v2/block_13_expand_relu@96`. */
  name: string;
  maxBatchSize: number;
  maxDelayMs: number;
  /** Most admitted images (being decoded, queued or computed) at once. */
  maxQueue: number;
  /** Forward passes handed out at once, running or queued in an engine thread (default 1). */
  maxInFlight?: number;
  featureDim: number;
  /**
   * One backbone forward pass: n images -> n x featureDim features, with the engine's own time for them
   * where it can have queued the pass behind another (that wait then counts as queue time, not compute).
   */
  run(images: T[]): Promise<Float32Array | PassOutput>;
  /** Called once per forward pass. */
  onBatch?(stats: { size: number; computeMs: number; queueMs: number[]; failed: boolean }): void;
}

interface Queued<T> {
  ticket: Ticket;
  index: number;
  image: T | null;
  enqueuedAt: number;
}

/** One request's admission: its images count against the queue bound until `release`. */
export class Ticket {
  submitted = false;
  released = false;
  features: Float32Array[] = [];
  remaining = 0;
  resolve: ((f: Float32Array[]) => void) | undefined;
  reject: ((e: Error) => void) | undefined;
  constructor(readonly images: number) {}
}

export class MicroBatcher<T> {
  private queue: Queued<T>[] = [];
  private admitted = 0;
  private preparing = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Forward passes run so far (for tests and diagnostics). */
  batches = 0;

  constructor(readonly opts: MicroBatcherOptions<T>) {
    if (!(opts.maxBatchSize >= 1) || !(opts.maxQueue >= 1) || !(opts.maxDelayMs >= 0)) throw new Error('invalid micro-batcher options');
  }

  /** Images admitted and not yet finished. */
  get load(): number {
    return this.admitted;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Reserves room for n images or throws OverloadedError (nothing is queued forever). */
  admit(n: number): Ticket {
    if (this.closed) throw new OverloadedError(`backbone ${this.opts.name} is shutting down`);
    if (this.admitted + n > this.opts.maxQueue) {
      throw new OverloadedError(`backbone ${this.opts.name} is at capacity (${this.admitted} of ${this.opts.maxQueue} images in flight); retry later`, {
        inFlight: this.admitted,
        limit: this.opts.maxQueue,
        retryable: true,
      });
    }
    this.admitted += n;
    this.preparing += n;
    return new Ticket(n);
  }

  /** Queues the admitted request's images; resolves with their feature rows, in order. */
  submit(ticket: Ticket, images: T[]): Promise<Float32Array[]> {
    if (ticket.released) return Promise.reject(new Error('request already finished'));
    if (ticket.submitted) return Promise.reject(new Error('request already submitted'));
    if (images.length !== ticket.images) return Promise.reject(new Error(`admitted ${ticket.images} images, submitted ${images.length}`));
    ticket.submitted = true;
    this.preparing -= ticket.images;
    ticket.remaining = images.length;
    ticket.features = new Array(images.length);
    const done = new Promise<Float32Array[]>((resolve, reject) => {
      ticket.resolve = resolve;
      ticket.reject = reject;
    });
    const now = performance.now();
    images.forEach((image, index) => this.queue.push({ ticket, index, image, enqueuedAt: now }));
    if (images.length === 0) ticket.resolve!([]);
    this.schedule();
    return done;
  }

  /**
   * Ends a request (answered, failed or timed out): frees its room, and drops its images that are still
   * queued so that an abandoned request costs no compute.
   */
  release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.admitted -= ticket.images;
    if (!ticket.submitted) {
      this.preparing -= ticket.images;
    } else if (ticket.remaining > 0) {
      this.queue = this.queue.filter((q) => q.ticket !== ticket);
    }
    // The caller has stopped waiting (it released the ticket): its promise is simply never settled.
    ticket.resolve = ticket.reject = undefined;
    this.schedule();
  }

  /** Refuses new work; queued requests are failed. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const q of this.queue.splice(0)) q.ticket.reject?.(new OverloadedError(`backbone ${this.opts.name} is shutting down`));
  }

  private schedule(): void {
    if (this.inFlight >= (this.opts.maxInFlight ?? 1) || this.queue.length === 0) {
      if (this.queue.length === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      return;
    }
    const waited = performance.now() - this.queue[0].enqueuedAt;
    const moreComing = this.preparing > 0;
    if (this.queue.length >= this.opts.maxBatchSize || !moreComing || waited >= this.opts.maxDelayMs) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      void this.runBatch();
      this.schedule(); // another engine may be free for what is left
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, Math.max(0, this.opts.maxDelayMs - waited));
    }
  }

  private async runBatch(): Promise<void> {
    const items = this.queue.splice(0, this.opts.maxBatchSize);
    const n = items.length;
    const D = this.opts.featureDim;
    this.inFlight++;
    const images = items.map((q) => q.image!);
    for (const q of items) q.image = null;
    const started = performance.now();
    const queueMs = items.map((q) => started - q.enqueuedAt);
    this.batches++;
    let failed = false;
    let computeMs: number | undefined;
    try {
      const result = await this.opts.run(images);
      const out = result instanceof Float32Array ? result : result.features;
      if (!(result instanceof Float32Array)) computeMs = result.computeMs;
      if (out.length !== n * D) throw new Error(`backbone returned ${out.length} values for ${n} images of ${D} features`);
      for (let i = 0; i < n; i++) {
        const { ticket, index } = items[i];
        if (ticket.released) continue;
        ticket.features[index] = out.subarray(i * D, (i + 1) * D);
        if (--ticket.remaining === 0) ticket.resolve?.(ticket.features);
      }
    } catch (err) {
      failed = true;
      const error = err instanceof Error ? err : new Error(String(err));
      for (const { ticket } of items) if (!ticket.released) ticket.reject?.(error);
    } finally {
      this.inFlight--;
      const elapsed = performance.now() - started;
      const waited = computeMs === undefined ? 0 : Math.max(0, elapsed - computeMs);
      try {
        this.opts.onBatch?.({ size: n, computeMs: elapsed - waited, queueMs: waited > 0 ? queueMs.map((q) => q + waited) : queueMs, failed });
      } catch {
        /* metrics never break serving */
      }
      this.schedule();
    }
  }
}
