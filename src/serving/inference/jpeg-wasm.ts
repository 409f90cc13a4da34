/**
 * Plain JPEGs decoded by libjpeg-turbo compiled to WebAssembly (the build shipped in `@cwasm/jpeg-turbo`,
 * libjpeg-turbo 2.0 without SIMD), synchronously on the calling thread, through its TurboJPEG functions.
 * For a 224 px JPEG, sharp's fixed cost per call (building a libvips pipeline from ~150 options, handing it
 * to libuv's pool and libvips' workers) is most of its work; here there is none (docs/benchmarks.md).
 * Decoding uses libjpeg's defaults, as sharp's libvips (mozjpeg) does: the accurate integer IDCT and smooth
 * ("fancy") chroma upsampling, so the pixels equal sharp's; test/serving/jpeg-wasm.test.ts checks that on
 * qualities, every chroma subsampling, progressive scans, gray and odd sizes. (The mozjpeg build used before
 * upsampled 4:4:0 JPEGs differently from sharp.)
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
 * image against sharp's (2026-11-29, sixth session): 0.38-0.44x at 224 px, 0.56-0.57x at 320 px, 0.61-0.68x
 * at 352-384 px, 0.70-0.75x at 448 px, 0.85-0.94x at 512 px, 1.01x at 640 x 480, 1.3-1.45x at 1024 x 768.
 * (With the mozjpeg build used before, the crossing was at 320-352 px.)
 */
export const WASM_MAX_PIXELS = 512 * 512;

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

/** The TurboJPEG functions the module exports (pointers are offsets into its memory). */
interface TurboJpegExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(ptr: number): void;
  tjInitDecompress(): number;
  tjDecompressHeader3(handle: number, src: number, size: number, width: number, height: number, subsampling: number, colorspace: number): number;
  tjDecompress2(handle: number, src: number, size: number, dst: number, width: number, pitch: number, height: number, pixelFormat: number, flags: number): number;
}

const TJPF_RGB = 0;
/** No flags: the accurate integer IDCT and fancy upsampling, libjpeg's defaults and sharp's. */
const TJ_DEFAULTS = 0;

/** The part of the WebAssembly global used here (this project compiles without the DOM typings that declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Thrown out of the module by libjpeg's error exit (it would longjmp back into TurboJPEG). */
class JpegAbort extends Error {}

/**
 * One libjpeg-turbo instance and its decompressor. libjpeg reports a fatal error by longjmp, which this
 * build imports: it is answered by throwing out of the module, which leaves the instance's C stack and
 * the decompressor in an unknown state, so an instance that threw is dropped and the next decode makes a
 * fresh one (corrupt JPEGs are rare, and go to sharp anyway). A warning (corrupt data that libjpeg decodes
 * around, a premature end) makes TurboJPEG return an error status: that decode is refused too, because
 * sharp refuses those images. Nothing is printed (TurboJPEG keeps its messages); should anything be written
 * through the WASI stderr import, the decode is refused as well.
 */
export class JpegWasmDecoder {
  /** The instance, its decompressor, and 16 bytes of its memory where the header's four numbers are read. */
  private state: { exports: TurboJpegExports; handle: number; meta: number } | undefined;
  /** What libjpeg wrote to stderr during the current decode. */
  private printed: string[] = [];

  /** `maxPixels` bounds the module's memory: the server's decoder takes what wasmDecodable accepts. */
  constructor(
    private readonly module: object,
    private readonly maxPixels = WASM_MAX_PIXELS,
  ) {}

