/**
 * loadBackbone: one entry point for built-in and registered backbones on either engine.
 *
 * Engines per source:
 * - builtin-nsfwjs, tfjs-layers (Keras functional topology): TF.js LayersModel; with engine 'onnx' or
 *   'auto' the cut model is also translated to ONNX (keras-to-onnx.ts), cached under the artifact dir per
 *   (backbone, source hash, layer, input size, exporter version), and VERIFIED against the TF.js model on
 *   seeded random inputs (max abs difference <= verifyTolerance, default 1e-4) before use. An export that
 *   fails, cannot be loaded or does not match is refused: the extractor falls back to TF.js, logs a warning
 *   and reports why in info.fallbackReason.
 * - tfjs-graph: TF.js only ('onnx' is refused with BACKBONE_ENGINE_UNAVAILABLE; 'auto' means TF.js).
 * - onnx: ONNX Runtime only ('tfjs' is refused; 'auto' means ONNX).
 * For layers models 'auto' means ONNX Runtime, unless only TF.js has a GPU here (`autoEngine`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync, unlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createOnnxSession, OnnxExtractor, ort, preferredExecutionProviders, type OnnxSessionResult } from './engines/onnx-extractor';
import { poolOutput, TfjsExtractor } from './engines/tfjs-extractor';
import { buildFeatureLayersModel, type FeatureLayersModel, type WeightMap } from './layers-model';
import { MOBILENET_V2_SPEC, mobilenetV2Source } from './mobilenet-v2';
import { decodeWeights, type KerasModelTopology } from './nsfwjs-files';
import { kerasToOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './onnx/keras-to-onnx';
import { encodeModel } from './onnx/protobuf';
import { affineOf } from './preprocess';
import { initTensorBackend, tf } from './tf-backend';
import { isKerasFunctional, memoryHandler, readTfjsModelFiles } from './tfjs-files';
import {
  BackboneError,
  defaultLogger,
  type BackboneLogger,
  type BackboneSpec,
  type EngineChoice,
  type EngineName,
  type ExtractorInfo,
  type FeatureExtractor,
  type FeatureLayerSpec,
  type PreprocessingSpec,
  type VerificationReport,
} from './types';

/** Bump when the exporter's output changes: old cached files are then ignored. */
export const EXPORTER_VERSION = '4';
export const DEFAULT_ARTIFACT_DIR = './var/artifacts/backbones';
export const DEFAULT_VERIFY_TOLERANCE = 1e-4;
export const DEFAULT_BATCH_SIZE = 32;

export interface LoadBackboneOptions {
  engine?: EngineChoice;
  inputSize?: number;
  featureLayer?: string;
  batchSize?: number;
  /** Where exported ONNX files are cached (default ./var/artifacts/backbones). */
  artifactDir?: string;
  verifyTolerance?: number;
  /** Random images used for verification (default 4 up to 128 px, 2 above). */
  verifySamples?: number;
  /** ONNX Runtime intra-op threads (default: number of cores). */
  threads?: number;
  /** ONNX Runtime execution providers to try (default: cuda+cpu when CUDA is installed, else cpu). */
  executionProviders?: string[];
  logger?: BackboneLogger;
}

export const BUILTIN_BACKBONES: readonly BackboneSpec[] = [MOBILENET_V2_SPEC];

export function getBuiltinBackbone(id: string): BackboneSpec | undefined {
  return BUILTIN_BACKBONES.find((b) => b.id === id);
}

function invalid(msg: string): never {
  throw new BackboneError('BACKBONE_INVALID_SPEC', msg);
}

