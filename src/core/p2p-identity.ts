/**
 * P2P identity (DESIGN.md "Identity"): a homeserver in P2P mode is named by its ed25519 public
 * key, written as 64 lowercase hex digits — the convention of Dendrite's P2P builds — and signs
 * with the fixed key ID `ed25519:p2p`. A peer's verify key is therefore read from its name: no
 * key fetch, DNS or certificate is needed, and a name cannot be claimed without the key.
 *
 * A P2P name can never be a DNS name: one DNS label holds at most 63 octets (RFC 1035 §2.3.4)
 * and a P2P name is a single 64-character label, so the two kinds of server never collide.
 */
import { ED25519_PUBLIC_KEY_BYTES, type SigningKey, signingKeyFromSeed } from './crypto.ts';

/** The key version of every P2P server's signing key. */
export const P2P_KEY_VERSION = 'p2p';
/** `ed25519:p2p`: the key ID every P2P server signs events and requests with. */
export const P2P_KEY_ID = `ed25519:${P2P_KEY_VERSION}`;

const P2P_NAME = /^[0-9a-f]{64}$/;

/** The P2P server name of an ed25519 public key: its 32 bytes as lowercase hex. */
export function p2pServerName(publicKey: Uint8Array): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new Error(`an ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  let hex = '';
  for (const byte of publicKey) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** Whether `name` is a P2P server name (64 lowercase hex digits, nothing else: no port). */
export function isP2pServerName(name: unknown): name is string {
  return typeof name === 'string' && P2P_NAME.test(name);
}

/** The ed25519 public key a P2P server name stands for; undefined for any other name. */
export function p2pVerifyKey(serverName: string): Uint8Array | undefined {
  if (!isP2pServerName(serverName)) return undefined;
  const key = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
  for (let i = 0; i < key.length; i++) key[i] = Number.parseInt(serverName.slice(2 * i, 2 * i + 2), 16);
  return key;
}

/** The signing key (ID `ed25519:p2p`) and server name of a P2P homeserver's seed. */
export async function p2pSigningKey(
  seed: Uint8Array,
): Promise<{ serverName: string; signingKey: SigningKey }> {
  const signingKey = await signingKeyFromSeed(seed, P2P_KEY_VERSION);
  return { serverName: p2pServerName(signingKey.publicKey), signingKey };
}
