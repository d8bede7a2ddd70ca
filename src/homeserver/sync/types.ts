/**
 * The shapes /sync answers with (data/api/client-server/sync.yaml) and the parts of other
 * services sync reads: only what it uses, so each collaborator stays replaceable in tests.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { E2eeSyncData } from '../e2ee/sync-data.ts';
import type { PresenceService } from '../ephemeral/presence.ts';
import type { TypingService } from '../ephemeral/typing.ts';
import type { Filter } from '../filter.ts';
import type { RoomsService } from '../rooms/index.ts';
import type { StrippedStateEvent } from './stripped.ts';
import type { RoomSummary } from './summary.ts';

export type PresenceState = 'online' | 'offline' | 'unavailable';

import type { SharedReads } from './shared.ts';

export interface SyncDeps {
  /** Typing notifications (memory only); without it, no `m.typing` events. */
  typing?: Pick<TypingService, 'position' | 'changesSince'>;
  /** Presence (memory only); without it, the `presence` section stays empty. */
  presence?: Pick<PresenceService, 'position' | 'syncing' | 'changesSince'>;
  /** History visibility; without it, every event of a room the user is in is shown. */
  rooms?: Pick<RoomsService, 'filterVisible'>;
  /** The user's whole push ruleset, the content of the `m.push_rules` account data event. */
  pushRules?(userId: string): Promise<JsonObject>;
  /** To-device messages, key counts and device lists; without it, read from the store directly. */
  e2ee?: E2eeSyncData;
  /** Reads shared by the passes of waiters woken together (shared.ts); without it, each reads its own. */
  shared?: SharedReads;
}

export interface SyncRequest {
  userId: string;
  /** Null for a token without a device (application services): no device sections then. */
  deviceId: string | null;
  since?: string;
  /** The filter the request names, already checked (absent: the empty filter). */
  filter?: Filter;
  fullState?: boolean;
  setPresence?: PresenceState;
  /** Milliseconds to wait for something new; capped by `config.maxSyncTimeoutMs`. */
  timeoutMs?: number;
  /**
   * `use_state_after` (v1.16): state up to the end of the timeline, in `state_after` — or, when
   * asked by MSC4222's unstable name (matrix-js-sdk), in `org.matrix.msc4222.state_after`.
   */
  stateAfter?: 'stable' | 'unstable';
  /** The request's signal: an aborted long-poll stops waiting. */
  signal?: AbortSignal;
}

export interface EventBatch {
  events: JsonObject[];
}

export interface Timeline extends EventBatch {
  limited: boolean;
  prev_batch?: string;
}

/** Where a room's state goes: `state`, or `state_after` under its stable or MSC4222 name. */
export type StateField = 'state' | 'state_after' | 'org.matrix.msc4222.state_after';

export interface JoinedRoom {
  summary?: RoomSummary;
  state?: EventBatch;
  state_after?: EventBatch;
  'org.matrix.msc4222.state_after'?: EventBatch;
  timeline: Timeline;
  ephemeral: EventBatch;
  account_data: EventBatch;
  unread_notifications: { notification_count: number; highlight_count: number };
  unread_thread_notifications?: Record<string, { notification_count: number; highlight_count: number }>;
}

export interface LeftRoom {
  state?: EventBatch;
  state_after?: EventBatch;
  'org.matrix.msc4222.state_after'?: EventBatch;
  timeline: Timeline;
  account_data: EventBatch;
}

export interface SyncResponse {
  next_batch: string;
  rooms: {
    join: Record<string, JoinedRoom>;
    invite: Record<string, { invite_state: { events: StrippedStateEvent[] } }>;
    leave: Record<string, LeftRoom>;
    knock: Record<string, { knock_state: { events: StrippedStateEvent[] } }>;
  };
  presence: EventBatch;
  account_data: EventBatch;
  to_device: { events: JsonObject[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
  device_unused_fallback_key_types: string[];
}
