/**
 * Where noise comes from. Every noisy release in the platform draws through a NoiseSource so that the
 * ledger can see, and refuse, anything but the cryptographically secure one.
 */
export interface NoiseSource {
  /** true only for the node:crypto-backed source; the ledger refuses releases made with any other. */
  readonly secure: boolean;
  /** 'csprng' for real releases; 'seeded' is a deterministic generator for tests only. */
  readonly kind: 'csprng' | 'seeded';
  /** Fills `out` with independent N(0, std^2) draws in float64 and returns it. */
  fillGaussian(out: Float64Array, std: number): Float64Array;
  /** Fills `out` with independent Laplace(0, scale) draws in float64 and returns it. */
  fillLaplace(out: Float64Array, scale: number): Float64Array;
}
