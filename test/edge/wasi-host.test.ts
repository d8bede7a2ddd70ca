/**
 * The Ed25519 that `jco serve`'s host interface (wasm-bindings/host.ts) gives the component:
 * the same keys and signatures as the core's pure-JS backend, and `false`, not an exception,
 * for anything that does not verify.
 */
import { describe, expect, it } from 'vitest';
import { nobleEd25519 } from '../../src/core/crypto.ts';
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from '../../wasm-bindings/host.ts';

const seed = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const message = new TextEncoder().encode('{"a":1,"b":"two"}');

describe('the jco serve host: Ed25519', () => {
  it('derives the public key and signs as noble does, and verifies', async () => {
    const noble = await nobleEd25519.signer(seed);
    expect(ed25519PublicKey(seed)).toEqual(noble.publicKey);
    const signature = ed25519Sign(seed, message) as Uint8Array;
    expect(signature).toEqual(await noble.sign(message));
    expect(ed25519Verify(noble.publicKey, message, signature)).toBe(true);
    expect(await nobleEd25519.verify(noble.publicKey, message, signature)).toBe(true);
  });

  it('answers false for a changed message, a wrong key, and malformed input', () => {
    const publicKey = ed25519PublicKey(seed) as Uint8Array;
    const signature = ed25519Sign(seed, message) as Uint8Array;
    const changed = message.slice();
    changed[0] = (changed[0] as number) ^ 1;
    expect(ed25519Verify(publicKey, changed, signature)).toBe(false);
    expect(ed25519Verify(ed25519PublicKey(new Uint8Array(32)) as Uint8Array, message, signature)).toBe(false);
    expect(ed25519Verify(publicKey.slice(1), message, signature)).toBe(false);
    expect(ed25519Verify(publicKey, message, signature.slice(1))).toBe(false);
    // Not a curve point.
    expect(ed25519Verify(new Uint8Array(32).fill(0xff), message, signature)).toBe(false);
  });
});
