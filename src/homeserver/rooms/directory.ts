/**
 * Room aliases and the published room directory — client-server-api "Room aliases"
 * (directory.yaml) and "Published room directory" (list_public_rooms.yaml).
 *
 * Another server's alias is resolved through the federation port (`ctx.federation`, 404
 * M_NOT_FOUND while federation is off); listing another server's directory is not built
 * yet (404 M_UNRECOGNIZED for `?server=`, saying why).
 */

import {
  type IdentifiedPdu,
  type JsonObject,
  type JsonValue,
  parseRoomAlias,
  requiredPowerLevel,
  type StateKey,
  stateKey,
  userPowerLevel,
} from '../../core/index.ts';
import { StoreError } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, matrixError, notFound, unrecognized } from '../errors.ts';
import { CREATE_STATE_KEY, CREATE_TYPE, POWER_LEVELS_TYPE } from './build.ts';
import type { EventPipeline } from './pipeline.ts';

export interface PublicRoomsQuery {
  limit?: number;
  since?: string;
  server?: string;
  filter?: { generic_search_term?: string; room_types?: (string | null)[] };
  include_all_networks?: boolean;
  third_party_instance_id?: string;
}

export interface PublicRoomsChunk {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  join_rule?: string;
  room_type?: string;
}

export interface PublicRoomsResponse {
  chunk: PublicRoomsChunk[];
  next_batch?: string;
  prev_batch?: string;
  total_room_count_estimate: number;
}

export interface Directory {
  /** PUT /directory/room/{roomAlias}: a local alias for a room the user is joined to. */
  createAlias(userId: string, alias: string, roomId: string): Promise<void>;
  /** GET /directory/room/{roomAlias}. */
  resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] }>;
  /** DELETE /directory/room/{roomAlias}: by the alias's creator, a room admin or a server admin. */
  deleteAlias(userId: string, alias: string): Promise<void>;
  /** GET /rooms/{roomId}/aliases: for members, or anyone when the room is world-readable. */
  localAliases(userId: string, roomId: string): Promise<string[]>;
  getDirectoryVisibility(roomId: string): Promise<'public' | 'private'>;
  setDirectoryVisibility(userId: string, roomId: string, visibility: 'public' | 'private'): Promise<void>;
  publicRooms(query: PublicRoomsQuery): Promise<PublicRoomsResponse>;
}

const CANONICAL_ALIAS = 'm.room.canonical_alias';
/** Rooms per page when the client names no limit, and the most it may ask for. */
const DEFAULT_PUBLIC_ROOMS_LIMIT = 100;
const MAX_PUBLIC_ROOMS_LIMIT = 500;
const DIRECTORY_TYPES = [
  'm.room.name',
  'm.room.topic',
  CANONICAL_ALIAS,
  'm.room.avatar',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
  CREATE_TYPE,
];

