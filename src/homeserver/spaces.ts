/**
 * Spaces and room previews — client-server-api "Spaces" (space_hierarchy.yaml:
 * `GET /rooms/{roomId}/hierarchy`), room_summary.yaml (`GET /room_summary/{roomIdOrAlias}`,
 * MSC3266) and mutual_rooms.yaml (`GET /mutual_rooms`, MSC2666).
 *
 * The hierarchy is walked depth-first from the space, children in the spec's order
 * (modules/spaces.md: valid `order` first, then the `m.space.child` event's timestamp, then
 * room ID). A room this server holds is described from its state (rooms/summary.ts); a room
 * it does not is asked of the servers in the child event's `via` over federation
 * (`/hierarchy/{roomId}`, which also describes that room's children). A room is listed when
 * the user could peek or join it: a membership there (join, invite, knock), world-readable
 * history, a public or knock join rule, or a restricted rule naming a room they are in.
 *
 * Pages are offsets into the walk, which is done again for each page (the token names the
 * `suggested_only` and `max_depth` it was made with; a different one is refused).
 */
import type { JsonObject } from '../core/canonical-json.ts';
import { isValidRoomId, isValidUserId } from '../core/identifiers.ts';
import type { HomeserverContext } from './context.ts';
import { forbidden, invalidParam, notFound } from './errors.ts';
import type { RoomsService } from './rooms/index.ts';
import { type HierarchyRoom, loadRoomSummary } from './rooms/summary.ts';

/** space_hierarchy.yaml leaves the default to the server. */
export const DEFAULT_HIERARCHY_LIMIT = 50;
export const MAX_HIERARCHY_LIMIT = 200;
/** How deep the walk goes when `max_depth` is absent (and at most). */
export const MAX_HIERARCHY_DEPTH = 10;
/** Rooms visited at most in one walk: bounds the work a large or looping space can ask for. */
const MAX_WALK = 1000;
/** Servers asked at most about one remote room. */
const MAX_VIA = 3;
/** mutual_rooms.yaml leaves the batch size to the server. */
export const MUTUAL_ROOMS_BATCH = 100;

export interface HierarchyQuery {
  suggestedOnly: boolean;
  maxDepth?: number;
  limit?: number;
  from?: string;
}

export interface SpacesService {
  hierarchy(userId: string, roomId: string, query: HierarchyQuery): Promise<JsonObject>;
  /** `userId` null: asked without an access token. */
  roomSummary(userId: string | null, roomIdOrAlias: string, via: readonly string[]): Promise<JsonObject>;
  mutualRooms(userId: string, otherUserId: string, from?: string): Promise<JsonObject>;
}

export interface SpacesDeps {
  rooms: Pick<RoomsService, 'resolveAlias'>;
}

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);
const OPEN_RULES = new Set(['public', 'knock']);
const ORDER = /^[\x20-\x7E]{1,50}$/;

/** A child event's `order`, when valid (modules/spaces.md). */
const orderOf = (child: JsonObject) => {
  const order = (child.content as JsonObject).order;
  return typeof order === 'string' && ORDER.test(order) ? order : undefined;
};

/** The children of a room in the spec's order. */
function sortChildren(children: readonly JsonObject[]): JsonObject[] {
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return [...children].sort((a, b) => {
    const [oa, ob] = [orderOf(a), orderOf(b)];
    if (oa !== undefined && ob === undefined) return -1;
    if (oa === undefined && ob !== undefined) return 1;
    return (
      cmp(oa ?? '', ob ?? '') ||
      cmp(Number(a.origin_server_ts) || 0, Number(b.origin_server_ts) || 0) ||
      cmp(String(a.state_key), String(b.state_key))
    );
  });
}

/** A remote server's description of a room, if it has the shape the spec gives it. */
function asHierarchyRoom(x: JsonObject): HierarchyRoom | null {
  if (typeof x.room_id !== 'string' || typeof x.num_joined_members !== 'number') return null;
  if (!Array.isArray(x.children_state)) return null;
  return { ...(x as unknown as HierarchyRoom), children_state: x.children_state.filter(isObject) };
}

