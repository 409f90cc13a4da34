/**
 * JPEG decoding in WebAssembly for serving: for every JPEG it accepts, the same pixels as sharp (the
 * training path's decoder), so served features stay equal to training features; everything it does not
 * accept (CMYK, ICC profiles, large images, corrupt or truncated data) gets sharp's answer, as before.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeEncoded } from '../../src/serving/inference/image-decode';
import { jpegWasm, readJpegHeader, WASM_MAX_PIXELS, wasmDecodable } from '../../src/serving/inference/jpeg-wasm';

const SUBSAMPLING_FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'jpeg-subsampling');

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

describe('JPEG decoding in WebAssembly', () => {
  it('gives sharp’s pixels for qualities, chroma subsamplings, progressive scans, gray, odd sizes and the largest size it takes', async () => {
    const cases: [string, Buffer][] = [];
    for (const [w, h] of [[224, 224], [223, 97], [17, 5], [512, 512]]) {
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
    for (const file of readdirSync(SUBSAMPLING_FIXTURES).filter((f) => f.endsWith('.jpg'))) {
      cases.push([`cjpeg ${file}`, readFileSync(join(SUBSAMPLING_FIXTURES, file))]);
    }
    assert.ok(cases.length >= 60, 'the chroma subsampling fixtures are there');
    const wasm = jpegWasm();
    for (const [name, jpeg] of cases) {
      const header = readJpegHeader(jpeg);
      assert.ok(header && wasmDecodable(header), `${name} takes the WebAssembly path`);
      // The decoder itself, not decodeEncoded, which would hide a failure behind sharp's answer.
      const image = wasm.decode(jpeg);
      const theirs = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([image.width, image.height, image.channels], [theirs.info.width, theirs.info.height, theirs.info.channels], name);
      assert.ok(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length).equals(theirs.data), `${name}: pixels differ from sharp's`);
      assertSame(await both(jpeg), name);
    }
  });

  it('leaves CMYK, ICC-tagged and large JPEGs to sharp, with sharp’s pixels', async () => {
    const side = Math.ceil(Math.sqrt(WASM_MAX_PIXELS)) + 1;
    const cases: [string, Buffer][] = [
      ['CMYK (Adobe marker)', await pixels(64, 64, 3, 7).toColourspace('cmyk').jpeg().toBuffer()],
      ['Display P3 profile', await pixels(64, 64, 3, 8).withIccProfile('p3').jpeg().toBuffer()],
      [`${side}x${side}`, await pixels(side, side, 3, 9).jpeg({ quality: 60 }).toBuffer()],
    ];
    for (const [name, jpeg] of cases) {
      const header = readJpegHeader(jpeg);
      assert.ok(header, name);
      assert.equal(wasmDecodable(header), false, `${name} is left to sharp`);
      assertSame(await both(jpeg), name);
    }
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
    const wasm = jpegWasm();
    const jpeg = await pixels(64, 48, 3, 13).jpeg({ quality: 85 }).toBuffer();
    const expected = await sharp(jpeg).raw().toBuffer();
    // A premature end: libjpeg warns and pads the image with gray; sharp refuses it, so must this decoder.
    assert.throws(() => wasm.decode(jpeg.subarray(0, jpeg.length >> 1)), /libjpeg warned or failed/);
    // A Huffman table that overflows its code space: libjpeg's fatal error exit, which this build cannot longjmp out of.
    const dht = jpeg.indexOf(Buffer.from([0xff, 0xc4]));
    assert.ok(dht > 0);
    const bogus = Buffer.from(jpeg);
    bogus.fill(0xff, dht + 5, dht + 21); // 255 codes of every length
    for (let i = 0; i < 300; i++) assert.throws(() => wasm.decode(bogus), /libjpeg error/);
    const again = wasm.decode(jpeg);
    assert.ok(Buffer.from(again.data.buffer, again.data.byteOffset, again.data.length).equals(expected), 'a good JPEG after 300 aborted decodes');
  });

  it('reads frame headers, and nothing from what is not a JPEG', async () => {
    const jpeg = await pixels(33, 21, 3, 11).jpeg({ progressive: true }).toBuffer();
    assert.deepEqual(readJpegHeader(jpeg), { frame: 0xc2, precision: 8, width: 33, height: 21, components: 3, icc: false, adobe: false });
    assert.equal(readJpegHeader(await pixels(8, 8, 3, 12).png().toBuffer()), undefined);
    assert.equal(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff])), undefined);
    assert.equal(readJpegHeader(jpeg.subarray(0, 20)), undefined, 'cut before the frame header');
  });
});
