/**
 * Filters — client-server-api/_index.md "Filtering" and "Lazy-loading room members";
 * data/api/client-server/filter.yaml and definitions/{sync_filter,event_filter,room_event_filter}.yaml;
 * appendices.md "Dot-separated property paths" for `event_fields`.
 *
 * A filter is validated once (on upload, or when given inline) into the typed `Filter`, kept
 * with the wire names so callers read `filter.room?.timeline?.limit` as the spec writes it.
 * The matching functions are pure: /sync, /messages and /context call them per event.
 */

import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import type { HomeserverContext } from './context.ts';
import { notFound } from './errors.ts';
import { decodeJsonText, invalid, isPlainObject, type Source, type Validator, v } from './validate.ts';

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

// --- validation -----------------------------------------------------------------------------

// The spec gives sender and room lists the `^@` / `^!` patterns; anything further (a full
// identifier grammar) would refuse historical user IDs that still appear in old rooms.
const userIdItem = v.string({ pattern: /^@/, patternName: 'a user ID' });
const roomIdItem = v.string({ pattern: /^!/, patternName: 'a room ID' });
/** Bounds how much work one filter can ask of every event it is matched against. */
const MAX_LIST = 1000;

// `limit` must be "greater than 0" by the spec, yet clients ask for `timeline.limit: 0` to get
// state without history, and Synapse and ruma accept it; 0 is kept, negatives are refused.
const eventFilterShape = {
  limit: v.optional(v.int({ min: 0 })),
  types: v.optional(v.array(v.string(), { max: MAX_LIST })),
  not_types: v.optional(v.array(v.string(), { max: MAX_LIST })),
  senders: v.optional(v.array(userIdItem, { max: MAX_LIST })),
  not_senders: v.optional(v.array(userIdItem, { max: MAX_LIST })),
} as const;

const eventFilter: Validator<EventFilter> = v.object(eventFilterShape);

export const roomEventFilterValidator: Validator<RoomEventFilter> = v.object({
  ...eventFilterShape,
  rooms: v.optional(v.array(roomIdItem, { max: MAX_LIST })),
  not_rooms: v.optional(v.array(roomIdItem, { max: MAX_LIST })),
  contains_url: v.optional(v.bool()),
  lazy_load_members: v.optional(v.bool()),
  include_redundant_members: v.optional(v.bool()),
  unread_thread_notifications: v.optional(v.bool()),
});

const roomFilter: Validator<RoomFilter> = v.object({
  rooms: v.optional(v.array(roomIdItem, { max: MAX_LIST })),
  not_rooms: v.optional(v.array(roomIdItem, { max: MAX_LIST })),
  include_leave: v.optional(v.bool()),
  timeline: v.optional(roomEventFilterValidator),
  state: v.optional(roomEventFilterValidator),
  ephemeral: v.optional(roomEventFilterValidator),
  account_data: v.optional(roomEventFilterValidator),
});

export const filterValidator: Validator<Filter> = v.object({
  event_fields: v.optional(v.array(v.string(), { max: MAX_LIST })),
  event_format: v.optional(v.enum(['client', 'federation'])),
  presence: v.optional(eventFilter),
  account_data: v.optional(eventFilter),
  room: v.optional(roomFilter),
});

/** Deepest nesting a filter needs is 4 (filter → room → timeline → types → item). */
const FILTER_MAX_DEPTH = 8;

/**
 * Validate a filter definition. A body (`POST /filter`) fails with M_BAD_JSON, a query
 * parameter (`?filter=`) with M_INVALID_PARAM, each naming the offending field.
 */
export function parseFilter(value: unknown, source: Source, name = 'filter'): Filter {
  return filterValidator.parse(value, source === 'body' ? '' : name, source);
}

export function parseRoomEventFilter(value: unknown, source: Source, name = 'filter'): RoomEventFilter {
  return roomEventFilterValidator.parse(value, source === 'body' ? '' : name, source);
}

/** Parse JSON text given in a query parameter; bad JSON is M_INVALID_PARAM. */
export function parseJsonParam(text: string, name: string): unknown {
  return decodeJsonText(text, FILTER_MAX_DEPTH, (problem) => invalid(name, 'query', problem));
}

// --- the service ----------------------------------------------------------------------------

export interface FilterService {
  /** Validates and stores a filter (M_BAD_JSON when invalid); returns its ID. */
  create(userId: string, definition: unknown): Promise<string>;
  /** The definition as uploaded; M_NOT_FOUND when the user has no such filter. */
  get(userId: string, filterId: string): Promise<JsonObject>;
  /**
   * The filter a `filter` query parameter names: inline JSON when it starts with `{`
   * (sync.yaml "filter"), a stored filter ID otherwise, the empty filter when absent.
   * Unknown IDs and bad JSON are M_INVALID_PARAM (the parameter is what is wrong).
   */
  load(userId: string, param: string | undefined, name?: string): Promise<Filter>;
}

export function createFilterService(ctx: Pick<HomeserverContext, 'store'>): FilterService {
  const { store } = ctx;
  return {
    async create(userId, definition) {
      parseFilter(definition, 'body');
      // The definition is kept as uploaded so GET returns it unchanged, unknown keys included.
      return store.userData.createFilter(userId, definition as JsonObject);
    },

    async get(userId, filterId) {
      const stored = await store.userData.getFilter(userId, filterId);
      if (!stored) throw notFound('No such filter');
      return stored;
    },

    async load(userId, param, name = 'filter') {
      if (param === undefined || param === '') return {};
      if (param.startsWith('{')) return parseFilter(parseJsonParam(param, name), 'query', name);
      const stored = await store.userData.getFilter(userId, param);
      if (!stored) return invalid(name, 'query', `no filter with ID ${JSON.stringify(param.slice(0, 40))}`);
      return parseFilter(stored, 'query', name);
    },
  };
}

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
