/**
 * The PDU format of each room version, and its size limits.
 *
 * Sources: data/api/server-server/definitions/pdu_v1.yaml (v1/v2), pdu_v3.yaml,
 * pdu_v4.yaml (v4/v5), pdu_v6.yaml (v6–v10), pdu_v11.yaml, pdu_v12.yaml and their
 * `components/`; client-server-api "Size limits"; appendices.md "Identifier Grammar";
 * rooms/fragments/v6-canonical-json.md (strict canonical JSON from v6).
 * A PDU that fails here is dropped (server-server-api.md "Checks performed on receipt of a
 * PDU", step 1), so the checks follow the schema and no further.
 */
import { canonicalJsonBytes, MAX_SAFE_INTEGER } from './canonical-json.ts';
import { CoreError } from './errors.ts';
import { CREATE_EVENT_TYPE, toWirePdu } from './event-id.ts';
import { canonicalOptions } from './hashes.ts';
import { MAX_ID_BYTES, utf8ByteLength } from './identifiers.ts';
import type { Pdu } from './pdu.ts';
import type { RoomVersion } from './room-versions.ts';

/**
 * A whole PDU, in canonical JSON with its signatures, must not exceed 64 KiB
 * (client-server-api "Size limits"; the changelog of v1.1 fixed the number at 65536).
 */
export const MAX_PDU_BYTES = 65_536;
/**
 * `sender`, `room_id`, `event_id` (appendices.md user/room/event ID grammar), `type` and
 * `state_key` (client-server-api "Size limits") are each at most 255 bytes of UTF-8.
 * Re-exported from identifiers.ts, which owns the identifier limits.
 */
export { MAX_ID_BYTES, utf8ByteLength };
/** `prev_events` "Must contain less than or equal to 20 events" (pdu_v*.yaml). */
export const MAX_PREV_EVENTS = 20;
/** `auth_events` "Must contain less than or equal to 10 events" (pdu_v*.yaml). */
export const MAX_AUTH_EVENTS = 10;
/**
 * pdu_v6+ bound `depth` by 2^53 - 1 (canonical JSON's range). Earlier schemas allow up to
 * 2^63 - 1, but such a number cannot survive a JavaScript round trip, so the same bound
 * applies to every version here.
 */
export const MAX_DEPTH = MAX_SAFE_INTEGER;

/**
 * Size of the event as the limit measures it: canonical JSON of its federation form
 * (v3+ without `event_id`), signatures and `unsigned` included. Throws `NOT_CANONICAL`
 * where the version's canonical JSON rules refuse the event.
 */
