/**
 * Reads the MobileNetV2 model that the `nsfwjs` npm package ships, directly from its files, without the
 * package's loader (which decodes through the browser-oriented path and takes seconds).
 *
 * nsfwjs ships `dist/models/mobilenet_v2/model.min.js` and `group1-shard1of1.min.js`: browserify UMD
 * wrappers. The first one's module exports the model.json object ({modelTopology, weightsManifest}) as a
 * JS object literal (not JSON: unquoted keys, `!1`, `.999`), the second one exports the weight shard as a
 * base64 string. Weights are uint8-quantised (`quantization: {min, scale, dtype: 'uint8'}`), dequantised
 * here exactly as TF.js does (v * scale + min, rounded to float32).
 *
 * The model wrapper is evaluated in an empty `vm` context (no require, no process, no globals besides the
 * `module`/`exports` pair it fills); the shard's base64 payload is cut out of its wrapper as a string.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { BackboneError } from './types';

export interface KerasLayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

export interface KerasModelTopology {
  keras_version?: string;
  backend?: string;
  model_config: {
    class_name: string;
    config: {
      name: string;
      layers: KerasLayerJson[];
      input_layers: unknown[];
      output_layers: unknown[];
    };
  };
}

export interface WeightSpecJson {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min?: number; scale?: number; dtype: string };
}

export interface DecodedWeights {
  /** Float32 values by weight name (e.g. `Conv1/kernel`, `bn_Conv1/gamma`). */
  values: Map<string, { shape: number[]; data: Float32Array }>;
  order: string[];
}

export interface NsfwjsModelFiles {
  topology: KerasModelTopology;
  weights: DecodedWeights;
  /** sha256 of the two wrapper files (identifies the weights for caches). */
  sha256: string;
  directory: string;
  packageVersion: string;
}

/** Directory of an nsfwjs model inside node_modules. */
export function nsfwjsModelDir(model: 'mobilenet_v2' = 'mobilenet_v2'): string {
  let main: string;
  try {
    main = require.resolve('nsfwjs');
  } catch {
    throw new BackboneError('BACKBONE_FILE_NOT_FOUND', 'the nsfwjs package (built-in backbone weights) is not installed');
  }
  // nsfwjs ships nested package.json files (dist/cjs/package.json): walk up to the one named nsfwjs.
  let dir = dirname(main);
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'nsfwjs') break;
      } catch {
        /* keep walking */
      }
    }
    if (dirname(dir) === dir) throw new BackboneError('BACKBONE_FILE_NOT_FOUND', 'cannot locate the nsfwjs package root');
    dir = dirname(dir);
  }
  return join(dir, 'dist', 'models', model);
}

function evalUmdModule(source: string, file: string): unknown {
  const mod: { exports: unknown } = { exports: {} };
  try {
    runInNewContext(source, { module: mod, exports: mod.exports }, { filename: file, timeout: 10_000 });
  } catch (e) {
    throw new BackboneError('BACKBONE_INVALID_MODEL', `cannot evaluate model wrapper ${file}: ${(e as Error).message}`);
  }
  return mod.exports;
}

/** Extracts the base64 payload of a weight-shard wrapper (the single long string literal in it). */
export function extractBase64Payload(source: string, file: string): Buffer {
  let best = '';
  const re = /"([A-Za-z0-9+/]{1000,}={0,2})"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(source)) !== null) if (m[1].length > best.length) best = m[1];
  if (!best) throw new BackboneError('BACKBONE_INVALID_MODEL', `no base64 weight payload found in ${file}`);
  return Buffer.from(best, 'base64');
}

const BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2, float32: 4, int32: 4 };

/** Decodes a TF.js weights manifest group's concatenated buffer into float32 arrays. */
export function decodeWeights(specs: WeightSpecJson[], buffer: Buffer): DecodedWeights {
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  const order: string[] = [];
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization;
    const storage = q ? q.dtype : spec.dtype;
    const bytes = BYTES[storage];
    if (!bytes) throw new BackboneError('BACKBONE_UNSUPPORTED', `weight ${spec.name}: unsupported storage dtype ${storage}`);
    if (spec.dtype !== 'float32') throw new BackboneError('BACKBONE_UNSUPPORTED', `weight ${spec.name}: dtype ${spec.dtype}`);
    const n = size * bytes;
    if (offset + n > buffer.length) throw new BackboneError('BACKBONE_INVALID_MODEL', `weight data too short at ${spec.name}`);
    const out = new Float32Array(size);
    if (q && q.dtype === 'uint8') {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      for (let i = 0; i < size; i++) out[i] = buffer[offset + i] * scale + min;
    } else if (q && q.dtype === 'uint16') {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      for (let i = 0; i < size; i++) out[i] = buffer.readUInt16LE(offset + 2 * i) * scale + min;
    } else if (!q && storage === 'float32') {
      const copy = Buffer.from(buffer.subarray(offset, offset + n));
      out.set(new Float32Array(copy.buffer, copy.byteOffset, size));
    } else {
      throw new BackboneError('BACKBONE_UNSUPPORTED', `weight ${spec.name}: quantisation ${storage}`);
    }
    offset += n;
    values.set(spec.name, { shape: spec.shape, data: out });
    order.push(spec.name);
  }
  return { values, order };
}

const cache = new Map<string, NsfwjsModelFiles>();

/** Loads (once per process) the nsfwjs MobileNetV2 topology and dequantised weights. */
export function loadNsfwjsMobilenetV2(): NsfwjsModelFiles {
  const dir = nsfwjsModelDir('mobilenet_v2');
  const hit = cache.get(dir);
  if (hit) return hit;
  const modelFile = join(dir, 'model.min.js');
  const shardFile = join(dir, 'group1-shard1of1.min.js');
  for (const f of [modelFile, shardFile]) {
    if (!existsSync(f)) throw new BackboneError('BACKBONE_FILE_NOT_FOUND', `built-in backbone file missing: ${f}`);
  }
  const modelSrc = readFileSync(modelFile, 'utf8');
  const shardSrc = readFileSync(shardFile, 'utf8');
  const modelJson = evalUmdModule(modelSrc, modelFile) as {
    modelTopology?: KerasModelTopology;
    weightsManifest?: { paths: string[]; weights: WeightSpecJson[] }[];
  };
  if (!modelJson?.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new BackboneError('BACKBONE_INVALID_MODEL', `${modelFile} does not export a TF.js model.json object`);
  }
  // Deep copy out of the vm context so prototypes are this realm's.
  const json = JSON.parse(JSON.stringify(modelJson)) as Required<typeof modelJson>;
  if (json.weightsManifest.length !== 1 || json.weightsManifest[0].paths.length !== 1) {
    throw new BackboneError('BACKBONE_UNSUPPORTED', 'expected one weight group with one shard');
  }
  const buffer = extractBase64Payload(shardSrc, shardFile);
  const weights = decodeWeights(json.weightsManifest[0].weights, buffer);
  let packageVersion = 'unknown';
  try {
    packageVersion = (JSON.parse(readFileSync(join(dir, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* informational only */
  }
  const sha256 = createHash('sha256').update(modelSrc).update(shardSrc).digest('hex');
  const files: NsfwjsModelFiles = { topology: json.modelTopology, weights, sha256, directory: dir, packageVersion };
  cache.set(dir, files);
  return files;
}
