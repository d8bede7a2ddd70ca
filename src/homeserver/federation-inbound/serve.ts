/**
 * What this server tells other servers about the events of its rooms — server-server-api.md
 * "Backfilling and retrieving missing events", "Retrieving events", "Retrieving event
 * authorisation information" (data/api/server-server/{backfill,events,event_auth}.yaml).
 *
 * Who may ask: a server with a joined member in the room, or any server when the room is
 * `world_readable`; never a server the room's `m.room.server_acl` denies (403, "Server
 * Access Control Lists (ACLs)"). What it may see: history visibility applies to servers as
 * to clients — a server sees an event when one of its users could (client-server-api
 * "Room History Visibility"): `world_readable`, or `shared` for a server in the room now,
 * or one of its users joined at the event (or invited, under `invited`). An event it may
 * not see is served redacted, so the DAG stays whole without leaking content (what Synapse
 * does too). Answers are PDUs in the room version's wire format.
 */

import {
  getRoomVersion,
  type IdentifiedPdu,
  type JsonObject,
  type RoomVersion,
  redact,
  referencedIds,
  type StateMap,
  splitStateKey,
  stateKey,
  toWirePdu,
} from '../../core/index.ts';
import type { StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, notFound } from '../errors.ts';
import { serverOf } from '../rooms/accept.ts';
import type { RoomsService } from '../rooms/service.ts';
import { eventAtTimestamp } from '../rooms/timestamp.ts';

const HISTORY_TYPE = 'm.room.history_visibility';
const MEMBER_TYPE = 'm.room.member';

/** Largest `/backfill` and `/get_missing_events` answer: bounds one request's walk of the DAG. */
export const MAX_EVENTS_PER_REQUEST = 100;
/** `get_missing_events` without a limit: the spec's default. */
export const DEFAULT_MISSING_EVENTS_LIMIT = 10;
/** Bounds an auth chain's walk (a room's whole auth DAG is rarely near this). */
const MAX_AUTH_CHAIN = 10_000;

export interface MissingEventsRequest {
  earliest: readonly string[];
  latest: readonly string[];
  limit?: number;
  minDepth?: number;
}

export interface EventServing {
  backfill(origin: string, roomId: string, from: readonly string[], limit: number): Promise<JsonObject>;
  missingEvents(origin: string, roomId: string, request: MissingEventsRequest): Promise<JsonObject>;
  event(origin: string, eventId: string): Promise<JsonObject>;
  state(origin: string, roomId: string, eventId: string): Promise<JsonObject>;
  stateIds(origin: string, roomId: string, eventId: string): Promise<JsonObject>;
  eventAuth(origin: string, roomId: string, eventId: string): Promise<JsonObject>;
  timestampToEvent(origin: string, roomId: string, ts: number, dir: 'f' | 'b'): Promise<JsonObject>;
}

interface RoomAccess {
  version: RoomVersion;
  /** The origin has a joined member now: `shared` history is theirs. */
  originJoined: boolean;
}