/** Structural validation of a (registered) spec; throws BackboneError(BACKBONE_INVALID_SPEC). */
export function validateBackboneSpec(spec: BackboneSpec): void {
  if (!spec || typeof spec !== 'object') invalid('spec must be an object');
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(spec.id ?? '')) invalid('id must be 1-100 characters of [A-Za-z0-9._-]');
  const src = spec.source;
  if (!src || !['builtin-nsfwjs', 'tfjs-layers', 'tfjs-graph', 'onnx'].includes(src.kind)) invalid('source.kind must be builtin-nsfwjs, tfjs-layers, tfjs-graph or onnx');
  if ((src.kind === 'tfjs-layers' || src.kind === 'tfjs-graph') && !src.modelJsonPath) invalid('source.modelJsonPath is required');
  if (src.kind === 'onnx' && !src.path) invalid('source.path is required');
  const inp = spec.input;
  if (!inp || !['NHWC', 'NCHW'].includes(inp.layout)) invalid('input.layout must be NHWC or NCHW');
  for (const k of ['minSize', 'maxSize', 'defaultSize'] as const) {
    if (!Number.isInteger(inp[k]) || inp[k] < 8 || inp[k] > 1024) invalid(`input.${k} must be an integer in 8..1024`);
  }
  if (!(inp.minSize <= inp.defaultSize && inp.defaultSize <= inp.maxSize)) invalid('input sizes must satisfy minSize <= defaultSize <= maxSize');
  const p = spec.preprocessing;
  if (!p || !(Number.isFinite(p.scale) && p.scale > 0)) invalid('preprocessing.scale must be > 0');
  for (const k of ['mean', 'std'] as const) {
    if (!Array.isArray(p[k]) || p[k].length !== 3 || !p[k].every((v) => Number.isFinite(v))) invalid(`preprocessing.${k} must be 3 numbers`);
  }
  if (!p.std.every((v) => v > 0)) invalid('preprocessing.std must be > 0');
  if (p.resize !== 'bilinear') invalid('preprocessing.resize must be bilinear');
  if (typeof p.alignCorners !== 'boolean') invalid('preprocessing.alignCorners must be a boolean');
  if (!Array.isArray(spec.featureLayers) || spec.featureLayers.length === 0) invalid('featureLayers must not be empty');
  for (const l of spec.featureLayers) {
    if (!l.name || !l.node) invalid('every feature layer needs name and node');
    if (!Number.isInteger(l.dim) || l.dim < 1) invalid(`feature layer ${l.name}: dim must be a positive integer`);
    if (!['global-avg', 'none'].includes(l.pooling)) invalid(`feature layer ${l.name}: pooling must be global-avg or none`);
    if (!Number.isInteger(l.defaultSize) || l.defaultSize < inp.minSize || l.defaultSize > inp.maxSize) invalid(`feature layer ${l.name}: defaultSize outside input range`);
  }
  if (!spec.featureLayers.some((l) => l.name === spec.defaultFeatureLayer)) invalid('defaultFeatureLayer must name one of featureLayers');
  if (!spec.provenance?.origin || !spec.provenance?.trainingData) invalid('provenance.origin and provenance.trainingData are required');
}

export function resolveFeatureLayer(spec: BackboneSpec, name?: string): FeatureLayerSpec {
  const wanted = name ?? spec.defaultFeatureLayer;
  const layer = spec.featureLayers.find((l) => l.name === wanted);
  if (!layer) {
    throw new BackboneError('BACKBONE_FEATURE_LAYER', `backbone ${spec.id} offers feature layers ${spec.featureLayers.map((l) => l.name).join(', ')}; got ${wanted}`, {
      offered: spec.featureLayers.map((l) => l.name),
    });
  }
  return layer;
}

export function resolveInputSize(spec: BackboneSpec, layer: FeatureLayerSpec, size?: number): number {
  const s = size ?? layer.defaultSize;
  if (!Number.isInteger(s) || s < spec.input.minSize || s > spec.input.maxSize) {
    throw new BackboneError('BACKBONE_INPUT_SIZE', `backbone ${spec.id} accepts input sizes ${spec.input.minSize}..${spec.input.maxSize}; got ${s}`);
  }
  return s;
}

/** Deterministic PRNG (mulberry32) for verification inputs. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded random images: uniform pixels 0..255 through a preprocessing (an extractor's inputPreprocessing, or a spec's). */
export function verificationInputs(p: PreprocessingSpec, n: number, size: number, seed = 20240607): Float32Array {
  const rnd = mulberry32(seed);
  const x = new Float32Array(n * size * size * 3);
  for (let i = 0; i < x.length; i++) {
    const c = i % 3;
    x[i] = (rnd() * 255 * p.scale - p.mean[c]) / p.std[c];
  }
  return x;
}

interface LayersSource {
  topology: KerasModelTopology;
  weights: WeightMap;
  order: string[];
  sha256: string;
}

function atomicWrite(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, bytes);
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* ignore */
    }
    throw e;
  }
}

/** Path of the cached ONNX export for (spec, source, layer, size). */
export function onnxArtifactPath(artifactDir: string, spec: BackboneSpec, sourceSha256: string, layer: string, size: number): string {
  const key = createHash('sha256').update(`${sourceSha256}|${layer}|${size}|exporter-${EXPORTER_VERSION}`).digest('hex').slice(0, 16);
  return resolve(artifactDir, spec.id, `${layer}-${size}px-${key}.onnx`);
}

