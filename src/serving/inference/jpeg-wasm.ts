/**
 * Plain JPEGs decoded by mozjpeg compiled to WebAssembly (the jSquash project's build, `@jsquash/jpeg`),
 * synchronously on the calling thread. For a 224 px JPEG, sharp's fixed cost per call (building a libvips
 * pipeline from ~150 options, handing it to libuv's pool and libvips' workers) is most of its work:
 * 2.0-2.2 ms of CPU per image across its threads against 0.7-1.3 ms here (depending on the image),
 * measured on this project's 2-core VM (docs/benchmarks.md). mozjpeg is also the JPEG library of sharp's libvips, and the default
 * decoding settings are the same (accurate integer IDCT, smooth chroma upsampling), so the pixels equal
 * sharp's; test/serving/jpeg-wasm.test.ts checks that on qualities, chroma subsamplings, progressive,
 * gray and odd sizes.
 *
 * Only what is known to decode the same takes this path: 8-bit baseline or progressive JPEGs with one
 * (gray) or three (YCbCr) components, no embedded ICC profile (sharp converts those to sRGB), no Adobe
 * marker, at most `WASM_MAX_PIXELS` pixels (larger images cost less CPU in sharp). Everything else is
 * sharp's (image-decode.ts), as before.
 */
import { readFileSync } from 'node:fs';
import type { RawImage } from '../../training/backbones';

/**
 * Above this many pixels sharp costs less CPU: its fixed cost per call no longer dominates, and
 * WebAssembly's IDCT (no SIMD) is slower per pixel. `npm run bench:decode` on photo-like JPEGs, CPU per
 * image against sharp's, four runs: 0.55-0.73x at 224-256 px, 0.78-0.96x at 320 px, 0.87-1.23x at 352 px,
 * 1.05-1.39x at 384 px, 1.3-2.3x at 640 x 480 and 1024 x 768. WebAssembly also decodes one image at a time
 * in the decode thread, where sharp spreads images over libuv's pool.
 */
export const WASM_MAX_PIXELS = 320 * 320;

export interface JpegHeader {
  width: number;
  height: number;
  components: number;
  /** Start-of-frame marker: 0xc0 baseline, 0xc1 extended sequential, 0xc2 progressive, others unusual. */
  frame: number;
  precision: number;
  icc: boolean;
  adobe: boolean;
}

/** Reads the markers up to the frame header; undefined when the bytes are not a well-formed JPEG start. */
export function readJpegHeader(b: Uint8Array): JpegHeader | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let icc = false;
  let adobe = false;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = (b[i + 2] << 8) | b[i + 3];
    if (length < 2 || i + 2 + length > b.length) return undefined;
    const at = i + 4;
    if (marker === 0xe2 && length >= 14 && String.fromCharCode(...b.subarray(at, at + 11)) === 'ICC_PROFILE') icc = true;
    if (marker === 0xee && length >= 7 && String.fromCharCode(...b.subarray(at, at + 5)) === 'Adobe') adobe = true;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (length < 8) return undefined;
      return { frame: marker, precision: b[at], height: (b[at + 1] << 8) | b[at + 2], width: (b[at + 3] << 8) | b[at + 4], components: b[at + 5], icc, adobe };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame header
    i += 2 + length;
  }
  return undefined;
}

/** Whether this JPEG decodes here exactly as in sharp (see the file's comment). */
export function wasmDecodable(h: JpegHeader): boolean {
  return (
    (h.frame === 0xc0 || h.frame === 0xc1 || h.frame === 0xc2) &&
    h.precision === 8 &&
    (h.components === 1 || h.components === 3) &&
    !h.icc &&
    !h.adobe &&
    h.width > 0 &&
    h.height > 0 &&
    h.width * h.height <= WASM_MAX_PIXELS
  );
}

interface MozJpegModule {
  /** RGBA pixels, or null when the data cannot be decoded. */
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}

/** libjpeg's warnings (a premature end, corrupt data) during the current decode: sharp fails on them, so must this path. */
let warnings: string[] = [];

/** The part of the WebAssembly global used here (this project compiles without the DOM typings that declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let loading: Promise<MozJpegModule> | undefined;

/** The decoder, instantiated once per thread from the package's files (never fetched). */
export function jpegWasm(): Promise<MozJpegModule> {
  loading ??= (async () => {
    const wasm = new wasmApi.Module(readFileSync(require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
    // An ES module, loaded with require (Node >= 20.19, see package.json engines).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const factory = (require('@jsquash/jpeg/codec/dec/mozjpeg_dec.js') as { default: (opts: object) => Promise<MozJpegModule> }).default;
    return factory({
      noInitialRun: true,
      // libjpeg reports warnings on stderr; collected instead, per decode.
      printErr: (message: string) => warnings.push(message),
      print: (message: string) => warnings.push(message),
      instantiateWasm: (imports: object, done: (instance: { exports: object }) => void) => {
        const instance = new wasmApi.Instance(wasm, imports);
        done(instance);
        return instance.exports;
      },
    });
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}

/**
 * Decodes a JPEG that `wasmDecodable` accepted: RGB pixels, as sharp gives them (gray JPEGs come back as
 * RGB from sharp too). Throws when the data is corrupt or libjpeg warned (e.g. a premature end): the
 * caller then leaves the image to sharp, which decides as it always has.
 */
export function decodeJpegWasm(mozjpeg: MozJpegModule, bytes: Uint8Array): RawImage {
  warnings = [];
  const out = mozjpeg.decode(bytes, false);
  if (!out) throw new Error('corrupt JPEG data');
  if (warnings.length > 0) throw new Error(`JPEG decoded with warnings: ${warnings.join('; ')}`);
  const { width, height } = out;
  const rgba = out.data;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, s = 0; s < rgba.length; s += 4, p += 3) {
    rgb[p] = rgba[s];
    rgb[p + 1] = rgba[s + 1];
    rgb[p + 2] = rgba[s + 2];
  }
  return { data: rgb, width, height, channels: 3 };
}
