import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './base64.ts';
import { canonicalJson, MAX_SAFE_INTEGER } from './canonical-json.ts';
import {
  type Ed25519Backend,
  nobleEd25519,
  publicKeyFromBase64,
  type SigningKey,
  seedFromBase64,
  signingKeyFromSeed,
  webCryptoEd25519,
} from './crypto.ts';
import vectors from './fixtures/json-signing-vectors.json' with { type: 'json' };
import { type Signatures, signedBytes, signJson, verifyJson } from './signing.ts';
import { expectCoreErrorAsync, nodeBackend } from './testing.ts';

const webcrypto = webCryptoEd25519(globalThis.crypto.subtle);
const BACKENDS: [string, Ed25519Backend][] = [
  ['noble', nobleEd25519],
  ['webcrypto', webcrypto],
  ['node', nodeBackend()],
];
const SERVER = vectors.server_name;
const KEY_ID = vectors.key_id;
const SEED = seedFromBase64(vectors.signing_key_seed);

async function vectorKey(backend: Ed25519Backend): Promise<SigningKey> {
  const key = await signingKeyFromSeed(SEED, KEY_ID.slice('ed25519:'.length), backend);
  expect(key.keyId).toBe(KEY_ID);
  return key;
}

describe('the appendix test vectors ("Cryptographic Test Vectors" > "JSON Signing")', () => {
  describe.each(BACKENDS)('with the %s backend', (_name, backend) => {
    it.each(vectors.json_signing.map((v, i) => [i + 1, v] as const))(
      'vector %i signs byte for byte',
      async (_n, vector) => {
        const key = await vectorKey(backend);
        const signed = await signJson(structuredClone(vector.input), SERVER, key);
        expect(signed).toEqual(vector.signed);
        expect(canonicalJson(signed)).toBe(canonicalJson(vector.signed));
        expect(signed.signatures[SERVER]?.[KEY_ID]).toBe(vector.signed.signatures.domain['ed25519:1']);
      },
    );

    it.each(vectors.json_signing.map((v, i) => [i + 1, v] as const))(
      'vector %i verifies',
      async (_n, vector) => {
        const key = await vectorKey(backend);
        await verifyJson(vector.signed, SERVER, { [KEY_ID]: key.publicKey }, { backend });
        await verifyJson(vector.signed, SERVER, new Map([[KEY_ID, key.publicKey]]), { backend });
      },
    );
  });

  it('every backend gives identical signatures and public keys', async () => {
    const [a, ...others] = await Promise.all(BACKENDS.map(([, backend]) => vectorKey(backend)));
    for (const b of others) {
      expect(a?.publicKeyBase64).toBe(b.publicKeyBase64);
      for (const vector of vectors.json_signing) {
        const sa = await signJson(vector.input, SERVER, a as SigningKey);
        const sb = await signJson(vector.input, SERVER, b);
        expect(canonicalJson(sa)).toBe(canonicalJson(sb));
      }
    }
  });
});

describe('the example of "Signing Details"', () => {
  const example = vectors.signing_details_example;

  it('is well-formed: a 32-byte key and a 64-byte signature, covering neither signatures nor unsigned', () => {
    expect(publicKeyFromBase64(example.signing_keys['ed25519:1'])).toHaveLength(32);
    expect(decodeBase64(example.signatures['example.org']['ed25519:1'])).toHaveLength(64);
    expect(new TextDecoder().decode(signedBytes(example))).toBe(
      '{"name":"example.org","signing_keys":{"ed25519:1":"XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"}}',
    );
  });

  it('is illustrative: its signature does not verify with the key it lists (the seed is not given)', async () => {
    const keys = { 'ed25519:1': publicKeyFromBase64(example.signing_keys['ed25519:1']) };
    for (const [, backend] of BACKENDS) {
      await expectCoreErrorAsync(
        verifyJson(example, 'example.org', keys, { backend }),
        'BAD_SIGNATURE',
        /does not verify/,
      );
    }
  });

  it('re-signed with the vector key, keeps `unsigned` and verifies', async () => {
    const key = await vectorKey(nobleEd25519);
    const { signatures: _, ...body } = example;
    const signed = await signJson(body, 'example.org', key);
    expect(signed.unsigned).toEqual(example.unsigned);
    await verifyJson(signed, 'example.org', { [KEY_ID]: key.publicKey }, { backend: webcrypto });
  });
});

