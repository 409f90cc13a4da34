/**
 * A backbone's ONNX graph in a worker thread.
 *
 * onnxruntime-node's `session.run` occupies the calling JavaScript thread for the whole forward pass. On
 * the main thread that stops the HTTP server, GraphQL and image decoding for every batch: serving could
 * not gather requests while the backbone runs, and a finetune job in an API process (PRIVATUNE_ROLE=all)
 * would freeze every request for as long as each of its batches runs. Here the session lives in its own
 * thread and the event loop stays free. Both paths use it: the serving pool (serving/inference/
 * backbone-pool.ts) and the finetune worker's feature extraction.
 *
 * The thread loads the same verified ONNX file the platform's extractor uses (its path, input/output
 * names, layout and pooling come from that extractor), so its features equal the extractor's. A pass's
 * images arrive as decoded uint8 pixels packed in one transferred buffer and are prepared here (resized,
 * and normalised unless the graph does it itself), with the training path's code: the event loop neither
 * converts nor allocates the four-times-larger float32 tensor. Features are transferred back. A thread
 * that dies fails its pending passes and is started again on the next one. `PassSession` is the thread's
 * session and pass preparation; the serving pool also opens one on the main thread, for the pass of a
 * request alone in the process.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ThreadCalls } from '../../../common/thread-calls';
import { lowerThreadPriority } from '../../../common/thread-priority';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../onnx/keras-to-onnx';
import { PackedImage, packPass, PassImage, PassOutput, preprocessPass, unpackPass } from '../pass';
import type { BackboneSpec, FeatureExtractor } from '../types';
import { OnnxExtractor, ort } from './onnx-extractor';

export interface OnnxThreadConfig {
  spec: BackboneSpec;
  onnxPath: string;
  inputName: string;
  outputName: string;
  layout: 'NHWC' | 'NCHW';
  pooling: 'global-avg' | 'none';
  inputSize: number;
  featureDim: number;
  featureLayer: string;
  /** The exported graph normalises its input: passes are prepared without normalisation (FeatureExtractor.inputPreprocessing). */
  normalisesInGraph?: boolean;
  threads?: number;
  /** Let the session's pool threads spin between layers (only where no event loop needs the cores: see BackbonePool, BackbonesService). */
  spin?: boolean;
  /**
   * Run the thread at this (Linux) nice value, below the event loop and the decode thread, which then
   * preempt its passes (common/thread-priority.ts). Applies to the thread that calls session.run, i.e. to
   * the whole pass of a single-threaded session. 0 or absent: the process's priority.
   */
  nice?: number;
  executionProviders?: string[];
}

export interface OnnxPassOptions {
  /** Images per session.run; the pass is preprocessed and run in chunks of this size (default: all at once). */
  batchSize?: number;
}

type Request = { id: number; buffer: ArrayBuffer; layout: PackedImage[]; batchSize?: number };
type Reply = { kind: 'ready'; nice?: number } | { kind: 'startError'; message: string } | { id: number; features: ArrayBuffer; ms: number } | { id: number; error: string };

const THREAD_FLAG = 'privatuneOnnxThread';

/** The platform extractor's ONNX graph, as a thread config; undefined when it does not run on ONNX Runtime. */
export function onnxThreadConfig(fx: FeatureExtractor): OnnxThreadConfig | undefined {
  if (fx.engine !== 'onnx' || !fx.info.onnxPath) return undefined;
  const spec = fx.spec;
  const layer = spec.featureLayers.find((l) => l.name === fx.featureLayer);
  if (!layer) return undefined;
  const registeredOnnx = spec.source.kind === 'onnx';
  return {
    spec,
    onnxPath: fx.info.onnxPath,
    // Registered ONNX backbones run as declared; exported TF.js backbones have the exporter's fixed names, NHWC, pooling inside the graph.
    inputName: registeredOnnx ? ((spec.source as { inputName?: string }).inputName ?? '') : ONNX_INPUT_NAME,
    outputName: registeredOnnx ? layer.node : ONNX_OUTPUT_NAME,
    layout: registeredOnnx ? spec.input.layout : 'NHWC',
    pooling: registeredOnnx ? layer.pooling : 'none',
    inputSize: fx.inputSize,
    featureDim: fx.featureDim,
    featureLayer: fx.featureLayer,
    normalisesInGraph: fx.info.normalisesInGraph,
    threads: fx.info.threads,
    executionProviders: fx.info.executionProviders,
  };
}

