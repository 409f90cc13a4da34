/**
 * Benchmark-only fast path for full-batch DP_SGD (DP gradient descent) on a linear softmax head: the SAME
 * algorithm as `trainDpSgd` with samplingRate 1 and optimizer 'sgd' (per-example clipped gradients of
 * softmax cross-entropy, fresh N(0, sigma^2 C^2) noise on the K x D sum every step, division by the
 * declared size, heavy-ball momentum, the platform's `learningRateAt` schedule), but the clipped gradient
 * sums of M models are computed together by ONNX Runtime (float32 GEMMs, all cores) instead of the
 * platform's scalar float64 JavaScript loop.
 *
 * Why: on Fashion-MNIST (60,000 x 576) one full-batch gradient takes ~0.25 s in `clippedGradientSum`, so
 * 1000 steps x 5 noise draws x 5 epsilons x 2 layers (1280-d: ~0.55 s) would take about 5.5 hours; here
 * M models share each pass over the features. `verifyAgainstTrainDpSgd` checks (run by the benchmark
 * before it trusts this path) that the heads agree with `trainDpSgd` given the same seeded noise, up to float32 rounding.
 *
 * Graph (opset 13), per call: X [n, D] (bias column appended), Y [n, K] one-hot, NS [n, 1] = ||x~_i||^2,
 * TH [D, M K] (model m's theta transposed in columns m K .. m K + K - 1), CL [1, M, 1] clip norms:
 *   Z = X TH -> [n, M, K];  R = softmax(Z) - Y;  c = min(1, C / sqrt(||R_im||^2 NS_i));
 *   G = (c R)^T X -> [M K, D] (rows m K + k = model m's clipped gradient sum for class k);
 *   L = -sum_i log softmax(Z)_{i, y_i} per model (diagnostics / the non-private baseline only).
 */
import type { NoiseSource } from '../src/privacy/noise-source';
import { createOnnxSession, ort } from '../src/training/backbones/engines/onnx-extractor';
import { encodeModel, int64Tensor, floatTensor, OnnxNode, TensorDataType } from '../src/training/backbones/onnx/protobuf';
import { FeatureMatrix, learningRateAt, LinearHead, trainDpSgd } from '../src/training/heads';
import type * as OrtTypes from 'onnxruntime-node';

export interface GdModel {
  /** Noise multiplier (0 = noiseless; then `noise` is ignored). */
  sigma: number;
  clip: number;
  noise: NoiseSource | null;
  learningRate: number;
  momentum: number;
  /** L2 term added to the step's gradient (as trainDpSgd's sgd weightDecay). Default 0. */
  weightDecay?: number;
}

export interface GdRun {
  steps: number;
  schedule: 'constant' | 'cosine';
  declaredSize: number;
  fitBias: boolean;
  /** Called after each step with the models' mean training losses (unclipped, noiseless: diagnostics). */
  onStep?: (step: number, losses: Float64Array) => void;
}

/** Features, labels and an ORT session, prepared once per (data, number of models). */
export class OrtGradient {
  private constructor(
    private readonly session: OrtTypes.InferenceSession,
    private readonly feeds: Record<string, OrtTypes.Tensor>,
    readonly rows: number,
    readonly dim: number,
    readonly D: number,
    readonly K: number,
    readonly M: number,
  ) {}

