import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from './base64.ts';
import { CoreError } from './errors.ts';
import { expectCoreError } from './testing.ts';

const ascii = (text: string) => new TextEncoder().encode(text);

// RFC 4648 section 10, as the spec quotes them (appendices.md "Unpadded Base64"), with
// the RFC's padded forms next to them.
const RFC4648: [string, string, string][] = [
  ['', '', ''],
  ['f', 'Zg', 'Zg=='],
  ['fo', 'Zm8', 'Zm8='],
  ['foo', 'Zm9v', 'Zm9v'],
  ['foob', 'Zm9vYg', 'Zm9vYg=='],
  ['fooba', 'Zm9vYmE', 'Zm9vYmE='],
  ['foobar', 'Zm9vYmFy', 'Zm9vYmFy'],
];

describe('unpadded base64', () => {
  it.each(RFC4648)('UNPADDED_BASE64(%j) = %j', (plain, unpadded, padded) => {
    expect(encodeBase64(ascii(plain))).toBe(unpadded);
    expect(encodeBase64Url(ascii(plain))).toBe(unpadded);
    expect(decodeBase64(unpadded)).toEqual(ascii(plain));
    expect(decodeBase64(padded)).toEqual(ascii(plain));
    expect(decodeBase64Url(unpadded)).toEqual(ascii(plain));
    expect(decodeBase64Url(padded)).toEqual(ascii(plain));
  });

  it('uses + and / in the standard alphabet, - and _ in the URL-safe one', () => {
    const bytes = new Uint8Array([0xfb, 0xff, 0xbf]);
    expect(encodeBase64(bytes)).toBe('+/+/');
    expect(encodeBase64Url(bytes)).toBe('-_-_');
    expect(decodeBase64('+/+/')).toEqual(bytes);
    expect(decodeBase64Url('-_-_')).toEqual(bytes);
    expect(encodeBase64(new Uint8Array([0xff, 0xff]))).toBe('//8');
    expect(encodeBase64Url(new Uint8Array([0xff, 0xff]))).toBe('__8');
  });

  it('encodes as Node does, less the padding, and decodes back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const std = encodeBase64(bytes);
        const url = encodeBase64Url(bytes);
        expect(std).toBe(Buffer.from(bytes).toString('base64').replace(/=+$/, ''));
        expect(url).toBe(Buffer.from(bytes).toString('base64url'));
        expect(decodeBase64(std)).toEqual(bytes);
        expect(decodeBase64Url(url)).toEqual(bytes);
        expect(decodeBase64(Buffer.from(bytes).toString('base64'))).toEqual(bytes); // padded
      }),
      { numRuns: 500 },
    );
  });

  it('encodes every length from 0 to 200 bytes as Node does (short inputs are written by pairs)', () => {
    for (let length = 0; length <= 200; length++) {
      for (const fill of [0x00, 0xff, 0x5a]) {
        const bytes = Uint8Array.from({ length }, (_, i) => (fill + i * 37) & 0xff);
        expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64').replace(/=+$/, ''));
        expect(encodeBase64Url(bytes)).toBe(Buffer.from(bytes).toString('base64url'));
      }
    }
  });

  it('encodes long inputs (several 8 KiB chunks of output) as Node does', () => {
    for (const length of [6143, 6144, 6145, 20_000, 100_001]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 131 + (i >> 8)) & 0xff);
      expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64').replace(/=+$/, ''));
      expect(encodeBase64Url(bytes)).toBe(Buffer.from(bytes).toString('base64url'));
    }
  });

  it.each([
    ['Z', /bad length/],
    ['Zm9vY', /bad length/],
    ['Zg=', /bad padding/],
    ['Zm9v=', /bad padding/],
    ['Zm9v==', /bad padding/],
    ['Zg===', /bad padding/],
    ['Zm9vY===', /bad length/],
    ['=', /bad padding/],
    ['====', /bad padding/],
    ['Zg==Zg', /unexpected character at 2/],
    ['Zm9v!', /bad length/],
    ['Zm9v!A', /unexpected character at 4/],
    ['Zm 9vYg', /unexpected character at 2/],
    ['Zm9v\n', /bad length/],
    ['Zm9v\nZg', /unexpected character at 4/],
    ['Zm9vYmFy\u00e9A', /unexpected character at 8/],
    ['Zm9v\u{1f600}', /unexpected character at 4/],
    ['Zm-_', /unexpected character at 2/], // URL-safe characters in standard base64
  ])('decodeBase64 rejects %j', (text, message) => {
    expectCoreError(() => decodeBase64(text), 'BAD_KEY', message);
  });

  it("decodeBase64Url rejects the standard alphabet's + and /", () => {
    expectCoreError(() => decodeBase64Url('Zm+/'), 'BAD_KEY', /unexpected character at 2/);
    expectCoreError(() => decodeBase64Url('Z'), 'BAD_KEY', /bad length/);
  });

  it('rejects what is not a string or bytes with BAD_KEY, not TypeError', () => {
    for (const value of [undefined, null, 42, {}, ['Zg']]) {
      expectCoreError(() => decodeBase64(value as unknown as string), 'BAD_KEY', /not a string/);
      expectCoreError(() => decodeBase64Url(value as unknown as string), 'BAD_KEY', /not a string/);
      expectCoreError(() => encodeBase64(value as unknown as Uint8Array), 'BAD_KEY', /Uint8Array/);
    }
  });

  it('ignores non-zero bits in the last character, as Python (Synapse) does', () => {
    expect(decodeBase64('Zh')).toEqual(ascii('f'));
    expect(decodeBase64('Zm9')).toEqual(ascii('fo'));
  });

  it('throws only BAD_KEY for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 20 }), (text) => {
        for (const decode of [decodeBase64, decodeBase64Url]) {
          try {
            decode(text);
          } catch (err) {
            expect(err).toBeInstanceOf(CoreError);
            expect((err as CoreError).code).toBe('BAD_KEY');
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