describe('verifyJson', () => {
  const signedFixture = async () => {
    const key = await vectorKey(nobleEd25519);
    const signed = await signJson({ one: 1, two: 'Two', nested: { list: [1, 'x', null] } }, SERVER, key);
    return { key, signed, keys: { [KEY_ID]: key.publicKey } };
  };

  it('ignores `unsigned` and the signatures of other entities, and signJson keeps them', async () => {
    const { key, signed, keys } = await signedFixture();
    const decorated = {
      ...signed,
      unsigned: { age_ts: 5, anything: [1.5] }, // not even canonical: unsigned is never encoded
      signatures: { ...signed.signatures, 'other.example': { 'ed25519:x': 'AAAA' } },
    };
    await verifyJson(decorated, SERVER, keys, { backend: webcrypto });
    const resigned = await signJson({ ...decorated, unsigned: { age_ts: 5 } }, SERVER, key);
    expect(resigned.signatures['other.example']).toEqual({ 'ed25519:x': 'AAAA' });
    expect(resigned.unsigned).toEqual({ age_ts: 5 });
    expect(resigned.signatures[SERVER]?.[KEY_ID]).toBe(signed.signatures[SERVER]?.[KEY_ID]);
  });

  it("keeps this entity's signatures by other keys, and accepts when only known keys are checked", async () => {
    const { signed, keys } = await signedFixture();
    const other = await signingKeyFromSeed(new Uint8Array(32).fill(9), '2', nobleEd25519);
    const both = await signJson(signed, SERVER, other);
    expect(Object.keys(both.signatures[SERVER] ?? {}).sort()).toEqual(['ed25519:1', 'ed25519:2']);
    await verifyJson(both, SERVER, keys); // ed25519:2 is unknown: skipped
    await verifyJson(both, SERVER, { 'ed25519:2': other.publicKey });
    await verifyJson(both, SERVER, { ...keys, 'ed25519:2': other.publicKey });
  });

  it('does not change the object it signs', async () => {
    const key = await vectorKey(nobleEd25519);
    const input = { a: 1, signatures: { x: { 'ed25519:1': 'AAAA' } }, unsigned: { b: 2 } };
    const copy = structuredClone(input);
    await signJson(input, SERVER, key);
    expect(input).toEqual(copy);
  });

  it.each([
    [
      'no signatures',
      (s: Record<string, unknown>) => ({ ...s, signatures: undefined }),
      /no `signatures` object/,
    ],
    [
      'signatures not an object',
      (s: Record<string, unknown>) => ({ ...s, signatures: 'x' }),
      /no `signatures`/,
    ],
    ['signatures an array', (s: Record<string, unknown>) => ({ ...s, signatures: [] }), /no `signatures`/],
    [
      'not signed by this server',
      (s: Record<string, unknown>) => ({ ...s, signatures: { other: {} } }),
      /not signed by domain/,
    ],
    [
      'only unknown algorithms',
      (s: Record<string, unknown>) => ({ ...s, signatures: { domain: { 'curve25519:1': 'AAAA' } } }),
      /no ed25519 signature from domain/,
    ],
    [
      'an unknown key',
      (s: Record<string, unknown>) => ({ ...s, signatures: { domain: { 'ed25519:9': sigOf(s) } } }),
      /no known key/,
    ],
    [
      'bad base64',
      (s: Record<string, unknown>) => ({ ...s, signatures: { domain: { 'ed25519:1': 'not base64!' } } }),
      /ed25519:1 of domain is not base64/,
    ],
    [
      'a signature one byte short',
      (s: Record<string, unknown>) => ({
        ...s,
        signatures: { domain: { 'ed25519:1': encodeBase64(decodeBase64(sigOf(s)).subarray(0, 63)) } },
      }),
      /does not verify/,
    ],
    [
      'a signature one byte long',
      (s: Record<string, unknown>) => ({
        ...s,
        signatures: { domain: { 'ed25519:1': encodeBase64(new Uint8Array([...decodeBase64(sigOf(s)), 0])) } },
      }),
      /does not verify/,
    ],
    [
      'a signature that is not a string',
      (s: Record<string, unknown>) => ({ ...s, signatures: { domain: { 'ed25519:1': 42 } } }),
      /not a string/,
    ],
    [
      'a good and a bad signature by known keys',
      (s: Record<string, unknown>) => ({
        ...s,
        signatures: { domain: { 'ed25519:1': sigOf(s), 'ed25519:1b': encodeBase64(new Uint8Array(64)) } },
      }),
      /ed25519:1b of domain does not verify/,
    ],
  ])('fails with BAD_SIGNATURE on %s', async (_what, tamper, message) => {
    const { signed, key } = await signedFixture();
    const keys = { [KEY_ID]: key.publicKey, 'ed25519:1b': key.publicKey };
    for (const [, backend] of BACKENDS) {
      await expectCoreErrorAsync(
        verifyJson(tamper(signed), SERVER, keys, { backend }),
        'BAD_SIGNATURE',
        message,
      );
    }
  });

  it('fails with BAD_SIGNATURE for the wrong public key, a malformed key, or a non-object', async () => {
    const { signed } = await signedFixture();
    const other = await signingKeyFromSeed(new Uint8Array(32).fill(3), '1', nobleEd25519);
    for (const [, backend] of BACKENDS) {
      await expectCoreErrorAsync(
        verifyJson(signed, SERVER, { [KEY_ID]: other.publicKey }, { backend }),
        'BAD_SIGNATURE',
        /does not verify/,
      );
      await expectCoreErrorAsync(
        verifyJson(signed, SERVER, { [KEY_ID]: new Uint8Array(31) }, { backend }),
        'BAD_SIGNATURE',
        /does not verify/,
      );
    }
    for (const value of [null, undefined, 'string', 42, [signed]]) {
      await expectCoreErrorAsync(
        verifyJson(value as object, SERVER, {}),
        'BAD_SIGNATURE',
        /only a JSON object/,
      );
    }
  });

  it('signJson refuses what is not an object, or malformed existing signatures', async () => {
    const key = await vectorKey(nobleEd25519);
    for (const value of [null, 'x', [1]]) {
      await expect(signJson(value as object, SERVER, key)).rejects.toMatchObject({ code: 'BAD_EVENT' });
    }
    await expect(signJson({ signatures: { a: 'x' } }, SERVER, key)).rejects.toMatchObject({
      code: 'BAD_EVENT',
    });
    await expect(signJson({ n: 1.5 }, SERVER, key)).rejects.toMatchObject({ code: 'NOT_CANONICAL' });
    const lenient = await signJson({ n: 1.5 }, SERVER, key, { strict: false });
    await verifyJson(lenient, SERVER, { [KEY_ID]: key.publicKey }, { strict: false });
  });
});

