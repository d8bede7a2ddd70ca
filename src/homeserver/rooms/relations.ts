/**
 * Relations and threads — client-server-api "Relationship types"/"Relations" (relations.yaml:
 * `GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`) and "Threading"
 * (threads_list.yaml: `GET /rooms/{roomId}/threads`). The parent must be an event the viewer
 * may see (else 404, as /event answers); children are shown under history visibility and
 * with their own bundled aggregations (client-event.ts).
 *
 * Order is stream order (the order this server learned events), which for a room's children is
 * the topological order of their arrival; tokens are stream tokens (`p…`, tokens.ts), and a
 * sync or /messages token is taken for `from`/`to` as the spec allows.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Relation, StoredEvent } from '../../storage/store.ts';
import { loadClientEvents, type Viewer } from '../client-event.ts';
import type { HomeserverContext } from '../context.ts';
import { invalidParam } from '../errors.ts';
import { formatStreamToken, parseStreamToken } from '../tokens.ts';
import type { RoomsService } from './index.ts';
import type { RoomReadService } from './read.ts';

/** relations.yaml: "the server should apply a default value when not supplied". */
export const DEFAULT_RELATIONS_LIMIT = 5;
export const MAX_RELATIONS_LIMIT = 1000;
/** How deep `recurse=true` follows relations of relations (relations.yaml `recursion_depth`). */
export const RECURSION_DEPTH = 3;
/** Children gathered at most for a recursive answer. */
const MAX_RECURSED = 2000;
export const DEFAULT_THREADS_LIMIT = 20;
/** Store pages read at most for one answer when filters (type, visibility, participation) drop rows. */
const MAX_PAGES = 20;

export interface RelationsQuery {
  relType?: string;
  eventType?: string;
  from?: string;
  to?: string;
  limit?: number;
  dir?: 'f' | 'b';
  recurse?: boolean;
}

export interface ThreadsQuery {
  include: 'all' | 'participated';
  from?: string;
  limit?: number;
}

export interface RelationsService {
  relations(viewer: Viewer, roomId: string, eventId: string, query: RelationsQuery): Promise<JsonObject>;
  threads(viewer: Viewer, roomId: string, query: ThreadsQuery): Promise<JsonObject>;
}

export interface RelationsDeps {
  rooms: Pick<RoomsService, 'filterVisible'>;
  /** Checks the viewer may see the parent (403/404 as /event answers). */
  roomRead: Pick<RoomReadService, 'event' | 'messages'>;
}

function tokenParam(token: string | undefined, name: string): number | undefined {
  if (token === undefined) return undefined;
  const position = parseStreamToken(token);
  if (position === null)
    throw invalidParam(`Query parameter "${name}": not a pagination token of this server`);
  return position;
}

