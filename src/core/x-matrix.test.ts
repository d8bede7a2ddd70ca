import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signingKeyFromSeed } from './crypto.ts';
import { verifyJson } from './signing.ts';
import { parseXMatrix, XMatrixParseError, xMatrixAuthorization, xMatrixSignedObject } from './x-matrix.ts';

describe('parseXMatrix', () => {
  it('reads the header the spec shows', () => {
    expect(
      parseXMatrix(
        'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."',
      ),
    ).toEqual({
      origin: 'origin.hs.example.com',
      destination: 'destination.hs.example.com',
      key: 'ed25519:key1',
      sig: 'ABCDEF...',
    });
  });

  it('takes bare values, colons included, any name case and order, and spaces and tabs around commas', () => {
    expect(
      parseXMatrix(
        'x-matrix   SIG=abc/def+g , \tKey=ed25519:k1,\tDestination=b.test:8448 ,ORIGIN=a.test:8448',
      ),
    ).toEqual({ origin: 'a.test:8448', destination: 'b.test:8448', key: 'ed25519:k1', sig: 'abc/def+g' });
  });

  it('unescapes quoted values and ignores unknown parameters and empty list elements', () => {
    expect(parseXMatrix('X-Matrix origin="a\\.test",,future="x, y",key="ed25519:k",sig="s\\"ig"')).toEqual({
      origin: 'a.test',
      destination: undefined,
      key: 'ed25519:k',
      sig: 's"ig',
    });
  });

  it.each([
    ['another scheme', 'Bearer abc'],
    ['no space after the scheme', 'X-Matrixorigin=a,key=ed25519:k,sig=s'],
    ['no parameters', 'X-Matrix '],
    ['a missing sig', 'X-Matrix origin=a,key=ed25519:k'],
    ['a missing origin', 'X-Matrix key=ed25519:k,sig=s'],
    ['a missing key', 'X-Matrix origin=a,sig=s'],
    ['an unterminated quote', 'X-Matrix origin="a,key=ed25519:k,sig=s'],
    ['a parameter without "="', 'X-Matrix origin,key=ed25519:k,sig=s'],
    ['an empty bare value', 'X-Matrix origin=,key=ed25519:k,sig=s'],
    ['a repeated parameter', 'X-Matrix origin=a,origin=b,key=ed25519:k,sig=s'],
    ['junk after a value', 'X-Matrix origin="a" b,key=ed25519:k,sig=s'],
    ['an origin that is no server name', 'X-Matrix origin="a b",key=ed25519:k,sig=s'],
    ['a destination that is no server name', 'X-Matrix origin=a,destination="b/c",key=ed25519:k,sig=s'],
    ['a key that is no server key ID', 'X-Matrix origin=a,key="ed25519:a-b",sig=s'],
  ])('refuses %s', (_why, header) => {
    expect(() => parseXMatrix(header)).toThrow(XMatrixParseError);
  });
});

describe('xMatrixAuthorization', () => {
  it('signs method, uri, origin, destination and content as the spec lays out', async () => {
    const key = await signingKeyFromSeed(new Uint8Array(32).fill(7), 'k1');
    const request = {
      method: 'PUT',
      uri: '/_matrix/federation/v1/send/1?x=1',
      origin: 'a.test',
      destination: 'b.test',
      content: { pdus: [] },
    };
    const header = await xMatrixAuthorization({ ...request, key });
    expect(header).toMatch(
      /^X-Matrix origin="a\.test",destination="b\.test",key="ed25519:k1",sig="[A-Za-z0-9+/]+"$/,
    );
    const creds = parseXMatrix(header);
    const signed = { ...xMatrixSignedObject(request), signatures: { 'a.test': { 'ed25519:k1': creds.sig } } };
    await verifyJson(signed, 'a.test', { 'ed25519:k1': key.publicKey });
    expect(xMatrixSignedObject({ ...request, content: undefined, destination: undefined })).toEqual({
      method: 'PUT',
      uri: '/_matrix/federation/v1/send/1?x=1',
      origin: 'a.test',
    });
  });
});

describe('parseXMatrix on any input', () => {
  it('either reads credentials or throws XMatrixParseError, never anything else', () => {
    const header = fc.oneof(
      fc.string(),
      fc.string().map((s) => `X-Matrix ${s}`),
      fc
        .array(fc.tuple(fc.constantFrom('origin', 'destination', 'key', 'sig', 'x'), fc.string()), {
          maxLength: 6,
        })
        .map((pairs) => `X-Matrix ${pairs.map(([k, v]) => `${k}=${v}`).join(',')}`),
    );
    fc.assert(
      fc.property(header, (h) => {
        try {
          const creds = parseXMatrix(h);
          expect(typeof creds.origin).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(XMatrixParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back any quoted value, whatever quotes and backslashes it holds', () => {
    const quote = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (sig) => {
        const creds = parseXMatrix(`X-Matrix origin=a.test,key=ed25519:k,sig=${quote(sig)}`);
        expect(creds.sig).toBe(sig);
      }),
    );
  });
});
