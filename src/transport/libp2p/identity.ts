/**
 * One key, three names (DESIGN.md "Identity"): a P2P homeserver's ed25519 seed gives its
 * Matrix server name (hex of the public key, `core/p2p-identity.ts`), its libp2p private key
 * and so its peer ID (an Ed25519 peer ID embeds the public key itself). The mapping goes both
 * ways without any lookup, so a server is dialled by name and an inbound connection — whose
 * peer ID noise has authenticated — tells which server is at the other end.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import { isP2pServerName, p2pServerName, p2pVerifyKey } from '../../core/p2p-identity.ts';

/** The libp2p private key of a homeserver's seed (the same ed25519 key that signs its events). */
export function libp2pKeyFromSeed(seed: Uint8Array): Promise<Ed25519PrivateKey> {
  return generateKeyPairFromSeed('Ed25519', seed);
}

/** The peer ID of a P2P server name; throws for a name that is not one. */
export function peerIdFromServerName(serverName: string): PeerId {
  const key = p2pVerifyKey(serverName);
  if (!key) throw new Error(`${serverName} is not a P2P server name`);
  return peerIdFromPublicKey(publicKeyFromRaw(key));
}

/** The P2P server name of a peer (ID or its string form); undefined when it has no ed25519 key. */
export function serverNameFromPeerId(peer: PeerId | string): string | undefined {
  let id: PeerId;
  try {
    id = typeof peer === 'string' ? peerIdFromString(peer) : peer;
  } catch {
    return undefined;
  }
  if (id.type !== 'Ed25519') return undefined;
  const name = p2pServerName(id.publicKey.raw);
  return isP2pServerName(name) ? name : undefined;
}