/** Returns the cached ONNX export, exporting (and caching) it first when missing. */
export function getOrExportOnnx(
  built: FeatureLayersModel,
  spec: BackboneSpec,
  source: LayersSource,
  layer: FeatureLayerSpec,
  size: number,
  artifactDir: string,
): { path: string; cached: boolean } {
  const path = onnxArtifactPath(artifactDir, spec, source.sha256, layer.name, size);
  if (existsSync(path)) return { path, cached: true };
  const model = kerasToOnnx(built.topology, (n) => built.weights.get(n), {
    inputSize: size,
    normalise: affineOf(spec.preprocessing),
    graphName: `${spec.id}_${layer.name}_${size}`,
    docString: `${spec.name}: ${layer.name} (${layer.pooling}) at ${size}x${size}, NHWC float32 pixels (0-255) in, normalised inside. ${spec.provenance.origin}`,
    metadata: {
      backbone: spec.id,
      featureLayer: layer.name,
      inputSize: String(size),
      sourceSha256: source.sha256,
      exporterVersion: EXPORTER_VERSION,
      preprocessing: JSON.stringify(spec.preprocessing),
    },
  });
  atomicWrite(path, encodeModel(model));
  removeSupersededExports(path);
  return { path, cached: false };
}

/**
 * Deletes the exports of the same layer and size that this one supersedes (another exporter version, or
 * other source weights: their key differs), which nothing reads any more (2.4 MB each for the built-in
 * backbone's block_13_expand_relu, more for larger graphs). A
 * process of another platform version that still wanted one exports it again.
 */
function removeSupersededExports(path: string): void {
  const dir = dirname(path);
  const name = basename(path);
  const prefix = name.slice(0, name.lastIndexOf('-') + 1); // `${layer}-${size}px-`
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const sibling = new RegExp(`^${escaped}[0-9a-f]{16}\\.onnx$`);
  for (const f of readdirSync(dir)) {
    if (f === name || !sibling.test(f)) continue;
    try {
      unlinkSync(join(dir, f));
    } catch {
      /* gone already, or not ours to delete: it only costs disk */
    }
  }
}

/** What decides 'auto' on this host. */
export interface EngineFacts {
  /** ONNX Runtime sessions ask for a GPU provider (CUDA installed, or ORT_EXECUTION_PROVIDERS). */
  onnxGpu: boolean;
  /** TF.js computes on a GPU: its `tensorflow` backend comes from @tensorflow/tfjs-node-gpu. */
  tfjsGpu: boolean;
}

/**
 * 'auto' for a layers model: ONNX Runtime, which on CPU ran the built-in backbone 10-17x faster than
 * tfjs-wasm (DESIGN.md), unless TF.js has a GPU and ONNX Runtime has none (the docker-compose `gpu-worker`
 * image installs @tensorflow/tfjs-node-gpu, while onnxruntime-node's CUDA provider is not installed by
 * default): then TF.js, on the GPU.
 */
export function autoEngine(facts: EngineFacts): EngineName {
  return facts.tfjsGpu && !facts.onnxGpu ? 'tfjs' : 'onnx';
}

async function engineFacts(): Promise<EngineFacts & { tfjsPackage?: string }> {
  const info = await initTensorBackend();
  const tfjsPackage = info.backend === 'tensorflow' ? info.tried.find((a) => a.name === 'tensorflow' && a.ok)?.package : undefined;
  return { onnxGpu: preferredExecutionProviders().some((p) => p !== 'cpu'), tfjsGpu: tfjsPackage === '@tensorflow/tfjs-node-gpu', tfjsPackage };
}

function onnxInfo(spec: BackboneSpec, layer: FeatureLayerSpec, size: number, s: OnnxSessionResult, batchSize: number, requested: EngineChoice, onnxPath: string, normalisesInGraph = false): ExtractorInfo {
  return {
    backboneId: spec.id,
    engine: 'onnx',
    backend: `onnxruntime-${s.providers[0]}`,
    inputSize: size,
    featureLayer: layer.name,
    featureDim: layer.dim,
    batchSize,
    threads: s.threads,
    requestedEngine: requested,
    onnxPath,
    normalisesInGraph,
    executionProviders: s.providers,
    fallbackReason: s.note,
  };
}

