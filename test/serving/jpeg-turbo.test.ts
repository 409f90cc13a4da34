/**
 * JPEG decoding in libjpeg-turbo for serving, native and in WebAssembly: for every JPEG they accept, the
 * same pixels as sharp (the training path's decoder), so served features stay equal to training features;
 * everything they do not accept (CMYK, ICC profiles, large images, corrupt or truncated data) gets sharp's
 * answer, as before.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { RawImage } from '../../src/training/backbones';
import { decodeEncoded, jpegTurbo } from '../../src/serving/inference/image-decode';
import { readJpegHeader, turboDecodable } from '../../src/serving/inference/jpeg-header';
import { jpegNative } from '../../src/serving/inference/jpeg-native';
import { jpegWasm, WASM_MAX_PIXELS } from '../../src/serving/inference/jpeg-wasm';

const SUBSAMPLING_FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'jpeg-subsampling');
// The install step's own test for the headers it builds against (plain JavaScript, outside dist).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { turboJpegHeaders } = require(join(__dirname, '..', '..', '..', 'scripts', 'build-turbojpeg.js')) as { turboJpegHeaders: () => boolean };

function pixels(width: number, height: number, channels: 1 | 3, seed: number): sharp.Sharp {
  const raw = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    raw[i] = ((i % (width * channels)) * 3 + (s % 60)) & 255;
  }
  return sharp(raw, { raw: { width, height, channels } });
}

/** decodeEncoded's answer next to sharp's own decoding of the same bytes. */
async function both(jpeg: Buffer, maxPixels = 1 << 24) {
  const ours = await decodeEncoded(jpeg, maxPixels);
  let theirs: { data: Buffer; info: sharp.OutputInfo } | Error;
  try {
    theirs = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    theirs = err as Error;
  }
  return { ours, theirs };
}

function assertSame(r: Awaited<ReturnType<typeof both>>, name: string): void {
  assert.ok('image' in r.ours, `${name}: ${JSON.stringify(r.ours)}`);
  assert.ok(!(r.theirs instanceof Error), `${name}: sharp failed`);
  const { image } = r.ours;
  assert.deepEqual([image.width, image.height, image.channels], [r.theirs.info.width, r.theirs.info.height, r.theirs.info.channels], name);
  assert.ok(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length).equals(r.theirs.data), `${name}: pixels differ from sharp's`);
}

/** The decoders this machine has: WebAssembly always, native where `npm install` built the addon. */
function decoders(): [string, { maxPixels: number; decode(bytes: Uint8Array): RawImage }][] {
  const native = jpegNative();
  return [['WebAssembly', jpegWasm()], ...(native ? [['native', native] as [string, typeof native]] : [])];
}

