/**
 * The room list of one answer (MSC4186 "Lists"): the user's rooms — joined, invited, knocked,
 * and those left or banned from that this connection has already been sent — sorted by
 * recent activity (or MSC3575's `sort`, which matrix-js-sdk still sends), filtered per list
 * (`room_name_like` too), cut to each list's ranges; plus the subscribed rooms.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Membership, Store } from '../../storage/store.ts';
import { pickHeroes } from '../sync/summary.ts';
import type { ConnectionState } from './connection.ts';
import { totalUnread } from './room-data.ts';
import type { RoomFacts } from './room-facts.ts';
import type { ListFilters, ListRequest, RoomConfig } from './types.ts';

export interface ListedRoom {
  roomId: string;
  membership: Membership;
  /** The sort key, also sent as `bump_stamp`: greater is more recent. */
  stamp: number;
}

export interface RoomList {
  /** Every room of the user's server list, by room ID. */
  rooms: Map<string, ListedRoom>;
  counts: Record<string, { count: number }>;
  /** Rooms some rule matches: the configs that apply and the lists that hold them. */
  matched: Map<string, { configs: RoomConfig[]; lists: string[]; subscribed: boolean }>;
  /** Rooms a change to which concerns this user (what a long-poll waits on). */
  wakeRooms: Set<string>;
  dmRooms: Set<string>;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Rooms named in the user's `m.direct` account data. */
async function directRooms(store: Store, userId: string): Promise<Set<string>> {
  const content = await store.userData.getAccountData(userId, 'm.direct');
  const out = new Set<string>();
  for (const rooms of Object.values(content ?? {})) {
    if (Array.isArray(rooms)) for (const roomId of rooms) if (typeof roomId === 'string') out.add(roomId);
  }
  return out;
}

/** An invite the inviter marked direct (`is_direct`) counts as a DM before `m.direct` knows it. */
async function directInvites(store: Store, invites: readonly Membership[]): Promise<Set<string>> {
  const events = await store.rooms.getEvents(invites.map((m) => m.eventId));
  return new Set(
    invites.filter((m) => events.get(m.eventId)?.event.content.is_direct === true).map((m) => m.roomId),
  );
}

async function roomTags(store: Store, userId: string): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const entry of await store.userData.accountDataSince(userId, 0)) {
    if (entry.type !== 'm.tag' || entry.roomId === null) continue;
    const tags = entry.content.tags;
    out.set(entry.roomId, new Set(isObject(tags) ? Object.keys(tags) : []));
  }
  return out;
}

/** Children the given spaces (those the user is joined to) name with a valid `m.space.child`. */
async function spaceChildren(
  store: Store,
  spaces: readonly string[],
  joined: ReadonlySet<string>,
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const space of spaces) {
    if (!joined.has(space)) continue;
    for (const child of await store.rooms.currentStateEvents(space, ['m.space.child'])) {
      const via = child.event.content.via;
      if (typeof child.event.state_key === 'string' && Array.isArray(via) && via.length > 0)
        out.add(child.event.state_key);
    }
  }
  return out;
}

/**
 * Each room's name as a client shows it (client-server-api "Calculating the display name for
 * a room"): `m.room.name`, else the canonical alias, else its heroes' names, else "Empty Room".
 */
async function roomNames(
  store: Store,
  userId: string,
  roomIds: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    roomIds.map(async (roomId) => {
      const [name, alias] = await Promise.all([
        store.rooms.currentStateEvent(roomId, 'm.room.name', ''),
        store.rooms.currentStateEvent(roomId, 'm.room.canonical_alias', ''),
      ]);
      const text = name?.event.content.name ?? alias?.event.content.alias;
      if (typeof text === 'string' && text !== '') {
        out.set(roomId, text);
        return;
      }
      const members = await store.rooms.members(roomId);
      const heroes = pickHeroes(members, userId);
      const events = await store.rooms.getEvents(
        heroes.map((h) => members.find((m) => m.userId === h)?.eventId).filter((id) => id !== undefined),
      );
      const names = heroes.map((heroId) => {
        const eventId = members.find((m) => m.userId === heroId)?.eventId;
        const shown = eventId === undefined ? undefined : events.get(eventId)?.event.content.displayname;
        return typeof shown === 'string' && shown !== '' ? shown : heroId;
      });
      out.set(roomId, names.length > 0 ? names.join(', ') : 'Empty Room');
    }),
  );
  return out;
}

