import { describe, expect, it } from 'vitest';
import { isValidServerName } from './identifiers.ts';
import { isP2pServerName, P2P_KEY_ID, p2pServerName, p2pSigningKey, p2pVerifyKey } from './p2p-identity.ts';
import { signJson, verifyJson } from './signing.ts';

const seed = new Uint8Array(32).map((_, i) => i + 1);

describe('P2P identity', () => {
  it('names a server by the hex of its public key, and reads the key back from the name', async () => {
    const { serverName, signingKey } = await p2pSigningKey(seed);
    expect(serverName).toMatch(/^[0-9a-f]{64}$/);
    expect(serverName).toBe(p2pServerName(signingKey.publicKey));
    expect(signingKey.keyId).toBe(P2P_KEY_ID);
    expect(P2P_KEY_ID).toBe('ed25519:p2p');
    expect(p2pVerifyKey(serverName)).toEqual(signingKey.publicKey);
    expect(isValidServerName(serverName)).toBe(true);
  });

  it('a signature made with the seed verifies with the key read from the name', async () => {
    const { serverName, signingKey } = await p2pSigningKey(seed);
    const signed = await signJson({ hello: 'world' }, serverName, signingKey);
    const key = p2pVerifyKey(serverName) as Uint8Array;
    await expect(verifyJson(signed, serverName, new Map([[P2P_KEY_ID, key]]))).resolves.toBeUndefined();
  });

  it('only 64 lowercase hex digits are a P2P name', () => {
    const hex = 'ab'.repeat(32);
    expect(isP2pServerName(hex)).toBe(true);
    for (const name of [hex.toUpperCase(), `${hex}:8448`, hex.slice(2), `${hex}00`, 'example.org', 42]) {
      expect(isP2pServerName(name)).toBe(false);
    }
    expect(p2pVerifyKey('example.org')).toBeUndefined();
    expect(() => p2pServerName(new Uint8Array(31))).toThrow();
  });
});
