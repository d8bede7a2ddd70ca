import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase64 } from './base64.ts';
import {
  defaultEd25519,
  type Ed25519Backend,
  nobleEd25519,
  publicKeyFromBase64,
  seedFromBase64,
  sha256,
  sha256Portable,
  sha256Utf8,
  signingKeyFromSeed,
  webCryptoEd25519,
} from './crypto.ts';
import rfc8032 from './fixtures/ed25519-rfc8032.json' with { type: 'json' };
import { expectCoreErrorAsync, nodeBackend } from './testing.ts';

const hex = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

const webcrypto = webCryptoEd25519(globalThis.crypto.subtle);
const BACKENDS: [string, Ed25519Backend][] = [
  ['noble', nobleEd25519],
  ['webcrypto', webcrypto],
  ['node', nodeBackend()],
];

const seed32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('sha256', () => {
  it('matches the FIPS 180-2 vectors', () => {
    expect(toHex(sha256(new Uint8Array()))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('matches node:crypto for any input, the portable (noble) hash included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(8), (bytes, offset) => {
        const expected = createHash('sha256').update(bytes).digest('hex');
        expect(toHex(sha256(bytes))).toBe(expected);
        expect(toHex(sha256Portable(bytes))).toBe(expected);
        // A view into a larger buffer hashes only its own bytes.
        const wider = new Uint8Array(bytes.length + offset + 3);
        wider.set(bytes, offset);
        expect(toHex(sha256(wider.subarray(offset, offset + bytes.length)))).toBe(expected);
      }),
    );
  });

  it('sha256Utf8 hashes the UTF-8 of any string, lone surrogates as U+FFFD as TextEncoder writes them', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const bytes = new TextEncoder().encode(text);
        expect(toHex(sha256Utf8(text))).toBe(createHash('sha256').update(bytes).digest('hex'));
        expect(toHex(sha256Utf8(text))).toBe(toHex(sha256Portable(bytes)));
      }),
    );
  });

  it('returns a plain Uint8Array of 32 bytes that it does not share', () => {
    const a = sha256(new TextEncoder().encode('abc'));
    const b = sha256(new TextEncoder().encode('abc'));
    expect(Object.getPrototypeOf(a)).toBe(Uint8Array.prototype);
    expect(a.length).toBe(32);
    a[0] = 0;
    expect(b[0]).toBe(0xba);
  });
});

describe.each(BACKENDS)('the %s ed25519 backend', (_name, backend) => {
  it.each(rfc8032.vectors.map((v, i) => [i + 1, v] as const))(
    'matches RFC 8032 TEST %i',
    async (_n, vector) => {
      const signer = await backend.signer(hex(vector.secret_key));
      expect(toHex(signer.publicKey)).toBe(vector.public_key);
      expect(toHex(await signer.sign(hex(vector.message)))).toBe(vector.signature);
      expect(await backend.verify(hex(vector.public_key), hex(vector.message), hex(vector.signature))).toBe(
        true,
      );
      expect(
        await backend.verify(hex(vector.public_key), hex(`${vector.message}00`), hex(vector.signature)),
      ).toBe(false);
    },
  );

  it.each([0, 16, 31, 33, 64])('rejects a %i-byte seed with BAD_KEY', async (length) => {
    await expectCoreErrorAsync(
      backend.signer(new Uint8Array(length)),
      'BAD_KEY',
      /an ed25519 seed is 32 bytes/,
    );
    await expectCoreErrorAsync(
      signingKeyFromSeed(new Uint8Array(length), '1', backend),
      'BAD_KEY',
      /32 bytes/,
    );
  });

  it('rejects a seed that is not bytes with BAD_KEY', async () => {
    for (const seed of [undefined, null, 'a'.repeat(32), Array(32).fill(0)]) {
      await expectCoreErrorAsync(backend.signer(seed as unknown as Uint8Array), 'BAD_KEY', /32 bytes/);
    }
  });

  it('returns false, never throws, for malformed keys and signatures', async () => {
    const signer = await backend.signer(new Uint8Array(32).fill(1));
    const message = new Uint8Array([1, 2, 3]);
    const signature = await signer.sign(message);
    expect(await backend.verify(signer.publicKey, message, signature)).toBe(true);
    const notAPoint = new Uint8Array(32);
    notAPoint[0] = 2; // y = 2 has no x on the curve
    const cases: [unknown, unknown, unknown][] = [
      [signer.publicKey.subarray(0, 31), message, signature],
      [new Uint8Array([...signer.publicKey, 0]), message, signature],
      [new Uint8Array(0), message, signature],
      [notAPoint, message, signature],
      [new Uint8Array(32).fill(0xff), message, signature], // y >= p: not canonical
      [signer.publicKey, message, signature.subarray(0, 63)],
      [signer.publicKey, message, new Uint8Array([...signature, 0])],
      [signer.publicKey, message, new Uint8Array(0)],
      [null, message, signature],
      [encodeBase64(signer.publicKey), message, signature],
      [signer.publicKey, null, signature],
      [signer.publicKey, message, undefined],
    ];
    for (const [key, msg, sig] of cases) {
      expect(await backend.verify(key as Uint8Array, msg as Uint8Array, sig as Uint8Array)).toBe(false);
    }
  });
});

