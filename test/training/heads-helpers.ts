/** Test-only helpers for the heads tests: a deterministic (insecure) noise source and synthetic data. */
import type { NoiseSource } from '../../src/privacy/noise-source';
import type { FeatureMatrix, UniformSource } from '../../src/training/heads';

/** mulberry32-style 32-bit generator; two outputs make one 53-bit uniform in [0, 1). */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  private next32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  uniform(): number {
    return ((this.next32() >>> 5) * 67108864 + (this.next32() >>> 6)) / 9007199254740992;
  }
  gaussian(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

/** Deterministic NoiseSource (kind 'seeded', secure false) that records every fill call. */
export class RecordingNoise implements NoiseSource {
  readonly secure = false;
  readonly kind = 'seeded' as const;
  readonly calls: { length: number; std: number; values: Float64Array }[] = [];
  private readonly rng: SeededRandom;
  constructor(seed = 1, private readonly keep = false) {
    this.rng = new SeededRandom(seed);
  }
  fillGaussian(out: Float64Array, std: number): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = std * this.rng.gaussian();
    this.calls.push({ length: out.length, std, values: this.keep ? Float64Array.from(out) : new Float64Array(0) });
    return out;
  }
  fillLaplace(out: Float64Array, scale: number): Float64Array {
    for (let i = 0; i < out.length; i++) {
      const u = this.rng.uniform() - 0.5;
      out[i] = -scale * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    }
    return out;
  }
  get draws(): number {
    return this.calls.reduce((s, c) => s + c.length, 0);
  }
}

/** Wraps a seeded source but reports secure: true (only to reach code paths behind the secure check). */
export function pretendSecure(inner: NoiseSource): NoiseSource {
  return {
    secure: true,
    kind: 'csprng',
    fillGaussian: (out, std) => inner.fillGaussian(out, std),
    fillLaplace: (out, scale) => inner.fillLaplace(out, scale),
  };
}

export function seededUniform(seed: number): UniformSource & { draws: number } {
  const rng = new SeededRandom(seed);
  const src = {
    secure: false,
    kind: 'seeded' as const,
    draws: 0,
    fillUniform(out: Float64Array): Float64Array {
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform();
      src.draws += out.length;
      return out;
    },
  };
  return src;
}

export interface Synthetic {
  features: FeatureMatrix;
  labels: Int32Array;
}

/**
 * Gaussian mixture: class k has a random mean direction (scaled by `separation`) plus isotropic noise;
 * rows are L2-normalised so that C = 1 is the natural clip norm. Same `seed` = same class means;
 * `sampleSeed` picks the draws (so a test set shares the means but not the examples).
 */
export function gaussianMixture(n: number, d: number, k: number, seed: number, separation = 3, normalise = true, sampleSeed = seed + 1): Synthetic {
  let rng = new SeededRandom(seed);
  const means = new Float64Array(k * d);
  for (let i = 0; i < means.length; i++) means[i] = rng.gaussian();
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += means[c * d + j] ** 2;
    const f = separation / Math.sqrt(s);
    for (let j = 0; j < d; j++) means[c * d + j] *= f;
  }
  rng = new SeededRandom(sampleSeed * 7919 + 13); // samples: independent of the means' stream
  const data = new Float64Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = means[c * d + j] + rng.gaussian() / Math.sqrt(d) * 1.0;
      data[i * d + j] = v;
      s += v * v;
    }
    if (normalise) {
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < d; j++) data[i * d + j] *= inv;
    }
  }
  return { features: { data, rows: n, cols: d }, labels };
}

export function randomSymmetric(n: number, seed: number): Float64Array {
  const rng = new SeededRandom(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = rng.gaussian();
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmaxRows(logits: Float64Array, k: number): Int32Array {
  const n = logits.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let b = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + b]) b = c;
    out[i] = b;
  }
  return out;
}
