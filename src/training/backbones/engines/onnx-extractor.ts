/**
 * ONNX engine: onnxruntime-node sessions.
 *
 * - Intra-op threads = number of cores (os.availableParallelism), inter-op 1, sequential execution, graph
 *   optimisation level `all`.
 * - Execution providers: CPU always. The onnxruntime-node npm package ships CUDA support as a separate
 *   provider library (libonnxruntime_providers_cuda.so) that its install script downloads; this project
 *   skips that script (.npmrc `onnxruntime-node-install=skip`), so the library is normally absent. When it is
 *   present next to the binding (a GPU host whose operator ran the install with CUDA), sessions are created
 *   with ['cuda', 'cpu']; if that fails they are created on CPU and the reason is kept.
 *   Env ORT_EXECUTION_PROVIDERS=cpu forces CPU.
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { BackboneError, type BackboneSpec, type ExtractorInfo } from '../types';
import { BatchExtractor } from './batch-extractor';

let ortModule: typeof OrtTypes | undefined;

/** onnxruntime-node, loaded on first use (its native binding costs ~100 ms to load). */
export function ort(): typeof OrtTypes {
  if (!ortModule) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      ortModule = require('onnxruntime-node') as typeof OrtTypes;
    } catch (e) {
      throw new BackboneError('BACKBONE_ENGINE_UNAVAILABLE', `onnxruntime-node cannot be loaded: ${(e as Error).message}`);
    }
  }
  return ortModule;
}

/** Whether the CUDA provider library of onnxruntime-node is installed next to its binding. */
export function cudaProviderInstalled(): boolean {
  try {
    const root = join(dirname(require.resolve('onnxruntime-node')), '..', 'bin');
    const stack = [root];
    while (stack.length) {
      const dir = stack.pop()!;
      if (!existsSync(dir)) continue;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) stack.push(join(dir, e.name));
        else if (/onnxruntime_providers_cuda\.(so|dll)/.test(e.name)) return true;
      }
    }
  } catch {
    /* not installed */
  }
  return false;
}

export interface OnnxSessionResult {
  session: OrtTypes.InferenceSession;
  providers: string[];
  threads: number;
  /** Why a preferred provider was not used. */
  note?: string;
}

export interface OnnxSessionOptions {
  threads?: number;
  /** Providers to try in order; default: ['cuda', 'cpu'] when the CUDA library is installed, else ['cpu']. */
  executionProviders?: string[];
}

/** The execution providers sessions ask for: ORT_EXECUTION_PROVIDERS, else CUDA when its provider library is installed, and CPU. */
export function preferredExecutionProviders(): string[] {
  const fromEnv = process.env.ORT_EXECUTION_PROVIDERS?.split(',').map((s) => s.trim()).filter(Boolean);
  return fromEnv?.length ? fromEnv : cudaProviderInstalled() ? ['cuda', 'cpu'] : ['cpu'];
}

/** Creates an ONNX Runtime session from a file path or bytes. Throws BackboneError(BACKBONE_INVALID_MODEL) on bad files. */
export async function createOnnxSession(model: string | Uint8Array, opts: OnnxSessionOptions = {}): Promise<OnnxSessionResult> {
  const o = ort();
  const threads = Math.max(1, opts.threads ?? availableParallelism());
  const preferred = opts.executionProviders ?? preferredExecutionProviders();
  const base: OrtTypes.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const create = (eps: string[]) =>
    typeof model === 'string'
      ? o.InferenceSession.create(model, { ...base, executionProviders: eps })
      : o.InferenceSession.create(model, { ...base, executionProviders: eps });
  let note: string | undefined;
  if (preferred.some((p) => p !== 'cpu')) {
    try {
      return { session: await create(preferred), providers: preferred, threads };
    } catch (e) {
      note = `execution providers ${preferred.join(',')} failed (${(e as Error).message}); using cpu`;
    }
  }
  try {
    return { session: await create(['cpu']), providers: ['cpu'], threads, note };
  } catch (e) {
    throw new BackboneError('BACKBONE_INVALID_MODEL', `ONNX Runtime cannot load the model: ${(e as Error).message}`);
  }
}

export interface OnnxExtractorConfig {
  session: OrtTypes.InferenceSession;
  inputName: string;
  outputName: string;
  layout: 'NHWC' | 'NCHW';
  pooling: 'global-avg' | 'none';
}

export class OnnxExtractor extends BatchExtractor {
  readonly engine = 'onnx' as const;

  constructor(
    spec: BackboneSpec,
    info: ExtractorInfo,
    private readonly cfg: OnnxExtractorConfig,
  ) {
    super(spec, info);
  }

  async runBatch(x: Float32Array, b: number): Promise<Float32Array> {
    const S = this.inputSize;
    const o = ort();
    let input: Float32Array = x;
    let dims = [b, S, S, 3];
    if (this.cfg.layout === 'NCHW') {
      input = nhwcToNchw(x, b, S, S, 3);
      dims = [b, 3, S, S];
    }
    const feeds = { [this.cfg.inputName]: new o.Tensor('float32', input, dims) };
    const result = await this.cfg.session.run(feeds, [this.cfg.outputName]);
    const y = result[this.cfg.outputName];
    try {
      return poolFeatures(y.data as Float32Array, y.dims as number[], this.cfg.pooling, this.cfg.layout, b, this.featureDim);
    } finally {
      y.dispose?.();
    }
  }

  protected async release(): Promise<void> {
    await this.cfg.session.release();
  }
}

export function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  const hw = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * hw * c;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = x[base + p * c + k];
  }
  return out;
}

/** Output of a feature node -> b x D: global average pool over space for rank-4 outputs, copy for rank 2. */
export function poolFeatures(data: Float32Array, dims: number[], pooling: 'global-avg' | 'none', layout: 'NHWC' | 'NCHW', b: number, D: number): Float32Array {
  if (dims.length === 2 || (dims.length === 4 && pooling === 'none')) {
    if (data.length !== b * D) throw new BackboneError('BACKBONE_INVALID_MODEL', `feature output has shape [${dims.join(', ')}], expected [${b}, ${D}]`);
    return Float32Array.from(data);
  }
  if (dims.length !== 4) throw new BackboneError('BACKBONE_INVALID_MODEL', `feature output has rank ${dims.length}; expected 2 or 4`);
  const [, d1, d2, d3] = dims;
  const C = layout === 'NCHW' ? d1 : d3;
  const HW = layout === 'NCHW' ? d2 * d3 : d1 * d2;
  if (C !== D) throw new BackboneError('BACKBONE_INVALID_MODEL', `feature output has ${C} channels, spec says ${D}`);
  const out = new Float32Array(b * D);
  const acc = new Float64Array(D);
  for (let i = 0; i < b; i++) {
    acc.fill(0);
    const base = i * C * HW;
    if (layout === 'NCHW') {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let p = 0; p < HW; p++) s += data[base + c * HW + p];
        acc[c] = s;
      }
    } else {
      for (let p = 0; p < HW; p++) for (let c = 0; c < C; c++) acc[c] += data[base + p * C + c];
    }
    for (let c = 0; c < D; c++) out[i * D + c] = acc[c] / HW;
  }
  return out;
}
