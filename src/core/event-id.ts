/**
 * Event IDs and room IDs — rooms/fragments/v1-event-ids.md (v1/v2: assigned by the origin
 * server and carried in the event), rooms/v3.md "Event IDs" (`$` + unpadded base64 of the
 * reference hash), rooms/fragments/v4-event-ids.md (v4+: URL-safe base64), and
 * appendices.md "Room IDs" (v12: the room ID is the create event's ID with sigil `!`).
 */
import { encodeBase64, encodeBase64Url } from './base64.ts';
import { sha256 } from './crypto.ts';
import { CoreError } from './errors.ts';
import { computeReferenceHash } from './hashes.ts';
import type { IdentifiedPdu, Pdu } from './pdu.ts';
import type { RoomVersion } from './room-versions.ts';

export const CREATE_EVENT_TYPE = 'm.room.create';

/**
 * The event's ID. v1/v2 return the `event_id` the event carries (throws `BAD_EVENT` if it
 * has none); v3 and later derive it from the reference hash.
 */
export function computeEventId(pdu: Pdu, version: RoomVersion): string {
  switch (version.eventIdFormat) {
    case 'server':
      if (typeof pdu.event_id !== 'string') {
        throw new CoreError('BAD_EVENT', `room version ${version.id} events must carry a string "event_id"`);
      }
      return pdu.event_id;
    case 'base64':
      return `$${encodeBase64(computeReferenceHash(pdu, version))}`;
    case 'urlsafe':
      return `$${encodeBase64Url(computeReferenceHash(pdu, version))}`;
  }
}

/**
 * The ID of the room a v12 `m.room.create` event creates: its event ID with `!` in place
 * of `$` (rooms/v12.md, auth rule 1.2 note). Throws `BAD_EVENT` for other versions or types.
 */
export function roomIdFromCreateEvent(createPdu: Pdu, version: RoomVersion): string {
  if (!version.roomIdFromCreateEvent) {
    throw new CoreError(
      'BAD_EVENT',
      `room version ${version.id} room IDs are not derived from the create event`,
    );
  }
  if (createPdu.type !== CREATE_EVENT_TYPE) {
    throw new CoreError(
      'BAD_EVENT',
      `only an ${CREATE_EVENT_TYPE} event names a room, not ${JSON.stringify(createPdu.type)}`,
    );
  }
  return `!${computeEventId(createPdu, version).slice(1)}`;
}

/**
 * The room an event belongs to: its `room_id`, except for a v12 `m.room.create` without
 * one, whose room ID is derived from its own event ID. (A v12 create event that does carry
 * a `room_id` is answered with that claim; the auth rules reject such an event.)
 */
export function roomIdOf(pdu: Pdu, version: RoomVersion): string {
  if (typeof pdu.room_id === 'string') return pdu.room_id;
  if (pdu.room_id === undefined && version.roomIdFromCreateEvent && pdu.type === CREATE_EVENT_TYPE) {
    return roomIdFromCreateEvent(pdu, version);
  }
  throw new CoreError('BAD_EVENT', 'event has no string "room_id"');
}

/**
 * The event together with its ID. For v3+ any `event_id` the input carries is replaced by
 * the computed one, so a peer cannot choose the ID an event is stored under.
 */
export function identify(pdu: Pdu, version: RoomVersion): IdentifiedPdu {
  return { ...pdu, event_id: computeEventId(pdu, version) };
}

/**
 * `identify` for an event whose signed bytes are at hand (`eventSignedBytes`, as
 * `verifyEvent` returns them): the reference hash covers exactly those bytes (the redacted
 * event less `signatures` and `unsigned`, and for v3+ `event_id`), so the event is not
 * encoded a second time for its ID.
 */
export function identifyFromSignedBytes(
  pdu: Pdu,
  version: RoomVersion,
  signedBytes: Uint8Array,
): IdentifiedPdu {
  if (version.eventIdFormat === 'server') return identify(pdu, version);
  const hash = sha256(signedBytes);
  const id = version.eventIdFormat === 'base64' ? encodeBase64(hash) : encodeBase64Url(hash);
  return { ...pdu, event_id: `$${id}` };
}

/** The event as sent over federation: v3+ events do not carry their `event_id` (rooms/v3.md "Event format"). */
export function toWirePdu(event: Pdu, version: RoomVersion): Pdu {
  if (version.eventIdFormat === 'server') return { ...event };
  const { event_id: _id, ...wire } = event;
  return wire as Pdu;
}