  static async create(features: FeatureMatrix, labels: Int32Array, K: number, fitBias: boolean, M: number, threads?: number): Promise<OrtGradient> {
    const { rows: n, cols: d, data } = features;
    const D = fitBias ? d + 1 : d;
    const x = new Float32Array(n * D);
    const ns = new Float32Array(n);
    const y = new Float32Array(n * K);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const v = data[i * d + j];
        x[i * D + j] = v;
        s += v * v;
      }
      if (fitBias) {
        x[i * D + d] = 1;
        s += 1;
      }
      ns[i] = s;
      y[i * K + labels[i]] = 1;
    }
    const c = (name: string, dims: number[], v: number[]) => floatTensor(name, dims, Float32Array.from(v));
    const nodes: OnnxNode[] = [
      { opType: 'MatMul', name: 'z', inputs: ['X', 'TH'], outputs: ['Z'] },
      { opType: 'Reshape', name: 'z3', inputs: ['Z', 'shapeNMK'], outputs: ['Z3'] },
      { opType: 'Softmax', name: 'p', inputs: ['Z3'], outputs: ['P'], attributes: { axis: { kind: 'int', value: -1 } } },
      { opType: 'LogSoftmax', name: 'lp', inputs: ['Z3'], outputs: ['LP'], attributes: { axis: { kind: 'int', value: -1 } } },
      { opType: 'Reshape', name: 'y3', inputs: ['Y', 'shapeN1K'], outputs: ['Y3'] },
      { opType: 'Sub', name: 'r', inputs: ['P', 'Y3'], outputs: ['R'] },
      { opType: 'ReduceSumSquare', name: 'pn', inputs: ['R'], outputs: ['PN'], attributes: { axes: { kind: 'ints', value: [2] }, keepdims: { kind: 'int', value: 1 } } },
      { opType: 'Reshape', name: 'ns3', inputs: ['NS', 'shapeN11'], outputs: ['NS3'] },
      { opType: 'Mul', name: 'gn2', inputs: ['PN', 'NS3'], outputs: ['GN2'] },
      { opType: 'Sqrt', name: 'gn', inputs: ['GN2'], outputs: ['GN'] },
      { opType: 'Div', name: 'q', inputs: ['CL', 'GN'], outputs: ['Q'] },
      { opType: 'Min', name: 'c', inputs: ['Q', 'one'], outputs: ['C'] },
      { opType: 'Mul', name: 'a3', inputs: ['R', 'C'], outputs: ['A3'] },
      { opType: 'Reshape', name: 'a', inputs: ['A3', 'shapeNMK2'], outputs: ['A'] },
      { opType: 'Gemm', name: 'g', inputs: ['A', 'X'], outputs: ['G'], attributes: { transA: { kind: 'int', value: 1 } } },
      { opType: 'Mul', name: 'ly', inputs: ['LP', 'Y3'], outputs: ['LY'] },
      { opType: 'ReduceSum', name: 'l', inputs: ['LY', 'axes01'], outputs: ['L'], attributes: { keepdims: { kind: 'int', value: 0 } } },
    ];
    // ReduceSum in opset 13 takes axes as an input; ReduceSumSquare still as an attribute.
    const model = encodeModel({
      irVersion: 7,
      opsetVersion: 13,
      producerName: 'privatune-bench',
      producerVersion: '1',
      graph: {
        name: 'clipped_gradient',
        nodes,
        initializers: [
          int64Tensor('shapeNMK', [3], [-1, M, K]),
          int64Tensor('shapeN1K', [3], [-1, 1, K]),
          int64Tensor('shapeN11', [3], [-1, 1, 1]),
          int64Tensor('shapeNMK2', [2], [-1, M * K]),
          int64Tensor('axes01', [2], [0, 2]),
          c('one', [1], [1]),
        ],
        inputs: [
          { name: 'X', elemType: TensorDataType.FLOAT, shape: [n, D] },
          { name: 'Y', elemType: TensorDataType.FLOAT, shape: [n, K] },
          { name: 'NS', elemType: TensorDataType.FLOAT, shape: [n, 1] },
          { name: 'TH', elemType: TensorDataType.FLOAT, shape: [D, M * K] },
          { name: 'CL', elemType: TensorDataType.FLOAT, shape: [1, M, 1] },
        ],
        outputs: [
          { name: 'G', elemType: TensorDataType.FLOAT, shape: [M * K, D] },
          { name: 'L', elemType: TensorDataType.FLOAT, shape: [M] },
        ],
      },
    });
    const { session } = await createOnnxSession(model, { threads, executionProviders: ['cpu'] });
    const T = ort().Tensor;
    const feeds = { X: new T('float32', x, [n, D]), Y: new T('float32', y, [n, K]), NS: new T('float32', ns, [n, 1]) };
    return new OrtGradient(session, feeds, n, d, D, K, M);
  }

  /** Clipped gradient sums (K x D each, float64) and summed losses of the M models at `thetas`. */
  async gradients(thetas: Float64Array[], clips: number[]): Promise<{ grads: Float64Array[]; losses: Float64Array }> {
    const { D, K, M } = this;
    if (thetas.length !== M || clips.length !== M) throw new Error(`expected ${M} models`);
    const th = new Float32Array(D * M * K);
    for (let m = 0; m < M; m++) {
      const t = thetas[m];
      for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) th[j * M * K + m * K + k] = t[k * D + j];
    }
    const T = ort().Tensor;
    const out = await this.session.run({
      ...this.feeds,
      TH: new T('float32', th, [D, M * K]),
      CL: new T('float32', Float32Array.from(clips.map((v) => Math.min(v, 3e38))), [1, M, 1]),
    });
    const g = out.G.data as Float32Array;
    const l = out.L.data as Float32Array;
    const grads = thetas.map((_, m) => Float64Array.from(g.subarray(m * K * D, (m + 1) * K * D)));
    return { grads, losses: Float64Array.from(l, (v) => -v) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** M full-batch DP-GD runs in lockstep (same steps and schedule; own sigma, clip, lr, momentum, noise each). */
export async function trainFullBatchGd(grad: OrtGradient, models: GdModel[], run: GdRun): Promise<LinearHead[]> {
  const { D, K, dim } = grad;
  const P = K * D;
  if ((D === dim + 1) !== run.fitBias) throw new Error('fitBias does not match the prepared data');
  const thetas = models.map(() => new Float64Array(P));
  const mom = models.map(() => new Float64Array(P));
  const clips = models.map((m) => m.clip);
  for (let t = 0; t < run.steps; t++) {
    const { grads, losses } = await grad.gradients(thetas, clips);
    for (let m = 0; m < models.length; m++) {
      const spec = models[m];
      const g = grads[m];
      if (spec.sigma > 0) {
        // One fresh buffer per step and model, as trainDpSgd's drawGaussian.
        const noise = spec.noise!.fillGaussian(new Float64Array(P), spec.sigma * spec.clip);
        for (let e = 0; e < P; e++) g[e] += noise[e];
      }
      for (let e = 0; e < P; e++) g[e] /= run.declaredSize;
      const rate = learningRateAt(t, run.steps, spec.learningRate, run.schedule, 0);
      const wd = spec.weightDecay ?? 0;
      const th = thetas[m];
      const v = mom[m];
      for (let e = 0; e < P; e++) {
        v[e] = spec.momentum * v[e] + g[e] + wd * th[e];
        th[e] -= rate * v[e];
      }
    }
    run.onStep?.(t + 1, Float64Array.from(losses, (l) => l / grad.rows));
  }
  return thetas.map((th) => {
    const weights = new Float64Array(K * dim);
    const bias = run.fitBias ? new Float64Array(K) : null;
    for (let k = 0; k < K; k++) {
      weights.set(th.subarray(k * D, k * D + dim), k * dim);
      if (bias) bias[k] = th[k * D + dim];
    }
    return { numClasses: K, dim, weights, bias };
  });
}

/**
 * Runs this fast path and the platform's `trainDpSgd` on the same data with the same seeded noise and
 * returns the largest absolute weight difference relative to the largest weight.
 */
export async function verifyAgainstTrainDpSgd(features: FeatureMatrix, labels: Int32Array, K: number, seededNoise: (seed: number) => NoiseSource, steps = 10): Promise<number> {
  const settings = [
    { sigma: 0.8, clip: 1, learningRate: 0.5, momentum: 0.9 },
    { sigma: 2, clip: 0.3, learningRate: 2, momentum: 0.5 },
  ];
  const grad = await OrtGradient.create(features, labels, K, true, settings.length, 1);
  const fast = await trainFullBatchGd(
    grad,
    settings.map((s, i) => ({ ...s, noise: seededNoise(100 + i) })),
    { steps, schedule: 'cosine', declaredSize: features.rows, fitBias: true },
  );
  await grad.release();
  let worst = 0;
  settings.forEach((s, i) => {
    const ref = trainDpSgd(features, labels, {
      numClasses: K,
      declaredSize: features.rows,
      steps,
      noiseMultiplier: s.sigma,
      clipNorm: s.clip,
      learningRate: s.learningRate,
      momentum: s.momentum,
      optimizer: 'sgd',
      schedule: 'cosine',
      fitBias: true,
      noise: seededNoise(100 + i),
      allowInsecureNoise: true,
    });
    let scale = 0;
    let diff = 0;
    for (let e = 0; e < ref.weights.length; e++) {
      scale = Math.max(scale, Math.abs(ref.weights[e]));
      diff = Math.max(diff, Math.abs(ref.weights[e] - fast[i].weights[e]));
    }
    for (let k = 0; k < K; k++) diff = Math.max(diff, Math.abs(ref.bias![k] - fast[i].bias![k]));
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}
