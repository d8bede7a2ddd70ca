/**
 * Rule 1 of every room version: `m.room.create` (rooms/fragments/v1-auth-rules.md 1,
 * rooms/v11.md — no `creator` — and rooms/v12.md — no `room_id`, `additional_creators`).
 * Returns to allow; throws `AuthDenied` to reject.
 */
import type { JsonObject } from '../canonical-json.ts';
import type { IdentifiedPdu } from '../pdu.ts';
import { type RoomVersion, roomVersions } from '../room-versions.ts';
import { domainOf, isEventUserId } from './ids.ts';
import { deny } from './result.ts';

export function checkCreate(event: IdentifiedPdu, content: JsonObject, version: RoomVersion): void {
  if (!Array.isArray(event.prev_events)) deny('prev_events is not a list');
  if (event.prev_events.length > 0) deny('m.room.create has prev_events');
  if (version.roomIdFromCreateEvent) {
    if (Object.hasOwn(event, 'room_id') && event.room_id !== undefined) {
      deny(`m.room.create must not have a room_id in room version ${version.id}`);
    }
  } else {
    const roomDomain = domainOf(event.room_id);
    if (roomDomain === undefined || roomDomain !== domainOf(event.sender)) {
      deny("the domain of the m.room.create room_id does not match the sender's domain");
    }
  }
  if (Object.hasOwn(content, 'room_version')) {
    const declared = content.room_version;
    if (typeof declared !== 'string' || !Object.hasOwn(roomVersions, declared)) {
      deny(`m.room.create declares an unrecognised room_version ${JSON.stringify(declared)}`);
    }
  }
  if (!version.implicitRoomCreator && !Object.hasOwn(content, 'creator')) {
    deny('m.room.create content has no creator');
  }
  if (version.privilegedCreators && Object.hasOwn(content, 'additional_creators')) {
    const additional = content.additional_creators;
    if (!Array.isArray(additional)) deny('additional_creators is not an array');
    for (const user of additional) {
      if (!isEventUserId(user)) deny(`additional_creators holds an invalid user ID ${JSON.stringify(user)}`);
    }
  }
}
