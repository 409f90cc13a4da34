/**
 * Runs a backbone's ONNX graph in a worker thread for serving.
 *
 * onnxruntime-node's `session.run` occupies the calling JavaScript thread for the whole forward pass.
 * On the main thread that would stop the HTTP server, GraphQL and image decoding for every batch, so no
 * requests could gather while the backbone runs. Here the session lives in its own thread: the main
 * thread keeps accepting, decoding and queueing requests while a batch is computed, which is what lets
 * the micro-batcher form full batches under load.
 *
 * The thread loads the same verified ONNX file the platform's extractor uses (its path, input/output
 * names, layout and pooling come from that extractor), so served features equal training features.
 * A pass's images arrive as decoded uint8 pixels packed in one transferred buffer and are resized and
 * normalised here, with the training path's code: the event loop neither converts nor allocates the
 * four-times-larger float32 tensor. Features are transferred back. A thread that dies fails its pending
 * batches and is started again on the next batch.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { BackboneSpec, FeatureExtractor } from '../../training/backbones';
import { PackedImage, packPass, PassImage, preprocessPass, unpackPass } from './image-input';

export interface BackboneThreadConfig {
  spec: BackboneSpec;
  onnxPath: string;
  inputName: string;
  outputName: string;
  layout: 'NHWC' | 'NCHW';
  pooling: 'global-avg' | 'none';
  inputSize: number;
  featureDim: number;
  featureLayer: string;
  threads?: number;
  /** Let the session's pool threads spin between layers (only for a session that runs alone: see BackbonePool). */
  spin?: boolean;
  executionProviders?: string[];
}

type Request = { id: number; buffer: ArrayBuffer; layout: PackedImage[] };
type Reply = { kind: 'ready' } | { kind: 'startError'; message: string } | { id: number; features: ArrayBuffer } | { id: number; error: string };

const THREAD_FLAG = 'privatuneBackboneThread';

/** The platform extractor's ONNX graph, as a thread config; undefined when it does not run on ONNX Runtime. */
export function threadConfigFor(fx: FeatureExtractor, names: { exportedInput: string; exportedOutput: string }): BackboneThreadConfig | undefined {
  if (fx.engine !== 'onnx' || !fx.info.onnxPath) return undefined;
  const spec = fx.spec;
  const layer = spec.featureLayers.find((l) => l.name === fx.featureLayer);
  if (!layer) return undefined;
  const registeredOnnx = spec.source.kind === 'onnx';
  return {
    spec,
    onnxPath: fx.info.onnxPath,
    // Registered ONNX backbones run as declared; exported TF.js backbones have the exporter's fixed names, NHWC, pooling inside the graph.
    inputName: registeredOnnx ? ((spec.source as { inputName?: string }).inputName ?? '') : names.exportedInput,
    outputName: registeredOnnx ? layer.node : names.exportedOutput,
    layout: registeredOnnx ? spec.input.layout : 'NHWC',
    pooling: registeredOnnx ? layer.pooling : 'none',
    inputSize: fx.inputSize,
    featureDim: fx.featureDim,
    featureLayer: fx.featureLayer,
    threads: fx.info.threads,
    executionProviders: fx.info.executionProviders,
  };
}

