/**
 * State resolution v2 (rooms/fragments/v2-state-res.md, room versions 2–11) and its v2.1
 * revision (rooms/v12.md "State resolution", MSC4297, room version 12). v2.1 changes two
 * things, both read from `RoomVersion.stateRes`: the first iterative auth checks start from an
 * empty state map instead of the unconflicted state map, and the full conflicted set also takes
 * in the conflicted state subgraph.
 *
 * Where the spec's prose leaves room, this follows what Synapse and ruma do, because state
 * resolution is only useful if every server reaches the same answer:
 * - `m.room.create` counts as a power event (both implementations; a create event is never
 *   conflicted in a well-formed room, so this only matters for broken input);
 * - power events are `m.room.power_levels`/`m.room.join_rules` with an empty state key;
 * - the auth chain of a power event is followed only through events of the full conflicted
 *   set when building the graph for the reverse topological power ordering.
 */
import { compareCodePoints } from '../canonical-json.ts';
import { CoreError } from '../errors.ts';
import type { IdentifiedPdu, StateKey, StateMap } from '../pdu.ts';
import { userPowerLevel } from '../power-levels.ts';
import { authChainOf, authDifference, conflictedStateSubgraph, separateConflicted } from './graph.ts';
import { MinHeap } from './heap.ts';
import { iterativeAuthChecks } from './iterative.ts';
import { type EventLookup, POWER_LEVELS_KEY } from './lookup.ts';

/**
 * Power events might take away someone's ability to act: power levels, join rules, and
 * kicks/bans (a `leave` or `ban` membership sent by someone other than its target).
 */
export function isPowerEvent(event: IdentifiedPdu): boolean {
  if (event.state_key === '') {
    if (event.type === 'm.room.power_levels' || event.type === 'm.room.join_rules') return true;
    if (event.type === 'm.room.create') return true;
  }
  if (event.type === 'm.room.member' && typeof event.state_key === 'string') {
    const membership = event.content?.membership;
    return (membership === 'leave' || membership === 'ban') && event.sender !== event.state_key;
  }
  return false;
}

export function resolveV2(
  stateSets: readonly ReadonlyMap<StateKey, string>[],
  lookup: EventLookup,
  givenAuthChains?: ReadonlyArray<ReadonlySet<string>>,
): StateMap {
  const { unconflicted, conflicted } = separateConflicted(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const conflictedIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedIds.add(id);

  if (givenAuthChains && givenAuthChains.length !== stateSets.length) {
    throw new CoreError(
      'BAD_EVENT',
      `state resolution was given ${givenAuthChains.length} auth chains for ${stateSets.length} state sets`,
    );
  }
  const authChains = givenAuthChains ?? stateSets.map((set) => authChainOf(set.values(), lookup));

  const fullConflicted = new Set(conflictedIds);
  for (const id of authDifference(authChains)) fullConflicted.add(id);
  if (lookup.version.stateRes === 'v2.1') {
    for (const id of conflictedStateSubgraph(conflictedIds, lookup)) fullConflicted.add(id);
  }

  // 1. The power events of the full conflicted set, with their auth chains within it, in
  //    reverse topological power ordering.
  const powerEvents: string[] = [];
  for (const id of fullConflicted) {
    if (isPowerEvent(lookup.event(id, 'an event of the full conflicted set'))) powerEvents.push(id);
  }
  const sortedPowerEvents = sortPowerEvents(powerEvents, fullConflicted, lookup);

  // 2. Iterative auth checks from the unconflicted state map (v2) or from nothing (v2.1).
  const initial: StateMap = lookup.version.stateRes === 'v2.1' ? new Map() : new Map(unconflicted);
  const partial = iterativeAuthChecks(sortedPowerEvents, initial, lookup);

  // 3. Everything else, in mainline order of the power levels resolved so far.
  const picked = new Set(sortedPowerEvents);
  const remaining = [...fullConflicted].filter((id) => !picked.has(id));
  const sortedRemaining = mainlineSort(remaining, partial.get(POWER_LEVELS_KEY), lookup);

  // 4. Iterative auth checks on top of the partial state.
  const resolved = iterativeAuthChecks(sortedRemaining, partial, lookup);

  // 5. The unconflicted state map has the last word.
  for (const [key, id] of unconflicted) resolved.set(key, id);
  return resolved;
}

/**
 * Step 1's list: `powerEvents` plus the events of their auth chains that are in `within`,
 * sorted by the reverse topological power ordering.
 */
export function sortPowerEvents(
  powerEvents: readonly string[],
  within: ReadonlySet<string>,
  lookup: EventLookup,
): string[] {
  // The auth DAG restricted to `within`: event → its auth events in `within`.
  const graph = new Map<string, string[]>();
  const stack = [...powerEvents];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (graph.has(id)) continue;
    const edges: string[] = [];
    for (const authId of lookup.info(id, 'a power event being sorted').authIds) {
      if (!within.has(authId)) continue;
      edges.push(authId);
      if (!graph.has(authId)) stack.push(authId);
    }
    graph.set(id, edges);
  }
  return reverseTopologicalPowerSort(graph, lookup);
}