export class OnnxExtractorThread {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private readonly calls = new ThreadCalls<PassOutput>();
  private closed = false;
  /** The thread's nice value once started (undefined where it could not be read: not Linux). */
  nice: number | undefined;

  constructor(readonly config: OnnxThreadConfig) {}

  /** Starts the thread and waits until its session is loaded. */
  start(): Promise<Worker> {
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: { [THREAD_FLAG]: this.config } });
      let ready = false;
      worker.on('message', (m: Reply) => {
        if ('kind' in m) {
          if (m.kind === 'ready') {
            ready = true;
            this.nice = m.nice;
            this.worker = worker;
            resolve(worker);
          } else {
            reject(new Error(`backbone thread could not start: ${m.message}`));
          }
          return;
        }
        this.calls.settle(m.id, 'error' in m ? { error: new Error(m.error) } : { value: { features: new Float32Array(m.features), computeMs: m.ms } });
      });
      const fail = (err: Error) => {
        if (!ready) reject(err);
        this.worker = undefined;
        this.starting = undefined;
        this.calls.failAll(err);
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`backbone thread exited with code ${code}`)));
    });
    const starting = this.starting;
    starting.catch(() => {
      if (this.starting === starting) this.starting = undefined;
    });
    return starting;
  }

  /** One forward pass over the images (copied into one buffer that is transferred to the thread): n x featureDim features. */
  async run(images: PassImage[], opts: OnnxPassOptions = {}): Promise<Float32Array> {
    return (await this.runTimed(images, opts)).features;
  }

  /** `run`, with the time the thread spent on the pass (a pass sent while another runs waits in its queue). */
  async runTimed(images: PassImage[], opts: OnnxPassOptions = {}): Promise<PassOutput> {
    if (this.closed) throw new Error('backbone thread closed');
    const worker = await this.start();
    if (this.closed) throw new Error('backbone thread closed'); // close() began while it started: it will not wait for this pass
    const { buffer, layout } = packPass(images);
    return this.calls.call((id) => worker.postMessage({ id, buffer, layout, batchSize: opts.batchSize } satisfies Request, [buffer]));
  }

  /**
   * Refuses new passes, waits for those in flight, then ends the thread. Terminating the thread during
   * session.run or while the session loads aborts the whole process (onnxruntime-node throws into a
   * terminated environment), so close never cuts a pass short.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.starting?.catch(() => undefined);
    await this.calls.idle();
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}

// ---- a pass, where it runs ----------------------------------------------------------------------------

/**
 * Input tensors reused from pass to pass: a fresh zero-filled 600 KB array per 224 px image cost as much
 * as normalising it (0.1 ms), and garbage for the collector under load. A buffer is taken for the length
 * of one session.run (passes may overlap while one awaits) and given back; only the largest is kept.
 */
class InputBuffers {
  private spare: Float32Array | undefined;

  take(length: number): Float32Array {
    const b = this.spare && this.spare.length >= length ? this.spare : new Float32Array(length);
    if (b === this.spare) this.spare = undefined;
    return b;
  }

  give(b: Float32Array): void {
    if (!this.spare || b.length > this.spare.length) this.spare = b;
  }
}

/**
 * A thread config's session and the passes it runs, in the thread that opens it: a backbone thread
 * (below), or the main thread for a lone request's pass (serving/inference/backbone-pool.ts). Images are
 * prepared with the training path's code into a reused input tensor, and run in chunks of `batchSize`.
 */
export class PassSession {
  private readonly inputs = new InputBuffers();

  private constructor(
    readonly extractor: FeatureExtractor,
    private readonly inputSize: number,
  ) {}

