/**
 * Which rooms one /sync answer covers, in which section, and the bounds of each room's
 * timeline (compute.ts describes the bounds). Invites and knocks are listed apart: they show
 * stripped state, not a timeline.
 */
import { type StateMap, stateKey } from '../../core/pdu.ts';
import type { Membership, StoredEvent } from '../../storage/store.ts';
import { MEMBER, membershipOf, type Pass, type RoomPlan } from './pass.ts';

export interface Plans {
  plans: RoomPlan[];
  invites: Membership[];
  knocks: Membership[];
  /** Rooms whose changes concern this user (for the notifier). */
  wakeRooms: Set<string>;
}

/** `withEvents`: rooms with events since `since` (undefined on an initial sync). */
export function planRooms(
  pass: Pass,
  memberships: readonly Membership[],
  withEvents: ReadonlySet<string> | undefined,
): Plans {
  const { since, now, filter, input } = pass;
  const plans: RoomPlan[] = [];
  const invites: Membership[] = [];
  const knocks: Membership[] = [];
  const wakeRooms = new Set<string>();
  for (const m of memberships) {
    if (m.membership !== 'leave' && m.membership !== 'ban') wakeRooms.add(m.roomId);
    if (m.forgotten || !filter.room.includesRoom(m.roomId)) continue;
    const changed = since === undefined || (m.stream ?? 0) > since.events;
    const at = m.stream ?? 0;
    switch (m.membership) {
      case 'join':
        plans.push({
          roomId: m.roomId,
          section: 'join',
          membership: m,
          fullState: since === undefined || input.fullState || changed,
          lower: since?.events,
          upper: now.events,
          fetch: since === undefined || changed || input.fullState || (withEvents?.has(m.roomId) ?? true),
        });
        break;
      case 'invite':
        if (changed) invites.push(m);
        break;
      case 'knock':
        if (changed) knocks.push(m);
        break;
      case 'leave':
      case 'ban':
        // Rooms left before `since` were reported then; older ones only when asked for.
        if (since === undefined ? filter.room.includeLeave : changed) {
          plans.push({
            roomId: m.roomId,
            section: 'leave',
            membership: m,
            fullState: since === undefined,
            lower: since?.events,
            upper: at,
            fetch: true,
          });
        }
        break;
    }
  }
  return { plans, invites, knocks, wakeRooms };
}

/**
 * The state at `since` of rooms the client already knows: the base of each state change, and
 * how a rejoin (or a profile change) is told from a room joined for the first time. Adjusts
 * the plans accordingly; empty on an initial sync.
 */
export async function statesAtSince(
  pass: Pass,
  plans: readonly RoomPlan[],
  withEvents: ReadonlySet<string> | undefined,
): Promise<Map<string, StateMap>> {
  const { since, store, userId, input } = pass;
  const sinceStates = new Map<string, StateMap>();
  if (!since) return sinceStates;
  const needing = plans.filter((p) => p.fetch);
  const loaded = await Promise.all(needing.map((p) => pass.stateAtStream(p.roomId, since.events)));
  needing.forEach((p, i) => {
    sinceStates.set(p.roomId, loaded[i] as StateMap);
  });
  // The user's own membership at `since` tells a rejoin from a first join, and a leave from a
  // room the client never had: only rooms whose membership moved since `since`, or left, ask.
  const ownKey = stateKey(MEMBER, userId);
  const asking = needing.filter((p) => p.section === 'leave' || (p.membership.stream ?? 0) > since.events);
  const ownIds = asking
    .map((p) => sinceStates.get(p.roomId)?.get(ownKey))
    .filter((id): id is string => id !== undefined);
  const ownAtSince = ownIds.length > 0 ? await store.rooms.getEvents(ownIds) : new Map<string, StoredEvent>();
  for (const p of asking) {
    const id = sinceStates.get(p.roomId)?.get(ownKey);
    const wasJoined = id !== undefined && membershipOf(ownAtSince.get(id)?.event) === 'join';
    if (p.section === 'join' && (p.membership.stream ?? 0) > since.events) {
      if (wasJoined) {
        // A member event since `since` while joined then (a profile change) is no new join.
        p.fullState = input.fullState;
        p.fetch = input.fullState || (withEvents?.has(p.roomId) ?? true);
      } else {
        // Newly joined: the whole room as an initial sync would show it.
        p.newlyJoined = true;
        p.lower = undefined;
      }
    }
    // A room left without having been joined at `since` (an invite rejected, a join and a
    // leave in between) is new to the client: all of it up to the leave.
    if (p.section === 'leave' && !wasJoined) {
      p.fullState = true;
      p.lower = undefined;
    }
  }
  return sinceStates;
}
