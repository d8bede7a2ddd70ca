/**
 * Server-side search — client-server-api "Server Side Search" (search.yaml, `POST /search`) —
 * and the user directory (users.yaml, `POST /user_directory/search`).
 *
 * Room events: the words of `search_term` (core/search-text.ts, the same tokenizer the index
 * uses) must all be in an event's body, name or topic (the asked `keys`). Candidates come from
 * the store's word index (schema v6), newest first, limited to rooms the user is or was in;
 * each is then checked against the loaded event (its text still holds the words: a redacted
 * event no longer does), the request's RoomEventFilter, and history visibility. `recent`
 * pages by stream position; `rank` ranks the first RANK_WINDOW matches (word frequency over
 * the text's length) and pages by offset into that ranking.
 *
 * User directory: users who share a joined room with the searcher, or are joined to a room in
 * the public directory (the spec's minimum), matched word-prefix-wise on user ID and display
 * name.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import { searchableText, searchWords } from '../core/search-text.ts';
import type { StoredEvent } from '../storage/store.ts';
import { loadClientEvents, type Viewer } from './client-event.ts';
import type { HomeserverContext } from './context.ts';
import { invalidParam } from './errors.ts';
import { matchesEventFilter, type RoomEventFilter } from './filter.ts';
import type { RoomsService } from './rooms/index.ts';
import type { RoomReadService } from './rooms/read.ts';

/** search.yaml `filter.limit`: results per page when the filter sets none. */
export const DEFAULT_SEARCH_LIMIT = 10;
export const MAX_SEARCH_LIMIT = 100;
/** Matches ranked at most for `order_by: rank` (the ranking is over these, newest first). */
export const RANK_WINDOW = 500;
/** search.yaml `event_context`: "Defaults to 5". */
const DEFAULT_CONTEXT = 5;
const MAX_CONTEXT = 50;
/** users.yaml: "Defaults to 10". */
export const DEFAULT_DIRECTORY_LIMIT = 10;
const MAX_DIRECTORY_LIMIT = 100;
/** Store rounds per search call when filters and visibility drop candidates. */
const MAX_ROUNDS = 10;

export type SearchKey = 'content.body' | 'content.name' | 'content.topic';

export interface RoomEventsCriteria {
  search_term: string;
  keys?: SearchKey[];
  filter?: RoomEventFilter;
  order_by?: 'recent' | 'rank';
  event_context?: { before_limit?: number; after_limit?: number; include_profile?: boolean };
  include_state?: boolean;
  groupings?: { group_by?: { key?: 'room_id' | 'sender' }[] };
}

export interface SearchService {
  search(viewer: Viewer, criteria: RoomEventsCriteria, nextBatch?: string): Promise<JsonObject>;
  userDirectory(userId: string, term: string, limit?: number): Promise<JsonObject>;
}

export interface SearchDeps {
  rooms: Pick<RoomsService, 'filterVisible'>;
  roomRead: Pick<RoomReadService, 'context'>;
}

/** next_batch: `recent` pages by position, `rank` by offset into the ranking. */
type Cursor = { order: 'recent'; before: number } | { order: 'rank'; offset: number };

function parseCursor(token: string | undefined, order: 'recent' | 'rank'): Cursor | undefined {
  if (token === undefined) return undefined;
  const match = /^(recent|rank):(-?\d{1,16})$/.exec(token);
  if (!match || match[1] !== order) throw invalidParam('next_batch is not a token of this search');
  const n = Number(match[2]);
  return order === 'recent' ? { order, before: n } : { order, offset: Math.max(0, n) };
}

const formatCursor = (c: Cursor) => (c.order === 'recent' ? `recent:${c.before}` : `rank:${c.offset}`);

