/**
 * Reads a TF.js model (model.json + weight shards) from local disk. @tensorflow/tfjs has no file:// handler
 * without tfjs-node, so this is a small IOHandler over node:fs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { tf } from './tf-backend';
import { BackboneError } from './types';
import type { KerasModelTopology, WeightSpecJson } from './nsfwjs-files';

export interface TfjsModelFiles {
  json: {
    format?: string;
    generatedBy?: string;
    convertedBy?: string | null;
    modelTopology: unknown;
    weightsManifest: { paths: string[]; weights: WeightSpecJson[] }[];
    signature?: unknown;
    userDefinedMetadata?: Record<string, unknown>;
    modelInitializer?: unknown;
  };
  weightSpecs: WeightSpecJson[];
  weightData: Buffer;
  sha256: string;
}

/** Reads model.json and all shards (concatenated in manifest order). */
export function readTfjsModelFiles(modelJsonPath: string): TfjsModelFiles {
  const path = resolve(modelJsonPath);
  if (!existsSync(path)) throw new BackboneError('BACKBONE_FILE_NOT_FOUND', `TF.js model.json not found: ${path}`);
  const hash = createHash('sha256');
  let json: TfjsModelFiles['json'];
  try {
    const text = readFileSync(path, 'utf8');
    hash.update(text);
    json = JSON.parse(text) as TfjsModelFiles['json'];
  } catch (e) {
    throw new BackboneError('BACKBONE_INVALID_MODEL', `cannot parse ${path}: ${(e as Error).message}`);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new BackboneError('BACKBONE_INVALID_MODEL', `${path} is not a TF.js model.json (needs modelTopology and weightsManifest)`);
  }
  const buffers: Buffer[] = [];
  const weightSpecs: WeightSpecJson[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const shard = join(dirname(path), p);
      if (!existsSync(shard)) throw new BackboneError('BACKBONE_FILE_NOT_FOUND', `weight shard not found: ${shard}`);
      const b = readFileSync(shard);
      hash.update(b);
      buffers.push(b);
    }
    weightSpecs.push(...group.weights);
  }
  return { json, weightSpecs, weightData: Buffer.concat(buffers), sha256: hash.digest('hex') };
}

/** IOHandler serving already-read files to tf.loadLayersModel / tf.loadGraphModel. */
export function memoryHandler(files: TfjsModelFiles): tf.io.IOHandler {
  const data = files.weightData;
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  return tf.io.fromMemory({
    modelTopology: files.json.modelTopology as tf.io.ModelJSON['modelTopology'],
    weightSpecs: files.weightSpecs as tf.io.WeightsManifestEntry[],
    weightData,
    format: files.json.format,
    generatedBy: files.json.generatedBy,
    convertedBy: files.json.convertedBy ?? undefined,
    signature: files.json.signature as object | undefined,
    userDefinedMetadata: files.json.userDefinedMetadata as object | undefined,
    modelInitializer: files.json.modelInitializer as object | undefined,
  });
}

/** Whether a Layers model topology is a Keras functional model in the (Keras 2) format the cutter understands. */
export function isKerasFunctional(topology: unknown): topology is KerasModelTopology {
  const t = topology as KerasModelTopology;
  return Boolean(t?.model_config?.config?.layers && Array.isArray(t.model_config.config.layers) && t.model_config.config.input_layers);
}
