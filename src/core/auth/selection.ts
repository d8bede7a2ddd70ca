/**
 * Which state an event's `auth_events` may name — server-server-api.md "Auth events
 * selection" — and the rules about the `auth_events` list itself: rule 2 of the
 * authorization rules in rooms v1–v11, rules 2 and 3 in v12 (rooms/v12.md).
 */
import type { JsonObject } from '../canonical-json.ts';
import { type IdentifiedPdu, referencedIds, type StateKey, stateKey } from '../pdu.ts';
import { isJsonObject } from '../power-levels.ts';
import type { RoomVersion } from '../room-versions.ts';
import { createEventIdForRoomId } from './ids.ts';
import type { AuthResult } from './result.ts';

/** The fields of an event that decide its auth events (missing or malformed ones select nothing). */
export interface AuthSelectable {
  readonly type?: unknown;
  readonly sender?: unknown;
  readonly state_key?: unknown;
  readonly content?: unknown;
}

export const CREATE_KEY: StateKey = stateKey('m.room.create', '');
export const POWER_LEVELS_KEY: StateKey = stateKey('m.room.power_levels', '');
export const JOIN_RULES_KEY: StateKey = stateKey('m.room.join_rules', '');

/**
 * The `(type, state_key)` pairs an event's `auth_events` are chosen from, in the order the
 * spec lists them, without duplicates:
 * - the `m.room.create` event, except in v12+ where the room ID stands for it;
 * - the `m.room.power_levels` event and the sender's `m.room.member` event;
 * - for `m.room.member`: the target's membership; `m.room.join_rules` for join, invite and
 *   knock; the `m.room.third_party_invite` named by `third_party_invite.signed.token` for a
 *   third-party invite; the member event of `join_authorised_via_users_server` for a join in
 *   versions with restricted rooms.
 * `m.room.create` itself has no auth events. Malformed fields just select nothing.
 */
export function authTypesForEvent(event: AuthSelectable, version: RoomVersion): StateKey[] {
  if (event.type === 'm.room.create') return [];
  const keys = new Set<StateKey>();
  if (!version.roomIdFromCreateEvent) keys.add(CREATE_KEY);
  keys.add(POWER_LEVELS_KEY);
  if (typeof event.sender === 'string') keys.add(stateKey('m.room.member', event.sender));
  if (event.type === 'm.room.member') {
    const content: JsonObject = isJsonObject(event.content) ? event.content : {};
    const membership = content.membership;
    if (typeof event.state_key === 'string') keys.add(stateKey('m.room.member', event.state_key));
    if (membership === 'join' || membership === 'invite' || membership === 'knock') keys.add(JOIN_RULES_KEY);
    if (membership === 'invite' && isJsonObject(content.third_party_invite)) {
      const signed = content.third_party_invite.signed;
      if (isJsonObject(signed) && typeof signed.token === 'string') {
        keys.add(stateKey('m.room.third_party_invite', signed.token));
      }
    }
    const authoriser = content.join_authorised_via_users_server;
    if (membership === 'join' && version.restrictedJoinRule && typeof authoriser === 'string') {
      keys.add(stateKey('m.room.member', authoriser));
    }
  }
  return [...keys];
}

export interface AuthEventsShapeOptions {
  /**
   * Whether an event was rejected under the checks performed on receipt of a PDU. Without it
   * no event counts as rejected. In v12 it is also asked about the create event the room ID
   * names (rule 2: the room ID must name an accepted create event).
   */
  isRejected?: (eventId: string) => boolean;
}

/**
 * Checks the `auth_events` list of `event` (rule 2 of v1–v11, rules 2–3 of v12): exactly the
 * events it names must be given in `authEvents` (any order); no two may share a
 * `(type, state_key)`; each must be one the selection algorithm allows; none may be rejected;
 * all must be in the event's room; v1–v11 need an `m.room.create` among them, v12 forbids it.
 * `m.room.create` events have no such rule (rule 1 decides them alone), so they pass.
 */
export function checkAuthEventsShape(
  event: IdentifiedPdu,
  authEvents: readonly IdentifiedPdu[],
  version: RoomVersion,
  options: AuthEventsShapeOptions = {},
): AuthResult {
  try {
    return checkShape(event, authEvents, version, options);
  } catch (err) {
    // Only a throwing `isRejected` can land here; the contract is a result, never an exception.
    return {
      ok: false,
      reason: `auth events check failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

function checkShape(
  event: IdentifiedPdu,
  authEvents: readonly IdentifiedPdu[],
  version: RoomVersion,
  options: AuthEventsShapeOptions,
): AuthResult {
  if (event.type === 'm.room.create') return { ok: true };
  const isRejected = options.isRejected ?? (() => false);
  if (!Array.isArray(event.auth_events)) return { ok: false, reason: '`auth_events` is not a list' };
  let named: string[];
  try {
    named = referencedIds(event.auth_events);
  } catch {
    return { ok: false, reason: '`auth_events` holds a malformed reference' };
  }
  if (named.some((id) => typeof id !== 'string')) {
    return { ok: false, reason: '`auth_events` holds a malformed reference' };
  }
  const given = new Map<string, IdentifiedPdu>();
  for (const authEvent of authEvents) given.set(authEvent.event_id, authEvent);
  for (const id of given.keys()) {
    if (!named.includes(id))
      return { ok: false, reason: `auth event ${id} is not listed in the event's auth_events` };
  }

  if (version.roomIdFromCreateEvent) {
    // v12 rule 2: the room ID must name an accepted m.room.create event.
    if (typeof event.room_id !== 'string' || !event.room_id.startsWith('!')) {
      return { ok: false, reason: 'the event has no valid room_id' };
    }
    if (isRejected(createEventIdForRoomId(event.room_id))) {
      return { ok: false, reason: `the m.room.create event named by room_id ${event.room_id} was rejected` };
    }
  }

  const expected = new Set(authTypesForEvent(event, version));
  const seen = new Map<StateKey, string>();
  for (const id of named) {
    const authEvent = given.get(id);
    if (!authEvent) return { ok: false, reason: `auth event ${id} was not supplied` };
    if (typeof authEvent.type !== 'string' || typeof authEvent.state_key !== 'string') {
      return { ok: false, reason: `auth event ${id} is not a state event` };
    }
    const key = stateKey(authEvent.type, authEvent.state_key);
    const previous = seen.get(key);
    if (previous !== undefined) {
      return {
        ok: false,
        reason: `duplicate auth events for (${authEvent.type}, ${JSON.stringify(authEvent.state_key)}): ${previous} and ${id}`,
      };
    }
    seen.set(key, id);
    if (!expected.has(key)) {
      if (key === CREATE_KEY && version.roomIdFromCreateEvent) {
        return {
          ok: false,
          reason: `m.room.create must not be among the auth events in room version ${version.id}`,
        };
      }
      return {
        ok: false,
        reason: `unexpected auth event ${id} for (${authEvent.type}, ${JSON.stringify(authEvent.state_key)})`,
      };
    }
    if (isRejected(id)) return { ok: false, reason: `auth event ${id} was rejected` };
    if (authEvent.room_id !== event.room_id) {
      return {
        ok: false,
        reason: `auth event ${id} is in room ${String(authEvent.room_id)}, not ${String(event.room_id)}`,
      };
    }
  }
  if (!version.roomIdFromCreateEvent && !seen.has(CREATE_KEY)) {
    return { ok: false, reason: 'no m.room.create event among the auth events' };
  }
  return { ok: true };
}
