/**
 * The signature part of the third-party invite rule (rooms/fragments/v1-auth-rules.md 5.3.1.7;
 * server-server-api.md "Verifying the invite"): some signature in
 * `content.third_party_invite.signed` must verify under some public key of the
 * `m.room.third_party_invite` event — `content.public_key` or `content.public_keys[].public_key`.
 *
 * The check is synchronous (noble's ed25519) so that `checkAuth` stays synchronous; a third-party
 * invite is rare enough that the pure-JS speed does not matter. Callers with an asynchronous
 * verifier pass its precomputed answer through `CheckAuthOptions.verifyThirdPartyInviteSignature`.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { decodeBase64, decodeBase64Url } from '../base64.ts';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from '../crypto.ts';
import type { IdentifiedPdu } from '../pdu.ts';
import { isJsonObject } from '../power-levels.ts';
import { signedBytes } from '../signing.ts';

/** The public keys an `m.room.third_party_invite` event offers, as given (base64 strings). */
export function thirdPartyInvitePublicKeys(thirdPartyInvite: { content: unknown }): string[] {
  const content = isJsonObject(thirdPartyInvite.content) ? thirdPartyInvite.content : {};
  const keys: string[] = [];
  if (typeof content.public_key === 'string') keys.push(content.public_key);
  if (Array.isArray(content.public_keys)) {
    for (const entry of content.public_keys) {
      if (isJsonObject(entry) && typeof entry.public_key === 'string') keys.push(entry.public_key);
    }
  }
  return keys;
}

/** Identity servers publish keys in standard unpadded base64; some use the URL-safe alphabet. */
function decodeKeyOrSignature(text: string): Uint8Array | undefined {
  for (const decode of [decodeBase64, decodeBase64Url]) {
    try {
      return decode(text);
    } catch {
      // try the other alphabet
    }
  }
  return undefined;
}

/**
 * Whether any ed25519 signature in the member event's `third_party_invite.signed` verifies
 * under any public key of `thirdPartyInvite`. Never throws.
 */
export function verifyThirdPartyInviteSignature(
  event: IdentifiedPdu,
  thirdPartyInvite: IdentifiedPdu,
): boolean {
  const content = isJsonObject(event.content) ? event.content : {};
  const invite = content.third_party_invite;
  const signed = isJsonObject(invite) ? invite.signed : undefined;
  if (!isJsonObject(signed) || !isJsonObject(signed.signatures)) return false;
  let message: Uint8Array;
  try {
    // The blob is not an event: encode it leniently, as its signer may have.
    message = signedBytes(signed, { strict: false });
  } catch {
    return false;
  }
  const candidates: Uint8Array[] = [];
  for (const entity of Object.values(signed.signatures)) {
    if (!isJsonObject(entity)) continue;
    for (const [keyId, signature] of Object.entries(entity)) {
      if (!keyId.startsWith('ed25519:') || typeof signature !== 'string') continue;
      const bytes = decodeKeyOrSignature(signature);
      if (bytes?.length === ED25519_SIGNATURE_BYTES) candidates.push(bytes);
    }
  }
  for (const key of thirdPartyInvitePublicKeys(thirdPartyInvite)) {
    const publicKey = decodeKeyOrSignature(key);
    if (publicKey?.length !== ED25519_PUBLIC_KEY_BYTES) continue;
    for (const signature of candidates) {
      try {
        if (ed25519.verify(signature, message, publicKey, { zip215: false })) return true;
      } catch {
        // a public key that is not a curve point verifies nothing
      }
    }
  }
  return false;
}
