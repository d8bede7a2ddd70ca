import { describe, expect, it } from 'vitest';
import { encodeMultipart, multipartBoundary, parseMultipart } from './multipart.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('multipart/mixed', () => {
  it('reads back what it wrote, byte for byte, with CRLF and near-delimiters in the bytes', async () => {
    const media = new Uint8Array([0, 13, 10, 45, 45, 98, 13, 10, 13, 10, 255, 45, 45]);
    const body = encodeMultipart('boundary-1', [
      { headers: { 'Content-Type': 'application/json' }, body: bytes('{}') },
      { headers: { 'Content-Type': 'image/png', 'Content-Disposition': 'inline' }, body: new Blob([media]) },
    ]);
    const parts = parseMultipart('boundary-1', new Uint8Array(await body.arrayBuffer()));
    expect(parts).toEqual([
      { headers: { 'content-type': 'application/json' }, body: bytes('{}') },
      { headers: { 'content-type': 'image/png', 'content-disposition': 'inline' }, body: media },
    ]);
  });

  it('skips a preamble and transport padding, takes a part with no headers, and refuses a broken body', () => {
    const text =
      'preamble\r\n--q  \r\nContent-Type: text/plain\r\n\r\none\r\n--q\r\n\r\ntwo\r\n--q--\r\nepilogue';
    expect(parseMultipart('q', bytes(text))).toEqual([
      { headers: { 'content-type': 'text/plain' }, body: bytes('one') },
      { headers: {}, body: bytes('two') },
    ]);
    expect(() => parseMultipart('q', bytes('no delimiter here'))).toThrow(/boundary/);
    expect(() => parseMultipart('q', bytes('--q\r\nContent-Type: x\r\n\r\nunterminated'))).toThrow(/closing/);
    expect(() => parseMultipart('q', bytes('--q\r\nno header end\r\n--q--'))).toThrow(/header/);
  });

  it('reads the boundary parameter, quoted or not, of multipart types only', () => {
    expect(multipartBoundary('multipart/mixed; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Mixed; charset=x; Boundary="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('application/json; boundary=abc')).toBeNull();
    expect(multipartBoundary('multipart/mixed')).toBeNull();
    expect(multipartBoundary(`multipart/mixed; boundary=${'x'.repeat(71)}`)).toBeNull();
    expect(multipartBoundary(null)).toBeNull();
  });
});
