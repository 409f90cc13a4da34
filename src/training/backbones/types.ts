/**
 * Backbone / feature-extractor types. Pure data (JSON-serialisable) for specs; the extractor interface is
 * the one contract the rest of the platform (heads, serving, jobs) sees, whichever engine runs underneath.
 */

/** Tensor engine running a backbone. */
export type EngineName = 'onnx' | 'tfjs';
/** Requested engine: `auto` picks ONNX Runtime when a (verified) ONNX graph is available, else TF.js. */
export type EngineChoice = EngineName | 'auto';

/** Per-channel preprocessing: x = (pixel * scale - mean[c]) / std[c], pixel in 0..255, RGB order. */
export interface PreprocessingSpec {
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Resize method for images whose size differs from the input size (only bilinear is implemented). */
  resize: 'bilinear';
  /** Bilinear with align_corners=true (what nsfwjs uses) or half-pixel centres (false). */
  alignCorners: boolean;
}

/** One offered feature output of a backbone. */
export interface FeatureLayerSpec {
  /** Name used by callers (`featureLayer` option), e.g. `block_13_expand_relu`. */
  name: string;
  /**
   * The node producing it: a Keras layer name (TF.js Layers model), a graph node name (TF.js Graph model)
   * or a graph output name (ONNX model).
   */
  node: string;
  /** Feature dimension after pooling. */
  dim: number;
  /** `global-avg`: spatial mean of a rank-4 output (in the model's channel layout); `none`: already a vector. */
  pooling: 'global-avg' | 'none';
  /** Input size at which this layer is used by default (and for which public statistics exist). */
  defaultSize: number;
}

export type BackboneSource =
  /** The built-in MobileNetV2 weights shipped (as .min.js wrappers) by the nsfwjs npm package. */
  | { kind: 'builtin-nsfwjs'; model: 'mobilenet_v2' }
  /** A TF.js model on local disk: model.json plus weight shards beside it. */
  | { kind: 'tfjs-layers' | 'tfjs-graph'; modelJsonPath: string }
  /** An ONNX model file on local disk. */
  | { kind: 'onnx'; path: string; inputName?: string };

export interface BackboneProvenance {
  /** Where the weights come from (paper / project / package). */
  origin: string;
  /** Public data the weights were trained on. */
  trainingData: string;
  license?: string;
  url?: string;
  notes?: string;
}

/** A backbone, built-in or registered by an admin. Plain JSON. */
export interface BackboneSpec {
  id: string;
  name: string;
  description: string;
  source: BackboneSource;
  input: {
    /** Channel layout the model itself expects; extractors always take NHWC and transpose when needed. */
    layout: 'NHWC' | 'NCHW';
    /** Square input sizes the model accepts; a fixed-size model has minSize === maxSize. */
    minSize: number;
    maxSize: number;
    defaultSize: number;
  };
  preprocessing: PreprocessingSpec;
  featureLayers: FeatureLayerSpec[];
  defaultFeatureLayer: string;
  provenance: BackboneProvenance;
}

/** Outcome of checking an exported ONNX graph against the TF.js model it was translated from. */
export interface VerificationReport {
  ok: boolean;
  maxAbsDiff: number;
  tolerance: number;
  samples: number;
  inputSize: number;
  reason?: string;
}

export interface ExtractorInfo {
  backboneId: string;
  engine: EngineName;
  backend: string;
  inputSize: number;
  featureLayer: string;
  featureDim: number;
  batchSize: number;
  /** Threads the engine runs with (ONNX Runtime intra-op threads; tfjs-wasm threads). */
  threads: number;
  /** Engine the caller asked for. */
  requestedEngine: EngineChoice;
  onnxPath?: string;
  /** The engine's graph normalises its input itself (an exported ONNX graph): `extract` takes pixels (0-255). */
  normalisesInGraph?: boolean;
  verification?: VerificationReport;
  /** Why the requested engine was not used (e.g. ONNX verification failed). */
  fallbackReason?: string;
  executionProviders?: string[];
}

export interface FeatureExtractor {
  readonly engine: EngineName;
  /** e.g. 'onnxruntime-cpu', 'onnxruntime-cuda', 'wasm', 'cpu', 'tensorflow'. */
  readonly backend: string;
  readonly inputSize: number;
  readonly featureDim: number;
  readonly featureLayer: string;
  readonly spec: BackboneSpec;
  readonly info: ExtractorInfo;
  /**
   * What `extract`'s input must be prepared with: the spec's preprocessing, or, for a graph that normalises
   * its input itself (info.normalisesInGraph), the same resizing with no normalisation (pixels 0-255).
   */
  readonly inputPreprocessing: PreprocessingSpec;
  /**
   * Features of n images given as n x H x W x 3 float32 (H = W = inputSize), already prepared with
   * `inputPreprocessing` (see preprocessImages). Returns n x featureDim, row-major.
   */
  extract(pixels: Float32Array, n: number, opts?: ExtractOptions): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface ExtractOptions {
  /** Overrides the extractor's batch size for this call. */
  batchSize?: number;
  /** Called after each batch with the number of images done so far. */
  onProgress?: (done: number, total: number) => void;
}

export type BackboneErrorCode =
  | 'BACKBONE_FILE_NOT_FOUND'
  | 'BACKBONE_INVALID_MODEL'
  | 'BACKBONE_INVALID_SPEC'
  | 'BACKBONE_UNSUPPORTED'
  | 'BACKBONE_INPUT_SIZE'
  | 'BACKBONE_FEATURE_LAYER'
  | 'BACKBONE_ENGINE_UNAVAILABLE'
  | 'BACKBONE_BAD_INPUT'
  | 'ONNX_EXPORT_FAILED'
  | 'ONNX_VERIFICATION_FAILED';

/** Typed error for every expected failure of this layer (callers map `code` to API errors). */
export class BackboneError extends Error {
  override readonly name = 'BackboneError';
  constructor(
    readonly code: BackboneErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Optional structured log sink (the layer is pure: no logger dependency). */
export type BackboneLogger = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export const defaultLogger: BackboneLogger = (level, message, fields) => {
  if (level === 'warn' || level === 'error') {
    process.stderr.write(JSON.stringify({ level, component: 'backbones', message, ...fields }) + '\n');
  }
};
