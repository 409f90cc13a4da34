/**
 * The built-in public backbone: MobileNetV2 as shipped by the `nsfwjs` npm package, cut below its classifier.
 */
import { loadNsfwjsMobilenetV2, type KerasModelTopology } from './nsfwjs-files';
import type { BackboneSpec } from './types';

export const MOBILENET_V2_ID = 'mobilenet_v2';

export const MOBILENET_V2_SPEC: BackboneSpec = {
  id: MOBILENET_V2_ID,
  name: 'MobileNetV2 (nsfwjs weights)',
  description:
    'MobileNetV2 (alpha 1.0) with ImageNet weights further trained by the nsfwjs project on its public image ' +
    'classification data, loaded from the nsfwjs npm package. The classifier layers are cut and a global ' +
    'average pool is appended to the chosen feature layer. Default: pooled block_13_expand_relu (576-d) at ' +
    '96 px; out_relu (1280-d, the last conv layer) is also offered. Preprocessing: pixels / 255, RGB.',
  source: { kind: 'builtin-nsfwjs', model: 'mobilenet_v2' },
  input: { layout: 'NHWC', minSize: 32, maxSize: 448, defaultSize: 96 },
  preprocessing: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'bilinear', alignCorners: true },
  featureLayers: [
    { name: 'block_13_expand_relu', node: 'block_13_expand_relu', dim: 576, pooling: 'global-avg', defaultSize: 96 },
    { name: 'out_relu', node: 'out_relu', dim: 1280, pooling: 'global-avg', defaultSize: 224 },
  ],
  defaultFeatureLayer: 'block_13_expand_relu',
  provenance: {
    origin:
      'MobileNetV2 (Sandler et al., 2018) ImageNet weights, further trained by the nsfwjs project ' +
      '(github.com/infinitered/nsfwjs) on its public classification data; files from the nsfwjs npm package ' +
      '(dist/models/mobilenet_v2, uint8-quantised TF.js Layers model, trained at 224 px)',
    trainingData: 'ImageNet (pretraining) + the nsfwjs project public image data (5-class finetuning)',
    license: 'MIT (nsfwjs)',
    url: 'https://github.com/infinitered/nsfwjs',
    notes: 'Pure feature extractor: no weights are trained on private data.',
  },
};

/** Topology + weights of the built-in model, from the nsfwjs package files (cached per process). */
export function mobilenetV2Source(): { topology: KerasModelTopology; weights: Map<string, { shape: number[]; data: Float32Array }>; order: string[]; sha256: string; packageVersion: string } {
  const files = loadNsfwjsMobilenetV2();
  return { topology: files.topology, weights: files.weights.values, order: files.weights.order, sha256: files.sha256, packageVersion: files.packageVersion };
}