export function eventSizeBytes(pdu: Pdu, version: RoomVersion): number {
  return canonicalJsonBytes(toWirePdu(pdu, version), canonicalOptions(version)).length;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(message: string): CoreError {
  return new CoreError('BAD_EVENT', `invalid PDU: ${message}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return `the number ${value}`;
  return typeof value;
}

function checkIdLength(field: string, value: string): void {
  const bytes = utf8ByteLength(value);
  if (bytes > MAX_ID_BYTES) {
    throw new CoreError(
      'TOO_LARGE',
      `invalid PDU: "${field}" is ${bytes} bytes, over the limit of ${MAX_ID_BYTES}`,
    );
  }
}

/** A required or optional string field, bounded to 255 bytes. */
function stringField(pdu: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const value = pdu[field];
  if (value === undefined) {
    if (required) throw bad(`"${field}" is missing`);
    return undefined;
  }
  if (typeof value !== 'string') throw bad(`"${field}" must be a string, got ${describe(value)}`);
  checkIdLength(field, value);
  return value;
}

/** `@localpart:server`, `!opaque:server` (or `!hash` in v12), `$opaque:server` / `$hash`. */
function checkSigil(field: string, value: string, sigil: string, what: string, needsServer: boolean): void {
  const colon = value.indexOf(':');
  if (value[0] !== sigil || value.length < 2 || (needsServer && (colon < 2 || colon === value.length - 1))) {
    throw bad(`"${field}" must be ${what}, got ${describe(value)}`);
  }
}

function checkReferences(
  pdu: Record<string, unknown>,
  field: string,
  max: number,
  version: RoomVersion,
): void {
  const refs = pdu[field];
  if (refs === undefined) throw bad(`"${field}" is missing`);
  if (!Array.isArray(refs)) throw bad(`"${field}" must be an array, got ${describe(refs)}`);
  if (refs.length > max) throw bad(`"${field}" has ${refs.length} entries, more than the ${max} allowed`);
  refs.forEach((ref: unknown, i) => {
    const at = `${field}[${i}]`;
    let id: unknown = ref;
    if (version.eventIdFormat === 'server') {
      // v1/v2: `[event_id, {sha256: …}]`. The hash object is not checked against anything,
      // so only its shape is required (a `sha256`, where present, is a string).
      if (!Array.isArray(ref) || ref.length !== 2 || typeof ref[0] !== 'string' || !isObject(ref[1])) {
        throw bad(
          `"${at}" must be an [event_id, {"sha256": hash}] pair in room version ${version.id}, got ${describe(ref)}`,
        );
      }
      if (ref[1].sha256 !== undefined && typeof ref[1].sha256 !== 'string') {
        throw bad(`"${at}[1].sha256" must be a string, got ${describe(ref[1].sha256)}`);
      }
      id = ref[0];
    } else if (typeof ref !== 'string') {
      throw bad(`"${at}" must be an event ID string in room version ${version.id}, got ${describe(ref)}`);
    }
    const eventId = id as string;
    checkSigil(at, eventId, '$', 'an event ID', version.eventIdFormat === 'server');
    checkIdLength(at, eventId);
  });
}

function checkInteger(pdu: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = pdu[field];
  if (value === undefined) throw bad(`"${field}" is missing`);
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw bad(`"${field}" must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) throw bad(`"${field}" must be between ${min} and ${max}, got ${value}`);
}

function checkObject(
  pdu: Record<string, unknown>,
  field: string,
  required: boolean,
): Record<string, unknown> | undefined {
  const value = pdu[field];
  if (value === undefined) {
    if (required) throw bad(`"${field}" is missing`);
    return undefined;
  }
  if (!isObject(value)) throw bad(`"${field}" must be an object, got ${describe(value)}`);
  return value;
}

/**
 * Checks that `json` is a PDU of the room version and returns it typed. Throws
 * `BAD_EVENT` (missing or mistyped field), `TOO_LARGE` (a 255-byte field or the 64 KiB
 * event) or `NOT_CANONICAL` (v6+: a float or out-of-range integer anywhere), each
 * naming the field. The event is not copied or modified.
 */
export function validatePdu(json: unknown, version: RoomVersion): Pdu {
  if (!isObject(json)) throw bad(`a PDU must be a JSON object, got ${describe(json)}`);

  const type = stringField(json, 'type', true) as string;
  const sender = stringField(json, 'sender', true) as string;
  checkSigil('sender', sender, '@', 'a user ID (@localpart:server)', true);

  // v12 (pdu_v12.yaml, room_id_v12.yaml): the create event has no room ID, since its own
  // ID becomes the room's. A create event that carries one is left for the auth rules to
  // reject (rooms/v12.md rule 1.2), as the spec puts it there.
  const roomIdOptional = version.roomIdFromCreateEvent && type === CREATE_EVENT_TYPE;
  const roomId = stringField(json, 'room_id', !roomIdOptional);
  if (roomId !== undefined) checkSigil('room_id', roomId, '!', 'a room ID', !version.roomIdFromCreateEvent);

  if (version.eventIdFormat === 'server') {
    const eventId = stringField(json, 'event_id', true) as string;
    checkSigil('event_id', eventId, '$', 'an event ID ($opaque:server)', true);
  }
  stringField(json, 'state_key', false);

  checkInteger(json, 'origin_server_ts', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  checkInteger(json, 'depth', 0, MAX_DEPTH);
  checkReferences(json, 'prev_events', MAX_PREV_EVENTS, version);
  checkReferences(json, 'auth_events', MAX_AUTH_EVENTS, version);

  checkObject(json, 'content', true);
  const hashes = checkObject(json, 'hashes', true) as Record<string, unknown>;
  if (typeof hashes.sha256 !== 'string') {
    throw bad(`"hashes.sha256" must be a string, got ${describe(hashes.sha256)}`);
  }
  const signatures = checkObject(json, 'signatures', true) as Record<string, unknown>;
  for (const [server, entry] of Object.entries(signatures)) {
    if (!isObject(entry)) throw bad(`"signatures.${server}" must be an object, got ${describe(entry)}`);
    for (const [keyId, signature] of Object.entries(entry)) {
      if (typeof signature !== 'string') {
        throw bad(`"signatures.${server}.${keyId}" must be a string, got ${describe(signature)}`);
      }
    }
  }
  checkObject(json, 'unsigned', false);
  // v1–v10 redactions name their target at the top level (pdu_v1–v6.yaml); from v11 it
  // lives in `content.redacts` and a top-level key has no meaning.
  if (!version.redactsInContent) stringField(json, 'redacts', false);

  // Canonical encoding last: it walks the whole event, and also gives its size.
  const size = eventSizeBytes(json as Pdu, version);
  if (size > MAX_PDU_BYTES) {
    throw new CoreError(
      'TOO_LARGE',
      `invalid PDU: the event is ${size} bytes of canonical JSON, over the limit of ${MAX_PDU_BYTES}`,
    );
  }
  return json as Pdu;
}