function sigOf(signed: Record<string, unknown>): string {
  return (signed.signatures as Signatures).domain?.['ed25519:1'] as string;
}

// ---------------------------------------------------------------------------------------
// Property: sign then verify holds; any change to a signed field fails.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const { value: jsonValue } = fc.letrec<{ value: Json; array: Json[]; object: Record<string, Json> }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.string({ unit: 'binary', maxLength: 10 }),
      tie('array'),
      tie('object'),
    ),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.string({ unit: 'binary', maxLength: 5 }), tie('value'), { maxKeys: 4 }),
  }),
);
const signable = fc
  .dictionary(fc.string({ unit: 'binary', maxLength: 6 }), jsonValue, { minKeys: 1, maxKeys: 5 })
  .filter((object) => !('signatures' in object) && !('unsigned' in object));

/** A value that differs from `value` (so its canonical JSON differs too). */
function changed(value: Json, pick: number): Json {
  if (value === null) return false;
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'number') return value === MAX_SAFE_INTEGER ? value - 1 : value + 1;
  if (typeof value === 'string') {
    if (value === '') return 'x';
    const i = pick % value.length;
    const code = value.charCodeAt(i);
    // Flip the lowest bit of one UTF-16 unit, keeping surrogates paired.
    const flipped =
      code >= 0xd800 && code <= 0xdfff
        ? `${value.slice(0, i)}x${value.slice(i + 1)}`
        : value.slice(0, i) + String.fromCharCode(code ^ 1) + value.slice(i + 1);
    return /\p{Cs}/u.test(flipped) ? `${value}x` : flipped;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return [null];
    const i = pick % value.length;
    return value.map((item, j) => (j === i ? changed(item, pick >>> 3) : item));
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return { x: null };
  const k = keys[pick % keys.length] as string;
  return { ...value, [k]: changed(value[k] as Json, pick >>> 3) };
}

