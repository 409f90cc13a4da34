/**
 * Classify image inputs: strict base64, byte and pixel limits checked before decoding, raw pixel geometry,
 * formats, that an encoded image and the same raw pixels give the same backbone input, and which images a
 * lone request decodes on the event loop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { BadInputError } from '../../src/common/errors/domain-errors';
import { preprocessOne } from '../../src/serving/inference/image-decode';
import { checkImage, decodeBase64, decodeChecked, decodesOnCallingThread } from '../../src/serving/inference/image-input';
import { decodeImage, MOBILENET_V2_SPEC } from '../../src/training/backbones';
import { parseModelRef } from '../../src/serving/models/model-ref';

const limits = { maxImageBytes: 64 * 1024, maxImagePixels: 512 * 512 };
const reason = (r: string) => (e: unknown) => e instanceof BadInputError && e.details?.reason === r;

describe('classify image inputs', () => {
  it('accepts standard, URL-safe, unpadded, wrapped and data-URL base64; refuses corrupt base64', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xfe, 1, 2]);
    for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('base64').replace(/=+$/, ''), `data:image/png;base64,${bytes.toString('base64')}`, bytes.toString('base64').replace(/(.{3})/, '$1\n')]) {
      assert.deepEqual(decodeBase64(text, 0, 1000), bytes, text);
    }
    for (const text of ['not base64!', 'abc*', 'A', 'AAAAA=', '=AAA', '']) {
      assert.throws(() => decodeBase64(text, 2, 1000), (e: unknown) => e instanceof BadInputError && e.details?.field === 'images[2]', text);
    }
    assert.throws(() => decodeBase64('', 0, 1000), reason('EMPTY_IMAGE'));
    assert.throws(() => decodeBase64('###', 0, 1000), reason('INVALID_BASE64'));
  });

  it('accepts exactly canonical base64 (property test against the rules written out)', () => {
    const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const URL = STD.slice(0, 62) + '-_';
    /** The rules: one alphabet, no dangling character, padding only to complete the last group, unused bits zero. */
    const valid = (text: string): boolean => {
      const body = text.replace(/={1,2}$/, '');
      if (body.length === 0 || body.length % 4 === 1) return false;
      if (body.length !== text.length && text.length % 4 !== 0) return false;
      const alphabet = [...body].every((c) => STD.includes(c)) ? STD : [...body].every((c) => URL.includes(c)) ? URL : undefined;
      if (!alphabet) return false;
      const last = alphabet.indexOf(body[body.length - 1]);
      return body.length % 4 === 2 ? (last & 0xf) === 0 : body.length % 4 === 3 ? (last & 0x3) === 0 : true;
    };
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + rand(20) }, () => rand(256)));
      const encodings = [bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url'), bytes.toString('base64url').padEnd(Math.ceil(bytes.length / 3) * 4, '=')];
      let text = encodings[rand(4)];
      if (rand(2) === 0) {
        // One mutation: a character from either alphabet or outside both, padding added or removed, a character dropped.
        const at = rand(text.length);
        const chars = STD + '-_!*.=%';
        const kind = rand(3);
        if (kind === 0) text = text.slice(0, at) + chars[rand(chars.length)] + text.slice(at + 1);
        else if (kind === 1) text = rand(2) ? `${text}=` : text.replace(/=$/, '');
        else text = text.slice(0, at) + text.slice(at + 1);
      }
      const expectValid = valid(text);
      let got: Buffer | undefined;
      try {
        got = decodeBase64(text, 0, 1000);
      } catch (e) {
        assert.ok(e instanceof BadInputError && ['INVALID_BASE64', 'EMPTY_IMAGE'].includes(String(e.details?.reason)), String(e));
      }
      assert.equal(got !== undefined, expectValid, JSON.stringify(text));
      if (got) {
        assert.equal(got.toString(STD.includes(text[0]) && !/[-_]/.test(text) ? 'base64' : 'base64url').replace(/=+$/, ''), text.replace(/=+$/, ''));
        accepted++;
      } else refused++;
    }
    assert.ok(accepted > 1000 && refused > 500, `${accepted} accepted, ${refused} refused`);
  });

  it('refuses images above the byte limit before decoding them', () => {
    const big = Buffer.alloc(limits.maxImageBytes + 10).toString('base64');
    assert.throws(() => checkImage({ data: big }, 0, limits), reason('IMAGE_TOO_LARGE'));
  });

  it('checks raw pixel geometry', () => {
    const ok = checkImage({ data: Buffer.alloc(2 * 3 * 3).toString('base64'), width: 2, height: 3, channels: 3 }, 0, limits);
    assert.deepEqual(ok.raw, { width: 2, height: 3, channels: 3 });
    assert.throws(() => checkImage({ data: Buffer.alloc(17).toString('base64'), width: 2, height: 3, channels: 3 }, 0, limits), reason('INVALID_RAW_PIXELS'));
    assert.throws(() => checkImage({ data: 'AAAA', width: 2, height: 3 }, 0, limits), reason('INVALID_RAW_PIXELS'));
    assert.throws(() => checkImage({ data: 'AAAA', width: 1, height: 1, channels: 2 }, 0, limits), reason('INVALID_RAW_PIXELS'));
    assert.throws(() => checkImage({ data: 'AAAA', width: 0, height: 1, channels: 1 }, 0, limits), reason('INVALID_RAW_PIXELS'));
    assert.throws(() => checkImage({ data: 'AAAA', width: 1000, height: 1000, channels: 1 }, 0, limits), reason('IMAGE_TOO_LARGE'));
  });

  it('refuses non-images, unsupported formats and oversized images from their header', async () => {
    const text = checkImage({ data: Buffer.from('hello, this is not an image').toString('base64') }, 0, limits);
    await assert.rejects(decodeChecked(text, 0, limits), reason('IMAGE_UNDECODABLE'));
    const svg = checkImage({ data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>').toString('base64') }, 0, limits);
    await assert.rejects(decodeChecked(svg, 0, limits), (e: unknown) => e instanceof BadInputError && ['UNSUPPORTED_IMAGE_FORMAT', 'IMAGE_UNDECODABLE'].includes(String(e.details?.reason)));
    const huge = await sharp({ create: { width: 1000, height: 600, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer();
    await assert.rejects(decodeChecked(checkImage({ data: huge.toString('base64') }, 0, limits), 0, limits), reason('IMAGE_TOO_LARGE'));
    const png = await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer();
    const truncated = checkImage({ data: png.subarray(0, png.length - 20).toString('base64') }, 0, limits);
    await assert.rejects(decodeChecked(truncated, 0, limits), (e: unknown) => e instanceof BadInputError);
  });

  it('decodes JPEGs to the same pixels as the training path', async () => {
    const rgb = Buffer.from(Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 13) % 256));
    const jpeg = await sharp(rgb, { raw: { width: 40, height: 30, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
    const served = await decodeChecked(checkImage({ data: jpeg.toString('base64') }, 0, limits), 0, limits);
    const trained = await decodeImage(jpeg);
    assert.deepEqual({ ...served, data: Buffer.from(served.data) }, { ...trained, data: Buffer.from(trained.data) });
  });

  it('gives the same backbone input for a PNG and its raw pixels', async () => {
    const raw = Buffer.from(Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256));
    const png = await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    const fromPng = preprocessOne(await decodeChecked(checkImage({ data: png.toString('base64') }, 0, limits), 0, limits), 96, MOBILENET_V2_SPEC.preprocessing);
    const fromRaw = preprocessOne(await decodeChecked(checkImage({ data: raw.toString('base64'), width: 28, height: 28, channels: 1 }, 0, limits), 0, limits), 96, MOBILENET_V2_SPEC.preprocessing);
    assert.equal(fromPng.length, 96 * 96 * 3);
    assert.deepEqual(fromPng, fromRaw);
  });

  it('decodes on the calling thread only the one small plain JPEG of a request, alone in the process or natively', async () => {
    const target = { inputSize: 224, preprocessing: MOBILENET_V2_SPEC.preprocessing };
    const image = async (w: number, h: number, encode: (s: sharp.Sharp) => sharp.Sharp) => {
      const rgb = Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 29) % 256));
      return checkImage({ data: (await encode(sharp(rgb, { raw: { width: w, height: h, channels: 3 } })).toBuffer()).toString('base64') }, 0, limits);
    };
    const jpeg224 = await image(224, 224, (s) => s.jpeg({ quality: 90 }));
    const alone = { requestsInFlight: 1, imagesInRequest: 1, target, native: false };
    assert.equal(decodesOnCallingThread(jpeg224, alone), true);
    assert.equal(decodesOnCallingThread(await image(160, 120, (s) => s.jpeg({ quality: 75, progressive: true })), alone), true, 'progressive, smaller');
    assert.equal(decodesOnCallingThread(jpeg224, { ...alone, requestsInFlight: 2 }), false, 'another request in flight, WebAssembly');
    assert.equal(decodesOnCallingThread(jpeg224, { ...alone, requestsInFlight: 2, native: true }), true, 'another request in flight, native');
    assert.equal(decodesOnCallingThread(jpeg224, { ...alone, imagesInRequest: 2 }), false, 'several images');
    assert.equal(decodesOnCallingThread(jpeg224, { ...alone, imagesInRequest: 2, native: true }), false, 'several images, native');
    assert.equal(decodesOnCallingThread(await image(225, 224, (s) => s.jpeg()), alone), false, 'larger than the input: resized in a thread');
    assert.equal(decodesOnCallingThread(await image(64, 64, (s) => s.png()), alone), false, 'not a JPEG');
    const withIcc = await image(64, 64, (s) => s.withIccProfile('srgb').jpeg());
    assert.equal(decodesOnCallingThread(withIcc, alone), false, 'an ICC profile: sharp converts it');
    const raw = checkImage({ data: Buffer.alloc(8 * 8 * 3).toString('base64'), width: 8, height: 8, channels: 3 }, 0, limits);
    assert.equal(decodesOnCallingThread(raw, alone), false, 'raw pixels need no decoding');
    // A JPEG padded with more bytes than its pixels would take (e.g. junk scans) goes to a thread.
    const padded = Buffer.concat([Buffer.from(jpeg224.bytes.subarray(0, -2)), Buffer.alloc(224 * 224 * 3), Buffer.from([0xff, 0xd9])]);
    assert.equal(decodesOnCallingThread({ bytes: padded }, alone), false, 'more bytes than pixels');
  });

  it('parses model references', () => {
    assert.deepEqual(parseModelRef('fashion@3'), { kind: 'version', name: 'fashion', version: 3, text: 'fashion@3' });
    assert.deepEqual(parseModelRef('fashion@v3'), { kind: 'version', name: 'fashion', version: 3, text: 'fashion@v3' });
    assert.deepEqual(parseModelRef('fashion.v2@production'), { kind: 'alias', name: 'fashion.v2', alias: 'production', text: 'fashion.v2@production' });
    assert.deepEqual(parseModelRef('fashion'), { kind: 'latest', name: 'fashion', text: 'fashion' });
    assert.equal(parseModelRef('0B7A8B2E-1C2D-4E5F-8A9B-0C1D2E3F4A5B').kind, 'id');
    for (const bad of ['', '@prod', 'fashion@', 'fashion@Prod', 'fashion@0', 'a b@1', 'fa@shion@x!']) {
      assert.throws(() => parseModelRef(bad), (e: unknown) => e instanceof BadInputError && e.details?.reason === 'INVALID_MODEL_REF', bad);
    }
  });
});
