/**
 * TensorFlow.js backend selection, done once per process at start.
 *
 * Order (DESIGN.md "Tensor engines"):
 *   1. `tensorflow`: @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node, only when installed. Their
 *      install step downloads libtensorflow, so they are not dependencies of the project; when an operator
 *      installs one on a host, it is found with require.resolve and loaded at run time (it registers the
 *      `tensorflow` backend with the same tfjs API, nothing else changes).
 *   2. `wasm`: @tensorflow/tfjs-backend-wasm with SIMD; the .wasm binaries are read from node_modules via
 *      setWasmPaths(<directory path>). Multi-threaded wasm is requested (setThreadsCount(cores)) but
 *      tfjs-backend-wasm 4.x disables threads under Node (WASM_HAS_MULTITHREAD_SUPPORT is false when
 *      IS_NODE, tfjs issue 3830), so it runs one thread here; the reported `threads` says what it got.
 *   3. `cpu`: the plain JS backend of @tensorflow/tfjs (always there).
 *
 * Override: `initTensorBackend('cpu' | 'wasm' | 'tensorflow')` or env TFJS_BACKEND with the same values
 * (the override is tried first; the rest of the order follows if it fails, and `tried` records why).
 */
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';

export type TensorBackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendAttempt {
  name: TensorBackendName;
  ok: boolean;
  reason: string;
  /** Package providing it, for `tensorflow`. */
  package?: string;
}

export interface TensorBackendInfo {
  backend: TensorBackendName;
  tried: BackendAttempt[];
  /** SIMD (wasm only). */
  simd?: boolean;
  /** Threads the backend computes with (wasm: as reported by the wasm module; tensorflow: libtensorflow's pool). */
  threads?: number;
  /** Milliseconds spent choosing and initialising. */
  initMs: number;
}

let current: Promise<TensorBackendInfo> | undefined;
let currentKey: string | undefined;

function isBackendName(s: string | undefined): s is TensorBackendName {
  return s === 'tensorflow' || s === 'wasm' || s === 'cpu';
}

/** Resolves a package without loading it (false when absent). */
function isInstalled(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

async function tryTensorflow(): Promise<BackendAttempt> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!isInstalled(pkg)) continue;
    try {
      // Loaded dynamically: optional, never a dependency (see header).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(pkg);
      const ok = await tf.setBackend('tensorflow');
      if (!ok) return { name: 'tensorflow', ok: false, reason: `${pkg} loaded but setBackend('tensorflow') failed`, package: pkg };
      await tf.ready();
      return { name: 'tensorflow', ok: true, reason: `${pkg} installed`, package: pkg };
    } catch (e) {
      return { name: 'tensorflow', ok: false, reason: `${pkg} failed to load: ${message(e)}`, package: pkg };
    }
  }
  return {
    name: 'tensorflow',
    ok: false,
    reason: '@tensorflow/tfjs-node-gpu and @tensorflow/tfjs-node are not installed (their install step downloads libtensorflow)',
  };
}

let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm') | undefined;

async function tryWasm(): Promise<{ attempt: BackendAttempt; simd?: boolean; threads?: number }> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    wasmModule ??= require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    const wasm = wasmModule;
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));
    if (tf.findBackend('wasm') == null || tf.getBackend() !== 'wasm') {
      try {
        wasm.setWasmPaths(dir + '/');
        wasm.setThreadsCount(availableParallelism());
      } catch {
        // setWasmPaths throws once the backend was initialised (a second init in this process): paths are set.
      }
    }
    const ok = await tf.setBackend('wasm');
    if (!ok) return { attempt: { name: 'wasm', ok: false, reason: "setBackend('wasm') returned false" } };
    await tf.ready();
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const mt = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    const threads = wasm.getThreadsCount();
    const notes = [simd ? 'SIMD' : 'no SIMD', `${threads} thread(s)`];
    if (!mt) notes.push('multi-threaded wasm is disabled by tfjs-backend-wasm under Node (tfjs#3830)');
    return { attempt: { name: 'wasm', ok: true, reason: notes.join('; ') }, simd, threads };
  } catch (e) {
    return { attempt: { name: 'wasm', ok: false, reason: `wasm backend failed: ${message(e)}` } };
  }
}

async function tryCpu(): Promise<BackendAttempt> {
  try {
    const ok = await tf.setBackend('cpu');
    await tf.ready();
    return { name: 'cpu', ok, reason: ok ? 'plain JS backend' : "setBackend('cpu') returned false" };
  } catch (e) {
    return { name: 'cpu', ok: false, reason: message(e) };
  }
}

async function choose(preferred: TensorBackendName | undefined, exclude: TensorBackendName[]): Promise<TensorBackendInfo> {
  const t0 = performance.now();
  const order: TensorBackendName[] = ['tensorflow', 'wasm', 'cpu'];
  const plan = preferred ? [preferred, ...order.filter((b) => b !== preferred)] : order;
  const tried: BackendAttempt[] = [];
  for (const name of plan) {
    if (exclude.includes(name)) {
      tried.push({ name, ok: false, reason: 'excluded by caller' });
      continue;
    }
    if (name === 'tensorflow') {
      const a = await tryTensorflow();
      tried.push(a);
      if (a.ok) return { backend: 'tensorflow', tried, initMs: performance.now() - t0 };
    } else if (name === 'wasm') {
      const r = await tryWasm();
      tried.push(r.attempt);
      if (r.attempt.ok) return { backend: 'wasm', tried, simd: r.simd, threads: r.threads, initMs: performance.now() - t0 };
    } else {
      const a = await tryCpu();
      tried.push(a);
      if (a.ok) return { backend: 'cpu', tried, threads: 1, initMs: performance.now() - t0 };
    }
  }
  throw new Error(`no TensorFlow.js backend could be initialised: ${JSON.stringify(tried)}`);
}

export interface InitTensorBackendOptions {
  /** Backends not to try (tests use this to simulate a failing wasm). */
  exclude?: TensorBackendName[];
  /** Re-run the selection even if one was made already in this process. */
  force?: boolean;
}

/**
 * Chooses and initialises the TF.js backend (memoised per process). `preferred` (or env TFJS_BACKEND) is
 * tried first. Returns the backend in use and every attempt with its reason, for health and metrics.
 */
export function initTensorBackend(preferred?: TensorBackendName, opts: InitTensorBackendOptions = {}): Promise<TensorBackendInfo> {
  const envPref = process.env.TFJS_BACKEND?.trim().toLowerCase();
  const pref = preferred ?? (isBackendName(envPref) ? envPref : undefined);
  const key = JSON.stringify([pref ?? null, [...(opts.exclude ?? [])].sort()]);
  if (current && !opts.force && (preferred === undefined || key === currentKey)) return current;
  currentKey = key;
  const p = choose(pref, opts.exclude ?? []);
  current = p;
  p.catch(() => {
    if (current === p) current = undefined;
  });
  return p;
}

/** The selection made so far in this process (undefined before initTensorBackend). */
export async function getTensorBackendInfo(): Promise<TensorBackendInfo | undefined> {
  return current ? current.catch(() => undefined) : undefined;
}

export { tf };
