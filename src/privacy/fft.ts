/**
 * Iterative radix-2 complex FFT on split Float64Arrays (re, im), with per-size cached bit-reversal and
 * twiddle tables. Sizes must be powers of two.
 */

interface Plan {
  n: number;
  rev: Uint32Array;
  cos: Float64Array;
  sin: Float64Array;
}

const plans = new Map<number, Plan>();

function getPlan(n: number): Plan {
  let p = plans.get(n);
  if (p) return p;
  if (n < 1 || (n & (n - 1)) !== 0) throw new Error(`FFT size must be a power of two, got ${n}`);
  const bits = Math.round(Math.log2(n));
  const rev = new Uint32Array(n);
  for (let i = 1; i < n; i++) rev[i] = (rev[i >>> 1] >>> 1) | ((i & 1) << (bits - 1));
  // Per-stage contiguous twiddles: the stage of half-size m reads cos[m + k], sin[m + k] = e^{-i pi k/m}.
  const cos = new Float64Array(Math.max(n, 2));
  const sin = new Float64Array(Math.max(n, 2));
  for (let m = 1; m < n; m <<= 1) {
    for (let k = 0; k < m; k++) {
      const ang = (-Math.PI * k) / m;
      cos[m + k] = Math.cos(ang);
      sin[m + k] = Math.sin(ang);
    }
  }
  p = { n, rev, cos, sin };
  if (plans.size > 24) plans.clear();
  plans.set(n, p);
  return p;
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * In-place FFT. Forward: X_k = sum_j x_j e^{-2 pi i jk/n}. Inverse (inverse=true) includes the 1/n factor.
 */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  if (im.length !== n) throw new Error('fft: re and im lengths differ');
  if (n <= 1) return;
  const { rev, cos, sin } = getPlan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  const sgn = inverse ? -1 : 1;
  // size-2 butterflies
  for (let i = 0; i < n; i += 2) {
    const ar = re[i];
    const ai = im[i];
    const br = re[i + 1];
    const bi = im[i + 1];
    re[i] = ar + br;
    im[i] = ai + bi;
    re[i + 1] = ar - br;
    im[i + 1] = ai - bi;
  }
  for (let size = 4; size <= n; size <<= 1) {
    const halfSize = size >>> 1;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < halfSize; k++) {
        const wr = cos[halfSize + k];
        const wi = sgn * sin[halfSize + k];
        const a = start + k;
        const b = a + halfSize;
        const xr = re[b];
        const xi = im[b];
        const tr = xr * wr - xi * wi;
        const ti = xr * wi + xi * wr;
        const ur = re[a];
        const ui = im[a];
        re[a] = ur + tr;
        im[a] = ui + ti;
        re[b] = ur - tr;
        im[b] = ui - ti;
      }
    }
  }
  if (inverse) {
    const inv = 1 / n;
    for (let i = 0; i < n; i++) {
      re[i] *= inv;
      im[i] *= inv;
    }
  }
}

/** Linear convolution of two real sequences (length a.length + b.length - 1), via one complex FFT pair. */
export function convolveReal(a: Float64Array, b: Float64Array): Float64Array {
  const outLen = a.length + b.length - 1;
  if (a.length * b.length <= 4096) {
    const out = new Float64Array(outLen);
    for (let i = 0; i < a.length; i++) {
      const ai = a[i];
      if (ai === 0) continue;
      for (let j = 0; j < b.length; j++) out[i + j] += ai * b[j];
    }
    return out;
  }
  const n = nextPow2(outLen);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  re.set(a);
  im.set(b);
  fft(re, im);
  // Z = A + iB, A_k = (Z_k + conj Z_{n-k})/2, B_k = (Z_k - conj Z_{n-k})/(2i); product P_k = A_k B_k.
  const pr = new Float64Array(n);
  const pi = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const m = (n - k) & (n - 1);
    const zr = re[k];
    const zi = im[k];
    const cr = re[m];
    const ci = -im[m];
    const ar = 0.5 * (zr + cr);
    const ai = 0.5 * (zi + ci);
    // (z - conj)/(2i): (dr + i di)/(2i) = di/2 - i dr/2
    const dr = zr - cr;
    const di = zi - ci;
    const br = 0.5 * di;
    const bi = -0.5 * dr;
    pr[k] = ar * br - ai * bi;
    pi[k] = ar * bi + ai * br;
  }
  fft(pr, pi, true);
  return pr.subarray(0, outLen).slice();
}