export class BackboneThread {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (f: Float32Array) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly config: BackboneThreadConfig) {}

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
            this.worker = worker;
            resolve(worker);
          } else {
            reject(new Error(`backbone thread could not start: ${m.message}`));
          }
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if ('error' in m) p.reject(new Error(m.error));
        else p.resolve(new Float32Array(m.features));
      });
      const fail = (err: Error) => {
        if (!ready) reject(err);
        this.worker = undefined;
        this.starting = undefined;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
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

  /** One forward pass over the images (copied into one buffer that is transferred to the thread). */
  async run(images: PassImage[]): Promise<Float32Array> {
    if (this.closed) throw new Error('backbone thread closed');
    const worker = await this.start();
    const { buffer, layout } = packPass(images);
    const id = this.nextId++;
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, buffer, layout } satisfies Request, [buffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}

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
 * At most `size` passes run at once (the micro-batcher's maxInFlight).
 */
export class BackbonePool {
  private readonly narrow: BackboneThread[];
  private readonly solo: BackboneThread | undefined;
  private readonly busy: boolean[];
  private inFlight = 0;
  /** Passes run on the solo thread (diagnostics). */
  soloPasses = 0;

  constructor(config: BackboneThreadConfig, readonly size: number, opts: { soloThreads?: number } = {}) {
    this.narrow = Array.from({ length: size }, () => new BackboneThread(config));
    this.busy = new Array<boolean>(size).fill(false);
    const soloThreads = opts.soloThreads ?? 0;
    if (soloThreads > (config.threads ?? 1)) this.solo = new BackboneThread({ ...config, threads: soloThreads, spin: true });
  }

  get hasSolo(): boolean {
    return this.solo !== undefined;
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

// ---- the thread --------------------------------------------------------------------------------------

if (!isMainThread && parentPort && workerData?.[THREAD_FLAG]) {
  const cfg = workerData[THREAD_FLAG] as BackboneThreadConfig;
  const port = parentPort;
  void (async () => {
    let extractor: FeatureExtractor;
    try {
      // Loaded here, inside the thread (native bindings are per thread).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { ort, OnnxExtractor } = require('../../training/backbones/engines/onnx-extractor') as typeof import('../../training/backbones/engines/onnx-extractor');
      const o = ort();
      const threads = Math.max(1, cfg.threads ?? 1);
      // As the platform's sessions (createOnnxSession), but spinning only when asked. Spinning pool threads
      // take the cores that the main thread needs to decode the next images and answer HTTP, which
      // serializes a busy server; a session that runs only when the backbone is otherwise idle (the solo
      // pass) spins, because waking a sleeping pool thread for every layer is what makes a lone pass slow
      // (measured on a 2-core VM at 224 px: 3.0-3.6 ms without spinning, 2.1-2.5 ms with it).
      const spin = cfg.spin === true && threads > 1 ? '1' : '0';
      const session = await o.InferenceSession.create(cfg.onnxPath, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        executionProviders: cfg.executionProviders ?? ['cpu'],
        extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: '0' } } },
      });
      const s = { session, providers: cfg.executionProviders ?? ['cpu'], threads };
      const inputName = cfg.inputName || s.session.inputNames[0];
      extractor = new OnnxExtractor(
        cfg.spec,
        {
          backboneId: cfg.spec.id,
          engine: 'onnx',
          backend: `onnxruntime-${s.providers[0]}`,
          inputSize: cfg.inputSize,
          featureLayer: cfg.featureLayer,
          featureDim: cfg.featureDim,
          batchSize: 1024,
          threads: s.threads,
          requestedEngine: 'onnx',
          onnxPath: cfg.onnxPath,
          executionProviders: s.providers,
        },
        { session: s.session, inputName, outputName: cfg.outputName, layout: cfg.layout, pooling: cfg.pooling },
      );
    } catch (err) {
      port.postMessage({ kind: 'startError', message: (err as Error).message } satisfies Reply);
      return;
    }
    port.on('message', async (m: Request) => {
      try {
        const n = m.layout.length;
        const pixels = preprocessPass(unpackPass(m.buffer, m.layout), cfg.inputSize, cfg.spec.preprocessing);
        const features = await extractor.extract(pixels, n, { batchSize: n });
        const out = features.byteOffset === 0 && features.byteLength === features.buffer.byteLength ? features : features.slice();
        port.postMessage({ id: m.id, features: out.buffer as ArrayBuffer } satisfies Reply, [out.buffer as ArrayBuffer]);
      } catch (err) {
        port.postMessage({ id: m.id, error: (err as Error).message } satisfies Reply);
      }
    });
    port.postMessage({ kind: 'ready' } satisfies Reply);
  })();
}
