/**
 * State resolution: the room state before an event is the resolution of the states after its
 * `prev_events` (server-server-api.md "Room State Resolution"). The algorithm is a property of
 * the room version: v1 (rooms/v1.md) for room version 1, v2 (rooms/fragments/v2-state-res.md)
 * for 2–11, v2.1 (rooms/v12.md, MSC4297) for 12.
 *
 * Pure and synchronous: the caller preloads every event of the state sets and of their auth
 * chains and passes a lookup. A missing or malformed event is a `CoreError('BAD_EVENT')` naming
 * it and what needed it.
 */
import type { CheckAuthOptions } from '../auth.ts';
import type { IdentifiedPdu, StateMap } from '../pdu.ts';
import { getRoomVersion, type RoomVersion } from '../room-versions.ts';
import { authChainOf } from './graph.ts';
import { EventLookup, type GetEvent } from './lookup.ts';
import { resolveV1 } from './v1.ts';
import { isPowerEvent, mainlineSort, resolveV2, sortPowerEvents } from './v2.ts';

export type { SeparatedState } from './graph.ts';
export { authDifference, separateConflicted } from './graph.ts';
export type { GetEvent } from './lookup.ts';
export { isPowerEvent };

export interface ResolveStateOptions {
  /**
   * The full auth chain of each state set (the union of the auth chains of its events), in the
   * order of `stateSets`. Computed from `getEvent` when absent; a server that indexes auth
   * chains passes its own.
   */
  readonly authChains?: ReadonlyArray<ReadonlySet<string>>;
  /**
   * Whether an event was rejected. Rejected events still take part in the resolution, but the
   * iterative auth checks never use one as an auth event (rooms/fragments/v2-state-res.md
   * "Rejected events"). Default: nothing is rejected.
   */
  readonly isRejected?: (eventId: string) => boolean;
  /** Passed to `checkAuth` (how to verify third-party invite and restricted-join signatures). */
  readonly authOptions?: CheckAuthOptions;
}

/** Resolves `stateSets` (each `(type, state_key)` → event ID) into one room state. */
export function resolveState(
  version: RoomVersion,
  stateSets: readonly StateMap[],
  getEvent: (eventId: string) => IdentifiedPdu | undefined,
  options: ResolveStateOptions = {},
): StateMap {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);
  const lookup = new EventLookup(getEvent, version, options.isRejected, options.authOptions);
  if (version.stateRes === 'v1') return resolveV1(stateSets, lookup);
  return resolveV2(stateSets, lookup, options.authChains);
}

/**
 * The union of the auth chains of `eventIds`: every event reachable through `auth_events`,
 * without the starting events themselves (unless one reaches another).
 */
export function authChain(eventIds: Iterable<string>, getEvent: GetEvent): Set<string> {
  // Walking `auth_events` is the same in every room version; the lookup only needs one.
  return authChainOf(eventIds, new EventLookup(getEvent, getRoomVersion('11')));
}

/**
 * The reverse topological power ordering of `eventIds`, over the auth DAG restricted to them:
 * earliest first, ties to the greater sender power level, then the earlier
 * `origin_server_ts`, then the smaller event ID.
 */
export function reverseTopologicalPowerOrder(
  version: RoomVersion,
  eventIds: Iterable<string>,
  getEvent: GetEvent,
): string[] {
  const ids = new Set(eventIds);
  return sortPowerEvents([...ids], ids, new EventLookup(getEvent, version));
}

/** The mainline ordering of `eventIds` based on the power levels event `powerLevelsId`. */
export function mainlineOrder(
  version: RoomVersion,
  eventIds: Iterable<string>,
  powerLevelsId: string | undefined,
  getEvent: GetEvent,
): string[] {
  return mainlineSort([...new Set(eventIds)], powerLevelsId, new EventLookup(getEvent, version));
}
