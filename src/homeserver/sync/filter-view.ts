/**
 * The decisions /sync takes from a filter — client-server-api "Filtering", sync_filter.yaml,
 * room_event_filter.yaml, event_filter.yaml — read once from the validated `Filter` of the
 * filters service (filter.ts), whose matching functions do the per-event work.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import {
  applyEventFields,
  type EventFilter,
  type Filter,
  type FilterableEvent,
  filterLimit,
  matchesEventFilter,
  matchesRoom,
  type RoomEventFilter,
} from '../filter.ts';

/** The timeline length when the filter gives none (Synapse's default; the spec leaves it to servers). */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** "Servers should … impose a maximum value to avoid resource exhaustion" (event_filter.yaml `limit`). */
export const MAX_TIMELINE_LIMIT = 1000;

export interface EventFilterView {
  /** The filter's `limit`, if it gives one. */
  limit: number | undefined;
  /** For room events and room sections, the room is the section's (`rooms` / `not_rooms`). */
  matches(event: FilterableEvent, roomId?: string): boolean;
}

export interface RoomEventFilterView extends EventFilterView {
  lazyLoadMembers: boolean;
  includeRedundantMembers: boolean;
  unreadThreadNotifications: boolean;
  includesRoom(roomId: string): boolean;
}

export interface SyncFilterView {
  eventFormat: 'client' | 'federation';
  /** Applies `event_fields` (every field when the filter lists none). */
  fields(event: JsonObject): JsonObject;
  presence: EventFilterView;
  accountData: EventFilterView;
  room: {
    /** The RoomFilter's `rooms` / `not_rooms`: a room left out has no section at all. */
    includesRoom(roomId: string): boolean;
    includeLeave: boolean;
    timeline: RoomEventFilterView;
    state: RoomEventFilterView;
    ephemeral: RoomEventFilterView;
    accountData: RoomEventFilterView;
  };
  /** The timeline length applied: the filter's (0 allowed), else the default, never above the cap. */
  timelineLimit: number;
  /** Names what decides a room's timeline page (its filter and length), for sharing pages. */
  timelineKey: string;
  /** Names what decides how an event is shown (`event_format`, `event_fields`), for sharing formatted events. */
  formatKey: string;
}

function eventView(filter: EventFilter | undefined): EventFilterView {
  return { limit: filter?.limit, matches: (event, roomId) => matchesEventFilter(filter, event, roomId) };
}

function roomEventView(filter: RoomEventFilter | undefined): RoomEventFilterView {
  return {
    ...eventView(filter),
    lazyLoadMembers: filter?.lazy_load_members === true,
    includeRedundantMembers: filter?.include_redundant_members === true,
    unreadThreadNotifications: filter?.unread_thread_notifications === true,
    includesRoom: (roomId) => matchesRoom(filter, roomId),
  };
}

export function syncFilterView(filter: Filter): SyncFilterView {
  const room = filter.room;
  return {
    eventFormat: filter.event_format ?? 'client',
    fields: (event) => applyEventFields(event, filter.event_fields),
    presence: eventView(filter.presence),
    accountData: eventView(filter.account_data),
    room: {
      includesRoom: (roomId) => matchesRoom(room, roomId),
      includeLeave: room?.include_leave === true,
      timeline: roomEventView(room?.timeline),
      state: roomEventView(room?.state),
      ephemeral: roomEventView(room?.ephemeral),
      accountData: roomEventView(room?.account_data),
    },
    timelineLimit: filterLimit(room?.timeline, DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT),
    timelineKey: JSON.stringify(room?.timeline ?? null),
    formatKey: JSON.stringify([filter.event_format ?? 'client', filter.event_fields ?? null]),
  };
}