function tfjsInfoBase(spec: BackboneSpec, layer: FeatureLayerSpec, size: number, batchSize: number, requested: EngineChoice, backend: string, threads: number): ExtractorInfo {
  return { backboneId: spec.id, engine: 'tfjs', backend, inputSize: size, featureLayer: layer.name, featureDim: layer.dim, batchSize, threads, requestedEngine: requested };
}

async function tfjsBackendInfo(): Promise<{ backend: string; threads: number }> {
  const info = await initTensorBackend();
  return { backend: tf.getBackend() ?? info.backend, threads: info.threads ?? 1 };
}

/** A TF.js extractor over a feature LayersModel (output already pooled). */
async function layersExtractor(spec: BackboneSpec, layer: FeatureLayerSpec, size: number, built: FeatureLayersModel, opts: LoadBackboneOptions, extra: Partial<ExtractorInfo> = {}): Promise<TfjsExtractor> {
  const { backend, threads } = await tfjsBackendInfo();
  const info = { ...tfjsInfoBase(spec, layer, size, opts.batchSize ?? DEFAULT_BATCH_SIZE, opts.engine ?? 'auto', backend, threads), ...extra };
  const model = built.model;
  return new TfjsExtractor(
    spec,
    info,
    async (x) => tf.tidy(() => model.predict(x) as tf.Tensor),
    () => model.dispose(),
  );
}

/** Compares an ONNX session with the TF.js model on seeded random inputs. */
async function verifyOnnx(onnx: OnnxExtractor, built: FeatureLayersModel, spec: BackboneSpec, size: number, samples: number, tolerance: number): Promise<VerificationReport> {
  // The same seeded pixels, prepared for each: the exported graph normalises them itself, TF.js takes them normalised.
  const a = await onnx.runBatch(verificationInputs(onnx.inputPreprocessing, samples, size), samples);
  const t = tf.tensor4d(verificationInputs(spec.preprocessing, samples, size), [samples, size, size, 3]);
  const y = built.model.predict(t) as tf.Tensor;
  const b = (await y.data()) as Float32Array;
  t.dispose();
  y.dispose();
  if (a.length !== b.length) {
    return { ok: false, maxAbsDiff: Infinity, tolerance, samples, inputSize: size, reason: `output sizes differ: onnx ${a.length}, tfjs ${b.length}` };
  }
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Infinity : d;
  }
  const ok = maxAbsDiff <= tolerance;
  return { ok, maxAbsDiff, tolerance, samples, inputSize: size, reason: ok ? undefined : `max abs difference ${maxAbsDiff.toExponential(3)} > ${tolerance}` };
}

async function layersBackbone(spec: BackboneSpec, source: LayersSource, layer: FeatureLayerSpec, size: number, opts: LoadBackboneOptions): Promise<FeatureExtractor> {
  const engine = opts.engine ?? 'auto';
  const log = opts.logger ?? defaultLogger;
  const built = await buildFeatureLayersModel(source, layer.node, size, layer.pooling === 'global-avg');
  const outDim = built.model.outputs[0].shape[built.model.outputs[0].shape.length - 1];
  if (built.model.outputs[0].shape.length !== 2 || outDim !== layer.dim) {
    built.model.dispose();
    throw new BackboneError('BACKBONE_INVALID_SPEC', `feature layer ${layer.name} gives shape [${built.model.outputs[0].shape.join(', ')}], spec says dim ${layer.dim}`);
  }
  if (engine === 'tfjs') return layersExtractor(spec, layer, size, built, opts);
  if (engine === 'auto') {
    const facts = await engineFacts();
    if (autoEngine(facts) === 'tfjs') {
      log('info', 'backbone runs on TF.js: it has the GPU here, ONNX Runtime does not', { backbone: spec.id, layer: layer.name, size, tfjsPackage: facts.tfjsPackage });
      return layersExtractor(spec, layer, size, built, opts);
    }
  }

  const artifactDir = opts.artifactDir ?? DEFAULT_ARTIFACT_DIR;
  const tolerance = opts.verifyTolerance ?? DEFAULT_VERIFY_TOLERANCE;
  const samples = opts.verifySamples ?? (size <= 128 ? 4 : 2);
  let onnxPath: string | undefined;
  let verification: VerificationReport | undefined;
  let reason: string;
  try {
    const exp = getOrExportOnnx(built, spec, source, layer, size, artifactDir);
    onnxPath = exp.path;
    const s = await createOnnxSession(exp.path, { threads: opts.threads, executionProviders: opts.executionProviders });
    const info = onnxInfo(spec, layer, size, s, opts.batchSize ?? DEFAULT_BATCH_SIZE, engine, exp.path, true);
    const extractor = new OnnxExtractor(spec, info, { session: s.session, inputName: ONNX_INPUT_NAME, outputName: ONNX_OUTPUT_NAME, layout: 'NHWC', pooling: 'none' });
    try {
      verification = await verifyOnnx(extractor, built, spec, size, samples, tolerance);
    } catch (e) {
      verification = { ok: false, maxAbsDiff: Infinity, tolerance, samples, inputSize: size, reason: `verification run failed: ${(e as Error).message}` };
    }
    info.verification = verification;
    if (verification.ok) {
      built.model.dispose();
      log('debug', 'onnx export verified', { backbone: spec.id, layer: layer.name, size, maxAbsDiff: verification.maxAbsDiff, path: exp.path, cached: exp.cached });
      return extractor;
    }
    await extractor.dispose();
    reason = `ONNX export ${exp.path} failed verification against TF.js: ${verification.reason}`;
  } catch (e) {
    reason = `ONNX engine unavailable for ${spec.id}/${layer.name}@${size}: ${(e as Error).message}`;
  }
  log('warn', 'backbone falls back to TF.js', { backbone: spec.id, layer: layer.name, size, reason });
  return layersExtractor(spec, layer, size, built, opts, { onnxPath, verification, fallbackReason: reason });
}