describe('JPEG decoding in libjpeg-turbo', () => {
  it('has the native decoder wherever the TurboJPEG headers are (npm install built it), and serving uses it', () => {
    if (!turboJpegHeaders() || process.env.PRIVATUNE_NATIVE_JPEG === '0') {
      assert.equal(jpegTurbo(), jpegWasm(), 'without the addon, serving decodes in WebAssembly');
      return;
    }
    const native = jpegNative();
    assert.ok(native, 'scripts/build-turbojpeg.js built native/turbojpeg during npm install');
    assert.equal(jpegTurbo(), native);
  });

  it('gives sharp’s pixels for qualities, chroma subsamplings, progressive scans, gray, odd sizes and large images', async () => {
    const cases: [string, Buffer][] = [];
    // 512 x 512: the largest the WebAssembly build takes; the native one takes larger images too.
    for (const [w, h] of [[224, 224], [223, 97], [17, 5], [512, 512], [640, 480]]) {
      for (const quality of [50, 90, 100]) {
        for (const chromaSubsampling of ['4:2:0', '4:4:4']) {
          for (const progressive of [false, true]) {
            cases.push([`${w}x${h} q${quality} ${chromaSubsampling}${progressive ? ' progressive' : ''}`, await pixels(w, h, 3, w + quality).jpeg({ quality, chromaSubsampling, progressive }).toBuffer()]);
          }
        }
      }
    }
    cases.push(['gray', await pixels(100, 60, 1, 3).toColourspace('b-w').jpeg({ quality: 80 }).toBuffer()]);
    cases.push(['gray progressive', await pixels(100, 60, 1, 4).toColourspace('b-w').jpeg({ progressive: true }).toBuffer()]);
    cases.push(['mozjpeg encoder settings', await pixels(200, 150, 3, 5).jpeg({ mozjpeg: true }).toBuffer()]);
    cases.push(['1024x768 progressive', await pixels(1024, 768, 3, 6).jpeg({ quality: 80, progressive: true }).toBuffer()]);
    for (const file of readdirSync(SUBSAMPLING_FIXTURES).filter((f) => f.endsWith('.jpg'))) {
      cases.push([`cjpeg ${file}`, readFileSync(join(SUBSAMPLING_FIXTURES, file))]);
    }
    assert.ok(cases.length >= 60, 'the chroma subsampling fixtures are there');
    for (const [name, jpeg] of cases) {
      const header = readJpegHeader(jpeg);
      assert.ok(header && turboDecodable(header), `${name} takes the libjpeg-turbo path`);
      const theirs = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      // The decoders themselves, not decodeEncoded, which would hide a failure behind sharp's answer.
      for (const [decoder, d] of decoders()) {
        if (header.width * header.height > d.maxPixels) continue;
        const image = d.decode(jpeg);
        assert.deepEqual([image.width, image.height, image.channels], [theirs.info.width, theirs.info.height, theirs.info.channels], `${decoder}: ${name}`);
        assert.ok(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length).equals(theirs.data), `${decoder}: ${name}: pixels differ from sharp's`);
      }
      assertSame(await both(jpeg), name);
    }
  });

  it('leaves CMYK and ICC-tagged JPEGs to sharp, and WebAssembly leaves large ones, with sharp’s pixels', async () => {
    const cases: [string, Buffer][] = [
      ['CMYK (Adobe marker)', await pixels(64, 64, 3, 7).toColourspace('cmyk').jpeg().toBuffer()],
      ['Display P3 profile', await pixels(64, 64, 3, 8).withIccProfile('p3').jpeg().toBuffer()],
    ];
    for (const [name, jpeg] of cases) {
      const header = readJpegHeader(jpeg);
      assert.ok(header, name);
      assert.equal(turboDecodable(header), false, `${name} is left to sharp`);
      assertSame(await both(jpeg), name);
    }
    const side = Math.ceil(Math.sqrt(WASM_MAX_PIXELS)) + 1;
    const large = await pixels(side, side, 3, 9).jpeg({ quality: 60 }).toBuffer();
    assert.throws(() => jpegWasm().decode(large), /not decoded here/);
    assertSame(await both(large), `${side}x${side}`);
  });

  it('answers corrupt and truncated JPEGs as sharp does, and refuses images over the pixel limit from the header', async () => {
    const jpeg = await pixels(224, 224, 3, 10).jpeg({ quality: 90 }).toBuffer();
    const truncated = await both(jpeg.subarray(0, jpeg.length >> 1));
    assert.ok(truncated.theirs instanceof Error, 'sharp refuses a truncated JPEG');
    assert.equal('reason' in truncated.ours && truncated.ours.reason, 'IMAGE_UNDECODABLE');
    assertSame(await both(Buffer.concat([jpeg.subarray(0, jpeg.length - 200), Buffer.alloc(200, 7)])), 'garbage instead of the last scan bytes');
    assertSame(await both(Buffer.from(jpeg).fill(0x55, 800, 900)), 'damaged entropy-coded data');
    assertSame(await both(Buffer.concat([jpeg, Buffer.alloc(10)])), 'trailing zeros');
    const big = await decodeEncoded(jpeg, 224 * 224 - 1);
    assert.equal('reason' in big && big.reason, 'IMAGE_TOO_LARGE');
  });

  it('refuses what libjpeg warns about or aborts on, and decodes the next JPEG as before, however many came first', async () => {
    const jpeg = await pixels(64, 48, 3, 13).jpeg({ quality: 85 }).toBuffer();
    const expected = await sharp(jpeg).raw().toBuffer();
    // A Huffman table that overflows its code space: libjpeg's fatal error exit (a longjmp in C).
    const dht = jpeg.indexOf(Buffer.from([0xff, 0xc4]));
    assert.ok(dht > 0);
    const bogus = Buffer.from(jpeg);
    bogus.fill(0xff, dht + 5, dht + 21); // 255 codes of every length
    const refusals: Record<string, [RegExp, RegExp]> = {
      WebAssembly: [/libjpeg warned or failed/, /libjpeg error/],
      native: [/Premature end of JPEG file/, /Bogus Huffman table/],
    };
    for (const [decoder, d] of decoders()) {
      const [warned, aborted] = refusals[decoder];
      // A premature end: libjpeg warns and pads the image with gray; sharp refuses it, so must these decoders.
      assert.throws(() => d.decode(jpeg.subarray(0, jpeg.length >> 1)), warned, decoder);
      for (let i = 0; i < 300; i++) assert.throws(() => d.decode(bogus), aborted, decoder);
      const again = d.decode(jpeg);
      assert.ok(Buffer.from(again.data.buffer, again.data.byteOffset, again.data.length).equals(expected), `${decoder}: a good JPEG after 300 aborted decodes`);
    }
  });

  it('decodes natively in worker threads too, each with its own decompressor', { skip: !jpegNative() && 'the native decoder was not built' }, async () => {
    const { Worker } = await import('node:worker_threads');
    const jpeg = await pixels(96, 64, 3, 14).jpeg({ quality: 80 }).toBuffer();
    const expected = await sharp(jpeg).raw().toBuffer();
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { jpegNative } = require(${JSON.stringify(require.resolve('../../src/serving/inference/jpeg-native'))});
      const image = jpegNative().decode(new Uint8Array(workerData));
      parentPort.postMessage(image.data, [image.data.buffer]);`;
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<Uint8Array>((resolve, reject) => {
            const w = new Worker(source, { eval: true, workerData: jpeg });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) assert.ok(Buffer.from(r).equals(expected), 'a worker thread’s pixels equal sharp’s');
  });

  it('reads frame headers, and nothing from what is not a JPEG', async () => {
    const jpeg = await pixels(33, 21, 3, 11).jpeg({ progressive: true }).toBuffer();
    assert.deepEqual(readJpegHeader(jpeg), { frame: 0xc2, precision: 8, width: 33, height: 21, components: 3, icc: false, adobe: false });
    assert.equal(readJpegHeader(await pixels(8, 8, 3, 12).png().toBuffer()), undefined);
    assert.equal(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff])), undefined);
    assert.equal(readJpegHeader(jpeg.subarray(0, 20)), undefined, 'cut before the frame header');
  });
});
