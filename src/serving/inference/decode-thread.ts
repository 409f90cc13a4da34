/**
 * Image decoding for serving, called from a worker thread instead of the event loop (except the one small
 * JPEG of a request where that costs less: image-input.ts, decodesOnCallingThread).
 *
 * Plain JPEGs are decoded right here, synchronously, in libjpeg-turbo (image-decode.ts); other images by libvips
 * on libuv's pool, and each sharp call also spends time on its calling thread: building the pipeline from
 * ~150 options and queueing it took 0.2-0.3 ms per 224 px JPEG, and in a CPU profile of bench:serving at
 * concurrency 32 it was 15% of the event loop's busy time, on a loop that was then close to saturated. In
 * this thread all of that leaves the loop that parses, authenticates and answers requests; the loop only
 * copies the encoded bytes across (they are small) and gets the pixels back in a transferred buffer.
 *
 * Decoding errors come back as values (the reason and message of decodeEncoded), so the caller maps them
 * to BAD_USER_INPUT for the right image. A thread that dies fails its pending decodes and is started again
 * by the next one. The server runs a few (`DecodeThreads`): libjpeg-turbo decodes one image at a time per
 * thread, so one thread would cap decoding at a few thousand small JPEGs per second, below what a GPU serves.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ThreadCalls } from '../../common/thread-calls';
import type { PassImage } from '../../training/backbones/pass';
import type { RawImage } from '../../training/backbones/preprocess';
import { decodeEncoded, DecodeFailure, DecodeResult, Decoder, passImage, PassDecoder, PassTarget } from './image-decode';

type Request = { id: number; bytes: ArrayBuffer; maxPixels: number; target?: PassTarget };
type Reply =
  | { id: number; pixels: ArrayBuffer; width: number; height: number; channels: RawImage['channels'] }
  | { id: number; tensor: ArrayBuffer }
  | ({ id: number } & DecodeFailure)
  | { id: number; error: string };

const THREAD_FLAG = 'privatuneDecodeThread';

export class DecodeThread {
  private worker: Worker | undefined;
  private readonly calls = new ThreadCalls<{ image: PassImage } | DecodeFailure>();
  private closed = false;
  /** Decodes sent to this thread so far (diagnostics). */
  decodes = 0;

  /** Decodes sent and not yet answered. */
  get pending(): number {
    return this.calls.pending;
  }

  /** Decodes encoded bytes in the thread (the bytes are copied; the caller keeps its buffer). */
  decode = (bytes: Uint8Array, maxPixels: number): Promise<DecodeResult> =>
    // Without a target the thread answers with the pixels as decoded, never a preprocessed tensor.
    this.call(bytes, maxPixels) as Promise<DecodeResult>;

  /** Decodes in the thread, and there too preprocesses an image larger than its preprocessed form (`passImage`). */
  decodeForPass = (bytes: Uint8Array, maxPixels: number, target: PassTarget): Promise<{ image: PassImage } | DecodeFailure> => this.call(bytes, maxPixels, target);

  private call(bytes: Uint8Array, maxPixels: number, target?: PassTarget): Promise<{ image: PassImage } | DecodeFailure> {
    if (this.closed) return Promise.reject(new Error('decode thread closed'));
    const worker = this.thread();
    this.decodes++;
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return this.calls.call((id) => worker.postMessage({ id, bytes: copy.buffer, maxPixels, target } satisfies Request, [copy.buffer]));
  }

  /** Refuses new decodes, lets those in flight finish (their requests are still being answered), then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    await this.calls.idle();
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(__filename, { workerData: { [THREAD_FLAG]: true } });
    // Not a reason to keep the process alive: pending decodes belong to requests, which do.
    worker.unref();
    worker.on('message', (m: Reply) => {
      if ('error' in m) this.calls.settle(m.id, { error: new Error(m.error) });
      else if ('reason' in m) this.calls.settle(m.id, { value: { reason: m.reason, message: m.message } });
      else if ('tensor' in m) this.calls.settle(m.id, { value: { image: new Float32Array(m.tensor) } });
      else this.calls.settle(m.id, { value: { image: { data: new Uint8Array(m.pixels), width: m.width, height: m.height, channels: m.channels } } });
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.calls.failAll(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`decode thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

/** Decode threads when SERVING_DECODE_THREADS is 0 (auto): one per core, up to 4. */
export function defaultDecodeThreads(): number {
  return Math.min(availableParallelism(), 4);
}

/** Decodes a process runs at once, across all its requests: enough to keep every decode thread busy. */
export function defaultDecodeSlots(): number {
  return Math.max(4, availableParallelism());
}

/**
 * Several decode threads, started as they are needed: each decode goes to the thread with the fewest
 * decodes in flight (a lone request always to the first, whose thread is warm).
 */
export class DecodeThreads {
  readonly threads: DecodeThread[];

  constructor(size: number) {
    this.threads = Array.from({ length: Math.max(1, size) }, () => new DecodeThread());
  }

  decode: Decoder = (bytes, maxPixels) => this.pick().decode(bytes, maxPixels);

  decodeForPass: PassDecoder = (bytes, maxPixels, target) => this.pick().decodeForPass(bytes, maxPixels, target);

  /** Lets every thread finish the decodes it holds, then ends them. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }

  private pick(): DecodeThread {
    return this.threads.reduce((best, t) => (t.pending < best.pending ? t : best));
  }
}

// ---- the thread --------------------------------------------------------------------------------------

if (!isMainThread && parentPort && workerData?.[THREAD_FLAG]) {
  const port = parentPort;
  port.on('message', async (m: Request) => {
    try {
      const r = await decodeEncoded(new Uint8Array(m.bytes), m.maxPixels);
      if ('reason' in r) {
        port.postMessage({ id: m.id, reason: r.reason, message: r.message } satisfies Reply);
        return;
      }
      const image = m.target ? passImage(r.image, m.target) : r.image;
      if (image instanceof Float32Array) {
        port.postMessage({ id: m.id, tensor: image.buffer as ArrayBuffer } satisfies Reply, [image.buffer as ArrayBuffer]);
        return;
      }
      // Pixels that own their whole buffer (libjpeg-turbo's) are transferred as they are; sharp's
      // output lives outside the JS heap and cannot be: it is copied into a buffer this thread can transfer.
      const { data, width, height, channels } = image;
      const owned = !Buffer.isBuffer(data) && data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      const pixels = (owned ? data.buffer : Uint8Array.from(data).buffer) as ArrayBuffer;
      port.postMessage({ id: m.id, pixels, width, height, channels } satisfies Reply, [pixels]);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message } satisfies Reply);
    }
  });
}