async function onnxBackbone(spec: BackboneSpec & { source: { kind: 'onnx' } }, layer: FeatureLayerSpec, size: number, opts: LoadBackboneOptions): Promise<FeatureExtractor> {
  const path = resolve(spec.source.path);
  if (!existsSync(path)) throw new BackboneError('BACKBONE_FILE_NOT_FOUND', `ONNX file not found: ${path}`);
  const bytes = readFileSync(path);
  const s = await createOnnxSession(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { threads: opts.threads, executionProviders: opts.executionProviders });
  const inputName = spec.source.inputName ?? s.session.inputNames[0];
  if (!s.session.inputNames.includes(inputName)) {
    await s.session.release();
    throw new BackboneError('BACKBONE_INVALID_SPEC', `ONNX model has inputs ${s.session.inputNames.join(', ')}; spec names ${inputName}`);
  }
  if (!s.session.outputNames.includes(layer.node)) {
    await s.session.release();
    throw new BackboneError('BACKBONE_FEATURE_LAYER', `ONNX model outputs are ${s.session.outputNames.join(', ')}; feature node ${layer.node} is not one of them`, {
      outputs: s.session.outputNames,
    });
  }
  const info = onnxInfo(spec, layer, size, s, opts.batchSize ?? DEFAULT_BATCH_SIZE, opts.engine ?? 'auto', path);
  const extractor = new OnnxExtractor(spec, info, { session: s.session, inputName, outputName: layer.node, layout: spec.input.layout, pooling: layer.pooling });
  // Probe: one image through the model checks input shape and feature dim now rather than mid-job.
  try {
    await extractor.runBatch(verificationInputs(extractor.inputPreprocessing, 1, size), 1);
  } catch (e) {
    await extractor.dispose();
    if (e instanceof BackboneError) throw new BackboneError('BACKBONE_INVALID_SPEC', `ONNX model does not match its spec: ${e.message}`);
    throw new BackboneError('BACKBONE_INVALID_SPEC', `ONNX model cannot run a ${spec.input.layout} ${size}x${size} input: ${(e as Error).message}`);
  }
  return extractor;
}

