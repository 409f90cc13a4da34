/**
 * Sequential exact-length reads from a file that may be gzipped (detected by the gzip magic 1f 8b, not by
 * the file name), with a running SHA-256 over the (decompressed) bytes. Memory is bounded by the stream's
 * chunk size plus what the caller asks for.
 */
import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DatasetFormatError } from './errors';

const CHUNK = 1 << 20;

async function isGzip(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new DatasetFormatError('DATASET_NOT_FOUND', `cannot open ${path}: ${(err as Error).message}`, { path });
  }
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

export class ByteStream {
  /** Running hash over every byte pulled from the (decompressed) stream. */
  readonly hash: Hash = createHash('sha256');
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes consumed by the caller so far. */
  position = 0;

  private constructor(
    readonly path: string,
    private readonly stream: Readable,
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  static async open(path: string): Promise<ByteStream> {
    const gz = await isGzip(path);
    const raw = createReadStream(path, { highWaterMark: CHUNK });
    const stream = gz ? pipeline(raw, createGunzip({ chunkSize: CHUNK }), () => undefined) : raw;
    return new ByteStream(path, stream);
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.it.next();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'Z_BUF_ERROR') {
        throw new DatasetFormatError('DATASET_TRUNCATED', `${this.path}: gzip stream is truncated`, { path: this.path });
      }
      if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
        throw new DatasetFormatError('DATASET_PARSE_ERROR', `${this.path}: corrupt gzip data (${e.message})`, { path: this.path });
      }
      if (e.code === 'ENOENT') throw new DatasetFormatError('DATASET_NOT_FOUND', `${this.path} disappeared`, { path: this.path });
      throw err;
    }
    if (r.done) {
      this.ended = true;
      return false;
    }
    const chunk = r.value;
    this.hash.update(chunk);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    return true;
  }

  /** Exactly n bytes, or DATASET_TRUNCATED. The result may share memory with internal chunks; copy it if kept. */
  async readExact(n: number, what: string): Promise<Buffer> {
    while (this.buffered < n) {
      if (!(await this.pull())) {
        throw new DatasetFormatError(
          'DATASET_TRUNCATED',
          `${this.path}: unexpected end of data while reading ${what} (needed ${n} bytes at offset ${this.position}, ${this.buffered} left)`,
          { path: this.path, offset: this.position },
        );
      }
    }
    let out: Buffer;
    const first = this.chunks[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0];
        const take = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, take);
        filled += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= n;
    this.position += n;
    return out;
  }

  /** Visits `n` bytes chunk by chunk without gathering them (for validation passes). */
  async consume(n: number, what: string, visit?: (bytes: Buffer) => void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) {
        throw new DatasetFormatError(
          'DATASET_TRUNCATED',
          `${this.path}: unexpected end of data while reading ${what} (${left} of ${n} bytes missing)`,
          { path: this.path, offset: this.position },
        );
      }
      const c = this.chunks[0];
      const take = Math.min(c.length, left);
      visit?.(c.subarray(0, take));
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
      this.buffered -= take;
      this.position += take;
      left -= take;
    }
  }

  /** Reads to the end (so the hash covers the whole file) and returns the number of bytes that were left. */
  async drain(): Promise<number> {
    let extra = this.buffered;
    this.chunks = [];
    this.buffered = 0;
    while (await this.pull()) {
      extra += this.buffered;
      this.chunks = [];
      this.buffered = 0;
    }
    return extra;
  }

  close(): void {
    this.stream.destroy();
  }
}
