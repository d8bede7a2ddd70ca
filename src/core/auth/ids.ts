/**
 * The identifier reading the authorization rules need, on top of identifiers.ts:
 * Synapse-compatible domain extraction and the v12 room ID ↔ create event ID mapping
 * (rooms/v12.md, appendices.md "Room IDs").
 */
import { isValidUserId } from '../identifiers.ts';

/**
 * Whether `value` is a user ID an event may carry: the historical grammar that servers must
 * accept over federation (appendices.md "Historical User IDs"), at most 255 bytes. The v12
 * rule for `additional_creators` asks for "the same user ID validation applied to `sender`".
 */
export function isEventUserId(value: unknown): value is string {
  return isValidUserId(value, { historical: true });
}

/**
 * The domain of a user, room (v1–v11) or v1/v2 event ID: everything after the first colon,
 * as Synapse's `get_domain_from_id` reads it. `undefined` when there is no colon. Lenient on
 * purpose: the rules compare domains; grammar is the event format checks' job.
 */
export function domainOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon === -1 ? undefined : id.slice(colon + 1);
}

/**
 * The room ID a v12+ (`roomIdFromCreateEvent`) create event names: its event ID with the
 * sigil `!` instead of `$`. A plain string mapping, so a malformed ID compares unequal
 * instead of throwing.
 */
export function roomIdForCreateEventId(createEventId: string): string {
  return `!${createEventId.slice(1)}`;
}

/** The inverse of `roomIdForCreateEventId`: the create event ID a v12+ room ID names. */
export function createEventIdForRoomId(roomId: string): string {
  return `$${roomId.slice(1)}`;
}
