/**
 * The iterative auth checks algorithm (rooms/fragments/v2-state-res.md "Iterative auth
 * checks"): apply each state event, in order, to a room state when the authorization rules
 * allow it against that state; a key the rules need but the state lacks is taken from the
 * event's own `auth_events`, unless that auth event was rejected.
 */
import { authTypesForEvent, checkAuth } from '../auth.ts';
import type { IdentifiedPdu, StateKey, StateMap } from '../pdu.ts';
import { CREATE_KEY, type EventLookup, type StateEventInfo } from './lookup.ts';

/**
 * The auth state an event is checked against: its own (not rejected) auth events, overlaid
 * with `state`'s entry for each key the authorization rules need. From v12 the create event is
 * never an auth event; it is named by the room ID, so it is added here.
 */
export function authStateFor(
  info: StateEventInfo,
  state: ReadonlyMap<StateKey, string>,
  lookup: EventLookup,
  authTypes: readonly StateKey[] = authTypesForEvent(info.pdu, lookup.version),
): Map<StateKey, IdentifiedPdu> {
  const authState = new Map<StateKey, IdentifiedPdu>();
  const id = info.pdu.event_id;
  for (const authId of info.authIds) {
    if (lookup.rejected(authId)) continue;
    const auth = lookup.info(authId, `auth event of ${id}`);
    authState.set(auth.key, auth.pdu);
  }
  if (lookup.version.roomIdFromCreateEvent && info.key !== CREATE_KEY) {
    const create = lookup.createEventFor(info);
    if (create) authState.set(CREATE_KEY, create);
  }
  for (const key of authTypes) {
    const stateId = state.get(key);
    if (stateId === undefined || lookup.rejected(stateId)) continue;
    authState.set(key, lookup.event(stateId, `state entry needed to authorize ${id}`));
  }
  return authState;
}

/** Runs the iterative auth checks over `eventIds` in order, updating `state` in place. */
export function iterativeAuthChecks(
  eventIds: readonly string[],
  state: StateMap,
  lookup: EventLookup,
): StateMap {
  for (const id of eventIds) {
    const info = lookup.info(id, 'an event of the full conflicted set');
    if (allowed(info, state, lookup)) state.set(info.key, id);
  }
  return state;
}

function allowed(info: StateEventInfo, state: StateMap, lookup: EventLookup): boolean {
  // `checkAuth` never throws: a malformed event is a rejection like any other. A missing
  // event around it (a lookup error from `authStateFor`) does stop the resolution.
  return checkAuth(info.pdu, authStateFor(info, state, lookup), lookup.version, lookup.authOptions).ok;
}
