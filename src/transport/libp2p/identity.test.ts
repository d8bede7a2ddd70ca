import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { p2pSigningKey } from '../../core/p2p-identity.ts';
import { libp2pKeyFromSeed, peerIdFromServerName, serverNameFromPeerId } from './identity.ts';

describe('libp2p identity from the homeserver seed', () => {
  it('derives the peer ID from the seed and maps it to the server name and back', async () => {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const { serverName, signingKey } = await p2pSigningKey(seed);
    const key = await libp2pKeyFromSeed(seed);
    expect(key.publicKey.raw).toEqual(signingKey.publicKey);
    const peerId = peerIdFromPrivateKey(key);
    expect(peerIdFromServerName(serverName).equals(peerId)).toBe(true);
    expect(serverNameFromPeerId(peerId)).toBe(serverName);
    expect(serverNameFromPeerId(peerId.toString())).toBe(serverName);
  });

  it('has no server name for a peer without an ed25519 key, nor a peer ID for a DNS name', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1'));
    expect(serverNameFromPeerId(secp)).toBeUndefined();
    expect(serverNameFromPeerId('not a peer id')).toBeUndefined();
    expect(() => peerIdFromServerName('example.org')).toThrow();
  });
});
