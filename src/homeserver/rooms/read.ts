/**
 * The read side of rooms — client-server-api "Getting events for a room" (rooms.yaml:
 * /event, /state, /state/{type}/{key}, /members, /joined_members; list_joined_rooms.yaml),
 * "Retrieving the event context" (event_context.yaml), "Pagination" / "Syncing"
 * (message_pagination.yaml), "Lazy-loading room members", and modules/history_visibility.md.
 *
 * Who may read what:
 * - a joined user reads the current state, and events history visibility lets them see;
 * - a user who left (or was banned) reads the state as it was when they left, and events up to
 *   their leave ("After a user has left a room, they may see any events which they were
 *   allowed to see before they left the room, but no events received after they left");
 * - anyone reads a `world_readable` room;
 * - anyone else (never joined, only invited or knocking) gets 403 M_FORBIDDEN.
 *
 * History from before what this server holds (a room joined over federation): paging back
 * onto an event whose prev events are not here asks the room's other servers for it
 * (`backfill`, federation-inbound/receive.ts) once per gap, and reads the page again.
 *
 * Tokens (tokens.ts): /messages takes sync tokens (`s…`, a sync's `prev_batch`/`next_batch`)
 * and topological tokens (`t…`, its own `start`/`end`); it answers with topological ones.
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import { referencedIds, type StateMap, splitStateKey, stateKey } from '../../core/pdu.ts';
import type { StoredEvent, TopoToken } from '../../storage/store.ts';
import { loadClientEvents, type Viewer } from '../client-event.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, notFound } from '../errors.ts';
import { matchesEventFilter, type RoomEventFilter } from '../filter.ts';
import { formatTopoToken, parseSyncToken, parseTopoToken } from '../tokens.ts';
import type { RoomsService } from './index.ts';
import { eventAtTimestamp } from './timestamp.ts';

const MEMBER = 'm.room.member';
const HISTORY_VISIBILITY = 'm.room.history_visibility';

/** message_pagination.yaml: "Default: 10". */
export const DEFAULT_MESSAGES_LIMIT = 10;
/** Bounds one /messages or /context answer (events formatted, visibility checked). */
export const MAX_MESSAGES_LIMIT = 1000;
/** event_context.yaml: "Defaults to 10." */
export const DEFAULT_CONTEXT_LIMIT = 10;
/**
 * Store pages read at most per /messages call when history visibility hides everything found:
 * the answer then has an empty chunk and an `end` to go on from, as the spec allows.
 */
const MAX_HIDDEN_PAGES = 5;

export type MembershipKind = 'join' | 'invite' | 'knock' | 'leave' | 'ban';

export interface MembersQuery {
  at?: string;
  membership?: MembershipKind;
  notMembership?: MembershipKind;
}

export interface MessagesQuery {
  dir: 'b' | 'f';
  from?: string;
  to?: string;
  limit?: number;
  filter?: RoomEventFilter;
}

export interface ContextQuery {
  limit?: number;
  filter?: RoomEventFilter;
}

export interface RoomReadService {
  /** `GET /joined_rooms` */
  joinedRooms(userId: string): Promise<string[]>;
  /** `GET /rooms/{roomId}/state` */
  state(viewer: Viewer, roomId: string): Promise<JsonObject[]>;
  /** `GET /rooms/{roomId}/state/{eventType}/{stateKey}`: the content, or the client event for `format=event`. */
  stateEvent(
    viewer: Viewer,
    roomId: string,
    type: string,
    key: string,
    format: 'content' | 'event',
  ): Promise<JsonObject>;
  /** `GET /rooms/{roomId}/members` */
  members(viewer: Viewer, roomId: string, query: MembersQuery): Promise<JsonObject[]>;
  /** `GET /rooms/{roomId}/joined_members` */
  joinedMembers(userId: string, roomId: string): Promise<Record<string, JsonObject>>;
  /** `GET /rooms/{roomId}/event/{eventId}` */
  event(viewer: Viewer, roomId: string, eventId: string): Promise<JsonObject>;
  /** `GET /rooms/{roomId}/context/{eventId}` */
  context(viewer: Viewer, roomId: string, eventId: string, query: ContextQuery): Promise<JsonObject>;
  /** `GET /rooms/{roomId}/messages` */
  messages(viewer: Viewer, roomId: string, query: MessagesQuery): Promise<JsonObject>;
  /** `GET /rooms/{roomId}/timestamp_to_event` (rooms/timestamp.ts) */
  timestampToEvent(viewer: Viewer, roomId: string, ts: number, dir: 'f' | 'b'): Promise<JsonObject>;
}

