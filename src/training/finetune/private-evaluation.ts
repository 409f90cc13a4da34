/**
 * Accuracy on a private held-out split, released as a noisy count. The split is decided by index alone
 * (every m-th example), so the sizes of both parts are public given the declared n; the count of correct
 * predictions changes by at most 1 when one example is added or removed, so Gaussian noise of multiplier
 * sigma on it is one Gaussian release, reserved and charged with the job's other releases.
 */
import type { NoiseSource } from '../../privacy';
import { FeatureMatrix, LinearHead, predictClasses } from '../heads';
import { heldOutCount, isHeldOut } from '../jobs/finetune-options';

export interface Split {
  train: { features: FeatureMatrix; labels: Int32Array };
  holdout: { features: FeatureMatrix; labels: Int32Array };
}

export function splitHoldout(features: FeatureMatrix, labels: Int32Array, every: number): Split {
  const { rows, cols, data } = features;
  const nHold = heldOutCount(rows, every);
  const trainData = new Float32Array((rows - nHold) * cols);
  const holdData = new Float32Array(nHold * cols);
  const trainLabels = new Int32Array(rows - nHold);
  const holdLabels = new Int32Array(nHold);
  let t = 0;
  let h = 0;
  for (let i = 0; i < rows; i++) {
    const row = data.subarray(i * cols, (i + 1) * cols);
    if (isHeldOut(i, every) && h < nHold) {
      holdData.set(row, h * cols);
      holdLabels[h++] = labels[i];
    } else {
      trainData.set(row, t * cols);
      trainLabels[t++] = labels[i];
    }
  }
  return {
    train: { features: { data: trainData, rows: rows - nHold, cols }, labels: trainLabels },
    holdout: { features: { data: holdData, rows: nHold, cols }, labels: holdLabels },
  };
}

export interface NoisyAccuracy {
  kind: 'private-holdout';
  examples: number;
  /** (correct + N(0, sigma^2)) / examples, clamped to [0, 1]. */
  accuracy: number;
  noiseMultiplier: number;
  charged: true;
}

export function noisyHoldoutAccuracy(head: LinearHead, holdout: Split['holdout'], noiseMultiplier: number, noise: NoiseSource): NoisyAccuracy {
  const predicted = predictClasses(head, holdout.features);
  let correct = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === holdout.labels[i]) correct++;
  const [z] = noise.fillGaussian(new Float64Array(1), noiseMultiplier);
  const examples = holdout.labels.length;
  return { kind: 'private-holdout', examples, accuracy: Math.min(1, Math.max(0, (correct + z) / Math.max(1, examples))), noiseMultiplier, charged: true };
}
