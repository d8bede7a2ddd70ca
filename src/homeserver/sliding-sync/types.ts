/**
 * Simplified sliding sync (MSC4186) as the service sees it: the request already checked and
 * read into one shape whichever form the client used (the unstable one matrix-js-sdk and
 * Element X send — `ranges`, `required_state` pairs, `is_invite` — or the MSC's later one —
 * `range`, `{include, exclude, lazy_members}`, `is_invited`), and the answer in the unstable
 * endpoint's wire form, which is what those clients read.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { E2eeSyncData } from '../e2ee/sync-data.ts';
import type { StrippedStateEvent } from '../sync/stripped.ts';

/**
 * What sliding sync reads of end-to-end encryption (its `to_device` and `e2ee` extensions):
 * the E2EE service's sync data, the same four reads /sync makes. Positions are the store's
 * `toDevice` / `deviceLists` stream positions.
 */
export type E2eeForSync = E2eeSyncData;

/** One `(type, state_key)` pattern; null matches anything. `$ME` is already the user ID. */
export interface StatePattern {
  type: string | null;
  stateKey: string | null;
}

export interface RequiredState {
  include: StatePattern[];
  exclude: StatePattern[];
  /** Member events only for the timeline's senders and targets ("Lazy loaded memberships"). */
  lazyMembers: boolean;
}

/** What to send for a room a rule matches (MSC4186 "room config"). */
export interface RoomConfig {
  timelineLimit: number;
  requiredState: RequiredState;
}

export interface ListFilters {
  isDm?: boolean;
  isEncrypted?: boolean;
  isInvite?: boolean;
  /** Rooms that these spaces (joined) name in `m.space.child`; any of them. */
  spaces?: string[];
  /** `m.room.create` `type`s, null for rooms without one. */
  roomTypes?: (string | null)[];
  notRoomTypes?: (string | null)[];
  tags?: string[];
  notTags?: string[];
  /** Case-insensitive part of the room's name as a client shows it (MSC3575 `room_name_like`). */
  roomNameLike?: string;
}

/** MSC3575's orders, applied in turn; recency always breaks the remaining ties. */
export type ListSort = 'by_recency' | 'by_name' | 'by_notification_level';

export interface ListRequest extends RoomConfig {
  /** Inclusive index ranges into the filtered, sorted list; undefined for the whole list. */
  ranges: [number, number][] | undefined;
  filters: ListFilters;
  /** Absent: by recency (MSC4186's only order). */
  sort?: ListSort[];
}

/** Which rooms an extension covers: all rooms of the answer's rules unless narrowed. */
export interface ExtensionScope {
  enabled: boolean;
  /** List names whose rooms it covers; undefined = every list. */
  lists?: string[];
  /** Room IDs it covers; `*` = every subscribed room; undefined = every subscription. */
  rooms?: string[];
}

export interface ExtensionsRequest {
  toDevice?: { enabled: boolean; since?: string; limit?: number };
  e2ee?: { enabled: boolean };
  accountData?: ExtensionScope;
  receipts?: ExtensionScope;
  typing?: ExtensionScope;
}

export interface SlidingSyncRequest {
  userId: string;
  /** Null for a token without a device: no to-device or key sections then. */
  deviceId: string | null;
  /** The connection (`conn_id`); '' when the client names none. */
  connId: string;
  pos?: string;
  /** Milliseconds to wait when there is nothing new; capped by `config.maxSyncTimeoutMs`. */
  timeoutMs?: number;
  setPresence?: 'online' | 'offline' | 'unavailable';
  lists: Record<string, ListRequest>;
  /** New or changed subscriptions; they stay with the connection until unsubscribed. */
  roomSubscriptions: Record<string, RoomConfig>;
  unsubscribeRooms: string[];
  extensions: ExtensionsRequest;
  txnId?: string;
  signal?: AbortSignal;
}

export interface Hero {
  user_id: string;
  displayname?: string;
  avatar_url?: string;
}

export interface RoomResult {
  initial?: true;
  membership?: string;
  lists?: string[];
  bump_stamp?: number;
  name?: string;
  avatar?: string;
  heroes?: Hero[];
  is_dm?: boolean;
  required_state?: JsonObject[];
  timeline?: JsonObject[];
  prev_batch?: string;
  limited?: boolean;
  /** The timeline is the latest events up to a grown `timeline_limit`, some already sent. */
  unstable_expanded_timeline?: boolean;
  num_live?: number;
  joined_count?: number;
  invited_count?: number;
  notification_count?: number;
  highlight_count?: number;
  invite_state?: StrippedStateEvent[];
  knock_state?: StrippedStateEvent[];
  /** MSC4186's later name for `invite_state` / `knock_state`. */
  stripped_state?: StrippedStateEvent[];
}

export interface SlidingSyncResponse {
  pos: string;
  txn_id?: string;
  lists: Record<string, { count: number }>;
  rooms: Record<string, RoomResult>;
  extensions: JsonObject;
}