async function tfjsBackbone(spec: BackboneSpec & { source: { kind: 'tfjs-layers' | 'tfjs-graph'; modelJsonPath: string } }, layer: FeatureLayerSpec, size: number, opts: LoadBackboneOptions): Promise<FeatureExtractor> {
  const files = readTfjsModelFiles(spec.source.modelJsonPath);
  const engine = opts.engine ?? 'auto';
  if (spec.source.kind === 'tfjs-layers' && spec.input.layout === 'NHWC' && isKerasFunctional(files.json.modelTopology)) {
    let weights;
    try {
      weights = decodeWeights(files.weightSpecs, files.weightData);
    } catch (e) {
      throw new BackboneError('BACKBONE_INVALID_MODEL', `cannot decode weights of ${spec.source.modelJsonPath}: ${(e as Error).message}`);
    }
    return layersBackbone(spec, { topology: files.json.modelTopology, weights: weights.values, order: weights.order, sha256: files.sha256 }, layer, size, opts);
  }
  if (engine === 'onnx') {
    throw new BackboneError('BACKBONE_ENGINE_UNAVAILABLE', `backbone ${spec.id}: only Keras functional TF.js Layers models (NHWC) can be exported to ONNX`);
  }
  const { backend, threads } = await tfjsBackendInfo();
  const info = tfjsInfoBase(spec, layer, size, opts.batchSize ?? DEFAULT_BATCH_SIZE, engine, backend, threads);
  const layout = spec.input.layout;
  const toModelInput = (x: tf.Tensor4D): tf.Tensor4D => (layout === 'NCHW' ? tf.transpose(x, [0, 3, 1, 2]) : x);
  try {
    if (spec.source.kind === 'tfjs-layers') {
      const full = await tf.loadLayersModel(memoryHandler(files));
      let sub: tf.LayersModel;
      try {
        sub = tf.model({ inputs: full.inputs, outputs: full.getLayer(layer.node).output as tf.SymbolicTensor });
      } catch (e) {
        full.dispose();
        throw new BackboneError('BACKBONE_FEATURE_LAYER', `layer ${layer.node} not found in ${spec.source.modelJsonPath}: ${(e as Error).message}`);
      }
      return new TfjsExtractor(
        spec,
        info,
        async (x) => tf.tidy(() => poolOutput(sub.predict(toModelInput(x)) as tf.Tensor, layer.pooling, layout)),
        () => full.dispose(),
      );
    }
    const graph = await tf.loadGraphModel(memoryHandler(files));
    return new TfjsExtractor(
      spec,
      info,
      async (x) => {
        const input = toModelInput(x);
        const y = (await graph.executeAsync(input, layer.node)) as tf.Tensor;
        if (input !== x) input.dispose();
        const pooled = poolOutput(y, layer.pooling, layout);
        y.dispose();
        return pooled;
      },
      () => graph.dispose(),
    );
  } catch (e) {
    if (e instanceof BackboneError) throw e;
    throw new BackboneError('BACKBONE_INVALID_MODEL', `cannot load TF.js model ${spec.source.modelJsonPath}: ${(e as Error).message}`);
  }
}

/**
 * Loads a backbone as a FeatureExtractor.
 * @param spec built-in (BUILTIN_BACKBONES / MOBILENET_V2_SPEC) or registered spec
 * @param opts engine ('auto' default), inputSize (default: the layer's defaultSize), featureLayer (default:
 *   spec.defaultFeatureLayer), batchSize, artifactDir for ONNX exports, verification tolerance, threads.
 */
export async function loadBackbone(spec: BackboneSpec, opts: LoadBackboneOptions = {}): Promise<FeatureExtractor> {
  validateBackboneSpec(spec);
  const layer = resolveFeatureLayer(spec, opts.featureLayer);
  const size = resolveInputSize(spec, layer, opts.inputSize);
  const engine = opts.engine ?? 'auto';
  if (!['auto', 'onnx', 'tfjs'].includes(engine)) throw new BackboneError('BACKBONE_INVALID_SPEC', `engine must be auto, onnx or tfjs; got ${String(engine)}`);
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
    throw new BackboneError('BACKBONE_INVALID_SPEC', 'batchSize must be a positive integer');
  }
  const src = spec.source;
  switch (src.kind) {
    case 'builtin-nsfwjs': {
      if (src.model !== 'mobilenet_v2') throw new BackboneError('BACKBONE_UNSUPPORTED', `unknown built-in model ${String(src.model)}`);
      return layersBackbone(spec, mobilenetV2Source(), layer, size, opts);
    }
    case 'onnx':
      if (engine === 'tfjs') throw new BackboneError('BACKBONE_ENGINE_UNAVAILABLE', `backbone ${spec.id} is an ONNX model; the tfjs engine cannot run it`);
      ort();
      return onnxBackbone(spec as BackboneSpec & { source: typeof src }, layer, size, opts);
    case 'tfjs-layers':
    case 'tfjs-graph':
      return tfjsBackbone(spec as BackboneSpec & { source: typeof src }, layer, size, opts);
  }
}

/** Threads an ONNX Runtime session uses by default (all cores). */
export function defaultThreads(): number {
  return availableParallelism();
}