  decode(bytes: Uint8Array): RawImage {
    const { exports: e, handle, meta } = (this.state ??= this.instantiate());
    this.printed = [];
    let src = 0;
    let dst = 0;
    try {
      src = e.malloc(bytes.length);
      if (!src) throw new Error('out of WebAssembly memory');
      new Uint8Array(e.memory.buffer, src, bytes.length).set(bytes);
      if (e.tjDecompressHeader3(handle, src, bytes.length, meta, meta + 4, meta + 8, meta + 12) !== 0) throw new Error('unreadable JPEG header');
      const [width, height] = new Int32Array(e.memory.buffer, meta, 2);
      // What libjpeg read must be within the bound (for the server's decoder, what wasmDecodable accepted).
      if (!(width > 0 && height > 0 && width * height <= this.maxPixels)) throw new Error(`JPEG of ${width} x ${height} pixels is not decoded here`);
      const size = width * height * 3;
      dst = e.malloc(size);
      if (!dst) throw new Error('out of WebAssembly memory');
      const status = e.tjDecompress2(handle, src, bytes.length, dst, width, width * 3, height, TJPF_RGB, TJ_DEFAULTS);
      if (status !== 0 || this.printed.length > 0) throw new Error(`corrupt JPEG data (libjpeg warned or failed)${this.printed.length ? `: ${this.printed.join('; ')}` : ''}`);
      // A copy: the module's memory is reused by the next decode (and may grow, detaching views of it).
      return { data: new Uint8Array(e.memory.buffer, dst, size).slice(), width, height, channels: 3 };
    } catch (err) {
      if (err instanceof JpegAbort) {
        this.state = undefined;
        throw new Error(`libjpeg error: ${err.message}`);
      }
      throw err;
    } finally {
      if (this.state) for (const p of [src, dst]) if (p) e.free(p);
    }
  }

  private instantiate(): { exports: TurboJpegExports; handle: number; meta: number } {
    let memory: { buffer: ArrayBuffer } | undefined;
    const text = (iovs: number, count: number) => {
      const view = new DataView(memory!.buffer);
      let out = '';
      for (let i = 0; i < count; i++) {
        const at = view.getUint32(iovs + 8 * i, true);
        const len = view.getUint32(iovs + 8 * i + 4, true);
        out += Buffer.from(memory!.buffer, at, len).toString('latin1');
      }
      return out;
    };
    const wasi = {
      fd_write: (_fd: number, iovs: number, count: number, written: number) => {
        const message = text(iovs, count);
        this.printed.push(message.trim());
        new DataView(memory!.buffer).setUint32(written, message.length, true);
        return 0;
      },
      fd_close: () => 8, // EBADF: no files here
      fd_seek: () => 8,
      environ_sizes_get: (count: number, size: number) => {
        const view = new DataView(memory!.buffer);
        view.setUint32(count, 0, true);
        view.setUint32(size, 0, true);
        return 0;
      },
      environ_get: () => 0,
      proc_exit: (code: number) => {
        throw new JpegAbort(`exit(${code})`);
      },
    };
    const env = {
      setjmp: () => 0,
      longjmp: () => {
        throw new JpegAbort(this.printed.join('; ') || 'fatal error');
      },
    };
    const exports = new wasmApi.Instance(this.module, { env, wasi_snapshot_preview1: wasi }).exports as TurboJpegExports;
    memory = exports.memory;
    const handle = exports.tjInitDecompress();
    const meta = exports.malloc(16);
    if (!handle || !meta) throw new Error('cannot create a JPEG decompressor');
    return { exports, handle, meta };
  }
}

let compiled: object | undefined;
let decoder: JpegWasmDecoder | undefined;

/** A decoder of its own, for JPEGs up to `maxPixels` (bench:decode measures sizes the server leaves to sharp). */
export function createJpegWasmDecoder(maxPixels = WASM_MAX_PIXELS): JpegWasmDecoder {
  compiled ??= new wasmApi.Module(readFileSync(require.resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm')));
  return new JpegWasmDecoder(compiled, maxPixels);
}

/**
 * This thread's decoder (the module is compiled once per thread from the package's file, never fetched).
 * Its `decode` takes a JPEG that `wasmDecodable` accepted and gives RGB pixels, as sharp gives them (gray
 * JPEGs come back as RGB from sharp too); it throws when the data is corrupt or libjpeg warned (e.g. a
 * premature end): the caller then leaves the image to sharp, which decides as it always has.
 */
export function jpegWasm(): JpegWasmDecoder {
  decoder ??= createJpegWasmDecoder();
  return decoder;
}
