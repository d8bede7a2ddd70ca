/**
 * A sliding sync connection's memory, and its `pos` (MSC4186 "Connections").
 *
 * Sliding sync is stateful by design: a room is sent when the client has never had it on this
 * connection or it changed since it was last sent, and subscriptions stay until unsubscribed
 * (matrix-js-sdk sends each once). That memory cannot be rebuilt from stream positions, so it
 * lives in the store (`userData.saveSlidingSyncConnection`), saved under a version each time
 * it changes — never in memory only: a Service Worker may be stopped between two requests.
 *
 * `pos` = `<version>.<sync token>`: the saved state the answer left behind, and the stream
 * positions it covers. A room the state marks `live` is up to date as of the token's events
 * position; any other known room as of its own `at`. So an answer with nothing new for the
 * state writes nothing and returns the same version with newer positions; a retried request
 * (same `pos`) reads the same version, and a later version never overwrites an earlier one.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Store } from '../../storage/store.ts';
import { matrixError } from '../errors.ts';
import { formatSyncToken, parseSyncToken, type SyncPositions } from '../tokens.ts';
import type { RoomConfig } from './types.ts';

export interface SentRoom {
  /** Null: up to date as of the `pos` events position (live); else the events position the client has. */
  at: number | null;
  /** `requiredStateSignature` and timeline limit of the config it was last sent with. */
  requiredState: string;
  timelineLimit: number;
  /** The user's membership when it was last sent (an invite turning into a join is sent whole). */
  membership: string;
}

export interface ConnectionState {
  rooms: Map<string, SentRoom>;
  subscriptions: Map<string, RoomConfig>;
}

export interface ParsedPos {
  version: number;
  positions: SyncPositions;
}

export const emptyState = (): ConnectionState => ({ rooms: new Map(), subscriptions: new Map() });

export function formatPos(version: number, positions: SyncPositions): string {
  return `${version}.${formatSyncToken(positions)}`;
}

const VERSION = /^(0|[1-9][0-9]{0,15})$/;

/** MSC4186: an unknown or expired `pos` is 400 `M_UNKNOWN_POS`; the client starts afresh. */
export const unknownPos = (message: string) => matrixError(400, 'M_UNKNOWN_POS', message);

export function parsePos(pos: string): ParsedPos {
  const dot = pos.indexOf('.');
  const version = pos.slice(0, dot);
  const positions = dot > 0 && VERSION.test(version) ? parseSyncToken(pos.slice(dot + 1)) : null;
  if (!positions)
    throw unknownPos(`"pos" is not a position of this server: ${JSON.stringify(pos.slice(0, 40))}`);
  return { version: Number(version), positions };
}

// --- stored form -------------------------------------------------------------------------------
// Compact, since a connection over many rooms writes one entry per room: configs are listed
// once and rooms point at them.

interface StoredShape {
  rooms: Record<string, [at: number | null, config: number, membership: string]>;
  configs: [requiredState: string, timelineLimit: number][];
  subscriptions: Record<string, JsonObject>;
}

export function toStored(state: ConnectionState): JsonObject {
  const configs: [string, number][] = [];
  const index = new Map<string, number>();
  const rooms: StoredShape['rooms'] = {};
  for (const [roomId, sent] of state.rooms) {
    const key = `${sent.timelineLimit}\u0000${sent.requiredState}`;
    let i = index.get(key);
    if (i === undefined) {
      i = configs.length;
      configs.push([sent.requiredState, sent.timelineLimit]);
      index.set(key, i);
    }
    rooms[roomId] = [sent.at, i, sent.membership];
  }
  const subscriptions: Record<string, JsonObject> = {};
  for (const [roomId, config] of state.subscriptions) subscriptions[roomId] = config as unknown as JsonObject;
  return { rooms, configs, subscriptions } as unknown as JsonObject;
}

/** The stored state back; rows are this program's own, but a damaged one reads as empty parts. */
export function fromStored(stored: JsonObject): ConnectionState {
  const shape = stored as unknown as Partial<StoredShape>;
  const state = emptyState();
  const configs = Array.isArray(shape.configs) ? shape.configs : [];
  for (const [roomId, entry] of Object.entries(shape.rooms ?? {})) {
    const config = Array.isArray(entry) ? configs[entry[1]] : undefined;
    if (!config) continue;
    state.rooms.set(roomId, {
      at: entry[0],
      requiredState: config[0],
      timelineLimit: config[1],
      membership: entry[2],
    });
  }
  for (const [roomId, config] of Object.entries(shape.subscriptions ?? {}))
    state.subscriptions.set(roomId, config as unknown as RoomConfig);
  return state;
}

export async function loadState(
  store: Store,
  key: { userId: string; deviceId: string; connId: string },
  version: number,
): Promise<ConnectionState> {
  if (version === 0) return emptyState();
  const stored = await store.userData.slidingSyncConnection(key.userId, key.deviceId, key.connId, version);
  if (!stored) throw unknownPos('This sliding sync position has expired; start again without "pos"');
  return fromStored(stored);
}
