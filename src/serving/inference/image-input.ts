/**
 * Classify inputs -> preprocessed backbone input (pure: no NestJS). Each image is base64 of either an
 * encoded file (PNG, JPEG, WebP, GIF, TIFF: read with sharp/libvips) or, when width, height and channels
 * are given, raw uint8 pixels (row-major, interleaved, 1 = gray, 3 = RGB, 4 = RGBA).
 *
 * Cheap checks (`checkImage`: base64, byte and pixel limits, raw sizes) run for every image before the
 * request takes room in the queue; decoding happens afterwards (image-decode.ts, called from the decode
 * thread in the server: decode-thread.ts). Images are then resized and normalised exactly as the backbone
 * declares (its PreprocessingSpec, through the same code the training path uses), so served features
 * equal training features for equal pixels: in the decode thread for images larger than their
 * preprocessed form, else in the serving thread that runs the pass.
 */
import { BadInputError } from '../../common/errors/domain-errors';
import type { PassImage, RawImage } from '../../training/backbones';
import { decodeEncoded, decodeForPass, decodesCheaply, passImage, type DecodeFailure, type Decoder, type PassDecoder, type PassTarget } from './image-decode';
import { jpegNative } from './jpeg-native';

export interface ImageInputLike {
  data: string;
  width?: number | null;
  height?: number | null;
  channels?: number | null;
}

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

/** A checked image: its bytes, and its raw geometry when it is raw pixels. */
export interface CheckedImage {
  bytes: Buffer;
  raw?: { width: number; height: number; channels: 1 | 3 | 4 };
}

function bad(index: number, reason: string, message: string): BadInputError {
  return new BadInputError(`images[${index}]: ${message}`, { field: `images[${index}]`, reason });
}

/**
 * Strict base64: standard or URL-safe alphabet, padding optional, whitespace and a data: URL prefix
 * tolerated. Strict means canonical: the bytes must encode back to the same text, which refuses any
 * character outside the alphabet, misplaced padding, a dangling character and nonzero unused bits. That
 * check is one decode and one encode in native code; the anchored regular expression it replaces took
 * 5.5 us on 8 KB of base64 and 184 us on 53 KB (a 640 x 480 photo), on the event loop.
 */
export function decodeBase64(text: string, index: number, maxBytes: number): Buffer {
  if (typeof text !== 'string') throw bad(index, 'INVALID_BASE64', 'data must be a base64 string');
  let s = text;
  const dataUrl = /^data:[\w.+/-]*(;[\w=.+-]+)*;base64,/i.exec(s.slice(0, 200));
  if (dataUrl) s = s.slice(dataUrl[0].length);
  // Bound the work before decoding (4 base64 characters carry 3 bytes), counting whitespace only if it must.
  const tooLarge = (t: string) => Math.floor((t.length * 3) / 4) - 2 > maxBytes;
  if (tooLarge(s) && /\s/.test(s)) s = s.replace(/\s+/g, '');
  if (tooLarge(s)) throw bad(index, 'IMAGE_TOO_LARGE', `image is larger than the limit of ${maxBytes} bytes`);
  let bytes = canonicalBase64(s);
  if (!bytes && /\s/.test(s)) {
    s = s.replace(/\s+/g, '');
    bytes = canonicalBase64(s);
  }
  if (s.length === 0) throw bad(index, 'EMPTY_IMAGE', 'data is empty');
  if (!bytes) throw bad(index, 'INVALID_BASE64', 'data is not valid base64');
  if (bytes.length > maxBytes) throw bad(index, 'IMAGE_TOO_LARGE', `image has ${bytes.length} bytes, above the limit of ${maxBytes}`);
  return bytes;
}

/** The bytes of canonical base64 text (either alphabet, padding optional), or undefined. */
function canonicalBase64(s: string): Buffer | undefined {
  const urlSafe = s.includes('-') || s.includes('_');
  const encoding = urlSafe ? 'base64url' : 'base64';
  const bytes = Buffer.from(s, encoding);
  const unpadded = (t: string) => (t.endsWith('==') ? t.slice(0, -2) : t.endsWith('=') ? t.slice(0, -1) : t);
  const body = unpadded(s);
  if (body.length === 0 || body !== unpadded(bytes.toString(encoding))) return undefined;
  // Padding, when present, completes the last group of four.
  if (body.length !== s.length && s.length % 4 !== 0) return undefined;
  return bytes;
}

