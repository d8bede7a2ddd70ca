/**
 * The room `summary` of /sync (data/api/client-server/sync.yaml "RoomSummary"): member
 * counts, and `m.heroes` when the room has no `m.room.name` nor `m.room.canonical_alias`
 * (or they are empty) — "the first 5 members of the room, ordered by stream ordering, which
 * are joined or invited … never the client's own user ID. When no joined or invited members
 * are available, … the banned and left users."
 */
import { type StateKey, stateKey } from '../../core/pdu.ts';
import type { Membership, Store, StoredEvent } from '../../storage/store.ts';

export const MAX_HEROES = 5;

export interface RoomSummary {
  'm.heroes'?: string[];
  'm.joined_member_count': number;
  'm.invited_member_count': number;
}

const byStream = (a: Membership, b: Membership) =>
  (a.stream ?? Number.MAX_SAFE_INTEGER) - (b.stream ?? Number.MAX_SAFE_INTEGER) ||
  (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);

/** Heroes from a room's memberships, as the spec orders and falls back. */
export function pickHeroes(members: readonly Membership[], userId: string): string[] {
  const others = members.filter((m) => m.userId !== userId);
  const present = others.filter((m) => m.membership === 'join' || m.membership === 'invite').sort(byStream);
  const chosen =
    present.length > 0
      ? present
      : others.filter((m) => m.membership === 'leave' || m.membership === 'ban').sort(byStream);
  return chosen.slice(0, MAX_HEROES).map((m) => m.userId);
}

/** Whether the room has a non-empty name or canonical alias now. */
async function hasNameOrAlias(store: Store, roomId: string): Promise<boolean> {
  const [name, alias] = await Promise.all([
    store.rooms.currentStateEvent(roomId, 'm.room.name', ''),
    store.rooms.currentStateEvent(roomId, 'm.room.canonical_alias', ''),
  ]);
  const nameValue = name?.event.content.name;
  const aliasValue = alias?.event.content.alias;
  return (
    (typeof nameValue === 'string' && nameValue !== '') ||
    (typeof aliasValue === 'string' && aliasValue !== '')
  );
}

export async function roomSummary(store: Store, roomId: string, userId: string): Promise<RoomSummary> {
  const [members, named] = await Promise.all([store.rooms.members(roomId), hasNameOrAlias(store, roomId)]);
  const summary: RoomSummary = {
    'm.joined_member_count': members.filter((m) => m.membership === 'join').length,
    'm.invited_member_count': members.filter((m) => m.membership === 'invite').length,
  };
  if (!named) summary['m.heroes'] = pickHeroes(members, userId);
  return summary;
}

/** Whether a state holds a non-empty name or canonical alias. */
function namedIn(state: ReadonlyMap<StateKey, StoredEvent>): boolean {
  const name = state.get(stateKey('m.room.name', ''))?.event.content.name;
  const alias = state.get(stateKey('m.room.canonical_alias', ''))?.event.content.alias;
  return (typeof name === 'string' && name !== '') || (typeof alias === 'string' && alias !== '');
}

/** The summary read from a room's whole state (its member events with their stream positions). */
export function summaryFromState(state: ReadonlyMap<StateKey, StoredEvent>, userId: string): RoomSummary {
  const members: Membership[] = [];
  for (const stored of state.values()) {
    const pdu = stored.event;
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') continue;
    const membership = typeof pdu.content.membership === 'string' ? pdu.content.membership : 'leave';
    members.push({
      roomId: stored.roomId,
      userId: pdu.state_key,
      membership,
      eventId: pdu.event_id,
      stream: stored.stream,
      forgotten: false,
    });
  }
  const summary: RoomSummary = {
    'm.joined_member_count': members.filter((m) => m.membership === 'join').length,
    'm.invited_member_count': members.filter((m) => m.membership === 'invite').length,
  };
  if (!namedIn(state)) summary['m.heroes'] = pickHeroes(members, userId);
  return summary;
}
