/**
 * Noise sources.
 *
 * secureNoise(): node:crypto (randomFillSync, refilled in 64 KiB blocks) -> 53-bit uniforms -> Gaussian by
 * the Marsaglia polar method and Laplace by sign * b * Exp(1) with Exp(1) = -log(U), U in (0, 1].
 * Caveat (documented): like every float64 sampler, these are not exactly the ideal continuous
 * distributions (Mironov 2012 "floating-point attack"); the platform's DP guarantee assumes the ideal
 * mechanism. seededNoiseForTests(): deterministic sfc32 generator, secure = false, for tests only.
 */
import { randomFillSync } from 'node:crypto';
import type { NoiseSource } from './noise-source';
import { PrivacyInputError } from './errors';

const TWO_POW_M53 = 1 / 9007199254740992; // 2^-53

/** A stream of uniform 53-bit doubles in [0, 1). */
interface UniformStream {
  next(): number;
}

class CryptoUniform implements UniformStream {
  private readonly buf = new Uint32Array(16384);
  private pos = this.buf.length;

  next(): number {
    if (this.pos + 2 > this.buf.length) {
      randomFillSync(this.buf);
      this.pos = 0;
    }
    const hi = this.buf[this.pos++] >>> 5; // 27 bits
    const lo = this.buf[this.pos++] >>> 6; // 26 bits
    return (hi * 67108864 + lo) * TWO_POW_M53;
  }
}

/** sfc32 (Small Fast Chaotic) generator, seeded through a string hash; two outputs per double. */
class SeededUniform implements UniformStream {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string) {
    const s = String(seed);
    // FNV-1a style hashing into four 32-bit words.
    let h1 = 0x811c9dc5 ^ s.length;
    let h2 = 0x9e3779b9;
    let h3 = 0x85ebca6b;
    let h4 = 0xc2b2ae35;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 0x01000193);
      h2 = Math.imul(h2 ^ ch, 0x5bd1e995);
      h3 = Math.imul(h3 ^ h1, 0x27d4eb2f);
      h4 = Math.imul(h4 ^ h2, 0x165667b1);
    }
    this.a = h1 >>> 0;
    this.b = h2 >>> 0;
    this.c = h3 >>> 0;
    this.d = (h4 | 1) >>> 0;
    for (let i = 0; i < 20; i++) this.u32();
  }

  private u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    const hi = this.u32() >>> 5;
    const lo = this.u32() >>> 6;
    return (hi * 67108864 + lo) * TWO_POW_M53;
  }
}

function checkScale(v: number, name: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new PrivacyInputError(name, `must be a finite number >= 0 (got ${String(v)})`);
  }
}

class StreamNoiseSource implements NoiseSource {
  private spare = 0;
  private hasSpare = false;

  constructor(
    private readonly u: UniformStream,
    readonly secure: boolean,
    readonly kind: 'csprng' | 'seeded',
  ) {}

  /** One N(0,1) draw (Marsaglia polar: two normals per accepted pair). */
  private normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    for (;;) {
      const x = 2 * this.u.next() - 1;
      const y = 2 * this.u.next() - 1;
      const s = x * x + y * y;
      if (s >= 1 || s === 0) continue;
      const f = Math.sqrt((-2 * Math.log(s)) / s);
      this.spare = y * f;
      this.hasSpare = true;
      return x * f;
    }
  }

  fillGaussian(out: Float64Array, std: number): Float64Array {
    checkScale(std, 'std');
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
    return out;
  }

  fillLaplace(out: Float64Array, scale: number): Float64Array {
    checkScale(scale, 'scale');
    for (let i = 0; i < out.length; i++) {
      const v = this.u.next(); // [0,1): top bit-ish for sign, the rest for the exponential
      const sign = v < 0.5 ? -1 : 1;
      const u = 1 - this.u.next(); // (0, 1]
      out[i] = sign * scale * -Math.log(u);
    }
    return out;
  }
}

/** The production noise source: node:crypto-backed, float64, kind 'csprng', secure = true. */
export function secureNoise(): NoiseSource {
  return new StreamNoiseSource(new CryptoUniform(), true, 'csprng');
}

/** Deterministic generator for tests only: kind 'seeded', secure = false (the ledger refuses it). */
export function seededNoiseForTests(seed: number | string): NoiseSource {
  if (typeof seed !== 'number' && typeof seed !== 'string') {
    throw new PrivacyInputError('seed', 'must be a number or a string');
  }
  return new StreamNoiseSource(new SeededUniform(seed), false, 'seeded');
}