/** Validates one image without decoding it (base64, bytes, raw geometry, pixel count of raw images). */
export function checkImage(input: ImageInputLike, index: number, limits: ImageLimits): CheckedImage {
  if (!input || typeof input !== 'object') throw bad(index, 'INVALID_IMAGE', 'must be an object with data');
  const { width, height, channels } = input;
  const rawFields = [width, height, channels].filter((v) => v !== undefined && v !== null).length;
  if (rawFields !== 0 && rawFields !== 3) throw bad(index, 'INVALID_RAW_PIXELS', 'raw pixels need width, height and channels together (omit all three for an encoded image)');
  if (rawFields === 3) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width! < 1 || height! < 1) throw bad(index, 'INVALID_RAW_PIXELS', 'width and height must be positive integers');
    if (channels !== 1 && channels !== 3 && channels !== 4) throw bad(index, 'INVALID_RAW_PIXELS', 'channels must be 1 (gray), 3 (RGB) or 4 (RGBA)');
    if (width! * height! > limits.maxImagePixels) throw bad(index, 'IMAGE_TOO_LARGE', `${width}x${height} pixels is above the limit of ${limits.maxImagePixels} pixels`);
  }
  const bytes = decodeBase64(input.data, index, limits.maxImageBytes);
  if (rawFields === 3) {
    const expected = width! * height! * channels!;
    if (bytes.length !== expected) throw bad(index, 'INVALID_RAW_PIXELS', `raw ${width}x${height}x${channels} pixels need ${expected} bytes, got ${bytes.length}`);
    return { bytes, raw: { width: width!, height: height!, channels: channels as 1 | 3 | 4 } };
  }
  return { bytes };
}

/** The encoded formats accepted, by their magic bytes (vector and document formats are refused). */
export function sniffFormat(b: Buffer): 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 4 && (b.readUInt32BE(0) === 0x49492a00 || b.readUInt32BE(0) === 0x4d4d002a)) return 'tiff';
  return undefined;
}

/** A checked image as raw pixels: raw input as is, encoded input through `decode` (by default on this thread). */
export async function decodeChecked(img: CheckedImage, index: number, limits: ImageLimits, decode: Decoder = decodeEncoded): Promise<RawImage> {
  if (img.raw) return rawPixels(img, img.raw);
  return decoded(await decode(encodedBytes(img, index), limits.maxImagePixels), index);
}

/**
 * A checked image as it travels to the forward pass (`passImage`): raw input prepared on this thread,
 * encoded input decoded and prepared by `decode` (the decode thread in the server; by default this thread).
 */
export async function prepareChecked(img: CheckedImage, index: number, limits: ImageLimits, target: PassTarget, decode: PassDecoder = decodeForPass): Promise<PassImage> {
  if (img.raw) return passImage(rawPixels(img, img.raw), target);
  return decoded(await decode(encodedBytes(img, index), limits.maxImagePixels, target), index);
}

/**
 * Whether a request's image is decoded on the calling thread (the event loop) rather than in a decode
 * thread: only the one image of a request, only if it decodes cheaply, and only when the request is alone
 * in the process or the decoder is the native one.
 *
 * Alone, nothing else needs the loop, and the hand-off to a thread and back, which wakes two sleeping
 * threads, is pure latency (bench:serving at concurrency 1: admission to decoded pixels 0.62-0.86 ms here
 * against 0.90-1.00 through a thread, p50, in WebAssembly). Under load the native decoder's ~0.1 ms for a
 * 224 px JPEG costs the loop less than the hand-off costs the machine: at concurrency 32, 1.27-1.33 ms of
 * CPU per request outside the passes against 1.46-1.48 through the threads. The WebAssembly decoder's
 * 0.4 ms would hold up other requests' HTTP and GraphQL; requests with several images use the threads,
 * which decode them in parallel.
 */
export function decodesOnCallingThread(
  img: CheckedImage,
  at: { requestsInFlight: number; imagesInRequest: number; target: PassTarget; native?: boolean },
): boolean {
  const native = at.native ?? jpegNative() !== undefined;
  return at.imagesInRequest === 1 && (at.requestsInFlight === 1 || native) && !img.raw && decodesCheaply(img.bytes, at.target);
}

function rawPixels(img: CheckedImage, raw: NonNullable<CheckedImage['raw']>): RawImage {
  return { data: new Uint8Array(img.bytes.buffer, img.bytes.byteOffset, img.bytes.length), ...raw };
}

/** The bytes of an encoded image, once their magic says they are a format sharp reads. */
function encodedBytes(img: CheckedImage, index: number): Buffer {
  if (!sniffFormat(img.bytes)) {
    throw bad(index, 'IMAGE_UNDECODABLE', 'not a PNG, JPEG, WebP, GIF or TIFF image (or send raw pixels with width, height and channels)');
  }
  return img.bytes;
}

function decoded<T>(r: { image: T } | DecodeFailure, index: number): T {
  if ('reason' in r) throw bad(index, r.reason, r.message);
  return r.image;
}

/** Bounds how many images are decoded at once (each decoded image holds up to maxImagePixels x 4 bytes). */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so `active` never exceeds the limit.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