interface SortKey {
  readonly id: string;
  readonly powerLevel: number;
  readonly ts: number;
}

/**
 * Kahn's algorithm over `graph` (event → the auth events it points to), taking at each step
 * the smallest ready event: the sender with the greatest power level (from the event's own
 * auth events), then the smallest `origin_server_ts`, then the smallest event ID. Auth events
 * come out before the events they authorize.
 */
export function reverseTopologicalPowerSort(
  graph: ReadonlyMap<string, readonly string[]>,
  lookup: EventLookup,
): string[] {
  const keyOf = (id: string): SortKey => {
    const info = lookup.info(id, 'an event being sorted');
    const plId = lookup.powerLevelsAuthEvent(id);
    const powerLevels = plId === undefined ? undefined : lookup.event(plId, `power levels of ${id}`);
    const create = lookup.createEventFor(info);
    const powerLevel = userPowerLevel(info.pdu.sender, powerLevels, create, lookup.version);
    return { id, powerLevel, ts: info.pdu.origin_server_ts };
  };
  const heap = new MinHeap<SortKey>(
    (a, b) =>
      a.powerLevel > b.powerLevel ||
      (a.powerLevel === b.powerLevel &&
        (a.ts < b.ts || (a.ts === b.ts && compareCodePoints(a.id, b.id) < 0))),
  );

  // How many of its auth events each event still waits for, and who waits for each event.
  const waiting = new Map<string, number>();
  const waiters = new Map<string, string[]>();
  for (const [id, edges] of graph) {
    const distinct = new Set(edges);
    waiting.set(id, distinct.size);
    if (distinct.size === 0) heap.push(keyOf(id));
    for (const authId of distinct) {
      const list = waiters.get(authId);
      if (list) list.push(id);
      else waiters.set(authId, [id]);
    }
  }

  const sorted: string[] = [];
  for (let next = heap.pop(); next !== undefined; next = heap.pop()) {
    sorted.push(next.id);
    for (const waiter of waiters.get(next.id) ?? []) {
      const left = (waiting.get(waiter) ?? 0) - 1;
      waiting.set(waiter, left);
      if (left === 0) heap.push(keyOf(waiter));
    }
  }
  if (sorted.length !== graph.size) {
    throw new CoreError('BAD_EVENT', 'the auth events of the conflicted power events form a cycle');
  }
  return sorted;
}

/**
 * Mainline ordering: each event's position is where its chain of power-levels auth events
 * first meets the mainline of `powerLevelsId` (0 for that event itself, ∞ when it never does);
 * events based on an earlier point of the mainline come first, then by `origin_server_ts`,
 * then by event ID.
 */
export function mainlineSort(
  eventIds: readonly string[],
  powerLevelsId: string | undefined,
  lookup: EventLookup,
): string[] {
  const mainline = new Map<string, number>();
  for (let id = powerLevelsId, i = 0; id !== undefined; id = lookup.powerLevelsAuthEvent(id), i++) {
    if (mainline.has(id))
      throw new CoreError('BAD_EVENT', `the power levels event ${id} cites itself through its auth events`);
    mainline.set(id, i);
  }

  // Position reached from a power-levels event, for every one already walked.
  const reachedFrom = new Map<string, number>();
  const positionOf = (eventId: string): number => {
    const walked: string[] = [];
    const seen = new Set<string>();
    let position = Number.POSITIVE_INFINITY;
    for (
      let id = lookup.powerLevelsAuthEvent(eventId);
      id !== undefined;
      id = lookup.powerLevelsAuthEvent(id)
    ) {
      const known = mainline.get(id) ?? reachedFrom.get(id);
      if (known !== undefined) {
        position = known;
        break;
      }
      if (seen.has(id))
        throw new CoreError('BAD_EVENT', `the power levels event ${id} cites itself through its auth events`);
      seen.add(id);
      walked.push(id);
    }
    for (const id of walked) reachedFrom.set(id, position);
    return position;
  };

  const keyed = eventIds.map((id) => ({
    id,
    position: positionOf(id),
    ts: lookup.event(id, 'an event being sorted').origin_server_ts,
  }));
  keyed.sort((a, b) => {
    if (a.position !== b.position) return a.position > b.position ? -1 : 1;
    if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
    return compareCodePoints(a.id, b.id);
  });
  return keyed.map((entry) => entry.id);
}
