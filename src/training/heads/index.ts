/** DP linear heads on frozen features (pure: no NestJS, no database). */
export * from './types';
export { computeFeatureStats, l2NormalizeRows, preprocessFeatures } from './preprocess';
export type { FeatureStats } from './preprocess';
export { trainSingleStep } from './single-step';
export type { SingleStepOptions } from './single-step';
export {
  leastSquaresEffectiveSigma,
  leastSquaresNoiseMultiplier,
  leastSquaresStatistics,
  trainLeastSquares,
} from './least-squares';
export type { LeastSquaresOptions, LeastSquaresStatistics } from './least-squares';
export { cryptoUniformSource, learningRateAt, trainDpSgd } from './dp-sgd';
export type { DpSgdOptions, OptimizerName, UniformSource } from './dp-sgd';
export { accuracy, meanCrossEntropy, predictClasses, predictLogits, predictTopK, softmax } from './predict';
export type { ClassProbability } from './predict';
export { eigenRidgeSolve, projectPsd, reconstructFromEigen, symmetricEigen } from './linalg';
export type { SymmetricEigen } from './linalg';