/** How a user may read a room (see the module comment). */
type Access =
  | { kind: 'joined' }
  | { kind: 'world_readable' }
  /** Left or banned: everything is read as of the membership event that ended it. */
  | { kind: 'departed'; eventId: string; until: TopoToken | null };

const compareTopo = (a: TopoToken, b: TopoToken) => a.depth - b.depth || a.stream - b.stream;
const minTopo = (a: TopoToken, b: TopoToken) => (compareTopo(a, b) <= 0 ? a : b);
const topoOf = (e: StoredEvent): TopoToken => ({ depth: e.depth, stream: e.stream as number });

export interface RoomReadDeps {
  rooms: Pick<RoomsService, 'filterVisible'>;
  /** Fetches older history of a room from other servers; how many events it stored. */
  backfill?: (roomId: string, from: readonly string[], limit: number) => Promise<number>;
}

export function createRoomReadService(ctx: HomeserverContext, deps: RoomReadDeps): RoomReadService {
  const { store, clock } = ctx;
  const { rooms } = deps;

  /** Events of the page whose prev events are not (all) in the room's DAG here: where history stops. */
  async function gapsIn(events: readonly StoredEvent[]): Promise<string[]> {
    const prevs = [...new Set(events.flatMap((e) => referencedIds(e.event.prev_events)))];
    if (prevs.length === 0) return [];
    const found = await store.rooms.getEvents(prevs);
    const held = (id: string) => {
      const stored = found.get(id);
      return stored !== undefined && !stored.outlier;
    };
    return events
      .filter((e) => referencedIds(e.event.prev_events).some((id) => !held(id)))
      .map((e) => e.event.event_id);
  }

  async function access(userId: string, roomId: string): Promise<Access> {
    const membership = await store.rooms.membership(roomId, userId);
    if (membership?.membership === 'join') return { kind: 'joined' };
    if (membership && (membership.membership === 'leave' || membership.membership === 'ban')) {
      const ended = await store.rooms.getEvent(membership.eventId);
      if (ended && ended.stream !== null)
        return { kind: 'departed', eventId: membership.eventId, until: topoOf(ended) };
    }
    const visibility = await store.rooms.currentStateEvent(roomId, HISTORY_VISIBILITY, '');
    if (visibility?.event.content.history_visibility === 'world_readable') return { kind: 'world_readable' };
    throw forbidden(`You are not a member of ${roomId}`);
  }

  /** The state a user reads: current, or at their departure. */
  async function visibleStateMap(a: Access, roomId: string): Promise<StateMap> {
    if (a.kind !== 'departed') return store.rooms.currentState(roomId);
    return (await store.rooms.stateAt(a.eventId, 'after')) ?? new Map();
  }

  async function eventsOf(
    state: StateMap,
    keep: (type: string, key: string) => boolean = () => true,
  ): Promise<StoredEvent[]> {
    const ids: string[] = [];
    for (const [key, id] of state) {
      const [type, k] = splitStateKey(key);
      if (keep(type, k)) ids.push(id);
    }
    const found = await store.rooms.getEvents(ids);
    return ids.map((id) => found.get(id)).filter((e): e is StoredEvent => e !== undefined);
  }

  // State and member lists (prevContent false) carry no aggregations: they are not timelines.
  const format = (events: readonly StoredEvent[], viewer: Viewer, prevContent = true) =>
    loadClientEvents(store, events, viewer, clock.now(), { prevContent, relations: prevContent });

  /** An event of this room that the user may see, or M_NOT_FOUND. */
  async function visibleEvent(userId: string, roomId: string, eventId: string): Promise<StoredEvent> {
    const event = await store.rooms.getEvent(eventId);
    if (event && event.roomId === roomId && event.rejected === null) {
      const [visible] = await rooms.filterVisible(userId, roomId, [event]);
      if (visible) return visible;
    }
    throw notFound(`Event ${eventId} not found in ${roomId}`);
  }

  /** A pagination token as a place in topological order; null for "before the room began". */
  async function topoFrom(roomId: string, token: string, name: string): Promise<TopoToken | null> {
    const topo = parseTopoToken(token);
    if (topo) return topo;
    const sync = parseSyncToken(token);
    if (!sync) throw invalidParam(`Query parameter "${name}": not a pagination token of this server`);
    const at = await store.rooms.eventAtStream(roomId, sync.events);
    return at && at.stream !== null ? topoOf(at) : null;
  }

  /** Membership events of `senders` for lazy-loading, read from the given states. */
  async function lazyMembers(
    senders: ReadonlySet<string>,
    states: readonly (StateMap | null)[],
  ): Promise<StoredEvent[]> {
    const ids = new Map<string, string>();
    for (const state of states) {
      if (!state) continue;
      for (const sender of senders) {
        if (ids.has(sender)) continue;
        const id = state.get(stateKey(MEMBER, sender));
        if (id) ids.set(sender, id);
      }
    }
    const found = await store.rooms.getEvents([...ids.values()]);
    return [...ids.values()].map((id) => found.get(id)).filter((e): e is StoredEvent => e !== undefined);
  }

  const matches = (filter: RoomEventFilter | undefined, roomId: string) =>
    filter ? (e: StoredEvent) => matchesEventFilter(filter, e.event, roomId) : undefined;

  return {
    async joinedRooms(userId) {
      return (await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId);
    },

    async state(viewer, roomId) {
      const a = await access(viewer.userId, roomId);
      const events =
        a.kind === 'departed'
          ? await eventsOf(await visibleStateMap(a, roomId))
          : await store.rooms.currentStateEvents(roomId);
      return format(events, viewer, false);
    },

    async stateEvent(viewer, roomId, type, key, as) {
      const a = await access(viewer.userId, roomId);
      let event: StoredEvent | null;
      if (a.kind === 'departed') {
        const id = (await visibleStateMap(a, roomId)).get(stateKey(type, key));
        event = id ? await store.rooms.getEvent(id) : null;
      } else {
        event = await store.rooms.currentStateEvent(roomId, type, key);
      }
      if (!event) throw notFound(`No ${type} state with key ${JSON.stringify(key)} in ${roomId}`);
      if (as === 'content') return event.event.content;
      const [formatted] = await format([event], viewer);
      return formatted as JsonObject;
    },

    async members(viewer, roomId, query) {
      const a = await access(viewer.userId, roomId);
      let state: StateMap;
      if (query.at !== undefined) {
        let at = await topoFrom(roomId, query.at, 'at');
        if (a.kind === 'departed' && a.until) at = at ? minTopo(at, a.until) : null;
        state = at ? await store.rooms.stateAtStream(roomId, at.stream) : new Map();
      } else {
        state = await visibleStateMap(a, roomId);
      }
      const { membership, notMembership } = query;
      const events = (await eventsOf(state, (type) => type === MEMBER)).filter((e) => {
        if (membership === undefined && notMembership === undefined) return true;
        const m = e.event.content.membership;
        // rooms.yaml: given together, the two make an "or".
        return (
          (membership !== undefined && m === membership) ||
          (notMembership !== undefined && m !== notMembership)
        );
      });
      return format(events, viewer, false);
    },

    async joinedMembers(userId, roomId) {
      const membership = await store.rooms.membership(roomId, userId);
      if (membership?.membership !== 'join') throw forbidden(`You are not joined to ${roomId}`);
      const joined: Record<string, JsonObject> = {};
      for (const e of await store.rooms.currentStateEvents(roomId, [MEMBER])) {
        const content = e.event.content;
        if (content.membership !== 'join' || typeof e.event.state_key !== 'string') continue;
        const member: JsonObject = {};
        if (typeof content.displayname === 'string') member.display_name = content.displayname;
        if (typeof content.avatar_url === 'string') member.avatar_url = content.avatar_url;
        Object.defineProperty(joined, e.event.state_key, {
          value: member,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return joined;
    },

    async event(viewer, roomId, eventId) {
      await access(viewer.userId, roomId);
      const event = await visibleEvent(viewer.userId, roomId, eventId);
      const [formatted] = await format([event], viewer);
      return formatted as JsonObject;
    },

    async context(viewer, roomId, eventId, query) {
      const a = await access(viewer.userId, roomId);
      const event = await visibleEvent(viewer.userId, roomId, eventId);
      if (event.stream === null) throw notFound(`Event ${eventId} is not in the timeline of ${roomId}`);
      const limit = Math.min(query.limit ?? DEFAULT_CONTEXT_LIMIT, MAX_MESSAGES_LIMIT);
      const beforeLimit = Math.floor(limit / 2);
      const afterLimit = limit - beforeLimit;
      const at = topoOf(event);
      const filter = matches(query.filter, roomId);
      const [beforePage, afterPage] = await Promise.all([
        store.rooms.messages(roomId, {
          dir: 'b',
          from: { depth: at.depth, stream: at.stream - 1 },
          limit: beforeLimit,
          filter,
        }),
        store.rooms.messages(roomId, {
          dir: 'f',
          from: at,
          ...(a.kind === 'departed' && a.until ? { to: a.until } : {}),
          limit: afterLimit,
          filter,
        }),
      ]);
      const before = await rooms.filterVisible(viewer.userId, roomId, beforePage.events);
      const after = await rooms.filterVisible(viewer.userId, roomId, afterPage.events);
      const earliest = beforePage.events.at(-1);
      const latest = afterPage.events.at(-1);
      const start = earliest
        ? { depth: earliest.depth, stream: (earliest.stream as number) - 1 }
        : { depth: at.depth, stream: at.stream - 1 };
      const end = latest ? topoOf(latest) : at;

      // event_context.yaml: "The state of the room at the last event returned."
      const lastId = (latest ?? event).event.event_id;
      const stateMap = (await store.rooms.stateAt(lastId, 'after')) ?? new Map();
      let stateEvents: StoredEvent[];
      if (query.filter?.lazy_load_members) {
        const senders = new Set([event, ...before, ...after].map((e) => e.event.sender));
        stateEvents = await lazyMembers(senders, [
          stateMap,
          await store.rooms.stateAt(event.event.event_id, 'after'),
        ]);
      } else {
        stateEvents = (await eventsOf(stateMap)).filter((e) => !filter || filter(e));
      }
      const [formattedEvent, ...rest] = await format([event, ...before, ...after], viewer);
      return {
        start: formatTopoToken(start),
        end: formatTopoToken(end),
        event: formattedEvent as JsonObject,
        events_before: rest.slice(0, before.length),
        events_after: rest.slice(before.length),
        state: await format(stateEvents, viewer, false),
      };
    },

    async timestampToEvent(viewer, roomId, ts, dir) {
      await access(viewer.userId, roomId);
      const visible = async (e: StoredEvent) =>
        (await rooms.filterVisible(viewer.userId, roomId, [e])).length > 0;
      const found = await eventAtTimestamp(store, roomId, ts, dir, visible);
      if (!found)
        throw notFound(`No event ${dir === 'b' ? 'at or before' : 'at or after'} ${ts} in ${roomId}`);
      return found;
    },

    async messages(viewer, roomId, query) {
      const a = await access(viewer.userId, roomId);
      const { dir } = query;
      const limit = Math.min(query.limit ?? DEFAULT_MESSAGES_LIMIT, MAX_MESSAGES_LIMIT);
      let from: TopoToken | undefined;
      let startToken: string;
      let emptyRange = false;
      if (query.from !== undefined) {
        const parsed = await topoFrom(roomId, query.from, 'from');
        if (parsed) from = parsed;
        else if (dir === 'b') emptyRange = true; // a sync token from before the room's first event
        startToken = query.from;
      } else {
        // v1.3: without `from`, start at the end (b) or the beginning (f) of the visible history.
        startToken = '';
      }
      const toParsed = query.to !== undefined ? await topoFrom(roomId, query.to, 'to') : undefined;
      // A sync token from before the room's first event: as `to` going forwards, an empty range;
      // going backwards, no lower bound.
      if (toParsed === null && dir === 'f') emptyRange = true;
      let to = toParsed ?? undefined;
      if (a.kind === 'departed' && a.until) {
        // Nothing after the user's departure: cap where reading starts (b) or stops (f).
        if (dir === 'b') from = from ? minTopo(from, a.until) : a.until;
        else to = to ? minTopo(to, a.until) : a.until;
      }

      if (startToken === '') {
        if (dir === 'b') {
          const [latest] = (
            await store.rooms.messages(roomId, { dir: 'b', ...(from ? { from } : {}), limit: 1 })
          ).events;
          startToken = formatTopoToken(latest ? topoOf(latest) : { depth: 0, stream: 0 });
        } else {
          startToken = formatTopoToken({ depth: 0, stream: 0 });
        }
      }
      if (emptyRange || limit === 0) {
        return { start: startToken, chunk: [], ...(limit === 0 && !emptyRange ? { end: startToken } : {}) };
      }

      const filter = matches(query.filter, roomId);
      const chunk: StoredEvent[] = [];
      let next: TopoToken | null = null;
      let cursor: TopoToken | undefined = from;
      let pageLimit = limit;
      let backfilled = false;
      for (let page = 0; page < MAX_HIDDEN_PAGES; page++) {
        const read = (keep?: (event: StoredEvent) => boolean) =>
          store.rooms.messages(roomId, {
            dir,
            ...(cursor ? { from: cursor } : {}),
            ...(to ? { to } : {}),
            limit: pageLimit,
            ...(keep ? { filter: keep } : {}),
          });
        let result = await read(filter);
        if (dir === 'b' && deps.backfill && !backfilled) {
          // A gap is where the room's history here stops, whatever the filter keeps.
          const gaps = await gapsIn(filter ? (await read()).events : result.events);
          if (gaps.length > 0) {
            backfilled = true;
            const limit = Math.max(pageLimit, DEFAULT_MESSAGES_LIMIT);
            if ((await deps.backfill(roomId, gaps, limit)) > 0) result = await read(filter);
          }
        }
        chunk.push(...(await rooms.filterVisible(viewer.userId, roomId, result.events)));
        next = result.next;
        if (chunk.length > 0 || !next) break;
        // Everything on this page was hidden by history visibility: read further, faster.
        cursor = next;
        pageLimit = Math.min(pageLimit * 4, MAX_MESSAGES_LIMIT);
      }
      if (chunk.length > limit) {
        // A later, larger page found more than asked for: stop after `limit`, and go on from there.
        chunk.length = limit;
        const last = chunk[limit - 1] as StoredEvent;
        next = { depth: last.depth, stream: (last.stream as number) - (dir === 'b' ? 1 : 0) };
      }
      const formatted = await format(chunk, viewer);
      const body: JsonObject = { start: startToken, chunk: formatted };
      if (next) body.end = formatTopoToken(next);
      if (query.filter?.lazy_load_members && chunk.length > 0) {
        const senders = new Set(chunk.map((e) => e.event.sender));
        const first = chunk[0] as StoredEvent;
        const last = chunk[chunk.length - 1] as StoredEvent;
        const members = await lazyMembers(senders, [
          await store.rooms.stateAt(last.event.event_id, 'after'),
          await store.rooms.stateAt(first.event.event_id, 'after'),
        ]);
        body.state = await format(members, viewer, false);
      }
      return body;
    },
  };
}
