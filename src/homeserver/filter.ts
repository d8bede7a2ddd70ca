/**
 * Filters — client-server-api/_index.md "Filtering" and "Lazy-loading room members";
 * data/api/client-server/filter.yaml and definitions/{sync_filter,event_filter,room_event_filter}.yaml;
 * appendices.md "Dot-separated property paths" for `event_fields`.
 *
 * The types of a filter, kept with the wire names so callers read `filter.room?.timeline?.limit`
 * as the spec writes it; the service that stores them; and the pure matching functions /sync,
 * /messages and /context call per event. Checking a filter's shape is the API layer's
 * (`src/api/client/filter.ts`): a service is handed a `Filter` already checked.
 */

import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import type { HomeserverContext } from './context.ts';
import { notFound } from './errors.ts';

/** definitions/event_filter.yaml */
export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

/** definitions/room_event_filter.yaml */
export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

/** `RoomFilter` of definitions/sync_filter.yaml */
export interface RoomFilter {
  rooms?: string[];
  not_rooms?: string[];
  include_leave?: boolean;
  timeline?: RoomEventFilter;
  state?: RoomEventFilter;
  ephemeral?: RoomEventFilter;
  account_data?: RoomEventFilter;
}

/** definitions/sync_filter.yaml */
export interface Filter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: RoomFilter;
}

// --- the service ----------------------------------------------------------------------------

export interface FilterService {
  /** Stores a definition the caller has checked (`parseFilter`); returns its ID. */
  create(userId: string, definition: JsonObject): Promise<string>;
  /** The definition as uploaded; M_NOT_FOUND when the user has no such filter. */
  get(userId: string, filterId: string): Promise<JsonObject>;
  /** The definition as uploaded, or null when the user has no such filter. */
  find(userId: string, filterId: string): Promise<JsonObject | null>;
}

export function createFilterService(ctx: Pick<HomeserverContext, 'store'>): FilterService {
  const { store } = ctx;
  return {
    // The definition is kept as uploaded so GET returns it unchanged, unknown keys included.
    create: (userId, definition) => store.userData.createFilter(userId, definition),

    async get(userId, filterId) {
      const stored = await store.userData.getFilter(userId, filterId);
      if (!stored) throw notFound('No such filter');
      return stored;
    },

    async find(userId, filterId) {
      return (await store.userData.getFilter(userId, filterId)) ?? null;
    },
  };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// --- matching -------------------------------------------------------------------------------

/** What the event filters look at; client-format events, PDUs and ephemeral events all fit. */
export interface FilterableEvent {
  type: string;
  sender?: string;
  room_id?: string;
  content?: unknown;
}

type Matcher = (value: string) => boolean;

const globCache = new WeakMap<readonly string[], Matcher>();

/** A list of type patterns where `*` matches any run of characters (event_filter.yaml). */
function typeMatcher(patterns: readonly string[]): Matcher {
  let matcher = globCache.get(patterns);
  if (!matcher) {
    const exact = new Set<string>();
    const wild: RegExp[] = [];
    for (const p of patterns) {
      if (!p.includes('*')) exact.add(p);
      else wild.push(new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 's'));
    }
    matcher = (value) => exact.has(value) || wild.some((re) => re.test(value));
    globCache.set(patterns, matcher);
  }
  return matcher;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Whether `type` passes `types` / `not_types` alone (e.g. for account data by type). */
export function matchesType(filter: EventFilter | undefined, type: string): boolean {
  if (!filter) return true;
  if (filter.not_types && typeMatcher(filter.not_types)(type)) return false;
  if (filter.types && !typeMatcher(filter.types)(type)) return false;
  return true;
}

/** `rooms` / `not_rooms` of a room filter or room event filter; `not_rooms` wins. */
export function matchesRoom(
  filter: { rooms?: string[]; not_rooms?: string[] } | undefined,
  roomId: string,
): boolean {
  if (!filter) return true;
  if (filter.not_rooms?.includes(roomId)) return false;
  if (filter.rooms && !filter.rooms.includes(roomId)) return false;
  return true;
}

/**
 * Whether an event passes an `EventFilter` or `RoomEventFilter`. Exclusions win over
 * inclusions; an absent list constrains nothing; an event without a sender (ephemeral) fails
 * a `senders` list. `roomId` stands in for an event that carries none (sync's room sections).
 */
export function matchesEventFilter(
  filter: EventFilter | RoomEventFilter | undefined,
  event: FilterableEvent,
  roomId: string | undefined = event.room_id,
): boolean {
  if (!filter) return true;
  if (!matchesType(filter, event.type)) return false;
  const sender = event.sender;
  if (filter.not_senders && sender !== undefined && filter.not_senders.includes(sender)) return false;
  if (filter.senders && (sender === undefined || !filter.senders.includes(sender))) return false;
  const room = filter as RoomEventFilter;
  if (roomId !== undefined && !matchesRoom(room, roomId)) return false;
  if (room.contains_url !== undefined) {
    const content = event.content;
    const hasUrl = isPlainObject(content) && typeof content.url === 'string';
    if (hasUrl !== room.contains_url) return false;
  }
  return true;
}

/** The limit to apply: the filter's, else `fallback`, never above `max`. */
export function filterLimit(filter: EventFilter | undefined, fallback: number, max: number): number {
  return Math.min(filter?.limit ?? fallback, max);
}

// --- event_fields ---------------------------------------------------------------------------

/**
 * Split a dot-separated property path (appendices.md): `\.` is a literal dot, `\\` a literal
 * backslash, any other `\x` stays as the two characters.
 */
export function parseFieldPath(path: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string;
    if (ch === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) {
      current += path[i + 1];
      i++;
    } else if (ch === '.') {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Keep only the listed fields of an event (sync_filter.yaml `event_fields`). Paths that do not
 * exist are skipped. An absent or empty list keeps everything, as Synapse does: an event
 * reduced to `{}` would be of no use to anyone.
 */
export function applyEventFields<T extends JsonObject>(
  event: T,
  fields: readonly string[] | undefined,
): JsonObject {
  if (!fields || fields.length === 0) return event;
  const out: JsonObject = {};
  for (const field of fields) {
    const path = parseFieldPath(field);
    let source: JsonValue | undefined = event;
    for (const key of path) {
      source = isPlainObject(source) && Object.hasOwn(source, key) ? (source as JsonObject)[key] : undefined;
      if (source === undefined) break;
    }
    if (source === undefined) continue;
    let target = out;
    for (const key of path.slice(0, -1)) {
      const next = Object.hasOwn(target, key) ? target[key] : undefined;
      if (!isPlainObject(next)) {
        const created: JsonObject = {};
        Object.defineProperty(target, key, {
          value: created,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        target = created;
      } else target = next as JsonObject;
    }
    const leaf = path[path.length - 1] as string;
    Object.defineProperty(target, leaf, {
      value: source,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
