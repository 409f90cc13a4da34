/**
 * Encoded image bytes -> raw pixels: plain JPEGs in libjpeg-turbo (native, jpeg-native.ts, else
 * WebAssembly, jpeg-wasm.ts), everything else with sharp (libvips). Kept apart from image-input.ts, whose
 * imports are heavier, because it also runs in the decode thread (decode-thread.ts).
 */
import type { PassImage } from '../../training/backbones/pass';
import { preprocessRawBatch, type RawImage } from '../../training/backbones/preprocess';
import type { PreprocessingSpec } from '../../training/backbones/types';
import { readJpegHeader, turboDecodable, type JpegHeader } from './jpeg-header';
import { jpegNative } from './jpeg-native';
import { jpegWasm } from './jpeg-wasm';

/** Why an image has no pixels. */
export type DecodeFailure = { reason: 'IMAGE_TOO_LARGE' | 'IMAGE_UNDECODABLE'; message: string };

/** What decoding encoded bytes gives: the pixels, or why there are none. */
export type DecodeResult = { image: RawImage } | DecodeFailure;

/** Decodes encoded bytes (runs wherever sharp runs: the decode thread, or this thread). */
export type Decoder = (bytes: Uint8Array, maxPixels: number) => Promise<DecodeResult>;

/** The backbone a decoded image is for: its input size and preprocessing. */
export interface PassTarget {
  inputSize: number;
  preprocessing: PreprocessingSpec;
}

/** Decodes encoded bytes into what travels to the forward pass (`passImage`). */
export type PassDecoder = (bytes: Uint8Array, maxPixels: number, target: PassTarget) => Promise<{ image: PassImage } | DecodeFailure>;

/**
 * What a decoded image travels to its forward pass as: its raw pixels when they are no larger than its
 * preprocessed form (so queued images never hold more memory than preprocessed ones would), else
 * preprocessed here, by the training path's code (a 640 x 480 photo takes about 1 ms for a 224 px
 * backbone: the serving decode thread does it, not the event loop).
 */
export function passImage(raw: RawImage, target: PassTarget): PassImage {
  const { inputSize, preprocessing } = target;
  return raw.width * raw.height * raw.channels <= inputSize * inputSize * 3 * 4 ? raw : preprocessOne(raw, inputSize, preprocessing);
}

/** Raw pixels -> one preprocessed image (inputSize x inputSize x 3 float32) per the backbone's spec. */
export function preprocessOne(raw: RawImage, inputSize: number, pre: PreprocessingSpec): Float32Array {
  return preprocessRawBatch({ ...raw, n: 1 }, inputSize, pre);
}

/** This thread's libjpeg-turbo: the native build where `npm install` made it, else WebAssembly (same pixels). */
export function jpegTurbo(): { readonly maxPixels: number; decode(bytes: Uint8Array): RawImage } {
  return jpegNative() ?? jpegWasm();
}

/** Whether this thread's libjpeg-turbo decodes the JPEG (rather than sharp): a plain one, within its size. */
export function turboTakes(jpeg: JpegHeader): boolean {
  return turboDecodable(jpeg) && jpeg.width * jpeg.height <= jpegTurbo().maxPixels;
}

/**
 * Whether decoding these bytes on the calling thread costs it little, bounded time: a plain JPEG that
 * libjpeg-turbo takes, no larger than the backbone's input (nothing to resize) and no larger in bytes
 * than its pixels would be (no pile of scans to work through). A 224 px JPEG takes ~0.1 ms natively,
 * ~0.3-0.5 ms in WebAssembly.
 */
export function decodesCheaply(bytes: Uint8Array, target: PassTarget): boolean {
  const jpeg = readJpegHeader(bytes);
  if (!jpeg || !turboTakes(jpeg)) return false;
  const pixels = jpeg.width * jpeg.height;
  return pixels <= target.inputSize * target.inputSize && bytes.length <= pixels * jpeg.components;
}

/** decodeEncoded, then passImage, on the calling thread. */
export const decodeForPass: PassDecoder = async (bytes, maxPixels, target) => {
  const r = await decodeEncoded(bytes, maxPixels);
  return 'reason' in r ? r : { image: passImage(r.image, target) };
};

/**
 * Decodes to raw uint8 pixels: plain JPEGs in libjpeg-turbo on this thread (`jpegTurbo`: the same pixels as
 * sharp, at 0.15-0.45x of its CPU natively; up to 512 x 512 pixels in WebAssembly, at 0.5-1x), everything
 * else in one libvips pass. Images above the pixel limit are refused from their header (sharp's
 * limitInputPixels) before any pixel is decoded. Channel handling is the training path's (decodeImage):
 * gray, RGB and RGBA kept; gray + alpha keeps the gray.
 */
export const decodeEncoded: Decoder = async (bytes, maxPixels) => {
  const jpeg = readJpegHeader(bytes);
  if (jpeg && turboTakes(jpeg)) {
    if (jpeg.width * jpeg.height > maxPixels) return tooLarge(maxPixels);
    try {
      return { image: jpegTurbo().decode(bytes) };
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
