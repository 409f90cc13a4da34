/**
 * Builds a TF.js LayersModel computing one (optionally pooled) feature layer of a Keras functional model
 * at a chosen square input size, from its topology and float32 weights.
 */
import { cutTopology, weightNamesOf } from './keras-topology';
import type { KerasModelTopology } from './nsfwjs-files';
import { initTensorBackend, tf } from './tf-backend';

export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

export interface FeatureLayersModel {
  model: tf.LayersModel;
  /** The cut topology (input size set, pool appended when pooled). */
  topology: KerasModelTopology;
  /** Weights of the kept layers (shared with the source, do not mutate). */
  weights: WeightMap;
}

export async function buildFeatureLayersModel(
  source: { topology: KerasModelTopology; weights: WeightMap; order: string[] },
  featureNode: string,
  inputSize: number,
  pool: boolean,
): Promise<FeatureLayersModel> {
  await initTensorBackend();
  const topology = cutTopology(source.topology, featureNode, inputSize, pool);
  const names = weightNamesOf(topology.model_config.config.layers, source.order);
  const total = names.reduce((a, n) => a + source.weights.get(n)!.data.length, 0);
  const data = new Float32Array(total);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const kept: WeightMap = new Map();
  let off = 0;
  for (const n of names) {
    const w = source.weights.get(n)!;
    data.set(w.data, off);
    off += w.data.length;
    weightSpecs.push({ name: n, shape: w.shape, dtype: 'float32' });
    kept.set(n, w);
  }
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'], weightSpecs, weightData: data.buffer }),
  );
  return { model, topology, weights: kept };
}