/** MSC3575 `by_notification_level`: rooms with highlights, then with notifications, then the rest. */
async function notificationLevels(store: Store, userId: string, rooms: readonly ListedRoom[]) {
  // One read of the counters for every joined room, not one per room.
  const joined = rooms.filter((r) => r.membership.membership === 'join').map((r) => r.roomId);
  const counters = await store.receipts.unreadCounts(userId, joined);
  const out = new Map<string, number>();
  for (const r of rooms) {
    if (r.membership.membership !== 'join') {
      out.set(r.roomId, 0);
      continue;
    }
    const counts = totalUnread(counters.get(r.roomId));
    out.set(r.roomId, counts.highlight_count > 0 ? 2 : counts.notification_count > 0 ? 1 : 0);
  }
  return out;
}

export async function buildRoomList(input: {
  store: Store;
  facts: RoomFacts;
  userId: string;
  now: number;
  state: ConnectionState;
  lists: Record<string, ListRequest>;
}): Promise<RoomList> {
  const { store, facts, userId, now, state, lists } = input;
  const memberships = await store.rooms.roomsForUser(userId);
  const wakeRooms = new Set<string>();
  const entries: Membership[] = [];
  for (const m of memberships) {
    if (m.membership !== 'leave' && m.membership !== 'ban') wakeRooms.add(m.roomId);
    if (m.forgotten) continue;
    // Rooms left or banned from stay in the list only for a connection that was sent them:
    // it must learn of the leave; a new connection has no use for them (MSC4186 "Lists").
    if ((m.membership === 'leave' || m.membership === 'ban') && !state.rooms.has(m.roomId)) continue;
    if (['join', 'invite', 'knock', 'leave', 'ban'].includes(m.membership)) entries.push(m);
  }
  const joinedIds = entries.filter((m) => m.membership === 'join').map((m) => m.roomId);
  await facts.advance(now);
  const bumps = await facts.bumpStamps(joinedIds, now);
  const rooms = new Map<string, ListedRoom>();
  for (const m of entries) {
    const own = m.stream ?? 0;
    // A joined room is as recent as its last proper event, or the join itself if later (a
    // room just joined shows at the top); other rooms as recent as the membership change.
    const stamp = m.membership === 'join' ? Math.max(bumps.get(m.roomId) ?? 0, own) : own;
    rooms.set(m.roomId, { roomId: m.roomId, membership: m, stamp });
  }
  const sorted = [...rooms.values()].sort(
    (a, b) => b.stamp - a.stamp || (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0),
  );

  // Facts the filters need, read once for all lists.
  const allFilters = Object.values(lists).map((l) => l.filters);
  const ids = sorted.map((r) => r.roomId);
  const need = (f: (x: ListFilters) => unknown) => allFilters.some((x) => f(x) !== undefined);
  const dmRooms = await directRooms(store, userId);
  for (const roomId of await directInvites(
    store,
    entries.filter((m) => m.membership === 'invite'),
  ))
    dmRooms.add(roomId);
  const encrypted = need((f) => f.isEncrypted) ? await facts.encrypted(ids) : undefined;
  const types =
    need((f) => f.roomTypes) || need((f) => f.notRoomTypes) ? await facts.roomTypes(ids) : undefined;
  const tags = need((f) => f.tags) || need((f) => f.notTags) ? await roomTags(store, userId) : undefined;
  const sorts = new Set(Object.values(lists).flatMap((l) => l.sort ?? []));
  const names =
    need((f) => f.roomNameLike) || sorts.has('by_name') ? await roomNames(store, userId, ids) : undefined;
  const levels = sorts.has('by_notification_level')
    ? await notificationLevels(store, userId, sorted)
    : undefined;
  const joinedSet = new Set(joinedIds);

  const counts: RoomList['counts'] = {};
  const matched: RoomList['matched'] = new Map();
  const match = (roomId: string) => {
    let m = matched.get(roomId);
    if (!m) {
      m = { configs: [], lists: [], subscribed: false };
      matched.set(roomId, m);
    }
    return m;
  };
  for (const [name, list] of Object.entries(lists)) {
    const f = list.filters;
    const inSpaces = f.spaces ? await spaceChildren(store, f.spaces, joinedSet) : undefined;
    const nameLike = f.roomNameLike?.toLowerCase();
    const filtered = sorted.filter((r) => {
      const membership = r.membership.membership;
      if (f.isDm !== undefined && dmRooms.has(r.roomId) !== f.isDm) return false;
      if (f.isInvite !== undefined && (membership === 'invite') !== f.isInvite) return false;
      if (f.isEncrypted !== undefined && (encrypted?.get(r.roomId) ?? false) !== f.isEncrypted) return false;
      if (inSpaces && !inSpaces.has(r.roomId)) return false;
      const type = types?.get(r.roomId) ?? null;
      if (f.roomTypes && !f.roomTypes.includes(type)) return false;
      if (f.notRoomTypes?.includes(type)) return false;
      const roomTags = tags?.get(r.roomId);
      if (f.notTags?.some((t) => roomTags?.has(t))) return false;
      if (f.tags && !f.tags.some((t) => roomTags?.has(t))) return false;
      if (nameLike !== undefined && !(names?.get(r.roomId) ?? '').toLowerCase().includes(nameLike))
        return false;
      return true;
    });
    // `sorted` is by recency; other orders go first, recency still breaking their ties.
    if (list.sort?.some((order) => order !== 'by_recency')) {
      const orders = list.sort.slice(0, list.sort.indexOf('by_recency') + 1 || undefined);
      const rank = new Map(filtered.map((r, i) => [r.roomId, i]));
      const compare = (a: ListedRoom, b: ListedRoom): number => {
        for (const order of orders) {
          let d = 0;
          if (order === 'by_name') {
            const x = (names?.get(a.roomId) ?? '').toLowerCase();
            const y = (names?.get(b.roomId) ?? '').toLowerCase();
            d = x < y ? -1 : x > y ? 1 : 0;
          } else if (order === 'by_notification_level')
            d = (levels?.get(b.roomId) ?? 0) - (levels?.get(a.roomId) ?? 0);
          else d = (rank.get(a.roomId) ?? 0) - (rank.get(b.roomId) ?? 0);
          if (d !== 0) return d;
        }
        return (rank.get(a.roomId) ?? 0) - (rank.get(b.roomId) ?? 0);
      };
      filtered.sort(compare);
    }
    counts[name] = { count: filtered.length };
    const ranges = list.ranges ?? [[0, filtered.length - 1]];
    const picked = new Set<number>();
    for (const [start, end] of ranges) {
      for (let i = start; i <= Math.min(end, filtered.length - 1); i++) picked.add(i);
    }
    for (const i of [...picked].sort((a, b) => a - b)) {
      const room = filtered[i] as ListedRoom;
      const m = match(room.roomId);
      m.configs.push(list);
      m.lists.push(name);
    }
  }
  // Subscriptions: only rooms the user may see — joined, invited, knocked, or the connection's
  // left ones (MSC4186 "Subscriptions"); others are ignored.
  for (const [roomId, config] of state.subscriptions) {
    if (!rooms.has(roomId)) continue;
    const m = match(roomId);
    m.configs.push(config);
    m.subscribed = true;
  }
  return { rooms, counts, matched, wakeRooms, dmRooms };
}
