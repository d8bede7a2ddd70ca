/**
 * The two hashes of an event — server-server-api.md "Calculating the content hash for an
 * event" and "Calculating the reference hash for an event".
 *
 * The content hash covers the whole event (so a receiver can tell a redacted copy from
 * the original); the reference hash covers the redacted event and names it (v3+ event IDs).
 * Room versions 1–5 hash with relaxed canonical JSON (rooms/fragments/v1-canonical-json.md),
 * v6+ with the strict rules.
 */
import { decodeBase64, encodeBase64 } from './base64.ts';
import { type CanonicalJsonOptions, canonicalJsonBytes } from './canonical-json.ts';
import { sha256 } from './crypto.ts';
import type { Pdu } from './pdu.ts';
import { redact } from './redaction.ts';
import type { RoomVersion } from './room-versions.ts';

export const SHA256_BYTES = 32;

/** The canonical JSON rules events of this room version are hashed and signed with. */
export function canonicalOptions(version: RoomVersion): CanonicalJsonOptions {
  return { strict: version.strictCanonicalJson };
}

/**
 * The event as it is hashed: for v3+ `event_id` is never part of the event (rooms/v3.md
 * "Event format": it is computed, not sent), so a locally identified event hashes the same
 * as its wire form.
 */
function withoutComputedId(pdu: Pdu, version: RoomVersion): Record<string, unknown> {
  if (version.eventIdFormat === 'server') return { ...pdu };
  const { event_id: _id, ...rest } = pdu;
  return rest;
}

/**
 * sha256 over the canonical JSON of the event without `unsigned`, `signatures` and
 * `hashes` (and, for v3+, without `event_id`). Throws `NOT_CANONICAL` for a v6+ event
 * that carries a float or an out-of-range integer.
 */
export function computeContentHash(pdu: Pdu, version: RoomVersion): Uint8Array {
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = withoutComputedId(pdu, version);
  return sha256(canonicalJsonBytes(rest, canonicalOptions(version)));
}

/** A copy of the event with `hashes.sha256` set to its content hash (other hash algorithms kept). */
export function addContentHash<T extends Pdu>(pdu: T, version: RoomVersion): T {
  const sha = encodeBase64(computeContentHash(pdu, version));
  const existing =
    typeof pdu.hashes === 'object' && pdu.hashes !== null && !Array.isArray(pdu.hashes) ? pdu.hashes : {};
  return { ...pdu, hashes: { ...existing, sha256: sha } };
}

/**
 * Whether `hashes.sha256` is the event's content hash. A missing, malformed or different
 * hash gives `false` — per server-server-api.md "Validating hashes and signatures on
 * received events" the caller then keeps only the redacted event.
 */
export function checkContentHash(pdu: Pdu, version: RoomVersion): boolean {
  const claimed = (pdu.hashes as { sha256?: unknown } | undefined)?.sha256;
  if (typeof claimed !== 'string') return false;
  let expected: Uint8Array;
  let given: Uint8Array;
  try {
    given = decodeBase64(claimed);
    expected = computeContentHash(pdu, version);
  } catch {
    return false;
  }
  if (given.length !== expected.length) return false;
  for (let i = 0; i < given.length; i++) if (given[i] !== expected[i]) return false;
  return true;
}

/**
 * The reference hash: sha256 over the canonical JSON of the redacted event without
 * `signatures` and `unsigned` (and, for v3+, without `event_id`).
 */
export function computeReferenceHash(pdu: Pdu, version: RoomVersion): Uint8Array {
  const redacted = withoutComputedId(redact(pdu, version), version);
  const { signatures: _s, unsigned: _u, ...rest } = redacted;
  return sha256(canonicalJsonBytes(rest, canonicalOptions(version)));
}