  static async open(cfg: OnnxThreadConfig): Promise<PassSession> {
    // onnxruntime-node is loaded by the thread that calls this (native bindings are per thread).
    const o = ort();
    const threads = Math.max(1, cfg.threads ?? 1);
    const providers = cfg.executionProviders ?? ['cpu'];
    // As the platform's sessions (createOnnxSession), but spinning only when asked. Spinning pool threads
    // take the cores that the main thread needs to decode the next images and answer HTTP, which
    // serializes a busy server; a session that runs only when the backbone is otherwise idle (the solo
    // and inline serving passes) or in a process without an API (training extraction in a worker) spins,
    // because waking a sleeping pool thread for every layer is slow (on a 2-core VM at 224 px a lone pass
    // takes 3.0-3.6 ms without spinning, 2.1-2.5 ms with it). Spinning stops when the pass returns
    // (`force_spinning_stop`): otherwise the pool threads went on spinning after each solo pass, taking
    // the cores from the narrow passes, decoding and HTTP that followed it (bench:serving at concurrency 8:
    // 259-280 -> 303-308 images/s, server CPU per request 6.4-6.8 -> 5.5 ms).
    const spin = cfg.spin === true && threads > 1 ? '1' : '0';
    const session = await o.InferenceSession.create(cfg.onnxPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: providers,
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: '0' }, force_spinning_stop: spin } },
    });
    const extractor = new OnnxExtractor(
      cfg.spec,
      {
        backboneId: cfg.spec.id,
        engine: 'onnx',
        backend: `onnxruntime-${providers[0]}`,
        inputSize: cfg.inputSize,
        featureLayer: cfg.featureLayer,
        featureDim: cfg.featureDim,
        batchSize: 1024,
        threads,
        requestedEngine: 'onnx',
        onnxPath: cfg.onnxPath,
        normalisesInGraph: cfg.normalisesInGraph,
        executionProviders: providers,
      },
      { session, inputName: cfg.inputName || session.inputNames[0], outputName: cfg.outputName, layout: cfg.layout, pooling: cfg.pooling },
    );
    return new PassSession(extractor, cfg.inputSize);
  }

  /** One pass: n x featureDim features, in a fresh array of exactly that length. */
  async run(images: PassImage[], batchSize?: number): Promise<Float32Array> {
    const n = images.length;
    const bs = Math.max(1, Math.min(n, batchSize ?? n));
    if (bs === n) return this.runChunk(images);
    // Chunk by chunk, so a large pass never holds more than one chunk's float32 tensor.
    const D = this.extractor.featureDim;
    const out = new Float32Array(n * D);
    for (let s = 0; s < n; s += bs) out.set(await this.runChunk(images.slice(s, s + bs)), s * D);
    return out;
  }

  private async runChunk(chunk: PassImage[]): Promise<Float32Array> {
    const S = this.inputSize;
    const input = this.inputs.take(chunk.length * S * S * 3);
    try {
      return await this.extractor.extract(preprocessPass(chunk, S, this.extractor.inputPreprocessing, input), chunk.length, { batchSize: chunk.length });
    } finally {
      this.inputs.give(input);
    }
  }

  close(): Promise<void> {
    return this.extractor.dispose();
  }
}

// ---- the thread --------------------------------------------------------------------------------------

if (!isMainThread && parentPort && workerData?.[THREAD_FLAG]) {
  const cfg = workerData[THREAD_FLAG] as OnnxThreadConfig;
  const port = parentPort;
  void (async () => {
    let passes: PassSession;
    // Before the session exists, so that its intra-op pool threads (created with it) inherit the priority.
    const nice = lowerThreadPriority(cfg.nice ?? 0);
    try {
      passes = await PassSession.open(cfg);
    } catch (err) {
      port.postMessage({ kind: 'startError', message: (err as Error).message } satisfies Reply);
      return;
    }
    // One pass at a time, in the order sent. onnxruntime-node starts a run from setImmediate, so a pass that
    // arrives while another awaits its run would otherwise start its clock (and prepare its input) at once,
    // and report the wait for the other as its own time.
    let previous: Promise<void> = Promise.resolve();
    const runPass = async (m: Request) => {
      try {
        const started = performance.now();
        const out = await passes.run(unpackPass(m.buffer, m.layout), m.batchSize);
        port.postMessage({ id: m.id, features: out.buffer as ArrayBuffer, ms: performance.now() - started } satisfies Reply, [out.buffer as ArrayBuffer]);
      } catch (err) {
        port.postMessage({ id: m.id, error: (err as Error).message } satisfies Reply);
      }
    };
    port.on('message', (m: Request) => {
      previous = previous.then(() => runPass(m));
    });
    port.postMessage({ kind: 'ready', nice } satisfies Reply);
  })();
}