export function createEventServing(
  ctx: HomeserverContext,
  deps: { rooms: Pick<RoomsService, 'serverAllowed'> },
): EventServing {
  const { store, clock, config } = ctx;

  /** The room, if `origin` may ask about it; 403 otherwise (unknown rooms alike: nothing leaks). */
  async function access(origin: string, roomId: string): Promise<RoomAccess> {
    const room = await store.rooms.getRoom(roomId);
    if (!room) throw forbidden(`${origin} is not in room ${roomId}`);
    if (!(await deps.rooms.serverAllowed(roomId, origin)))
      throw forbidden(`${origin} is denied by the server ACL of ${roomId}`);
    const version = getRoomVersion(room.roomVersion);
    const joined = await store.rooms.members(roomId, 'join');
    const originJoined = joined.some((m) => serverOf(m.userId) === origin);
    if (!originJoined) {
      const history = await store.rooms.currentStateEvent(roomId, HISTORY_TYPE, '');
      if (history?.event.content.history_visibility !== 'world_readable')
        throw forbidden(`${origin} is not in room ${roomId}`);
    }
    return { version, originJoined };
  }

  /** Visibility for a server, per event, with member event contents read once. */
  function visibilityFor(origin: string, a: RoomAccess) {
    const contents = new Map<string, IdentifiedPdu>();
    async function allows(state: StateMap): Promise<boolean> {
      const historyId = state.get(stateKey(HISTORY_TYPE, ''));
      const memberIds: string[] = [];
      for (const [key, id] of state) {
        const [type, key2] = splitStateKey(key);
        if (type === MEMBER_TYPE && serverOf(key2) === origin) memberIds.push(id);
      }
      const wanted = [historyId, ...memberIds].filter(
        (id): id is string => id !== undefined && !contents.has(id),
      );
      if (wanted.length > 0)
        for (const [id, stored] of await store.rooms.getEvents(wanted)) contents.set(id, stored.event);
      const raw = historyId === undefined ? undefined : contents.get(historyId)?.content.history_visibility;
      const visibility =
        typeof raw === 'string' && ['world_readable', 'shared', 'invited', 'joined'].includes(raw)
          ? raw
          : 'shared';
      if (visibility === 'world_readable') return true;
      if (visibility === 'shared' && a.originJoined) return true;
      const memberships = memberIds.map((id) => contents.get(id)?.content.membership);
      if (memberships.includes('join')) return true;
      return visibility === 'invited' && memberships.includes('invite');
    }
    return async (stored: StoredEvent): Promise<boolean> => {
      const before = await store.rooms.stateAt(stored.event.event_id, 'before');
      if (before && (await allows(before))) return true;
      const { event } = stored;
      const dual =
        event.type === HISTORY_TYPE || (event.type === MEMBER_TYPE && serverOf(event.state_key) === origin);
      if (!dual) return false;
      const after = await store.rooms.stateAt(event.event_id, 'after');
      return after !== null && (await allows(after));
    };
  }

  const wire = (event: IdentifiedPdu, version: RoomVersion): JsonObject =>
    toWirePdu(event, version) as JsonObject;

  /** The events as `origin` may see them: whole, or redacted. */
  async function served(
    origin: string,
    a: RoomAccess,
    events: readonly StoredEvent[],
  ): Promise<JsonObject[]> {
    const visible = visibilityFor(origin, a);
    const out: JsonObject[] = [];
    for (const stored of events) {
      const event = (await visible(stored))
        ? stored.event
        : { ...redact(stored.event, a.version), event_id: stored.event.event_id };
      out.push(wire(event, a.version));
    }
    return out;
  }

  /** An event of the room's DAG (not an outlier, not rejected). */
  const inDag = (stored: StoredEvent | undefined, roomId: string): stored is StoredEvent =>
    stored !== undefined && stored.roomId === roomId && !stored.outlier && stored.rejected === null;

  /** Everything the events cite through `auth_events`, transitively (not the events themselves). */
  async function authChain(
    roomId: string,
    version: RoomVersion,
    from: readonly IdentifiedPdu[],
  ): Promise<StoredEvent[]> {
    const chain = new Map<string, StoredEvent>();
    const cited = from.flatMap((e) => referencedIds(e.auth_events));
    // v12: the create event is named by the room ID and never listed (rooms/v12.md), yet it
    // is every event's first auth event.
    if (version.roomIdFromCreateEvent && !from.some((e) => e.type === 'm.room.create'))
      cited.push(`$${roomId.slice(1)}`);
    let wanted = [...new Set(cited)];
    while (wanted.length > 0 && chain.size < MAX_AUTH_CHAIN) {
      const found = await store.rooms.getEvents(wanted);
      const next = new Set<string>();
      for (const id of wanted) {
        const stored = found.get(id);
        if (!stored || stored.roomId !== roomId) continue;
        chain.set(id, stored);
        for (const authId of referencedIds(stored.event.auth_events))
          if (!chain.has(authId)) next.add(authId);
      }
      wanted = [...next].filter((id) => !chain.has(id));
    }
    return [...chain.values()].sort((x, y) => x.depth - y.depth);
  }

  /** The event and the state before it, for `/state` and `/state_ids`. */
  async function stateBefore(
    origin: string,
    roomId: string,
    eventId: string,
  ): Promise<{ a: RoomAccess; state: StoredEvent[] }> {
    const a = await access(origin, roomId);
    const stored = await store.rooms.getEvent(eventId);
    const state = inDag(stored ?? undefined, roomId) ? await store.rooms.stateAt(eventId, 'before') : null;
    if (!state) throw notFound(`Event ${eventId} is not known in ${roomId}`);
    const found = await store.rooms.getEvents([...state.values()]);
    return { a, state: [...found.values()] };
  }

  const envelope = (pdus: JsonObject[]): JsonObject => ({
    origin: config.serverName,
    origin_server_ts: clock.now(),
    pdus,
  });

  return {
    // GET /_matrix/federation/v1/backfill/{roomId}: the events of `v` and before, newest first.
    async backfill(origin, roomId, from, limit) {
      const a = await access(origin, roomId);
      const max = Math.min(Math.max(limit, 0), MAX_EVENTS_PER_REQUEST);
      const seen = new Set<string>(from);
      const pending = [...(await store.rooms.getEvents([...seen])).values()].filter((s) => inDag(s, roomId));
      const out: StoredEvent[] = [];
      while (out.length < max && pending.length > 0) {
        // Depth order: the deepest pending event next (ties by ID, so answers are stable).
        pending.sort((x, y) => y.depth - x.depth || (x.event.event_id < y.event.event_id ? -1 : 1));
        const next = pending.shift() as StoredEvent;
        out.push(next);
        const prevs = referencedIds(next.event.prev_events).filter((id) => !seen.has(id));
        for (const id of prevs) seen.add(id);
        if (prevs.length > 0)
          for (const stored of (await store.rooms.getEvents(prevs)).values())
            if (inDag(stored, roomId)) pending.push(stored);
      }
      return envelope(await served(origin, a, out));
    },

    // POST /_matrix/federation/v1/get_missing_events/{roomId}: oldest first.
    async missingEvents(origin, roomId, request) {
      const a = await access(origin, roomId);
      const limit = Math.min(
        Math.max(request.limit ?? DEFAULT_MISSING_EVENTS_LIMIT, 0),
        MAX_EVENTS_PER_REQUEST,
      );
      const minDepth = request.minDepth ?? 0;
      const seen = new Set<string>([...request.earliest, ...request.latest]);
      const latest = await store.rooms.getEvents([...request.latest]);
      let frontier = [...latest.values()]
        .filter((s) => inDag(s, roomId))
        .flatMap((s) => referencedIds(s.event.prev_events));
      const out: StoredEvent[] = [];
      // Breadth first from `latest`: the events nearest to it come first when the limit cuts.
      while (frontier.length > 0 && out.length < limit) {
        const ids = [...new Set(frontier)].filter((id) => !seen.has(id));
        for (const id of ids) seen.add(id);
        const found = ids.length > 0 ? await store.rooms.getEvents(ids) : new Map<string, StoredEvent>();
        frontier = [];
        for (const id of ids) {
          const stored = found.get(id);
          if (!inDag(stored, roomId) || stored.depth < minDepth || out.length >= limit) continue;
          out.push(stored);
          frontier.push(...referencedIds(stored.event.prev_events));
        }
      }
      out.sort((x, y) => x.depth - y.depth || (x.event.event_id < y.event.event_id ? -1 : 1));
      return { events: await served(origin, a, out) };
    },

    // GET /_matrix/federation/v1/event/{eventId}
    async event(origin, eventId) {
      const stored = await store.rooms.getEvent(eventId);
      if (!stored || stored.rejected !== null || !stored.roomId)
        throw notFound(`Event ${eventId} is not known here`);
      let a: RoomAccess;
      try {
        a = await access(origin, stored.roomId);
      } catch {
        // Whether the event exists is the room's business: an outsider learns nothing.
        throw notFound(`Event ${eventId} is not known here`);
      }
      const [pdu] = stored.outlier ? [wire(stored.event, a.version)] : await served(origin, a, [stored]);
      return envelope([pdu as JsonObject]);
    },

    // GET /_matrix/federation/v1/state/{roomId}?event_id=
    async state(origin, roomId, eventId) {
      const { a, state } = await stateBefore(origin, roomId, eventId);
      const chain = await authChain(
        roomId,
        a.version,
        state.map((s) => s.event),
      );
      return {
        pdus: state.map((s) => wire(s.event, a.version)),
        auth_chain: chain.map((s) => wire(s.event, a.version)),
      };
    },

    // GET /_matrix/federation/v1/state_ids/{roomId}?event_id=
    async stateIds(origin, roomId, eventId) {
      const { a, state } = await stateBefore(origin, roomId, eventId);
      const chain = await authChain(
        roomId,
        a.version,
        state.map((s) => s.event),
      );
      return {
        pdu_ids: state.map((s) => s.event.event_id),
        auth_chain_ids: chain.map((s) => s.event.event_id),
      };
    },

    // GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
    async eventAuth(origin, roomId, eventId) {
      const a = await access(origin, roomId);
      const stored = await store.rooms.getEvent(eventId);
      if (!stored || stored.roomId !== roomId) throw notFound(`Event ${eventId} is not known in ${roomId}`);
      const chain = await authChain(roomId, a.version, [stored.event]);
      return { auth_chain: chain.map((s) => wire(s.event, a.version)) };
    },

    // GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=
    async timestampToEvent(origin, roomId, ts, dir) {
      const a = await access(origin, roomId);
      const visible = visibilityFor(origin, a);
      const found = await eventAtTimestamp(store, roomId, ts, dir, visible);
      if (found) return found;
      throw notFound(`No event ${dir === 'b' ? 'before' : 'after'} ${ts} in ${roomId}`);
    },
  };
}
