/**
 * Rewrites a Keras functional-model topology (TF.js model.json `modelTopology`): cut at a feature layer,
 * append a global average pool, and set the input size. Convolution weights do not depend on the input
 * size, so the same weights serve every size the architecture accepts.
 */
import type { KerasLayerJson, KerasModelTopology } from './nsfwjs-files';
import { BackboneError } from './types';

/** Name of the pooling layer appended after the feature layer. */
export const POOL_LAYER = 'privatune_feature_pool';

/** Names of the layers a Keras inbound_nodes entry refers to. */
export function inboundLayerNames(layer: KerasLayerJson): string[] {
  const names: string[] = [];
  for (const node of layer.inbound_nodes as unknown[][]) {
    for (const ref of node as unknown[]) {
      if (Array.isArray(ref) && typeof ref[0] === 'string') names.push(ref[0]);
      else if (ref && typeof ref === 'object' && 'args' in (ref as object)) {
        throw new BackboneError('BACKBONE_UNSUPPORTED', `layer ${layer.name}: Keras 3 inbound node format is not supported`);
      }
    }
  }
  return names;
}

/** The layers needed to compute `outputLayer` (ancestors, in the original topological order). */
export function ancestors(layers: KerasLayerJson[], outputLayer: string): KerasLayerJson[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  if (!byName.has(outputLayer)) {
    throw new BackboneError('BACKBONE_FEATURE_LAYER', `layer ${outputLayer} not found in the model`);
  }
  const needed = new Set<string>();
  const stack = [outputLayer];
  while (stack.length) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    const layer = byName.get(name);
    if (!layer) throw new BackboneError('BACKBONE_INVALID_MODEL', `layer ${name} referenced but not defined`);
    stack.push(...inboundLayerNames(layer));
  }
  return layers.filter((l) => needed.has(l.name));
}

/**
 * A copy of `topology` computing `featureLayer` followed by a global average pool, for square inputs of
 * `inputSize` pixels.
 */
export function cutTopology(topology: KerasModelTopology, featureLayer: string, inputSize: number, pool = true): KerasModelTopology {
  const copy = JSON.parse(JSON.stringify(topology)) as KerasModelTopology;
  const cfg = copy.model_config.config;
  const kept = ancestors(cfg.layers, featureLayer);
  const inputs = kept.filter((l) => l.class_name === 'InputLayer');
  if (inputs.length !== 1) throw new BackboneError('BACKBONE_UNSUPPORTED', `expected one input layer, found ${inputs.length}`);
  const input = inputs[0];
  const shape = input.config.batch_input_shape as (number | null)[];
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new BackboneError('BACKBONE_UNSUPPORTED', 'input layer is not rank-4 (NHWC image batch)');
  }
  input.config.batch_input_shape = [null, inputSize, inputSize, shape[3]];
  const poolLayer: KerasLayerJson = {
    name: POOL_LAYER,
    class_name: 'GlobalAveragePooling2D',
    config: { name: POOL_LAYER, trainable: false, data_format: 'channels_last' },
    inbound_nodes: [[[featureLayer, 0, 0, {}]]],
  };
  cfg.layers = pool ? [...kept, poolLayer] : kept;
  cfg.input_layers = [[input.name, 0, 0]];
  cfg.output_layers = [[pool ? POOL_LAYER : featureLayer, 0, 0]];
  cfg.name = `${cfg.name}_${featureLayer}_${inputSize}`;
  return copy;
}

/** Weight names (`layer/variable`) used by a set of layers. */
export function weightNamesOf(layers: KerasLayerJson[], allWeightNames: string[]): string[] {
  const names = new Set(layers.map((l) => l.name));
  return allWeightNames.filter((w) => names.has(w.slice(0, w.indexOf('/'))));
}
