/**
 * What serving reads of a JPEG before decoding it, and which JPEGs libjpeg-turbo decodes for it (natively,
 * jpeg-native.ts, or in WebAssembly, jpeg-wasm.ts) rather than sharp: only those known to decode to the
 * same pixels as sharp, the training path's decoder. 8-bit baseline or progressive JPEGs with one (gray)
 * or three (YCbCr) components, no embedded ICC profile (sharp converts those to sRGB), no Adobe marker; each
 * decoder takes them up to its own `maxPixels`. Both use libjpeg's defaults, as sharp's libvips (mozjpeg) does:
 * the accurate integer IDCT and smooth ("fancy") chroma upsampling; test/serving/jpeg-turbo.test.ts checks
 * the pixels on qualities, every chroma subsampling, progressive scans, gray and odd sizes.
 */

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

/** Whether this JPEG decodes in libjpeg-turbo exactly as in sharp (see the file's comment), whatever its size. */
export function turboDecodable(h: JpegHeader): boolean {
  return (
    (h.frame === 0xc0 || h.frame === 0xc1 || h.frame === 0xc2) &&
    h.precision === 8 &&
    (h.components === 1 || h.components === 3) &&
    !h.icc &&
    !h.adobe &&
    h.width > 0 &&
    h.height > 0
  );
}
