/**
 * The two hashes of an event — server-server-api.md "Calculating the content hash for an
 * event" and "Calculating the reference hash for an event".
 *
 * The content hash covers the whole event (so a receiver can tell a redacted copy from
 * the original); the reference hash covers the redacted event and names it (v3+ event IDs).
 * Room versions 1–5 hash with relaxed canonical JSON (rooms/fragments/v1-canonical-json.md),
 * v6+ with the strict rules.
 */
import { decodeBase64 } from './base64.ts';
import {
  type CanonicalJsonOptions,
  canonicalJson,
  canonicalJsonWithout,
  utf8BytesPooled,
} from './canonical-json.ts';
import { sameBytes, sha256Utf8, sha256Utf8Base64 } from './crypto.ts';
import type { Pdu } from './pdu.ts';
import { redactedView } from './redaction.ts';
import type { RoomVersion } from './room-versions.ts';

export const SHA256_BYTES = 32;

/** The canonical JSON rules events of this room version are hashed and signed with. */
export function canonicalOptions(version: RoomVersion): CanonicalJsonOptions {
  return version.strictCanonicalJson ? STRICT : RELAXED;
}

/** The two answers of `canonicalOptions`, made once rather than for every hash and signature. */
const STRICT: CanonicalJsonOptions = Object.freeze({ strict: true });
const RELAXED: CanonicalJsonOptions = Object.freeze({ strict: false });

/** Top-level keys a content hash leaves out, by whether the event ID is computed (v3+). */
const NOT_CONTENT_HASHED = new Set(['unsigned', 'signatures', 'hashes']);
const NOT_CONTENT_HASHED_V3 = new Set([...NOT_CONTENT_HASHED, 'event_id']);

/**
 * sha256 over the canonical JSON of the event without `unsigned`, `signatures` and
 * `hashes` (and, for v3+, without `event_id`: it is never part of the event — rooms/v3.md
 * "Event format": it is computed, not sent — so a locally identified event hashes the same
 * as its wire form). Throws `NOT_CANONICAL` for a v6+ event that carries a float or an
 * out-of-range integer.
 */
export function computeContentHash(pdu: Pdu, version: RoomVersion): Uint8Array {
  return sha256Utf8(contentHashed(pdu, version));
}

/** `encodeBase64(computeContentHash(pdu, version))`, as `hashes.sha256` carries it. */
export function computeContentHashBase64(pdu: Pdu, version: RoomVersion): string {
  return sha256Utf8Base64(contentHashed(pdu, version));
}

/** The text a content hash covers. */
function contentHashed(pdu: Pdu, version: RoomVersion): string {
  const omit = version.eventIdFormat === 'server' ? NOT_CONTENT_HASHED : NOT_CONTENT_HASHED_V3;
  return canonicalJsonWithout(pdu, omit, canonicalOptions(version));
}

/** A copy of the event with `hashes.sha256` set to its content hash (other hash algorithms kept). */
export function addContentHash<T extends Pdu>(pdu: T, version: RoomVersion): T {
  return { ...pdu, hashes: withSha256(pdu.hashes, computeContentHashBase64(pdu, version)) };
}

/** `hashes` (when an object; other hash algorithms kept) with `sha256` set, as a new object. */
export function withSha256(hashes: unknown, sha: string): Pdu['hashes'] {
  const existing = typeof hashes === 'object' && hashes !== null && !Array.isArray(hashes) ? hashes : {};
  return { ...existing, sha256: sha };
}

/**
 * Whether `hashes.sha256` is the event's content hash. A missing, malformed or different
 * hash gives `false` — per server-server-api.md "Validating hashes and signatures on
 * received events" the caller then keeps only the redacted event.
 */
export function checkContentHash(pdu: Pdu, version: RoomVersion): boolean {
  const claimedText = (pdu.hashes as { sha256?: unknown } | undefined)?.sha256;
  if (typeof claimedText !== 'string') return false;
  let computed: string;
  try {
    computed = computeContentHashBase64(pdu, version);
  } catch {
    return false;
  }
  // The text as we write it (what every server sends) matches without decoding; any other
  // spelling of the same bytes (padded, or stray low bits in the last character, which
  // decoding accepts) is compared as bytes.
  if (claimedText === computed) return true;
  const claimed = claimedHash(pdu);
  return claimed !== undefined && sameBytes(claimed, decodeBase64(computed));
}

/** The decoded `hashes.sha256`, or undefined when missing or not base64. */
function claimedHash(pdu: Pdu): Uint8Array | undefined {
  const claimed = (pdu.hashes as { sha256?: unknown } | undefined)?.sha256;
  if (typeof claimed !== 'string') return undefined;
  try {
    return decodeBase64(claimed);
  } catch {
    return undefined;
  }
}

/** Top-level keys neither a signature nor the reference hash covers (`unsigned` is redacted anyway). */
const NOT_SIGNED = new Set(['signatures', 'unsigned']);
const NOT_SIGNED_V3 = new Set([...NOT_SIGNED, 'event_id']);

/**
 * The reference hash: sha256 over the canonical JSON of the redacted event without
 * `signatures` and `unsigned` (and, for v3+, without `event_id`).
 */
export function computeReferenceHash(pdu: Pdu, version: RoomVersion): Uint8Array {
  const omit = version.eventIdFormat === 'server' ? NOT_SIGNED : NOT_SIGNED_V3;
  return sha256Utf8(canonicalJson(redactedView(pdu, version, omit), canonicalOptions(version)));
}

/**
 * The bytes an event's signatures cover: canonical JSON of its redacted wire form (v3+
 * without `event_id`) less `signatures` and `unsigned` (server-server-api.md "Signing
 * Events"; appendices.md "Signing Details") — `signedBytes(redact(toWirePdu(pdu)))`
 * without copying the event.
 */
export function eventSignedBytes(pdu: Pdu, version: RoomVersion): Uint8Array {
  return utf8BytesPooled(eventSignedText(pdu, version));
}

/** `eventSignedBytes` as text, for a signer that encodes it itself (see `withUtf8`). */
export function eventSignedText(pdu: Pdu, version: RoomVersion): string {
  const omit = version.eventIdFormat === 'server' ? NOT_SIGNED : NOT_SIGNED_V3;
  return canonicalJson(redactedView(pdu, version, omit), canonicalOptions(version));
}
