/**
 * Inference with a released head (post-processing: costs no privacy budget).
 * logits = W x + b; probabilities = softmax(logits).
 */
import { FeatureMatrix, LinearHead } from './types';

function checkDim(head: LinearHead, cols: number): void {
  if (cols !== head.dim) throw new Error(`head expects ${head.dim} features, got ${cols}`);
}

/** n x K row-major logits. */
export function predictLogits(head: LinearHead, features: FeatureMatrix): Float64Array {
  checkDim(head, features.cols);
  const { rows, cols, data } = features;
  const K = head.numClasses;
  const out = new Float64Array(rows * K);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let k = 0; k < K; k++) {
      const rk = k * cols;
      let s = head.bias ? head.bias[k] : 0;
      for (let j = 0; j < cols; j++) s += head.weights[rk + j] * data[o + j];
      out[i * K + k] = s;
    }
  }
  return out;
}

/** argmax_k logits (ties -> lowest index). */
export function predictClasses(head: LinearHead, features: FeatureMatrix): Int32Array {
  const K = head.numClasses;
  const logits = predictLogits(head, features);
  const out = new Int32Array(features.rows);
  for (let i = 0; i < features.rows; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
    out[i] = best;
  }
  return out;
}

/** Numerically stable softmax of one logit vector. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k]);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let k = 0; k < logits.length; k++) {
    p[k] = Math.exp(logits[k] - max);
    sum += p[k];
  }
  for (let k = 0; k < p.length; k++) p[k] /= sum;
  return p;
}

export interface ClassProbability {
  classIndex: number;
  probability: number;
}

/** Top-k classes of ONE feature vector by softmax probability, most probable first. */
export function predictTopK(head: LinearHead, x: Float32Array | Float64Array, k: number): ClassProbability[] {
  const logits = predictLogits(head, { data: x, rows: 1, cols: x.length });
  const p = softmax(logits);
  const order = Array.from({ length: head.numClasses }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  return order.slice(0, Math.max(0, Math.min(k, head.numClasses))).map((c) => ({ classIndex: c, probability: p[c] }));
}

/** Mean softmax cross-entropy (evaluate on PUBLIC data only: on private data it is a release). */
export function meanCrossEntropy(head: LinearHead, features: FeatureMatrix, labels: Int32Array): number {
  const K = head.numClasses;
  const logits = predictLogits(head, features);
  let total = 0;
  for (let i = 0; i < features.rows; i++) {
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, logits[i * K + k]);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(logits[i * K + k] - max);
    total += max + Math.log(s) - logits[i * K + labels[i]];
  }
  return total / Math.max(1, features.rows);
}

/** Fraction of rows whose argmax equals the label (PUBLIC evaluation data only). */
export function accuracy(head: LinearHead, features: FeatureMatrix, labels: Int32Array): number {
  const pred = predictClasses(head, features);
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) ok++;
  return pred.length ? ok / pred.length : 0;
}
