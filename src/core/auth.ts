/**
 * The authorization rules of room versions 1–12 as one pure, synchronous function —
 * server-server-api.md "Authorisation rules" and the rules of each room version:
 * rooms/fragments/v1-auth-rules.md (v1, v2), v3-auth-rules.md (v3–v5), rooms/v6.md, rooms/v7.md,
 * rooms/fragments/v8-auth-rules.md (v8, v9), rooms/v10.md, rooms/v11.md, rooms/v12.md.
 * Version differences are read from `RoomVersion` flags.
 *
 * `checkAuth(event, authState, version)` applies every rule except those about the
 * `auth_events` list itself (rule 2 of v1–v11, rules 2–3 of v12), which `checkAuthEventsShape`
 * checks: the same `checkAuth` serves all three checks of server-server-api.md "Checks
 * performed on receipt of a PDU" — against the event's auth events, the state before the
 * event, and the current state (soft failure) — and the iterative auth checks of state
 * resolution. The caller passes the state to check against as `authState`; it must hold the
 * `m.room.create` event, including in v12, where the create event is not among the auth
 * events and is found through the room ID instead.
 *
 * It never throws: malformed content in the event or its auth state is a rejection with a
 * reason. Power levels follow power-levels.ts (strings and floats where the version allows).
 */
import {
  type AuthContext,
  type AuthState,
  type CheckAuthOptions,
  contentOf,
  membershipOf,
  namedLevel,
  requiredLevel,
  userLevel,
} from './auth/context.ts';
import { checkCreate } from './auth/create.ts';
import { domainOf, roomIdForCreateEventId } from './auth/ids.ts';
import { checkMembership } from './auth/membership.ts';
import { checkPowerLevels } from './auth/power-levels-rule.ts';
import { AuthDenied, type AuthResult, deny } from './auth/result.ts';
import { authTypesForEvent, CREATE_KEY, POWER_LEVELS_KEY } from './auth/selection.ts';
import { type IdentifiedPdu, type StateKey, stateKey } from './pdu.ts';
import { isJsonObject } from './power-levels.ts';
import type { RoomVersion } from './room-versions.ts';

export type { AuthState, CheckAuthOptions } from './auth/context.ts';
export type { AuthResult } from './auth/result.ts';
export {
  type AuthEventsShapeOptions,
  type AuthSelectable,
  authTypesForEvent,
  checkAuthEventsShape,
} from './auth/selection.ts';
export { thirdPartyInvitePublicKeys, verifyThirdPartyInviteSignature } from './auth/third-party-invite.ts';

/** Builds an `AuthState` from events, keyed by `(type, state_key)`; non-state events are skipped. */
export function authStateOf(events: Iterable<IdentifiedPdu>): AuthState {
  const state = new Map<StateKey, IdentifiedPdu>();
  for (const event of events) {
    if (typeof event.type === 'string' && typeof event.state_key === 'string') {
      state.set(stateKey(event.type, event.state_key), event);
    }
  }
  return state;
}

/**
 * Whether `event` is authorised by `authState` in a room of `version`. Synchronous and pure;
 * returns `{ ok: false, reason }` on rejection and never throws.
 */
export function checkAuth(
  event: IdentifiedPdu,
  authState: AuthState,
  version: RoomVersion,
  options: CheckAuthOptions = {},
): AuthResult {
  try {
    authorize(event, authState, version, options);
    return { ok: true };
  } catch (err) {
    if (err instanceof AuthDenied) return { ok: false, reason: err.message };
    // Only a throwing callback from `options` (or a bug) lands here; the contract is a result.
    return {
      ok: false,
      reason: `authorization failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

function authorize(
  event: IdentifiedPdu,
  state: AuthState,
  version: RoomVersion,
  options: CheckAuthOptions,
): void {
  if (!isJsonObject(event)) deny('the event is not an object');
  const { type, sender } = event;
  if (typeof type !== 'string') deny('the event has no type');
  if (typeof sender !== 'string') deny('the event has no sender');
  if (!isJsonObject(event.content)) deny('the event content is not an object');
  if (event.state_key !== undefined && typeof event.state_key !== 'string') deny('state_key is not a string');
  const content = event.content;

  // Rule 1: m.room.create is decided by its own fields alone.
  if (type === 'm.room.create') {
    checkCreate(event, content, version);
    return;
  }

  const create = state.get(CREATE_KEY);
  if (!create) deny('there is no m.room.create event in the auth state');
  if (version.roomIdFromCreateEvent) {
    // v12 rule 2: the room ID is the create event's ID with the sigil `!`.
    if (typeof create.event_id !== 'string' || event.room_id !== roomIdForCreateEventId(create.event_id)) {
      deny(`room_id ${String(event.room_id)} does not name the room's m.room.create event`);
    }
  }
  // Powers granted in another room grant nothing here (rule 2.5 / v12 3.5). Only the entries
  // the rules may consult are looked at (v1–v11 include the create event), so passing a whole
  // room state costs nothing extra.
  for (const key of authTypesForEvent(event, version)) {
    const authEvent = state.get(key);
    if (authEvent && authEvent.room_id !== event.room_id) {
      deny(`auth event ${authEvent.event_id} belongs to another room`);
    }
  }

  const ctx: AuthContext = {
    event,
    type,
    sender,
    content,
    version,
    state,
    create,
    powerLevels: state.get(POWER_LEVELS_KEY),
    options,
  };

  // m.federate: only servers of the creator's domain may take part in an unfederated room.
  if (contentOf(create)['m.federate'] === false && domainOf(sender) !== domainOf(create.sender)) {
    deny('the room is not federated and the sender is on another server');
  }

  if (version.specialCaseAliasesAuth && type === 'm.room.aliases') {
    // v1–v5 rule 4: a server manages its own aliases, whether or not its users are joined.
    if (event.state_key === undefined) deny('m.room.aliases has no state_key');
    if (event.state_key !== domainOf(sender))
      deny("m.room.aliases state_key does not match the sender's domain");
    return;
  }

  if (type === 'm.room.member') {
    checkMembership(ctx);
    return;
  }

  if (membershipOf(ctx, sender) !== 'join') deny('the sender is not joined to the room');

  if (type === 'm.room.third_party_invite') {
    if (userLevel(ctx, sender) >= namedLevel(ctx, 'invite')) return;
    deny('the sender does not have the invite level needed for m.room.third_party_invite');
  }

  const senderLevel = userLevel(ctx, sender);
  const required = requiredLevel(ctx, type, event.state_key);
  if (required > senderLevel) {
    deny(`the sender's power level ${senderLevel} is below the ${required} required for ${type}`);
  }

  if (typeof event.state_key === 'string' && event.state_key.startsWith('@') && event.state_key !== sender) {
    deny("the state_key starts with @ and is not the sender's user ID");
  }

  if (type === 'm.room.power_levels') {
    checkPowerLevels(ctx);
    return;
  }

  if (type === 'm.room.redaction' && !version.redactionsCheckedLater) {
    // v1–v2 rule 11: the redact level, or a redaction from the server that sent the target.
    if (senderLevel >= namedLevel(ctx, 'redact')) return;
    const redacts = version.redactsInContent ? content.redacts : event.redacts;
    const redactsDomain = domainOf(redacts);
    if (redactsDomain !== undefined && redactsDomain === domainOf(event.event_id)) return;
    deny('the sender does not have the redact level and the redacted event is from another server');
  }
}
