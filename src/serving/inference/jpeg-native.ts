/**
 * Plain JPEGs decoded by the system's libjpeg-turbo (SIMD) through the project's small N-API addon
 * (native/turbojpeg), synchronously on the calling thread: about 0.1 ms for a 224 px JPEG, a quarter of the
 * WebAssembly build's time (docs/benchmarks.md). `npm install` builds the addon where the TurboJPEG
 * headers and a C compiler are (scripts/build-turbojpeg.js; Debian: libturbojpeg0-dev); where it could not,
 * serving decodes in WebAssembly (jpeg-wasm.ts), with the same pixels. It takes the JPEGs that
 * `turboDecodable` accepts (jpeg-header.ts), of any size (it is faster than sharp at every size measured,
 * up to 1024 x 768; the server's pixel limit bounds them), with libjpeg's defaults, as sharp decodes them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RawImage } from '../../training/backbones';
import { readJpegHeader } from './jpeg-header';

interface TurboJpegAddon {
  /** Decodes into `out` (width x height x 3); throws on errors and on libjpeg's warnings about corrupt data. */
  decodeRgb(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): void;
}

/** The largest JPEG decoded natively: SERVING_MAX_IMAGE_PIXELS's own maximum (100 megapixels). */
export const NATIVE_MAX_PIXELS = 100_000_000;

/** Where `npm install` builds the addon, from this file's place in dist/src/serving/inference. */
export const TURBOJPEG_ADDON = join(__dirname, '..', '..', '..', '..', 'native', 'turbojpeg', 'build', 'Release', 'turbojpeg.node');

export class JpegNativeDecoder {
  /** `maxPixels` bounds what one decode allocates (the server checks its own pixel limit first). */
  constructor(
    private readonly addon: TurboJpegAddon,
    readonly maxPixels = NATIVE_MAX_PIXELS,
  ) {}

  /**
   * RGB pixels of a JPEG that `turboDecodable` accepted (gray JPEGs too, as sharp gives them), in an array
   * that owns its buffer (a decode thread transfers it as is). Throws when the data is corrupt or libjpeg
   * warned: the caller then leaves the image to sharp.
   */
  decode(bytes: Uint8Array): RawImage {
    const header = readJpegHeader(bytes);
    if (!header) throw new Error('unreadable JPEG header');
    const { width, height } = header;
    if (!(width > 0 && height > 0 && width * height <= this.maxPixels)) throw new Error(`JPEG of ${width} x ${height} pixels is not decoded here`);
    const data = new Uint8Array(width * height * 3);
    this.addon.decodeRgb(bytes, data, width, height);
    return { data, width, height, channels: 3 };
  }
}

let addon: TurboJpegAddon | null | undefined;
let decoder: JpegNativeDecoder | undefined;

/** The addon, loaded once per thread; null where it was not built (or does not load). */
function loadAddon(): TurboJpegAddon | null {
  if (addon === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = existsSync(TURBOJPEG_ADDON) ? (require(TURBOJPEG_ADDON) as TurboJpegAddon) : null;
    } catch {
      addon = null; // e.g. libturbojpeg removed after the build: the WebAssembly build decodes instead
    }
  }
  return addon;
}

/** A decoder of its own, for JPEGs up to `maxPixels`. */
export function createJpegNativeDecoder(maxPixels = NATIVE_MAX_PIXELS): JpegNativeDecoder | undefined {
  const a = loadAddon();
  return a ? new JpegNativeDecoder(a, maxPixels) : undefined;
}

/** This thread's native decoder; undefined where the addon was not built (or does not load). */
export function jpegNative(): JpegNativeDecoder | undefined {
  decoder ??= createJpegNativeDecoder();
  return decoder;
}