describe('sign then verify (fast-check)', () => {
  it('holds for any object, and with either backend verifying', async () => {
    const key = await vectorKey(nobleEd25519);
    await fc.assert(
      fc.asyncProperty(signable, async (object) => {
        const signed = await signJson(object, SERVER, key);
        await verifyJson(signed, SERVER, { [KEY_ID]: key.publicKey }, { backend: nobleEd25519 });
        await verifyJson(signed, SERVER, { [KEY_ID]: key.publicKey }, { backend: webcrypto });
      }),
      { numRuns: 150 },
    );
  });

  it('fails for any changed, removed or added field', async () => {
    const key = await vectorKey(nobleEd25519);
    await fc.assert(
      fc.asyncProperty(
        signable,
        fc.nat(),
        fc.constantFrom('change', 'remove', 'add', 'rename'),
        async (object, pick, how) => {
          const signed = await signJson(object, SERVER, key);
          const keys = Object.keys(object);
          const field = keys[pick % keys.length] as string;
          const tampered: Record<string, unknown> = { ...signed };
          if (how === 'change') tampered[field] = changed(object[field] as Json, pick);
          else if (how === 'remove') delete tampered[field];
          else if (how === 'add') {
            let added = `${field}+`;
            while (added in tampered) added += '+';
            tampered[added] = 0;
          } else {
            delete tampered[field];
            tampered[`${field}_`] = object[field];
          }
          expect(signedBytesText(tampered)).not.toBe(signedBytesText(signed));
          for (const [, backend] of BACKENDS) {
            await expectCoreErrorAsync(
              verifyJson(tampered, SERVER, { [KEY_ID]: key.publicKey }, { backend }),
              'BAD_SIGNATURE',
              /does not verify/,
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('fails for any flipped bit of the signature', async () => {
    const key = await vectorKey(nobleEd25519);
    await fc.assert(
      fc.asyncProperty(signable, fc.integer({ min: 0, max: 511 }), async (object, bit) => {
        const signed = await signJson(object, SERVER, key);
        const bytes = decodeBase64(sigOf(signed));
        bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
        const tampered = { ...signed, signatures: { [SERVER]: { [KEY_ID]: encodeBase64(bytes) } } };
        for (const [, backend] of BACKENDS) {
          await expectCoreErrorAsync(
            verifyJson(tampered, SERVER, { [KEY_ID]: key.publicKey }, { backend }),
            'BAD_SIGNATURE',
            /does not verify/,
          );
        }
      }),
      { numRuns: 100 },
    );
  });
});

function signedBytesText(object: object): string {
  return new TextDecoder().decode(signedBytes(object));
}