export function createRelationsService(ctx: HomeserverContext, deps: RelationsDeps): RelationsService {
  const { store, clock } = ctx;

  /** Direct children in order, with the token to go on from (a place, as tokens.ts defines). */
  async function directChildren(
    eventId: string,
    query: RelationsQuery,
    limit: number,
  ): Promise<{ rows: Relation[]; next: number | null }> {
    const dir = query.dir ?? 'b';
    const to = tokenParam(query.to, 'to');
    const beyond = (stream: number) => to !== undefined && (dir === 'b' ? stream <= to : stream > to);
    let cursor = tokenParam(query.from, 'from');
    const rows: Relation[] = [];
    const pageLimit = Math.min(Math.max(limit * 2, 20), MAX_RELATIONS_LIMIT);
    for (let page = 0; page < MAX_PAGES; page++) {
      const batch = await store.rooms.relations(eventId, {
        ...(query.relType !== undefined ? { relType: query.relType } : {}),
        ...(cursor !== undefined ? { from: cursor } : {}),
        dir,
        limit: pageLimit,
      });
      for (const row of batch) {
        if (typeof row.stream !== 'number' || beyond(row.stream)) return { rows, next: null };
        if (query.eventType !== undefined && row.type !== query.eventType) continue;
        // One more than asked for says whether a next page exists; it is not returned.
        if (rows.length === limit) return { rows, next: cursor ?? null };
        cursor = dir === 'b' ? row.stream - 1 : row.stream;
        rows.push(row);
      }
      if (batch.length < pageLimit) return { rows, next: null };
      cursor = dir === 'b' ? (batch.at(-1)?.stream as number) - 1 : (batch.at(-1)?.stream as number);
    }
    return { rows, next: cursor ?? null };
  }

  /** Every child down to RECURSION_DEPTH, then filtered and paged in memory. */
  async function recursiveChildren(eventId: string, query: RelationsQuery, limit: number) {
    const all: Relation[] = [];
    const seen = new Set([eventId]);
    let level = [eventId];
    for (let depth = 0; depth < RECURSION_DEPTH && level.length > 0; depth++) {
      const next: string[] = [];
      for (const parent of level) {
        for (const row of await store.rooms.relations(parent, { dir: 'f', limit: MAX_RECURSED })) {
          if (seen.has(row.eventId) || typeof row.stream !== 'number') continue;
          seen.add(row.eventId);
          all.push(row);
          next.push(row.eventId);
        }
        if (all.length >= MAX_RECURSED) break;
      }
      level = next;
    }
    const dir = query.dir ?? 'b';
    const from = tokenParam(query.from, 'from');
    const to = tokenParam(query.to, 'to');
    const inRange = (s: number) =>
      dir === 'b'
        ? (from === undefined || s <= from) && (to === undefined || s > to)
        : (from === undefined || s > from) && (to === undefined || s <= to);
    const rows = all
      .filter((r) => inRange(r.stream))
      .filter((r) => query.relType === undefined || r.relType === query.relType)
      .filter((r) => query.eventType === undefined || r.type === query.eventType)
      .sort((a, b) => (dir === 'b' ? b.stream - a.stream : a.stream - b.stream));
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const next = rows.length > limit && last ? (dir === 'b' ? last.stream - 1 : last.stream) : null;
    return { rows: page, next };
  }

  const format = (events: readonly StoredEvent[], viewer: Viewer) =>
    loadClientEvents(store, events, viewer, clock.now());

  return {
    async relations(viewer, roomId, eventId, query) {
      // The parent: visible to the viewer, in this room (else 403/404 as for /event).
      await deps.roomRead.event(viewer, roomId, eventId);
      const limit = Math.min(query.limit ?? DEFAULT_RELATIONS_LIMIT, MAX_RELATIONS_LIMIT);
      if (limit === 0) return { chunk: [] };
      const { rows, next } = query.recurse
        ? await recursiveChildren(eventId, query, limit)
        : await directChildren(eventId, query, limit);
      const found = await store.rooms.getEvents(rows.map((r) => r.eventId));
      const children = rows
        .map((r) => found.get(r.eventId))
        // A child claiming a parent in another room relates to nothing here.
        .filter((e): e is StoredEvent => e !== undefined && e.roomId === roomId && e.rejected === null);
      const visible = await deps.rooms.filterVisible(viewer.userId, roomId, children);
      const body: JsonObject = { chunk: await format(visible, viewer) };
      if (next !== null) body.next_batch = formatStreamToken(next);
      if (query.from !== undefined) body.prev_batch = query.from;
      if (query.recurse) body.recursion_depth = RECURSION_DEPTH;
      return body;
    },

    async threads(viewer, roomId, query) {
      // Membership and history visibility as for /messages (403 for a room the viewer cannot read).
      await deps.roomRead.messages(viewer, roomId, { dir: 'b', limit: 0 });
      const limit = Math.min(query.limit ?? DEFAULT_THREADS_LIMIT, MAX_RELATIONS_LIMIT);
      const from = tokenParam(query.from, 'from');
      let before = from === undefined ? undefined : from + 1;
      const roots: StoredEvent[] = [];
      let next: number | null = null;
      for (let page = 0; page < MAX_PAGES && roots.length < limit; page++) {
        const batch = await store.rooms.threads(roomId, {
          ...(before !== undefined ? { before } : {}),
          limit,
        });
        const ids = batch.threads.map((t) => t.rootId);
        const [found, participated] = await Promise.all([
          store.rooms.getEvents(ids),
          query.include === 'participated'
            ? store.rooms.threadParticipants(viewer.userId, ids)
            : Promise.resolve(null),
        ]);
        const candidates = batch.threads
          .map((t) => ({ thread: t, root: found.get(t.rootId) }))
          .filter(({ root }) => root !== undefined && root.roomId === roomId && root.rejected === null)
          .filter(
            ({ thread, root }) =>
              participated === null ||
              participated.has(thread.rootId) ||
              root?.event.sender === viewer.userId,
          );
        const visible = new Set(
          await deps.rooms.filterVisible(
            viewer.userId,
            roomId,
            candidates.map((c) => c.root as StoredEvent),
          ),
        );
        next = null;
        for (const { thread, root } of candidates) {
          if (!visible.has(root as StoredEvent)) continue;
          roots.push(root as StoredEvent);
          if (roots.length === limit) {
            next = thread.latest - 1;
            break;
          }
        }
        if (roots.length === limit) {
          // Go on after the last root given, unless it was the last thread of the room.
          if (batch.next === null && batch.threads.at(-1)?.rootId === roots.at(-1)?.event.event_id)
            next = null;
          break;
        }
        if (batch.next === null) break;
        before = batch.next;
        next = batch.next - 1;
      }
      const body: JsonObject = { chunk: await format(roots, viewer) };
      if (next !== null) body.next_batch = formatStreamToken(next);
      return body;
    },
  };
}
