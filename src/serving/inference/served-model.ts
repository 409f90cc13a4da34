/**
 * A released model ready for inference (pure: no NestJS, no database): its linear head decoded from the
 * stored bytes, and the exact feature preprocessing it was trained with. Applying it to backbone
 * features is post-processing of a released model: it costs no privacy budget.
 */
import { applyFeaturePreprocessing } from '../../training/finetune/train-head';
import { LinearHead, predictLogits } from '../../training/heads';
import type { TrainedModel } from '../models/model.entity';

export interface LabelProbability {
  label: string;
  classIndex: number;
  probability: number;
}

/** Backbone configuration a model needs; models with equal keys share one batcher and forward pass. */
export function backboneKey(m: Pick<TrainedModel, 'backbone'>): string {
  return `${m.backbone.id}/${m.backbone.featureLayer}@${m.backbone.inputSize}`;
}

function float64s(buf: Buffer, count: number, what: string): Float64Array {
  if (buf.length !== count * 8) throw new Error(`${what} holds ${buf.length} bytes, expected ${count * 8}`);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}

export class ServedModel {
  readonly head: LinearHead;
  readonly key: string;

  constructor(readonly model: TrainedModel) {
    const K = model.classNames.length;
    if (K < 1) throw new Error(`model ${model.id} has no classes`);
    if (model.dim !== model.backbone.featureDim) throw new Error(`model ${model.id}: head dim ${model.dim} differs from the backbone's ${model.backbone.featureDim} features`);
    const weights = float64s(model.weights, K * model.dim, 'weights');
    const bias = model.bias ? float64s(model.bias, K, 'bias') : null;
    for (const v of weights) if (!Number.isFinite(v)) throw new Error(`model ${model.id} has non-finite weights`);
    this.head = { numClasses: K, dim: model.dim, weights, bias };
    this.key = backboneKey(model);
  }

  get ref(): string {
    return `${this.model.name}@${this.model.version}`;
  }

  /**
   * Top-k labels for each of n feature rows (n x dim, row-major), most probable first (ties: lower class
   * index first). k is clamped to the number of classes.
   */
  classify(features: Float32Array, n: number, k: number): LabelProbability[][] {
    const { dim, numClasses: K } = this.head;
    const x = applyFeaturePreprocessing({ data: features, rows: n, cols: dim }, this.model.featurePreprocessing);
    const logits = predictLogits(this.head, x);
    const top = Math.max(1, Math.min(k, K));
    const out: LabelProbability[][] = [];
    const p = new Float64Array(K);
    const order = new Array<number>(K);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < K; c++) max = Math.max(max, logits[i * K + c]);
      let sum = 0;
      for (let c = 0; c < K; c++) sum += p[c] = Math.exp(logits[i * K + c] - max);
      for (let c = 0; c < K; c++) {
        p[c] /= sum;
        order[c] = c;
      }
      order.sort((a, b) => p[b] - p[a] || a - b);
      const labels: LabelProbability[] = [];
      for (let j = 0; j < top; j++) labels.push({ label: this.model.classNames[order[j]], classIndex: order[j], probability: p[order[j]] });
      out.push(labels);
    }
    return out;
  }
}
