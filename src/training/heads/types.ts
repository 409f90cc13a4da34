/**
 * Shared types of the DP linear heads. Pure: no NestJS, no database, no tensor library.
 *
 * Conventions used by every head:
 * - Features are a row-major n x d matrix (`FeatureMatrix`), labels an Int32Array of class indices in
 *   [0, numClasses). `numClasses` is PUBLIC metadata (the dataset's declared class list); it is never
 *   inferred from the private labels.
 * - A head's parameters are `weights` (K x d, row-major: row k is class k) and an optional `bias` (K).
 *   When a bias is fitted it is learned as the weight of a constant feature 1 appended to every row (so it
 *   is clipped and noised like any other coordinate).
 * - Every noisy release is reported as a privacy event; `releases` equals the sum of the events' counts.
 */
import type { NoiseSource } from '../../privacy/noise-source';

export type { NoiseSource };

/**
 * A privacy event in the platform's shared ledger schema (structurally identical to src/privacy's
 * PrivacyEvent, declared here so the heads do not depend on the accountant's implementation).
 * `noise_multiplier` is the noise standard deviation divided by the release's L2 sensitivity.
 */
export type PrivacyEvent =
  | { type: 'gaussian'; noise_multiplier: number; count: number }
  | { type: 'poisson_subsampled_gaussian'; noise_multiplier: number; sampling_rate: number; count: number };

/** Row-major n x d feature matrix. */
export interface FeatureMatrix {
  data: Float32Array | Float64Array;
  rows: number;
  cols: number;
}

export type HeadMethod = 'SINGLE_STEP' | 'LEAST_SQUARES' | 'DP_SGD';

/** A trained linear classifier: logits = W x + b. */
export interface LinearHead {
  numClasses: number;
  /** Input feature dimension d (excluding the bias coordinate). */
  dim: number;
  /** K x d row-major. */
  weights: Float64Array;
  /** K entries, or null when the head has no bias. */
  bias: Float64Array | null;
}

export interface HeadResult extends LinearHead {
  method: HeadMethod;
  /** Exactly the noisy releases performed, in order. Empty in non-private mode. */
  events: PrivacyEvent[];
  /** Number of noisy releases performed (= sum of events' counts; 0 in non-private mode). */
  releases: number;
  /** false for the explicit noiseless baseline mode: such a head must never be presented as DP. */
  private: boolean;
  /** Which noise source produced the noise ('none' in non-private mode). */
  noiseKind: 'csprng' | 'seeded' | 'none';
  noiseMultiplier: number;
  clipNorm: number;
}

/** Privacy parameters shared by all heads. */
export interface PrivacyOptions {
  /**
   * Noise multiplier sigma (noise std / sensitivity). Must be > 0, except in the explicit non-private
   * baseline mode where it must be 0 and `nonPrivate: true` is required.
   */
  noiseMultiplier: number;
  /** Clip norm C (> 0). May be Infinity only in non-private mode. */
  clipNorm: number;
  /** Noise source; required unless nonPrivate. Must be secure unless allowInsecureNoise. */
  noise?: NoiseSource;
  /** Tests only: accept a non-secure (seeded) noise source. The result records noiseKind 'seeded'. */
  allowInsecureNoise?: boolean;
  /** Explicit noiseless baseline: requires noiseMultiplier 0; emits no events; result.private = false. */
  nonPrivate?: boolean;
}

export type HeadErrorCode = 'INSECURE_NOISE_REFUSED' | 'INVALID_HEAD_OPTIONS' | 'EIGEN_NO_CONVERGENCE';

/** Typed error of the heads module; `code` is stable and safe to branch on. */
export class HeadError extends Error {
  constructor(
    readonly code: HeadErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HeadError';
  }
}