const str = (value: JsonValue | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

export function createDirectory(ctx: HomeserverContext, pipeline: EventPipeline): Directory {
  const { store, config } = ctx;

  function parseAlias(alias: string): { localpart: string; serverName: string } {
    try {
      return parseRoomAlias(alias);
    } catch (err) {
      throw invalidParam(`Invalid room alias: ${(err as Error).message}`);
    }
  }

  /** Whether the user may change room-level settings: a server admin, or the power to set the canonical alias. */
  async function isRoomAdmin(userId: string, roomId: string): Promise<boolean> {
    const user = await store.accounts.getUser(userId);
    if (user?.admin) return true;
    const version = await pipeline.roomVersionOf(roomId);
    if (!version) return false;
    if ((await store.rooms.membership(roomId, userId))?.membership !== 'join') return false;
    const state = await pipeline.stateEventsAt(roomId, [CREATE_STATE_KEY, stateKey(POWER_LEVELS_TYPE, '')]);
    const powerLevels = state.get(stateKey(POWER_LEVELS_TYPE, ''));
    const level = userPowerLevel(userId, powerLevels, state.get(CREATE_STATE_KEY), version);
    return level >= requiredPowerLevel(CANONICAL_ALIAS, '', powerLevels, version);
  }

  /** Drops a deleted alias from the room's m.room.canonical_alias, if the user may (directory.yaml note). */
  async function unlinkCanonical(userId: string, roomId: string, alias: string): Promise<void> {
    const current = (await store.rooms.currentStateEvent(roomId, CANONICAL_ALIAS, ''))?.event.content;
    if (!current) return;
    const alt = Array.isArray(current.alt_aliases) ? current.alt_aliases : [];
    if (current.alias !== alias && !alt.includes(alias)) return;
    const content: JsonObject = { ...current };
    if (content.alias === alias) delete content.alias;
    if (alt.includes(alias)) content.alt_aliases = alt.filter((a) => a !== alias);
    try {
      await pipeline.sendEvent({ sender: userId, roomId, type: CANONICAL_ALIAS, stateKey: '', content });
    } catch (err) {
      // The alias is gone either way; the event is a courtesy the user may lack power for.
      ctx.logger.debug('could not update m.room.canonical_alias after deleting an alias', {
        roomId,
        error: String(err),
      });
    }
  }

  async function chunkFor(roomId: string): Promise<PublicRoomsChunk | null> {
    const [events, joined] = await Promise.all([
      store.rooms.currentStateEvents(roomId, DIRECTORY_TYPES),
      store.rooms.countMembers(roomId, 'join'),
    ]);
    const state = new Map<StateKey, IdentifiedPdu>();
    for (const stored of events)
      state.set(stateKey(stored.event.type, stored.event.state_key ?? ''), stored.event);
    const content = (type: string) => state.get(stateKey(type, ''))?.content ?? {};
    if (!state.has(CREATE_STATE_KEY)) return null;
    const chunk: PublicRoomsChunk = {
      room_id: roomId,
      num_joined_members: joined,
      world_readable: content('m.room.history_visibility').history_visibility === 'world_readable',
      guest_can_join: content('m.room.guest_access').guest_access === 'can_join',
    };
    const name = str(content('m.room.name').name);
    const topic = str(content('m.room.topic').topic);
    const alias = str(content(CANONICAL_ALIAS).alias);
    const avatar = str(content('m.room.avatar').url);
    const joinRule = str(content('m.room.join_rules').join_rule);
    const roomType = str(content(CREATE_TYPE).type);
    if (name) chunk.name = name;
    if (topic) chunk.topic = topic;
    if (alias) chunk.canonical_alias = alias;
    if (avatar) chunk.avatar_url = avatar;
    if (joinRule) chunk.join_rule = joinRule;
    if (roomType) chunk.room_type = roomType;
    return chunk;
  }

  function parseSince(since: string | undefined): number {
    if (since === undefined || since === '') return 0;
    const match = /^p(\d{1,9})$/.exec(since);
    if (!match) throw invalidParam(`Unknown pagination token ${JSON.stringify(since)}`);
    return Number(match[1]);
  }

  return {
    async createAlias(userId, alias, roomId) {
      const { serverName } = parseAlias(alias);
      if (serverName !== config.serverName) {
        throw invalidParam(`Room alias ${alias} is not on this server (${config.serverName})`);
      }
      if (!(await pipeline.roomVersionOf(roomId))) throw notFound(`Room ${roomId} not found`);
      if ((await store.rooms.membership(roomId, userId))?.membership !== 'join') {
        throw forbidden(`You must be joined to room ${roomId} to give it an alias`);
      }
      try {
        await store.rooms.createAlias({ alias, roomId, servers: [config.serverName], creator: userId });
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT') {
          throw matrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
        }
        throw err;
      }
    },

    async resolveAlias(alias) {
      const { serverName } = parseAlias(alias);
      const found = await store.rooms.getAlias(alias);
      if (!found) {
        if (serverName === config.serverName) throw notFound(`Room alias ${alias} not found`);
        // Another server's alias is that server's to answer (GET /query/directory).
        return ctx.federation.queryDirectory(serverName, alias);
      }
      return {
        roomId: found.roomId,
        servers: found.servers.length > 0 ? found.servers : [config.serverName],
      };
    },

    async deleteAlias(userId, alias) {
      parseAlias(alias);
      const found = await store.rooms.getAlias(alias);
      if (!found) throw notFound(`Room alias ${alias} not found`);
      if (found.creator !== userId && !(await isRoomAdmin(userId, found.roomId))) {
        throw forbidden(
          'Only the alias creator, a room administrator or a server administrator may delete it',
        );
      }
      await store.rooms.deleteAlias(alias);
      await unlinkCanonical(userId, found.roomId, alias);
    },

    async localAliases(userId, roomId) {
      if (!(await pipeline.roomVersionOf(roomId))) throw forbidden(`You are not in room ${roomId}`);
      if ((await store.rooms.membership(roomId, userId))?.membership !== 'join') {
        const history = (await store.rooms.currentStateEvent(roomId, 'm.room.history_visibility', ''))?.event
          .content;
        if (history?.history_visibility !== 'world_readable')
          throw forbidden(`You are not in room ${roomId}`);
      }
      return (await store.rooms.aliasesOf(roomId)).map((a) => a.alias).sort();
    },

    async getDirectoryVisibility(roomId) {
      const room = await store.rooms.getRoom(roomId);
      if (!room) throw notFound(`Room ${roomId} not found`);
      return room.published ? 'public' : 'private';
    },

    async setDirectoryVisibility(userId, roomId, visibility) {
      if (!(await store.rooms.getRoom(roomId))) throw notFound(`Room ${roomId} not found`);
      if (!(await isRoomAdmin(userId, roomId))) {
        throw forbidden('Publishing a room needs the power to set its canonical alias');
      }
      await store.rooms.setPublished(roomId, visibility === 'public');
    },

    async publicRooms(query) {
      if (query.server !== undefined && query.server !== config.serverName) {
        throw unrecognized(
          `Listing the rooms of ${query.server} needs federation, which this server does not support yet`,
        );
      }
      const limit = Math.min(query.limit ?? DEFAULT_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
      const offset = parseSince(query.since);
      // This server bridges no third-party networks: a named network has no rooms.
      if (query.third_party_instance_id !== undefined && !query.include_all_networks) {
        return { chunk: [], total_room_count_estimate: 0 };
      }
      const term = query.filter?.generic_search_term?.trim().toLowerCase();
      const types = query.filter?.room_types;
      const chunks: PublicRoomsChunk[] = [];
      for (const roomId of await store.rooms.publishedRooms()) {
        const chunk = await chunkFor(roomId);
        if (!chunk) continue;
        if (types && !types.includes(chunk.room_type ?? null)) continue;
        if (term) {
          const haystack = [chunk.name, chunk.topic, chunk.canonical_alias]
            .filter(Boolean)
            .join('\n')
            .toLowerCase();
          if (!haystack.includes(term)) continue;
        }
        chunks.push(chunk);
      }
      // Largest rooms first, then by ID: a stable order, so offsets page consistently.
      chunks.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : 1));
      const page = chunks.slice(offset, offset + limit);
      const response: PublicRoomsResponse = { chunk: page, total_room_count_estimate: chunks.length };
      if (offset + limit < chunks.length) response.next_batch = `p${offset + limit}`;
      if (offset > 0) response.prev_batch = `p${Math.max(0, offset - limit)}`;
      return response;
    },
  };
}
