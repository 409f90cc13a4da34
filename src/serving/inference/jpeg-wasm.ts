/**
 * Plain JPEGs decoded by libjpeg-turbo compiled to WebAssembly (the build shipped in `@cwasm/jpeg-turbo`,
 * libjpeg-turbo 2.0 without SIMD), synchronously on the calling thread, through its TurboJPEG functions:
 * serving's JPEG decoder where the native one (jpeg-native.ts) was not built. For a 224 px JPEG, sharp's
 * fixed cost per call (building a libvips pipeline from ~150 options, handing it to libuv's pool and
 * libvips' workers) is most of its work; here there is none (docs/benchmarks.md). It takes the JPEGs that
 * `turboDecodable` accepts (jpeg-header.ts) up to `WASM_MAX_PIXELS`, with libjpeg's default decoding, so its
 * pixels equal sharp's.
 * (The mozjpeg build used before upsampled 4:4:0 JPEGs differently from sharp.)
 */
import { readFileSync } from 'node:fs';
import type { RawImage } from '../../training/backbones';

/**
 * Above this many pixels sharp costs less CPU than the WebAssembly build: its fixed cost per call no longer
 * dominates, and WebAssembly's IDCT (no SIMD) is slower per pixel. `npm run bench:decode` on photo-like
 * JPEGs, CPU per image against sharp's (2026-11-29, sixth session): 0.38-0.44x at 224 px, 0.56-0.57x at
 * 320 px, 0.61-0.68x at 352-384 px, 0.70-0.75x at 448 px, 0.85-0.94x at 512 px, 1.01x at 640 x 480,
 * 1.3-1.45x at 1024 x 768. (With the mozjpeg build used before, the crossing was at 320-352 px.)
 */
export const WASM_MAX_PIXELS = 512 * 512;

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

  /** `maxPixels` bounds the module's memory: the server's decoder is given JPEGs up to WASM_MAX_PIXELS. */
  constructor(
    private readonly module: object,
    readonly maxPixels = WASM_MAX_PIXELS,
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
      // What libjpeg read must be within the bound (what the caller read from the frame header).
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
 * Its `decode` takes a JPEG that `turboDecodable` accepted and gives RGB pixels, as sharp gives them (gray
 * JPEGs come back as RGB from sharp too); it throws when the data is corrupt or libjpeg warned (e.g. a
 * premature end): the caller then leaves the image to sharp, which decides as it always has.
 */
export function jpegWasm(): JpegWasmDecoder {
  decoder ??= createJpegWasmDecoder();
  return decoder;
}
