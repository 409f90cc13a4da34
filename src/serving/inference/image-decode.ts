/**
 * Encoded image bytes -> raw pixels: plain small JPEGs in WebAssembly (jpeg-wasm.ts), everything else with
 * sharp (libvips). Kept apart from image-input.ts, whose imports are heavier, because it also runs in the
 * decode thread (decode-thread.ts).
 */
import type { RawImage } from '../../training/backbones';
import { decodeJpegWasm, jpegWasm, readJpegHeader, wasmDecodable } from './jpeg-wasm';

/** What decoding encoded bytes gives: the pixels, or why there are none. */
export type DecodeResult = { image: RawImage } | { reason: 'IMAGE_TOO_LARGE' | 'IMAGE_UNDECODABLE'; message: string };

/** Decodes encoded bytes (runs wherever sharp runs: the decode thread, or this thread). */
export type Decoder = (bytes: Uint8Array, maxPixels: number) => Promise<DecodeResult>;

/**
 * Decodes to raw uint8 pixels: small plain JPEGs (up to 320 x 320 pixels) in WebAssembly on this thread
 * (jpeg-wasm.ts: the same pixels as sharp, at 0.55-0.9x of its CPU), everything else in one
 * libvips pass. Images above the pixel limit are refused from their header (sharp's limitInputPixels)
 * before any pixel is decoded. Channel handling is the training path's (decodeImage): gray, RGB and RGBA
 * kept; gray + alpha keeps the gray.
 */
export const decodeEncoded: Decoder = async (bytes, maxPixels) => {
  const jpeg = readJpegHeader(bytes);
  if (jpeg && wasmDecodable(jpeg)) {
    if (jpeg.width * jpeg.height > maxPixels) return tooLarge(maxPixels);
    try {
      return { image: decodeJpegWasm(await jpegWasm(), bytes) };
    } catch {
      // Corrupt, or decoded with warnings: sharp gives its own verdict below, as for any image.
    }
  }
  return decodeWithSharp(bytes, maxPixels);
};

const decodeWithSharp: Decoder = async (bytes, maxPixels) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require('sharp') as typeof import('sharp');
  let out: { data: Buffer; info: import('sharp').OutputInfo };
  try {
    out = await sharp(bytes, { limitInputPixels: maxPixels }).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    const message = (err as Error).message.replace(/\s+/g, ' ').slice(0, 200);
    if (/pixel limit/i.test(message)) return tooLarge(maxPixels);
    return { reason: 'IMAGE_UNDECODABLE', message: `cannot decode image (${message})` };
  }
  const { data, info } = out;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (info.channels === 1 || info.channels === 3 || info.channels === 4) return { image: { data: pixels, width: info.width, height: info.height, channels: info.channels } };
  if (info.channels === 2) {
    const gray = new Uint8Array(info.width * info.height);
    for (let i = 0; i < gray.length; i++) gray[i] = pixels[2 * i];
    return { image: { data: gray, width: info.width, height: info.height, channels: 1 } };
  }
  return { reason: 'IMAGE_UNDECODABLE', message: `unsupported channel count ${info.channels}` };
};

function tooLarge(maxPixels: number): DecodeResult {
  return { reason: 'IMAGE_TOO_LARGE', message: `image is above the limit of ${maxPixels} pixels` };
}
