/**
 * A forward pass's images on their way to an engine, possibly in another thread: decoded uint8 pixels of
 * any size (resized and normalised where the pass runs, at a quarter of the float32 bytes) or already
 * preprocessed inputSize x inputSize x 3 float32 images. Both the serving and the training path hand
 * passes to ONNX Runtime threads in this form (engines/onnx-thread.ts).
 */
import { preprocessRawBatch, type RawImage } from './preprocess';
import type { PreprocessingSpec } from './types';

export type PassImage = RawImage | Float32Array;

/** A pass's features and the time its engine spent on it (less than the caller waited when it queued there). */
export interface PassOutput {
  features: Float32Array;
  computeMs: number;
}

/**
 * The pass's input tensor (n x inputSize x inputSize x 3 float32), through the training path's preprocessing.
 * `into`, when given, is filled instead of a new array (every value of the first n images is written) and
 * the result is its first n x plane values.
 */
export function preprocessPass(images: PassImage[], inputSize: number, pre: PreprocessingSpec, into?: Float32Array): Float32Array {
  const plane = inputSize * inputSize * 3;
  if (into && into.length < images.length * plane) throw new Error(`input buffer holds ${into.length} values, the pass needs ${images.length * plane}`);
  const out = into ? into.subarray(0, images.length * plane) : new Float32Array(images.length * plane);
  images.forEach((img, i) => {
    if (!(img instanceof Float32Array)) preprocessRawBatch({ ...img, n: 1 }, inputSize, pre, out, { outOffset: i });
    else if (img.length === plane) out.set(img, i * plane);
    else throw new Error(`preprocessed image has ${img.length} values, expected ${plane}`);
  });
  return out;
}

/** Where each image of a packed pass lies in its buffer; float32 images have no geometry. */
export interface PackedImage {
  offset: number;
  length: number;
  raw?: { width: number; height: number; channels: 1 | 3 | 4 };
}

/** Copies a pass's images into one transferable buffer (float32 images 4-byte aligned). */
export function packPass(images: PassImage[]): { buffer: ArrayBuffer; layout: PackedImage[] } {
  let bytes = 0;
  const layout = images.map((img): PackedImage => {
    if (img instanceof Float32Array) {
      bytes = Math.ceil(bytes / 4) * 4;
      const at = { offset: bytes, length: img.length };
      bytes += img.byteLength;
      return at;
    }
    const at = { offset: bytes, length: img.data.length, raw: { width: img.width, height: img.height, channels: img.channels } };
    bytes += img.data.length;
    return at;
  });
  const buffer = new ArrayBuffer(bytes);
  images.forEach((img, i) => {
    const { offset, length } = layout[i];
    if (img instanceof Float32Array) new Float32Array(buffer, offset, length).set(img);
    else new Uint8Array(buffer, offset, length).set(img.data);
  });
  return { buffer, layout };
}

export function unpackPass(buffer: ArrayBuffer, layout: PackedImage[]): PassImage[] {
  return layout.map(({ offset, length, raw }) => (raw ? { data: new Uint8Array(buffer, offset, length), ...raw } : new Float32Array(buffer, offset, length)));
}
