/**
 * Filters — client-server-api/_index.md "Filtering" and "Lazy-loading room members",
 * data/api/client-server/filter.yaml and definitions/{sync_filter,event_filter,room_event_filter}.yaml.
 *
 * A filter is checked here, once — on upload, or when a request names one — into the typed
 * `Filter` the services take (`src/homeserver/filter.ts` declares it and matches events).
 */

import { forbidden } from '../../homeserver/errors.ts';
import type {
  EventFilter,
  Filter,
  FilterService,
  RoomEventFilter,
  RoomFilter,
} from '../../homeserver/filter.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint } from '../endpoint.ts';
import { decodeJsonText, invalid, type Source, type Validator, v } from '../validate.ts';

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

/**
 * The filter a `filter` query parameter names: inline JSON when it starts with `{`
 * (sync.yaml "filter"), a stored filter ID otherwise, the empty filter when absent.
 * Unknown IDs and bad JSON are M_INVALID_PARAM (the parameter is what is wrong).
 */
export async function loadFilter(
  filters: Pick<FilterService, 'find'>,
  userId: string,
  param: string | undefined,
  name = 'filter',
): Promise<Filter> {
  if (param === undefined || param === '') return {};
  if (param.startsWith('{')) return parseFilter(parseJsonParam(param, name), 'query', name);
  const stored = await filters.find(userId, param);
  if (!stored) return invalid(name, 'query', `no filter with ID ${JSON.stringify(param.slice(0, 40))}`);
  return parseFilter(stored, 'query', name);
}

export function filterEndpoints(services: Pick<Services, 'filters'>): Endpoint[] {
  const { filters } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/user/{userId}/filter
      method: 'POST',
      path: '/user/{userId}/filter',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      body: v.jsonObject(),
      spec: 'client-server-api/#post_matrixclientv3useruseridfilter',
      handler: async ({ params, body, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot create filters for other users');
        parseFilter(body, 'body');
        return { filter_id: await filters.create(auth.userId, body) };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/user/{userId}/filter/{filterId}
      method: 'GET',
      path: '/user/{userId}/filter/{filterId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3useruseridfilterfilterid',
      handler: async ({ params, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot read filters of other users');
        return filters.get(auth.userId, params.filterId);
      },
    }),
  ];
}
