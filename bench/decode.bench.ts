/**
 * JPEG decoding for serving: `npm run bench:decode` (= node dist/bench/decode.bench.js after a build).
 *
 * For photo-like JPEGs (gradients and seeded noise, 4:2:0, qualities 75 and 92) from 224 x 224 to
 * 1024 x 768: the CPU time per image of libjpeg-turbo, native (jpeg-native.ts, where npm install built it)
 * and in WebAssembly (jpeg-wasm.ts), and of sharp (libvips, on libuv's pool), one image at a time in this
 * process, their ratios (the baseline is sharp, measured in the same run, alternating), and which the
 * server's decoder (decodeEncoded) picks for that size; then images/s with 8 decodes in flight through the
 * server's decode threads (as many as the server starts by default: what a busy server gets) against sharp
 * called directly with 8 in flight. WebAssembly saves sharp's fixed cost per call but runs a slower IDCT,
 * so it wins on small images only: WASM_MAX_PIXELS was set where that ratio crosses 1. The native build
 * (SIMD) has no such crossing.
 *
 * Options: --ms M (measuring time per decoder, image and measure, default 1500), --json.
 */
import { availableParallelism } from 'node:os';
import { cpuUsage } from 'node:process';
import sharp from 'sharp';
import { DecodeThreads } from '../src/serving/inference/decode-thread';
import { jpegTurbo, turboTakes } from '../src/serving/inference/image-decode';
import { readJpegHeader } from '../src/serving/inference/jpeg-header';
import { createJpegNativeDecoder, jpegNative } from '../src/serving/inference/jpeg-native';
import { createJpegWasmDecoder, jpegWasm, WASM_MAX_PIXELS } from '../src/serving/inference/jpeg-wasm';

const args = process.argv.slice(2);
const MS = Number(args[args.indexOf('--ms') + 1] || 1500);
const JSON_OUT = args.includes('--json');
const SIZES: [number, number][] = [
  [224, 224],
  [256, 256],
  [320, 320],
  [352, 352],
  [384, 384],
  [448, 448],
  [512, 512],
  [640, 480],
  [1024, 768],
];
const QUALITIES = [75, 92];

/** A photo-like image: smooth gradients, a texture and seeded noise (JPEG sizes like camera pictures'). */
function photo(width: number, height: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const noise = s % 32;
      const i = (y * width + x) * 3;
      raw[i] = ((x * 255) / width + noise) & 255;
      raw[i + 1] = ((y * 255) / height + noise) & 255;
      raw[i + 2] = (80 + Math.sin(x / 7) * 40 + ((x + y) * 100) / (width + height)) & 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
}

/** Images/s with `inFlight` calls of `decode` at once, over about `ms`. */
async function throughput(decode: () => Promise<unknown>, inFlight: number, ms: number): Promise<number> {
  for (let i = 0; i < 3; i++) await decode();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() - t0 < ms) {
        await decode();
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** CPU milliseconds per call of `decode` (this process, all its threads), over about `ms` of wall time. */
async function cpuPerImage(decode: () => unknown, ms: number): Promise<number> {
  for (let i = 0; i < 3; i++) await decode();
  const start = cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    await decode();
    n++;
  }
  const used = cpuUsage(start);
  return (used.user + used.system) / 1000 / n;
}

async function main(): Promise<void> {
  // Decoders of its own, bounded by the largest size measured rather than by the server's limit.
  const largest = Math.max(...SIZES.map(([w, h]) => w * h));
  const wasm = createJpegWasmDecoder(largest);
  const native = createJpegNativeDecoder(largest);
  const serverTurbo = jpegTurbo() === jpegNative() ? 'native' : jpegTurbo() === jpegWasm() ? 'WebAssembly' : '?';
  // As the server runs them (SERVING_DECODE_THREADS auto: one per core, up to 4).
  const thread = new DecodeThreads(Math.min(availableParallelism(), 4));
  const rows: {
    size: string;
    quality: number;
    kb: number;
    nativeMs: number | undefined;
    wasmMs: number;
    sharpMs: number;
    serverPicks: string;
    serverPerSecond: number;
    sharpPerSecond: number;
  }[] = [];
  for (const [w, h] of SIZES) {
    for (const quality of QUALITIES) {
      const base = await photo(w, h, w * 31 + quality);
      const jpeg = await sharp(base).jpeg({ quality }).toBuffer();
      const header = readJpegHeader(jpeg);
      // Alternating halves, so that all decoders see the same machine.
      const nativeMs: number[] = [];
      const wasmMs: number[] = [];
      const sharpMs: number[] = [];
      for (let half = 0; half < 2; half++) {
        if (native) nativeMs.push(await cpuPerImage(() => native.decode(jpeg), MS / 2));
        wasmMs.push(await cpuPerImage(() => wasm.decode(jpeg), MS / 2));
        sharpMs.push(await cpuPerImage(() => sharp(jpeg).raw().toBuffer(), MS / 2));
      }
      const mean = (a: number[]) => (a[0] + a[1]) / 2;
      const serverPerSecond = await throughput(() => thread.decode(jpeg, 1 << 26), 8, MS);
      const sharpPerSecond = await throughput(() => sharp(jpeg).raw().toBuffer(), 8, MS);
      rows.push({
        size: `${w}x${h}`,
        quality,
        kb: jpeg.length / 1024,
        nativeMs: native ? mean(nativeMs) : undefined,
        wasmMs: mean(wasmMs),
        sharpMs: mean(sharpMs),
        serverPicks: header && turboTakes(header) ? serverTurbo : 'sharp',
        serverPerSecond,
        sharpPerSecond,
      });
    }
  }
  await thread.close();
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify({ node: process.version, wasmMaxPixels: WASM_MAX_PIXELS, rows }, null, 2)}\n`);
    return;
  }
  console.log(`Node ${process.version}; WASM_MAX_PIXELS = ${WASM_MAX_PIXELS}; native decoder ${native ? 'built' : 'not built'}; CPU ms per image, one at a time\n`);
  console.log('| image | quality | KB | native ms | WebAssembly ms | sharp ms | native / sharp | WebAssembly / sharp | server decodes with | server decoder, 8 in flight: images/s | sharp, 8 in flight: images/s | ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));
  for (const r of rows) {
    console.log(
      `| ${r.size} | ${r.quality} | ${r.kb.toFixed(0)} | ${f(r.nativeMs)} | ${f(r.wasmMs)} | ${f(r.sharpMs)} | ${f(r.nativeMs && r.nativeMs / r.sharpMs)} | ${f(r.wasmMs / r.sharpMs)} | ${r.serverPicks} | ${r.serverPerSecond.toFixed(0)} | ${r.sharpPerSecond.toFixed(0)} | ${(r.serverPerSecond / r.sharpPerSecond).toFixed(2)} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
