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
  type CanonicalMembers,
  canonicalJson,
  canonicalJsonWithout,
  canonicalMembers,
  utf8BytesPooled,
} from './canonical-json.ts';
import { sameBytes, sha256Utf8, sha256Utf8Base64 } from './crypto.ts';
import type { Pdu } from './pdu.ts';
import { redactedContentView, redactedView, redactionKeptKeys, redactionRuleFor } from './redaction.ts';
import type { RoomVersion } from './room-versions.ts';

export const SHA256_BYTES = 32;

/** The canonical JSON rules events of this room version are hashed and signed with. */
export function canonicalOptions(version: RoomVersion): CanonicalJsonOptions {
  return { strict: version.strictCanonicalJson };
}

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

/**
 * The two texts an event's hashes and signatures cover, for callers that need both (signing
 * an event, checking a received one). Each is computed when first asked for, and either may
 * throw `NOT_CANONICAL` without the other being affected (a v6+ event whose unredacted
 * content holds a float has no content hash, yet its signature may verify).
 */
export interface EventTexts {
  /** What the content hash covers: the text `computeContentHash` hashes. */
  contentHashed(): string;
  /**
   * What the signatures and the reference hash cover, for the event carrying `hashes` (its
   * own, or the one about to be set; `undefined` for none): `eventSignedText` of that event.
   */
  signed(hashes: unknown): string;
}

/**
 * `EventTexts` put together from one canonical encoding of each top-level value
 * (`canonicalMembers`): the content-hash input and the redacted event share every value but
 * `content` and `hashes`, so the redacted event's text is joined from the same member texts
 * — its `content` redacted, its `hashes` written — instead of encoding the event twice.
 * Events that only the general path can tell fall back to it: `contentHashed` and
 * `eventSignedText`, the reference both are tested against (events.test.ts).
 */
export function eventTexts(pdu: Pdu, version: RoomVersion): EventTexts {
  const options = canonicalOptions(version);
  const v3 = version.eventIdFormat !== 'server';
  let members: CanonicalMembers | undefined | null = null;
  const membersOf = () => {
    if (members === null)
      members = canonicalMembers(pdu, v3 ? NOT_CONTENT_HASHED_V3 : NOT_CONTENT_HASHED, options);
    return members;
  };
  return {
    contentHashed() {
      const found = membersOf();
      if (found === undefined) return contentHashed(pdu, version);
      // The pieces joined once: a flat text, which hashes faster than a chain of concatenations.
      const { prefixes, separated, values } = found;
      const parts = ['{'];
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        if (value === undefined) continue;
        parts.push(parts.length === 1 ? (prefixes[i] as string) : (separated[i] as string), value);
      }
      parts.push('}');
      return parts.join('');
    },
    signed(hashes) {
      const found = membersOf();
      const hashesText = hashes === undefined ? '' : hashesTextOf(hashes, options);
      if (found === undefined || hashesText === undefined) {
        // The general path, which also throws the error naming where the problem is.
        return eventSignedText(withHashes(pdu, hashes), version);
      }
      const { keys, prefixes, separated, values } = found;
      const parts = ['{'];
      let at = 0;
      for (const key of redactionKeptKeys(version)) {
        if (key === 'signatures' || (key === 'event_id' && v3)) continue;
        if (key === 'hashes') {
          if (hashes !== undefined) parts.push(parts.length === 1 ? '"hashes":' : ',"hashes":', hashesText);
          continue;
        }
        // Both lists are in canonical order, and the kept keys are ASCII, whose order by
        // UTF-16 unit (`<`) is their order by code point: the member of `key`, if any, is here.
        while (at < keys.length && (keys[at] as string) < key) at++;
        const own = keys[at] === key ? values[at] : undefined;
        if (key === 'content') {
          parts.push(
            parts.length === 1 ? '"content":' : ',"content":',
            redactedContentText(pdu, version, own),
          );
        } else if (own !== undefined) {
          parts.push(parts.length === 1 ? (prefixes[at] as string) : (separated[at] as string), own);
        }
      }
      parts.push('}');
      return parts.join('');
    },
  };
}

/** The canonical text of a `hashes` value; undefined when only the general path can tell. */
function hashesTextOf(hashes: unknown, options: CanonicalJsonOptions): string | undefined {
  try {
    return canonicalJson(hashes, options);
  } catch {
    return undefined;
  }
}

/** The canonical text of the redacted `content`; `whole` is the whole content's text, if written. */
function redactedContentText(pdu: Pdu, version: RoomVersion, whole: string | undefined): string {
  const content = pdu.content as unknown;
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return '{}';
  const rule = typeof pdu.type === 'string' ? redactionRuleFor(pdu.type, version) : undefined;
  // Types without a rule keep nothing; one that keeps its whole content (v11 `m.room.create`)
  // reuses the text already written.
  if (rule === undefined) return '{}';
  if (whole !== undefined && rule.keep === 'all') return whole;
  return canonicalJson(redactedContentView(pdu, version), canonicalOptions(version));
}

/** The event with `hashes` in place of its own (absent when undefined), as `redactedView` reads it. */
function withHashes(pdu: Pdu, hashes: unknown): Pdu {
  return { ...pdu, hashes } as Pdu;
}