describe('noble and WebCrypto agree', () => {
  it('on public keys and signatures for random seeds and messages', async () => {
    await fc.assert(
      fc.asyncProperty(seed32, fc.uint8Array({ maxLength: 200 }), async (seed, message) => {
        const a = await nobleEd25519.signer(seed);
        const b = await webcrypto.signer(seed);
        expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
        const sigA = await a.sign(message);
        const sigB = await b.sign(message);
        expect(toHex(sigA)).toBe(toHex(sigB));
        expect(await nobleEd25519.verify(b.publicKey, message, sigB)).toBe(true);
        expect(await webcrypto.verify(a.publicKey, message, sigA)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('on rejecting any flipped bit of message, signature or key', async () => {
    await fc.assert(
      fc.asyncProperty(
        seed32,
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom('message', 'signature', 'key'),
        async (seed, message, at, bit, target) => {
          const signer = await nobleEd25519.signer(seed);
          const parts = { message, signature: await signer.sign(message), key: signer.publicKey };
          const bytes = parts[target].slice();
          bytes[at % bytes.length] = (bytes[at % bytes.length] as number) ^ (1 << bit);
          const tampered = { ...parts, [target]: bytes };
          expect(await nobleEd25519.verify(tampered.key, tampered.message, tampered.signature)).toBe(false);
          expect(await webcrypto.verify(tampered.key, tampered.message, tampered.signature)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('with the same key array reused, and then changed in place (WebCrypto keeps imported keys)', async () => {
    const backend = webCryptoEd25519(globalThis.crypto.subtle);
    const a = await nobleEd25519.signer(new Uint8Array(32).fill(1));
    const b = await nobleEd25519.signer(new Uint8Array(32).fill(2));
    const message = new TextEncoder().encode('reused');
    const sigA = await a.sign(message);
    const sigB = await b.sign(message);
    const key = a.publicKey.slice();
    // First use imports; later ones find the key by the array itself.
    for (let i = 0; i < 3; i++) expect(await backend.verify(key, message, sigA)).toBe(true);
    expect(await backend.verify(key, message, sigB)).toBe(false);
    // The caller overwrites its array with another key: the cached import must not answer for it.
    key.set(b.publicKey);
    expect(await backend.verify(key, message, sigA)).toBe(false);
    for (let i = 0; i < 2; i++) expect(await backend.verify(key, message, sigB)).toBe(true);
    key.set(a.publicKey);
    expect(await backend.verify(key, message, sigA)).toBe(true);
  });

  it('on edge cases where lax ed25519 implementations differ: small-order points and S >= L', async () => {
    // The eight small-order points of the curve (torsion subgroup), as keys and as R.
    const smallOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000080',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
    ].map(hex);
    for (const key of smallOrder) {
      for (const r of smallOrder) {
        for (let m = 0; m < 8; m++) {
          const signature = new Uint8Array(64);
          signature.set(r);
          const message = new Uint8Array([m]);
          const noble = await nobleEd25519.verify(key, message, signature);
          expect(await webcrypto.verify(key, message, signature)).toBe(noble);
          expect(noble).toBe(false);
        }
      }
    }
    // A valid signature with L added to S verifies nowhere (RFC 8032 5.1.7 requires S < L).
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const signer = await nobleEd25519.signer(new Uint8Array(32).fill(7));
    const message = new Uint8Array([1, 2, 3]);
    const signature = await signer.sign(message);
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(signature[32 + i] as number);
    const malleated = signature.slice();
    for (let i = 0; i < 32; i++) malleated[32 + i] = Number(((s + L) >> BigInt(8 * i)) & 0xffn);
    expect(await nobleEd25519.verify(signer.publicKey, message, malleated)).toBe(false);
    expect(await webcrypto.verify(signer.publicKey, message, malleated)).toBe(false);
  });
});

describe('keys', () => {
  it('defaultEd25519 picks node:crypto signing (and WebCrypto verifying) on Node 24', async () => {
    expect((await defaultEd25519()).name).toBe('node');
  });

  it('the node backend signs synchronously too, the same bytes as its promise', async () => {
    const seed = hex(rfc8032.vectors[1]?.secret_key as string);
    const key = await signingKeyFromSeed(seed, '1', nodeBackend());
    const message = hex(rfc8032.vectors[1]?.message as string);
    expect(key.signNow).toBeTypeOf('function');
    expect(toHex(key.signNow?.(message) as Uint8Array)).toBe(rfc8032.vectors[1]?.signature);
    expect(toHex(await key.sign(message))).toBe(rfc8032.vectors[1]?.signature);
    expect(Object.getPrototypeOf(key.signNow?.(message))).toBe(Uint8Array.prototype);
    // WebCrypto signs off this thread: it offers no synchronous signature.
    expect((await signingKeyFromSeed(seed, '1', webcrypto)).signNow).toBeUndefined();
  });

  it('the node backend writes its signatures as unpadded base64 itself, for every RFC 8032 vector', async () => {
    for (const vector of rfc8032.vectors) {
      const key = await signingKeyFromSeed(hex(vector.secret_key), '1', nodeBackend());
      const base64 = key.signNowBase64?.(hex(vector.message));
      expect(base64).toBe(encodeBase64(hex(vector.signature)));
      expect(base64).toMatch(/^[A-Za-z0-9+/]{86}$/);
    }
    // The others leave base64 to signing.ts.
    expect((await signingKeyFromSeed(new Uint8Array(32), '1', nobleEd25519)).signNowBase64).toBeUndefined();
  });

  it('signingKeyFromSeed names the key and publishes its base64 public key', async () => {
    const seed = hex(rfc8032.vectors[0]?.secret_key as string);
    for (const [, backend] of BACKENDS) {
      const key = await signingKeyFromSeed(seed, 'a_B9', backend);
      expect(key.keyId).toBe('ed25519:a_B9');
      expect(key.publicKeyBase64).toBe(encodeBase64(hex(rfc8032.vectors[0]?.public_key as string)));
      expect(key.publicKeyBase64).not.toMatch(/=/);
    }
  });

  it.each(['', 'a:b', 'a-b', 'a b', 'é'])('rejects the key version %j', async (version) => {
    await expectCoreErrorAsync(
      signingKeyFromSeed(new Uint8Array(32), version, nobleEd25519),
      'BAD_KEY',
      /\[a-zA-Z0-9_\]\+/,
    );
  });

  it('seedFromBase64 and publicKeyFromBase64 want 32 bytes of base64', async () => {
    const seed = seedFromBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
    expect(seed).toHaveLength(32);
    expect(publicKeyFromBase64(encodeBase64(seed))).toEqual(seed);
    await expectCoreErrorAsync(() => seedFromBase64(encodeBase64(new Uint8Array(31))), 'BAD_KEY', /32 bytes/);
    await expectCoreErrorAsync(() => seedFromBase64(encodeBase64(new Uint8Array(33))), 'BAD_KEY', /32 bytes/);
    await expectCoreErrorAsync(
      () => publicKeyFromBase64(encodeBase64(new Uint8Array(31))),
      'BAD_KEY',
      /32 bytes/,
    );
    await expectCoreErrorAsync(() => seedFromBase64('not base64!'), 'BAD_KEY', /malformed base64/);
    await expectCoreErrorAsync(
      () => publicKeyFromBase64(undefined as unknown as string),
      'BAD_KEY',
      /not a string/,
    );
  });
});
