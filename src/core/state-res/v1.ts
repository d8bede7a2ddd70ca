/**
 * State resolution v1 (rooms/v1.md "State resolution"), for room version 1 only. Known to
 * reset state in some forks; room version 2 replaced it. Where the prose is loose, this
 * follows Synapse, the implementation every v1 room on the network was resolved by:
 * - a key is conflicted only when two state sets hold *different* events for it; a key missing
 *   from some state sets is not a conflict;
 * - the `m.room.member` conflicts are each resolved against the state after the join rules
 *   step, independently of one another, and only then added to R;
 * - when no event of an ordinary conflict passes the auth rules, the last one in the order
 *   (lowest depth) is kept.
 */
import { sha1 } from '@noble/hashes/legacy.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { authTypesForEvent, checkAuth } from '../auth.ts';
import { CoreError } from '../errors.ts';
import type { IdentifiedPdu, StateKey, StateMap } from '../pdu.ts';
import type { EventLookup } from './lookup.ts';
import { POWER_LEVELS_KEY } from './lookup.ts';

export function resolveV1(
  stateSets: readonly ReadonlyMap<StateKey, string>[],
  lookup: EventLookup,
): StateMap {
  const resolved: StateMap = new Map();
  const conflicted = new Map<StateKey, Set<string>>();
  for (const set of stateSets) {
    for (const [key, id] of set) {
      const ids = conflicted.get(key);
      if (ids) ids.add(id);
      else conflicted.set(key, new Set([id]));
    }
  }
  for (const [key, ids] of conflicted) {
    if (ids.size === 1) {
      resolved.set(key, ids.values().next().value as string);
      conflicted.delete(key);
    }
  }
  if (conflicted.size === 0) return resolved;

  const eventsOf = (ids: Set<string>) => [...ids].map((id) => lookup.event(id, 'a conflicted state event'));
  const typeOf = (key: StateKey) => key.slice(0, key.indexOf('\u0000'));

  // Power levels, join rules, then memberships: each conflict is resolved by walking its events
  // from the oldest, keeping each one the rules allow in R and stopping at the first they refuse.
  const authPasses: Array<(key: StateKey) => boolean> = [
    (key) => key === POWER_LEVELS_KEY,
    (key) => typeOf(key) === 'm.room.join_rules',
    (key) => typeOf(key) === 'm.room.member',
  ];
  for (const inPass of authPasses) {
    const winners: Array<[StateKey, string]> = [];
    for (const [key, ids] of conflicted) {
      if (inPass(key)) winners.push([key, resolveAuthConflict(key, eventsOf(ids), resolved, lookup)]);
    }
    for (const [key, id] of winners) {
      resolved.set(key, id);
      conflicted.delete(key);
    }
  }

  // Everything else: the newest event the rules allow in R.
  const winners: Array<[StateKey, string]> = [];
  for (const [key, ids] of conflicted) {
    const ordered = newestFirst(eventsOf(ids));
    const winner = ordered.find((event) => allowed(event, resolved, undefined, lookup)) ?? ordered.at(-1);
    winners.push([key, (winner as IdentifiedPdu).event_id]);
  }
  for (const [key, id] of winners) resolved.set(key, id);
  return resolved;
}

function resolveAuthConflict(
  key: StateKey,
  events: IdentifiedPdu[],
  state: ReadonlyMap<StateKey, string>,
  lookup: EventLookup,
): string {
  const [first, ...rest] = newestFirst(events).reverse();
  let accepted = first as IdentifiedPdu;
  for (const event of rest) {
    if (!allowed(event, state, [key, accepted], lookup)) break;
    accepted = event;
  }
  return accepted.event_id;
}

/** Descending `depth`, then ascending `sha1(event_id)` (hex) — the v1 order, newest first. */
function newestFirst(events: IdentifiedPdu[]): IdentifiedPdu[] {
  const keyed = events.map((event) => {
    if (typeof event.depth !== 'number' || !Number.isFinite(event.depth)) {
      throw new CoreError('BAD_EVENT', `event ${event.event_id} has no numeric depth`);
    }
    return { event, depth: event.depth, hash: bytesToHex(sha1(utf8ToBytes(event.event_id))) };
  });
  keyed.sort((a, b) => b.depth - a.depth || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  return keyed.map((entry) => entry.event);
}

/** Whether the rules allow `event` in `state`, with `override` (the event being replaced) on top. */
function allowed(
  event: IdentifiedPdu,
  state: ReadonlyMap<StateKey, string>,
  override: [StateKey, IdentifiedPdu] | undefined,
  lookup: EventLookup,
): boolean {
  const authTypes = authTypesForEvent(event, lookup.version);
  const authState = new Map<StateKey, IdentifiedPdu>();
  for (const key of authTypes) {
    if (override && override[0] === key) {
      authState.set(key, override[1]);
      continue;
    }
    const id = state.get(key);
    if (id !== undefined)
      authState.set(key, lookup.event(id, `state entry needed to authorize ${event.event_id}`));
  }
  if (override && !authState.has(override[0])) authState.set(override[0], override[1]);
  return checkAuth(event, authState, lookup.version, lookup.authOptions).ok;
}
