/**
 * Backbone / feature-extraction engine layer (pure: no NestJS, no database).
 *
 *   const info = await initTensorBackend();                 // health + metrics: info.backend, info.tried
 *   const fx = await loadBackbone(MOBILENET_V2_SPEC, { engine: 'auto' });   // block_13_expand_relu @ 96 px
 *   const x = preprocessRawBatch(images, fx.inputSize, fx.inputPreprocessing);   // what this engine takes
 *   const feats = await fx.extract(x, images.n);            // n x 576
 *   // or, with overlapped preprocessing: await extractFeaturesFromRaw(fx, images)
 *   const stats = loadPublicStats(fx.spec.id, fx.featureLayer, fx.inputSize); // of L2-normalised features
 */
export * from './types';
export { initTensorBackend, getTensorBackendInfo, type TensorBackendInfo, type TensorBackendName, type BackendAttempt, type InitTensorBackendOptions } from './tf-backend';
export { MOBILENET_V2_SPEC, MOBILENET_V2_ID } from './mobilenet-v2';
export {
  loadBackbone,
  autoEngine,
  validateBackboneSpec,
  resolveFeatureLayer,
  resolveInputSize,
  getBuiltinBackbone,
  onnxArtifactPath,
  verificationInputs,
  BUILTIN_BACKBONES,
  DEFAULT_ARTIFACT_DIR,
  DEFAULT_BATCH_SIZE,
  DEFAULT_VERIFY_TOLERANCE,
  EXPORTER_VERSION,
  type LoadBackboneOptions,
  type EngineFacts,
} from './loader';
export { preprocessImages, preprocessRawBatch, affineOf, withoutNormalisation, decodeImage, type RawImage, type RawImageBatch, type ImageInput } from './preprocess';
export { extractFeaturesFromRaw, type ExtractImagesOptions } from './pipeline';
export { preprocessPass, packPass, unpackPass, type PassImage, type PackedImage } from './pass';
export { loadPublicStats, publicStatsSizes, computePublicStats, loadMnistDigits, l2NormalisedMoments, STD_FLOOR, type PublicFeatureStats, type PublicStatsFile } from './public-stats';
export { createOnnxSession, cudaProviderInstalled } from './engines/onnx-extractor';