export function createSpacesService(ctx: HomeserverContext, deps: SpacesDeps): SpacesService {
  const { store, federation, config } = ctx;

  async function canSee(userId: string | null, room: HierarchyRoom): Promise<boolean> {
    if (userId !== null) {
      const membership = (await store.rooms.membership(room.room_id, userId))?.membership;
      if (membership === 'join' || membership === 'invite' || membership === 'knock') return true;
      if (membership === 'ban') return false;
    }
    if (room.world_readable || OPEN_RULES.has(room.join_rule ?? '')) return true;
    if (userId === null || (room.join_rule !== 'restricted' && room.join_rule !== 'knock_restricted'))
      return false;
    for (const allowed of room.allowed_room_ids ?? [])
      if ((await store.rooms.membership(allowed, userId))?.membership === 'join') return true;
    return false;
  }

  /**
   * A room's description: ours from its state, else from the first of `via` that answers
   * (whose answer also describes the room's children, kept in `known`).
   */
  async function describe(
    roomId: string,
    via: readonly string[],
    suggestedOnly: boolean,
    known: Map<string, HierarchyRoom>,
  ): Promise<HierarchyRoom | null> {
    const local = await loadRoomSummary(store, roomId);
    if (local) return local;
    const cached = known.get(roomId);
    if (cached) return cached;
    for (const server of via.filter((s) => s !== config.serverName).slice(0, MAX_VIA)) {
      try {
        const answer = await federation.queryHierarchy(server, roomId, suggestedOnly);
        for (const child of answer.children) {
          const room = asHierarchyRoom(child);
          if (room) known.set(room.room_id, room);
        }
        const room = asHierarchyRoom(answer.room);
        if (room) return room;
      } catch {
        // This server cannot tell: ask the next one.
      }
    }
    return null;
  }

  /** The rooms of the walk, in order, up to `want` (the root first; it throws if the user may not see it). */
  async function walk(
    userId: string,
    rootId: string,
    suggestedOnly: boolean,
    maxDepth: number,
    want: number,
  ) {
    const out: JsonObject[] = [];
    const seen = new Set<string>();
    const known = new Map<string, HierarchyRoom>();
    const stack: { roomId: string; depth: number; via: readonly string[] }[] = [
      { roomId: rootId, depth: 0, via: [] },
    ];
    let more = false;
    while (stack.length > 0 && seen.size < MAX_WALK) {
      const { roomId, depth, via } = stack.pop() as (typeof stack)[number];
      if (seen.has(roomId)) continue;
      seen.add(roomId);
      const room = await describe(roomId, via, suggestedOnly, known);
      if (!room || !(await canSee(userId, room))) {
        if (roomId === rootId) {
          if (!room) throw notFound(`Room ${roomId} is not known to this server`);
          throw forbidden(`You cannot see ${roomId}`);
        }
        continue;
      }
      if (out.length === want) {
        more = true;
        break;
      }
      const children = sortChildren(
        room.children_state.filter((c) => {
          const content = c.content;
          if (!isObject(content) || !Array.isArray(content.via) || content.via.length === 0) return false;
          return !suggestedOnly || content.suggested === true;
        }),
      );
      out.push({ ...room, children_state: children } as unknown as JsonObject);
      if (depth >= maxDepth) continue;
      // Depth-first, in order: push in reverse so the first child is visited next.
      for (const child of [...children].reverse()) {
        const childId = child.state_key;
        if (typeof childId !== 'string' || !isValidRoomId(childId) || seen.has(childId)) continue;
        const childVia = ((child.content as JsonObject).via as unknown[]).filter(
          (s): s is string => typeof s === 'string',
        );
        stack.push({ roomId: childId, depth: depth + 1, via: childVia });
      }
    }
    return { rooms: out, more };
  }

  return {
    async hierarchy(userId, roomId, query) {
      const maxDepth = Math.min(query.maxDepth ?? MAX_HIERARCHY_DEPTH, MAX_HIERARCHY_DEPTH);
      const limit = Math.min(query.limit ?? DEFAULT_HIERARCHY_LIMIT, MAX_HIERARCHY_LIMIT);
      let offset = 0;
      if (query.from !== undefined) {
        const match = /^h(\d{1,6})_([01])_(\d{1,3})$/.exec(query.from);
        if (!match) throw invalidParam('from is not a hierarchy token of this server');
        if (match[2] !== (query.suggestedOnly ? '1' : '0') || Number(match[3]) !== maxDepth)
          throw invalidParam('suggested_only and max_depth cannot change between pages');
        offset = Number(match[1]);
      }
      const { rooms, more } = await walk(userId, roomId, query.suggestedOnly, maxDepth, offset + limit);
      const body: JsonObject = { rooms: rooms.slice(offset) };
      if (more) body.next_batch = `h${offset + limit}_${query.suggestedOnly ? 1 : 0}_${maxDepth}`;
      return body;
    },

    async roomSummary(userId, roomIdOrAlias, via) {
      let roomId = roomIdOrAlias;
      let servers = [...via];
      if (roomIdOrAlias.startsWith('#')) {
        const resolved = await deps.rooms.resolveAlias(roomIdOrAlias);
        roomId = resolved.roomId;
        if (servers.length === 0) servers = resolved.servers;
      }
      const room = await describe(roomId, servers, false, new Map());
      // One answer for "unknown" and "not for you" (room_summary.yaml's 404).
      if (!room || !(await canSee(userId, room))) throw notFound('Room not found');
      const { children_state: _children, ...summary } = room;
      const body: JsonObject = { ...(summary as unknown as JsonObject) };
      if (userId !== null) {
        const membership = await store.rooms.membership(roomId, userId);
        if (membership) body.membership = membership.membership;
      }
      return body;
    },

    async mutualRooms(userId, otherUserId, from) {
      if (!isValidUserId(otherUserId, { historical: true }))
        throw invalidParam(`Invalid user ID ${JSON.stringify(otherUserId)}`);
      if (otherUserId === userId) throw invalidParam('Mutual rooms with yourself are all your rooms');
      let offset = 0;
      if (from !== undefined) {
        if (!/^m\d{1,6}$/.test(from)) throw invalidParam('from is not a mutual_rooms token of this server');
        offset = Number(from.slice(1));
      }
      const [mine, theirs] = await Promise.all([
        store.rooms.roomsForUser(userId, 'join'),
        store.rooms.roomsForUser(otherUserId, 'join'),
      ]);
      const theirIds = new Set(theirs.map((m) => m.roomId));
      const joined = mine
        .map((m) => m.roomId)
        .filter((id) => theirIds.has(id))
        .sort();
      const body: JsonObject = {
        joined: joined.slice(offset, offset + MUTUAL_ROOMS_BATCH),
        count: joined.length,
      };
      if (offset + MUTUAL_ROOMS_BATCH < joined.length) body.next_batch = `m${offset + MUTUAL_ROOMS_BATCH}`;
      return body;
    },
  };
}
