/**
 * Test support for state resolution: loading event fixtures, and the three ways the ruma
 * conformance README resolves a batch of events (iteratively along `prev_events`, file by
 * file, all at once). Used by the tests only; nothing here is exported from `hearth/core`.
 */
import { authTypesForEvent, checkAuth } from '../auth.ts';
import type { IdentifiedPdu, StateKey, StateMap } from '../pdu.ts';
import { stateKey } from '../pdu.ts';
import type { RoomVersion } from '../room-versions.ts';
import { resolveState } from './index.ts';
import { CREATE_KEY } from './lookup.ts';

export type EventMap = Map<string, IdentifiedPdu>;

export function keyOf(event: IdentifiedPdu): StateKey {
  return stateKey(event.type, event.state_key as string);
}

export function indexEvents(events: Iterable<IdentifiedPdu>, into: EventMap = new Map()): EventMap {
  for (const event of events) into.set(event.event_id, event);
  return into;
}

/** A state map from a list of event IDs (keys read from the events). */
export function stateOf(ids: Iterable<string>, events: EventMap): StateMap {
  const state: StateMap = new Map();
  for (const id of ids) {
    const event = events.get(id);
    if (!event) throw new Error(`fixture names unknown event ${id}`);
    state.set(keyOf(event), id);
  }
  return state;
}

/** Whether the rules allow `event` against `state` alone (plus the create event, which v12 never cites). */
export function passesAgainstState(
  event: IdentifiedPdu,
  state: StateMap,
  events: EventMap,
  version: RoomVersion,
) {
  const authState = new Map<StateKey, IdentifiedPdu>();
  const keys = new Set([...authTypesForEvent(event, version), CREATE_KEY]);
  for (const key of keys) {
    const id = state.get(key);
    const authEvent = id === undefined ? undefined : events.get(id);
    if (authEvent) authState.set(key, authEvent);
  }
  return checkAuth(event, authState, version).ok;
}

/**
 * Walks the `prev_events` DAG from the create event: the state before an event is the
 * resolution of the states after its prev events, the state after it adds the event when
 * the rules allow it against the state before. Returns the resolution of the leaves' states.
 */
export function resolveIteratively(version: RoomVersion, events: readonly IdentifiedPdu[]): StateMap {
  const byId = indexEvents(events);
  const getEvent = (id: string) => byId.get(id);
  const children = new Map<string, string[]>();
  const waiting = new Map<string, number>();
  const ready: string[] = [];
  for (const event of events) {
    const prevs = event.prev_events.map((ref) => (typeof ref === 'string' ? ref : ref[0]));
    waiting.set(event.event_id, prevs.length);
    if (prevs.length === 0) ready.push(event.event_id);
    for (const prev of prevs) children.set(prev, [...(children.get(prev) ?? []), event.event_id]);
  }
  const after = new Map<string, StateMap>();
  while (ready.length > 0) {
    const id = ready.shift() as string;
    const event = byId.get(id) as IdentifiedPdu;
    const prevStates = event.prev_events.map((ref) => {
      const state = after.get(typeof ref === 'string' ? ref : ref[0]);
      if (!state) throw new Error(`prev event of ${id} has no state`);
      return state;
    });
    const before = resolveState(version, prevStates, getEvent);
    const stateAfter = new Map(before);
    if (passesAgainstState(event, before, byId, version)) stateAfter.set(keyOf(event), id);
    after.set(id, stateAfter);
    for (const child of children.get(id) ?? []) {
      const left = (waiting.get(child) ?? 0) - 1;
      waiting.set(child, left);
      if (left === 0) ready.push(child);
    }
  }
  if (after.size !== events.length) throw new Error('some events are not reachable from the create event');
  const leaves = events
    .filter((event) => !children.has(event.event_id))
    .map((event) => after.get(event.event_id));
  return resolveState(version, leaves as StateMap[], getEvent);
}

/**
 * Resolves each batch against the state resolved so far, one single-entry state map per event
 * ("we know no valid grouping"), as a server does with events it receives in bulk.
 */
export function resolveInBatches(
  version: RoomVersion,
  batches: readonly (readonly IdentifiedPdu[])[],
): StateMap {
  const byId: EventMap = new Map();
  let state: StateMap | undefined;
  for (const batch of batches) {
    indexEvents(batch, byId);
    const stateSets = state ? [state] : [];
    for (const event of batch) stateSets.push(new Map([[keyOf(event), event.event_id]]));
    state = resolveState(version, stateSets, (id) => byId.get(id));
  }
  return state ?? new Map();
}