export function createSearchService(ctx: HomeserverContext, deps: SearchDeps): SearchService {
  const { store, clock } = ctx;

  /** Rooms whose events the user may find: any membership they have or had, narrowed by the filter. */
  async function searchableRooms(userId: string, filter: RoomEventFilter | undefined): Promise<Set<string>> {
    const rooms = new Set(
      (await store.rooms.roomsForUser(userId))
        .filter((m) => m.membership === 'join' || m.membership === 'leave' || m.membership === 'ban')
        .map((m) => m.roomId),
    );
    if (filter?.rooms) for (const id of [...rooms]) if (!filter.rooms.includes(id)) rooms.delete(id);
    for (const id of filter?.not_rooms ?? []) rooms.delete(id);
    return rooms;
  }

  /** How often the asked words occur in the event's text, over its length; 0 when it no longer matches. */
  function score(event: StoredEvent, terms: readonly string[], keys: readonly string[]): number {
    const found = searchableText(event.event.type, event.event.content);
    if (!found || !keys.includes(found.key)) return 0;
    const words = searchWords(found.text);
    const have = new Set(words);
    if (!terms.every((t) => have.has(t))) return 0;
    const asked = new Set(terms);
    const hits = words.filter((w) => asked.has(w)).length;
    return hits / Math.sqrt(words.length);
  }

  /** Matching, visible events, newest first, from `before`; at most `want`, and where to go on. */
  async function matching(
    userId: string,
    roomIds: ReadonlySet<string>,
    terms: readonly string[],
    keys: readonly string[],
    filter: RoomEventFilter | undefined,
    want: number,
    before: number | undefined,
  ): Promise<{ found: { event: StoredEvent; rank: number }[]; next: number | null }> {
    const found: { event: StoredEvent; rank: number }[] = [];
    let cursor = before;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const page = await store.rooms.searchEvents({
        terms,
        roomIds,
        limit: want - found.length,
        ...(cursor !== undefined ? { before: cursor } : {}),
      });
      const loaded = await store.rooms.getEvents(page.hits.map((h) => h.eventId));
      const candidates = page.hits
        .map((h) => loaded.get(h.eventId))
        .filter((e): e is StoredEvent => e !== undefined && e.rejected === null && e.redactedBy === null)
        .filter((e) => !filter || matchesEventFilter(filter, e.event, e.roomId))
        .map((event) => ({ event, rank: score(event, terms, keys) }))
        .filter((c) => c.rank > 0);
      // History visibility, room by room, keeping the newest-first order.
      const byRoom = new Map<string, StoredEvent[]>();
      for (const { event } of candidates)
        byRoom.set(event.roomId, [...(byRoom.get(event.roomId) ?? []), event]);
      const visible = new Set<StoredEvent>();
      for (const [roomId, events] of byRoom)
        for (const e of await deps.rooms.filterVisible(userId, roomId, events)) visible.add(e);
      found.push(...candidates.filter((c) => visible.has(c.event)));
      if (page.next === null) return { found, next: null };
      cursor = page.next;
      if (found.length >= want) break;
    }
    return { found, next: cursor ?? null };
  }

  async function context(
    viewer: Viewer,
    event: StoredEvent,
    options: NonNullable<RoomEventsCriteria['event_context']>,
  ): Promise<JsonObject> {
    const before = Math.min(options.before_limit ?? DEFAULT_CONTEXT, MAX_CONTEXT);
    const after = Math.min(options.after_limit ?? DEFAULT_CONTEXT, MAX_CONTEXT);
    // /context splits its limit evenly: ask for twice the larger side, keep what was asked.
    const around = await deps.roomRead.context(viewer, event.roomId, event.event.event_id, {
      limit: 2 * Math.max(before, after),
      filter: { lazy_load_members: true },
    });
    const out: JsonObject = {
      start: around.start as string,
      end: around.end as string,
      events_before: (around.events_before as JsonObject[]).slice(0, before),
      events_after: (around.events_after as JsonObject[]).slice(0, after),
    };
    if (options.include_profile) {
      const profiles: JsonObject = {};
      for (const member of around.state as JsonObject[]) {
        const content = member.content as JsonObject;
        const info: JsonObject = {};
        if (typeof content.displayname === 'string') info.displayname = content.displayname;
        if (typeof content.avatar_url === 'string') info.avatar_url = content.avatar_url;
        profiles[member.state_key as string] = info;
      }
      out.profile_info = profiles;
    }
    return out;
  }

  return {
    async search(viewer, criteria, nextBatch) {
      const order = criteria.order_by ?? 'rank';
      const cursor = parseCursor(nextBatch, order);
      const terms = [...new Set(searchWords(criteria.search_term))];
      const keys = criteria.keys ?? ['content.body', 'content.name', 'content.topic'];
      const filter = criteria.filter;
      const limit = Math.min(filter?.limit ?? DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT);
      const roomIds = terms.length > 0 ? await searchableRooms(viewer.userId, filter) : new Set<string>();

      let page: { event: StoredEvent; rank: number }[] = [];
      let next: Cursor | null = null;
      let count: number | undefined;
      if (roomIds.size > 0 && limit > 0) {
        if (order === 'recent') {
          const before = cursor?.order === 'recent' ? cursor.before : undefined;
          const { found, next: more } = await matching(
            viewer.userId,
            roomIds,
            terms,
            keys,
            filter,
            limit,
            before,
          );
          page = found.slice(0, limit);
          const last = page.at(-1);
          if (found.length > limit && last) next = { order, before: last.event.stream as number };
          else if (more !== null) next = { order, before: more };
        } else {
          const offset = cursor?.order === 'rank' ? cursor.offset : 0;
          const { found } = await matching(
            viewer.userId,
            roomIds,
            terms,
            keys,
            filter,
            RANK_WINDOW,
            undefined,
          );
          const ranked = found.sort(
            (a, b) => b.rank - a.rank || (b.event.stream ?? 0) - (a.event.stream ?? 0),
          );
          count = ranked.length;
          page = ranked.slice(offset, offset + limit);
          if (offset + limit < ranked.length) next = { order, offset: offset + limit };
        }
      }

      const events = await loadClientEvents(
        store,
        page.map((p) => p.event),
        viewer,
        clock.now(),
      );
      const results: JsonObject[] = [];
      for (const [i, { event, rank }] of page.entries()) {
        const result: JsonObject = { rank, result: events[i] as JsonObject };
        if (criteria.event_context) result.context = await context(viewer, event, criteria.event_context);
        results.push(result);
      }
      const body: JsonObject = { results, highlights: terms, count: count ?? results.length };
      if (next) body.next_batch = formatCursor(next);

      const groupBy = (criteria.groupings?.group_by ?? []).map((g) => g.key).filter((k) => k !== undefined);
      if (groupBy.length > 0) {
        const groups: JsonObject = {};
        for (const key of new Set(groupBy)) {
          const byKey: Record<string, { results: string[]; order: number }> = {};
          for (const { event } of page) {
            const value = key === 'room_id' ? event.roomId : event.event.sender;
            const group = byKey[value] ?? { results: [], order: Object.keys(byKey).length + 1 };
            byKey[value] = group;
            group.results.push(event.event.event_id);
          }
          groups[key] = byKey;
        }
        body.groups = groups;
      }
      if (criteria.include_state) {
        const state: JsonObject = {};
        for (const roomId of new Set(page.map((p) => p.event.roomId))) {
          const events = await store.rooms.currentStateEvents(roomId);
          state[roomId] = await loadClientEvents(store, events, viewer, clock.now(), {
            prevContent: false,
            relations: false,
          });
        }
        body.state = state;
      }
      return { search_categories: { room_events: body } };
    },

    async userDirectory(userId, term, limit = DEFAULT_DIRECTORY_LIMIT) {
      const max = Math.min(limit, MAX_DIRECTORY_LIMIT);
      const words = searchWords(term);
      const rooms = new Set([
        ...(await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId),
        ...(await store.rooms.publishedRooms()),
      ]);
      // Each candidate once, with the display name and avatar of its membership.
      const users = new Map<string, { displayName?: string; avatarUrl?: string }>();
      for (const roomId of rooms) {
        for (const member of await store.rooms.currentStateEvents(roomId, ['m.room.member'])) {
          const content = member.event.content;
          const id = member.event.state_key;
          if (content.membership !== 'join' || id === undefined || users.has(id)) continue;
          users.set(id, {
            ...(typeof content.displayname === 'string' ? { displayName: content.displayname } : {}),
            ...(typeof content.avatar_url === 'string' ? { avatarUrl: content.avatar_url } : {}),
          });
        }
      }
      const results: JsonObject[] = [];
      let limited = false;
      for (const [id, profile] of [...users].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const have = searchWords(`${id} ${profile.displayName ?? ''}`);
        // Every word of the term starts some word of the user's ID or name.
        if (!words.every((w) => have.some((h) => h.startsWith(w)))) continue;
        if (results.length === max) {
          limited = true;
          break;
        }
        const entry: JsonObject = { user_id: id };
        if (profile.displayName !== undefined) entry.display_name = profile.displayName;
        if (profile.avatarUrl !== undefined) entry.avatar_url = profile.avatarUrl;
        results.push(entry);
      }
      return { results, limited };
    },
  };
}
