/**
 * `Store` — the only persistence seam (README "Architecture", "Seams"). Everything the homeserver keeps
 * goes through it; `QUERIES.md` lists what it asks and why. One method is one transaction:
 * a method that writes several tables writes all of them or none.
 *
 * The store keeps events as it is given them: it neither signs, hashes nor authorises. The
 * homeserver resolves state and passes the result; the store keeps it as deltas.
 *
 * Positions: each stream (`events`, `receipts`, `accountData`, `toDevice`, `deviceLists`)
 * has a counter that a committed write increases by one per row, so positions are unique
 * and gapless. A position names the point *after* the row that holds it; 0 is before all.
 */
import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import type { IdentifiedPdu, StateMap } from '../core/pdu.ts';
import type { BackupHeader } from './backup.ts';

export type StoreErrorCode =
  /** A row that must be new already exists (user ID, alias, …). */
  | 'CONFLICT'
  /** Something the operation needs is not stored (e.g. the event a state is taken after). */
  | 'NOT_FOUND'
  /** The input cannot be stored as given. */
  | 'INVALID'
  /** The database was written by a newer Hearth; it is left untouched. */
  | 'SCHEMA_TOO_NEW'
  | 'CLOSED'
  /** The backend failed (I/O, quota, …); the transaction was rolled back. */
  | 'BACKEND';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------
// Events, rooms, state

/** Where an event sits in the two orders of a room. `stream` is null for events outside
 * every timeline: outliers, rejected and soft-failed events. */
export interface EventPosition {
  eventId: string;
  depth: number;
  stream: number | null;
}

export interface SendSnapshotRequest {
  txn?: { userId: string; deviceId: string; txnId: string };
  keys: readonly (readonly [type: string, stateKey: string])[];
  prevEvents?: boolean;
  joined?: boolean;
}

export interface SendSnapshot {
  /** The event of an earlier send with the same transaction ID: nothing else is read then. */
  earlier: string | null;
  state: StoredEvent[];
  extremities: EventPosition[];
  /** With several extremities: the room's current state. */
  currentState?: StateMap;
  prevEvents?: StoredEvent[];
  /** User IDs of the joined members, when asked. */
  joined?: string[];
}

export interface StoredEvent {
  /** The event as stored: after a redaction, its redacted form. */
  event: IdentifiedPdu;
  roomId: string;
  stream: number | null;
  depth: number;
  outlier: boolean;
  /** Why the event was rejected, or null. */
  rejected: string | null;
  softFailed: boolean;
  /** The redaction event that removed this event's content, or null. */
  redactedBy: string | null;
  /** The client transaction that sent it, for `unsigned.transaction_id` on the sender's device. */
  txn: { deviceId: string; txnId: string } | null;
}

export type StateBefore =
  /** The state after another stored (or earlier in the same batch) event — the linear case. */
  | { afterEvent: string }
  /** A resolved state; kept as a delta from the state after the event's first prev event. */
  | { state: StateMap };

export interface PersistEventInput {
  event: IdentifiedPdu;
  /** Required unless `outlier`. */
  stateBefore?: StateBefore;
  /** Known by ID only (an auth-chain event): no state, no timeline place. */
  outlier?: boolean;
  rejected?: string;
  softFailed?: boolean;
  /** Older history from federation: given a negative stream position so /sync never sees it as new. */
  backfilled?: boolean;
  /**
   * The room's current state after this event, when the caller resolved it (forks). Without
   * it, an accepted, live state event replaces its own (type, state_key) in the current state.
   */
  currentState?: StateMap;
  /**
   * The room's forward extremities become this (live) event alone: a join through another
   * server, whose state supersedes the branches this server had left (a rejoin).
   */
  replacesExtremities?: boolean;
  /** Servers this event goes to: one outbox row each. */
  destinations?: readonly string[];
  /** The client transaction that sent it; later `eventForTransaction` finds the event. */
  txn?: { userId: string; deviceId: string; txnId: string };
  /** Push actions: the local users this event notifies. */
  notify?: readonly { userId: string; highlight: boolean }[];
  /** This event redacts another stored event: the target's content is replaced by `redacted`. */
  redaction?: { eventId: string; redacted: IdentifiedPdu };
  /** This redaction's target is not stored: it is kept awaiting it (`pendingRedactions`). */
  redactsLater?: string;
  /** The event arrives redacted by this stored redaction (which awaited it); `event` is its redacted form. */
  redactedBy?: string;
  /**
   * A membership event for a room this server is not in (an invite or knock received over
   * federation, a rejection of one): stored as an outlier with a stream position, and the
   * user's membership row updated so /sync shows it.
   */
  outOfBandMembership?: boolean;
  /**
   * A join through another server that answered with partial state (send_join
   * `omit_members`): the room is recorded as partial, with the servers the resident named,
   * in the same transaction (`partialStateRooms`, `fillPartialState`).
   */
  partialState?: { servers: readonly string[] };
}

/** A room joined with partial state whose full state is not merged yet (schema v10). */
export interface PartialStateRoom {
  roomId: string;
  /** This server's join, whose state before it the resident answered with, members omitted. */
  joinEventId: string;
  /** `servers_in_room` of the send_join answer. */
  servers: string[];
}

export interface PersistedEvent {
  eventId: string;
  stream: number | null;
  /** True when the event was already stored: nothing was written for it. */
  existed: boolean;
}

/** Pagination in stream order. Tokens are stream positions (after the event holding them).
 * 'f': from < stream ≤ to, ascending. 'b': to < stream ≤ from, descending. */
export interface StreamPage {
  from?: number;
  to?: number;
  dir: 'f' | 'b';
  limit: number;
  /** Only matching events count toward `limit`. */
  filter?: (event: StoredEvent) => boolean;
}

/** A place in topological order: after the event at (depth, stream). */
export interface TopoToken {
  depth: number;
  stream: number;
}

/** Pagination in topological order, with the same conventions as `StreamPage`. */
export interface TopoPage {
  from?: TopoToken;
  to?: TopoToken;
  dir: 'f' | 'b';
  limit: number;
  filter?: (event: StoredEvent) => boolean;
}

export interface Page<T> {
  events: StoredEvent[];
  /** Where the next page in the same direction starts, or null when the range is exhausted. */
  next: T | null;
}

export interface Membership {
  roomId: string;
  userId: string;
  membership: string;
  eventId: string;
  /** Stream position of the membership event (null for an outlier without one). */
  stream: number | null;
  forgotten: boolean;
}

export interface RoomRecord {
  roomId: string;
  roomVersion: string;
  creator: string;
  published: boolean;
}

export interface RoomAlias {
  alias: string;
  roomId: string;
  servers: string[];
  creator: string;
}

export interface Relation {
  eventId: string;
  relType: string;
  type: string;
  stream: number;
}

/** An event found by `searchEvents`. */
export interface SearchHit {
  eventId: string;
  roomId: string;
  stream: number;
}

export interface SearchQuery {
  /** Words as `core/search-text.ts` makes them; an event must hold every one. */
  terms: readonly string[];
  /** Only events of these rooms are found. */
  roomIds: ReadonlySet<string>;
  /** Only events at positions below this one (a previous answer's `next`). */
  before?: number;
  limit: number;
  /** Index rows read at most in one call (default 20,000); `next` then says where to go on. */
  maxScan?: number;
}

/** A thread root with its latest reply (stream order). */
export interface ThreadRecord {
  rootId: string;
  latestEventId: string;
  latest: number;
}

/** What the server bundles with an event (client-server-api "Aggregations of child events"). */
export interface RelationSummary {
  /** `m.replace` relations, newest first (at most 100). */
  replace: string[];
  /** `m.thread` replies: how many, and the latest. */
  thread: { count: number; latestEventId: string } | null;
  /** `m.reference` relations, oldest first (the newest 100). */
  references: string[];
}

export interface NotificationRecord {
  roomId: string;
  eventId: string;
  stream: number;
  highlight: boolean;
}

export interface RoomStore {
  /**
   * Persists a batch in order, all or nothing. Events already stored are skipped. Resolves
   * once durable; `options.committed` is called when committed, perhaps before (`Engine.write`).
   * `options.committing` is called, with what the write will have persisted, when the engine
   * asks to commit it (`WriteOptions.committing`, not on every engine): reads asked from then
   * on see it once committed, or nothing of it if it fails (then it may be called again for a
   * second attempt, or the promise rejects).
   */
  persistEvents(
    inputs: readonly PersistEventInput[],
    options?: { committed?(): void; committing?(persisted: readonly PersistedEvent[]): void },
  ): Promise<PersistedEvent[]>;
  getEvent(eventId: string): Promise<StoredEvent | null>;
  /** The stored redactions that named `eventId` before it was stored (`redactsLater`). */
  pendingRedactions(eventId: string): Promise<string[]>;
  /** The stored ones among `eventIds`. */
  getEvents(eventIds: readonly string[]): Promise<Map<string, StoredEvent>>;
  /**
   * `getEvents(eventIds)` and the `pendingRedactions` of each of `targets` (those with none
   * left out), in one read: what accept needs of a batch of received events.
   */
  getEventsAndPendingRedactions(
    eventIds: readonly string[],
    targets: readonly string[],
  ): Promise<{ events: Map<string, StoredEvent>; pendingRedactions: Map<string, string[]> }>;
  timeline(roomId: string, page: StreamPage): Promise<Page<number>>;
  /** Several rooms' stream pages read in one transaction (initial /sync). */
  timelines(requests: readonly (StreamPage & { roomId: string })[]): Promise<Page<number>[]>;
  messages(roomId: string, page: TopoPage): Promise<Page<TopoToken>>;
  /** Rooms with events at positions in (from, to]. */
  roomsWithEvents(from: number, to: number): Promise<string[]>;
  /** The latest timeline event at or before a stream position. */
  eventAtStream(roomId: string, position: number): Promise<StoredEvent | null>;
  forwardExtremities(roomId: string): Promise<EventPosition[]>;
  /** Events that name `eventId` among their prev_events. */
  childrenOf(eventId: string): Promise<string[]>;
  /** Rooms joined with partial state, their full state not merged yet. */
  partialStateRooms(): Promise<PartialStateRoom[]>;
  /**
   * Merges a partial-state room's full state, in one transaction: `stateBeforeJoin` (stored
   * events, the state before the join as another server answered it) adds the keys it holds
   * and they lack to the state before and after the join and every later timeline event, and
   * to the current state (membership rows too); the room is marked full at the next
   * `partial_state` position, which is returned. Null when the room is not partial.
   */
  fillPartialState(roomId: string, stateBeforeJoin: StateMap): Promise<number | null>;
  /** Rooms whose full state was merged at `partial_state` positions in (from, to]. */
  roomsFilledSince(from: number, to: number): Promise<string[]>;
  /** State before or after a stored event; null when it has none (outlier) or is unknown. */
  stateAt(eventId: string, when: 'before' | 'after'): Promise<StateMap | null>;
  /** State after the latest timeline event at or before a position (empty before the first). */
  stateAtStream(roomId: string, position: number): Promise<StateMap>;
  currentState(roomId: string, type?: string): Promise<StateMap>;
  /** Current state events, all or of the given types, read with the state in one transaction. */
  currentStateEvents(roomId: string, types?: readonly string[]): Promise<StoredEvent[]>;
  currentStateEvent(roomId: string, type: string, stateKey: string): Promise<StoredEvent | null>;
  /** Current state events at several (type, state_key) pairs, read in one transaction; absent ones left out. */
  currentStateEventsAt(
    roomId: string,
    keys: readonly (readonly [type: string, stateKey: string])[],
  ): Promise<StoredEvent[]>;
  membership(roomId: string, userId: string): Promise<Membership | null>;
  roomsForUser(userId: string, membership?: string): Promise<Membership[]>;
  members(roomId: string, membership?: string): Promise<Membership[]>;
  countMembers(roomId: string, membership: string): Promise<number>;
  forgetRoom(roomId: string, userId: string): Promise<void>;
  /** Replaces a stored event by its redacted form; false when the event is not stored. */
  redactEvent(eventId: string, redacted: IdentifiedPdu, redactedBy: string): Promise<boolean>;
  eventForTransaction(userId: string, deviceId: string, txnId: string): Promise<string | null>;
  /**
   * What building a local event reads, in one read transaction (one snapshot): the event an
   * earlier use of the transaction ID made, the current state events at `keys`, the forward
   * extremities, the whole current state when there are several extremities (the state the
   * new event is built on), the extremities' events when `prevEvents` (v1/v2 cite their
   * hashes), and the joined members when `joined`.
   */
  sendSnapshot(roomId: string, request: SendSnapshotRequest): Promise<SendSnapshot>;
  relations(
    eventId: string,
    options: { relType?: string; from?: number; dir: 'f' | 'b'; limit: number },
  ): Promise<Relation[]>;
  /** Relation summaries of the events that have any (one transaction; others are absent). */
  relationSummaries(eventIds: readonly string[]): Promise<Map<string, RelationSummary>>;
  /** Events holding every word, newest first (schema v6 word index). `next`: where to go on, null at the end. */
  searchEvents(query: SearchQuery): Promise<{ hits: SearchHit[]; next: number | null }>;
  /** A room's threads, latest activity first; `before` is a previous answer's `next`. */
  threads(
    roomId: string,
    page: { before?: number; limit: number },
  ): Promise<{ threads: ThreadRecord[]; next: number | null }>;
  /** Those of `rootIds` whose threads `userId` replied in. */
  threadParticipants(userId: string, rootIds: readonly string[]): Promise<Set<string>>;
  /** A user's notifications in the given rooms, newest first. */
  notificationsFor(
    userId: string,
    roomIds: readonly string[],
    page: { before?: number; limit: number; highlightOnly: boolean },
  ): Promise<NotificationRecord[]>;
  getRoom(roomId: string): Promise<RoomRecord | null>;
  setPublished(roomId: string, published: boolean): Promise<void>;
  publishedRooms(): Promise<string[]>;
  /** Fails with CONFLICT when the alias exists. */
  createAlias(alias: RoomAlias): Promise<void>;
  getAlias(alias: string): Promise<RoomAlias | null>;
  aliasesOf(roomId: string): Promise<RoomAlias[]>;
  deleteAlias(alias: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// Accounts, devices, tokens

export interface UserRecord {
  userId: string;
  passwordHash: string | null;
  createdAt: number;
  isGuest: boolean;
  admin: boolean;
  deactivated: boolean;
  userType: string | null;
  /** Locked by an admin (admin.yaml `lock`): every token answers 401 M_USER_LOCKED. */
  locked: boolean;
  /** Suspended by an admin (admin.yaml `suspend`): may read, not act. */
  suspended: boolean;
}

export interface DeviceRecord {
  userId: string;
  deviceId: string;
  displayName: string | null;
  createdAt: number;
  lastSeenAt: number | null;
  lastSeenIp: string | null;
}

/** Tokens are given in clear and kept as sha256 hashes: a stolen database yields none. */
export interface NewSession {
  userId: string;
  deviceId: string;
  /** Set on a new device; an existing device keeps its name unless this is given. */
  displayName?: string | null;
  accessToken: string;
  refreshToken?: string;
  /** Expiry of the access token (ms since epoch), null for none. */
  expiresAt?: number | null;
  now: number;
}

export interface TokenInfo {
  userId: string;
  deviceId: string;
  createdAt: number;
  expiresAt: number | null;
}

export interface RegistrationToken {
  token: string;
  usesAllowed: number | null;
  completed: number;
  expiresAt: number | null;
}

export interface AccountStore {
  /** Creates the user (CONFLICT when the ID is taken), optionally with a profile and a first session. */
  createUser(
    user: Omit<UserRecord, 'deactivated' | 'admin' | 'locked' | 'suspended'> & { admin?: boolean },
    extras?: { profile?: JsonObject; session?: NewSession },
  ): Promise<void>;
  getUser(userId: string): Promise<UserRecord | null>;
  updateUser(
    userId: string,
    patch: Partial<Pick<UserRecord, 'passwordHash' | 'admin' | 'userType' | 'locked' | 'suspended'>>,
  ): Promise<void>;
  /** Marks the user deactivated and removes every device, token and key. */
  deactivateUser(userId: string): Promise<void>;
  /**
   * Adds a token (pair) to a device, creating the device if new. `replaceDeviceTokens` first
   * revokes the device's earlier access and refresh tokens in the same transaction (login with
   * a known device_id); the device, its keys and to-device inbox stay.
   */
  createSession(session: NewSession, options?: { replaceDeviceTokens?: boolean }): Promise<void>;
  getAccessToken(token: string): Promise<TokenInfo | null>;
  deleteAccessToken(token: string): Promise<void>;
  /** Keeps an OpenID token (hashed) for `userId` until `expiresAt`; tokens expired before `now` are dropped. */
  putOpenIdToken(token: string, userId: string, expiresAt: number, now: number): Promise<void>;
  /** The user of an OpenID token not expired at `now`, or null. */
  openIdTokenUser(token: string, now: number): Promise<string | null>;
  /** Replaces a refresh token and its device's access tokens; null when the old token is unknown. */
  rotateRefreshToken(
    refreshToken: string,
    next: { accessToken: string; refreshToken: string; expiresAt: number | null; now: number },
  ): Promise<{ userId: string; deviceId: string } | null>;
  getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null>;
  listDevices(userId: string): Promise<DeviceRecord[]>;
  updateDevice(
    userId: string,
    deviceId: string,
    patch: Partial<Pick<DeviceRecord, 'displayName' | 'lastSeenAt' | 'lastSeenIp'>>,
  ): Promise<boolean>;
  /** Deletes devices with their tokens, keys and to-device inbox; notes a device-list change. */
  deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void>;
  /**
   * The user's dehydrated device (MSC3814): a device with no tokens, whose opaque data a
   * later login fetches to become it. Null when the user has none.
   */
  getDehydratedDevice(userId: string): Promise<{ deviceId: string; deviceData: JsonObject } | null>;
  /**
   * Makes `deviceId` the user's dehydrated device, in one transaction: the earlier one is
   * deleted with its keys and inbox. CONFLICT when `deviceId` is another (ordinary) device.
   */
  putDehydratedDevice(
    device: { userId: string; deviceId: string; deviceData: JsonObject; displayName: string | null },
    now: number,
  ): Promise<void>;
  /** Deletes the user's dehydrated device with its keys and inbox; its ID, or null when none. */
  deleteDehydratedDevice(userId: string): Promise<string | null>;
  putUiaSession(sessionId: string, data: JsonObject, expiresAt: number): Promise<void>;
  /** Null when unknown or expired at `now`. */
  getUiaSession(sessionId: string, now: number): Promise<JsonObject | null>;
  deleteUiaSession(sessionId: string): Promise<void>;
  putRegistrationToken(token: RegistrationToken): Promise<void>;
  getRegistrationToken(token: string): Promise<RegistrationToken | null>;
  /** Counts one use if the token is valid at `now`; false otherwise. */
  useRegistrationToken(token: string, now: number): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// Account data, filters, push rules, profiles

export interface AccountDataEntry {
  /** Null for global account data. */
  roomId: string | null;
  type: string;
  content: JsonObject;
  stream: number;
}

export interface PushRuleRecord {
  kind: 'override' | 'content' | 'room' | 'sender' | 'underride';
  ruleId: string;
  /** Order within the kind; higher first. */
  priority: number;
  /** The user's own rule, or null for a server-default rule of which only `enabled`/`actions` are overridden. */
  rule: JsonObject | null;
  enabled: boolean | null;
  actions: JsonValue[] | null;
}

export interface PushSettings {
  rules: readonly PushRuleRecord[];
  ignoredUsers: JsonObject | null;
}

export interface UserDataStore {
  getAccountData(userId: string, type: string, roomId?: string): Promise<JsonObject | null>;
  /** Returns the new account-data stream position. */
  setAccountData(userId: string, type: string, content: JsonObject, roomId?: string): Promise<number>;
  /** Entries set at positions in (from, to], oldest first. */
  accountDataSince(userId: string, from: number, to?: number): Promise<AccountDataEntry[]>;
  createFilter(userId: string, filter: JsonObject): Promise<string>;
  getFilter(userId: string, filterId: string): Promise<JsonObject | null>;
  /** The user's rules by kind then priority (highest first), and the position of the last change. */
  pushRules(userId: string): Promise<{ rules: PushRuleRecord[]; stream: number }>;
  putPushRule(userId: string, rule: PushRuleRecord): Promise<number>;
  /**
   * What evaluating push for an event needs of each user: their rules (as `pushRules`) and
   * the content of their `m.ignored_user_list`. Kept in a write-through cache that this
   * store's writes of either invalidate, and another store's too once a read of the caller's
   * (a send's snapshot, a /sync pass's positions) has found them (`CacheMarks`), so a send to
   * a room reads nothing here once its members are known; the users not cached are read
   * together, in one transaction.
   */
  pushSettings(userIds: readonly string[]): Promise<Map<string, PushSettings>>;
  deletePushRule(userId: string, kind: PushRuleRecord['kind'], ruleId: string): Promise<number | null>;
  getProfile(userId: string): Promise<JsonObject | null>;
  /** The profiles of `userIds` that have one, read in one transaction. */
  getProfiles(userIds: readonly string[]): Promise<Map<string, JsonObject>>;
  /** Sets fields (null removes one) atomically; returns the profile after. */
  updateProfile(userId: string, patch: Record<string, JsonValue | null>): Promise<JsonObject>;
  /**
   * A sliding sync connection's state as saved under `version` (simplified sliding sync,
   * MSC4186), or null when that version is unknown or was dropped.
   */
  slidingSyncConnection(
    userId: string,
    deviceId: string,
    connId: string,
    version: number,
  ): Promise<JsonObject | null>;
  /**
   * Saves a connection's state under a new version, higher than any the connection has, and
   * returns it; in the same transaction drops the versions below `confirmed` (the client has
   * moved past them: MSC4186 "Connections"). Versions are never reused, so two answers to
   * one retried request cannot overwrite each other.
   */
  saveSlidingSyncConnection(
    userId: string,
    deviceId: string,
    connId: string,
    state: JsonObject,
    confirmed: number,
  ): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// Receipts, notification counts

export interface Receipt {
  roomId: string;
  receiptType: string;
  userId: string;
  /** Undefined for an unthreaded receipt. */
  threadId?: string;
  eventId: string;
  data: JsonObject;
  stream: number;
}

export interface ReceiptStore {
  /** Replaces the user's receipt of this type (and thread) in the room; returns its position. */
  putReceipt(receipt: Omit<Receipt, 'stream'>): Promise<number>;
  /** Receipts at positions in (from, to], in the given rooms (all rooms when omitted). */
  receiptsSince(from: number, to: number, roomIds?: readonly string[]): Promise<Receipt[]>;
  roomReceipts(roomId: string): Promise<Receipt[]>;
  getReceipt(roomId: string, receiptType: string, userId: string, threadId?: string): Promise<Receipt | null>;
  /** Notifying events for the user in the room after a stream position. */
  notificationCounts(
    userId: string,
    roomId: string,
    after: number,
  ): Promise<{ notifications: number; highlights: number }>;
  /**
   * The user's unread counts in each room, kept at write time (no notification row is read):
   * the main timeline's, and each thread's by its root's event ID.
   */
  unreadCounts(userId: string, roomIds: readonly string[]): Promise<Map<string, RoomUnreadCounts>>;
  /**
   * A read receipt at stream position `upTo`: the counts of the thread (`'main'` for the main
   * timeline; every thread of the room when undefined: an unthreaded receipt) restart after
   * it, unless a receipt already put them further. Notification rows are kept.
   */
  markRead(userId: string, roomId: string, upTo: number, threadId?: string): Promise<void>;
}

export interface UnreadCounts {
  notifications: number;
  highlights: number;
}

export interface RoomUnreadCounts {
  main: UnreadCounts;
  /** Threads with unread notifications, by thread root. */
  threads: Map<string, UnreadCounts>;
}

// ---------------------------------------------------------------------------------------
// End-to-end encryption key distribution, to-device, key backup

export interface ToDeviceMessage {
  sender: string;
  type: string;
  content: JsonObject;
  messageId?: string;
}

export interface OneTimeKey {
  algorithm: string;
  keyId: string;
  key: JsonValue;
}

export interface BackupVersion {
  version: string;
  algorithm: string;
  authData: JsonObject;
  etag: number;
  count: number;
}

export interface E2eeStore {
  /** Returns the device-lists position of the change. */
  putDeviceKeys(userId: string, deviceId: string, keys: JsonObject): Promise<number>;
  /** Keys of the listed users' devices (all devices when `deviceIds` is empty or absent). */
  getDeviceKeys(
    query: readonly { userId: string; deviceIds?: readonly string[] }[],
  ): Promise<{ userId: string; deviceId: string; keys: JsonObject }[]>;
  /** Records that a user's device list changed (e.g. a remote user's), returns the position. */
  markDeviceListChanged(userId: string): Promise<number>;
  deviceListChanges(from: number, to: number): Promise<string[]>;
  addOneTimeKeys(userId: string, deviceId: string, keys: readonly OneTimeKey[]): Promise<void>;
  countOneTimeKeys(userId: string, deviceId: string): Promise<Record<string, number>>;
  /** Takes one key per claim, lowest key ID first; falls back to the fallback key (marked used). */
  claimKeys(
    claims: readonly { userId: string; deviceId: string; algorithm: string }[],
  ): Promise<{ userId: string; deviceId: string; keyId: string; key: JsonValue; fallback: boolean }[]>;
  putFallbackKey(userId: string, deviceId: string, key: OneTimeKey): Promise<void>;
  unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]>;
  /** `keyType`: master, self_signing, user_signing. Returns the device-lists position. */
  putCrossSigningKey(userId: string, keyType: string, key: JsonObject): Promise<number>;
  getCrossSigningKeys(userId: string): Promise<Record<string, JsonObject>>;
  putSignatures(
    signatures: readonly {
      userId: string;
      keyId: string;
      signerUserId: string;
      signerKeyId: string;
      signature: string;
    }[],
  ): Promise<void>;
  getSignatures(
    userId: string,
  ): Promise<{ keyId: string; signerUserId: string; signerKeyId: string; signature: string }[]>;
  /**
   * Queues messages for devices; returns the to-device position of the last. With `txn`, the
   * sender's transaction is recorded with the messages, and a transaction already recorded
   * queues nothing and returns 0 (idempotent `PUT /sendToDevice/{type}/{txnId}`).
   */
  sendToDevice(
    messages: readonly (ToDeviceMessage & { userId: string; deviceId: string })[],
    txn?: { userId: string; deviceId: string; txnId: string },
  ): Promise<number>;
  toDeviceMessages(
    userId: string,
    deviceId: string,
    from: number,
    limit: number,
  ): Promise<{ messages: (ToDeviceMessage & { stream: number })[]; next: number | null }>;
  deleteToDeviceMessages(userId: string, deviceId: string, upTo: number): Promise<void>;
  createBackupVersion(userId: string, algorithm: string, authData: JsonObject): Promise<string>;
  /** The given version, or the latest when omitted; null when none (or deleted). */
  getBackupVersion(userId: string, version?: string): Promise<BackupVersion | null>;
  updateBackupVersion(userId: string, version: string, authData: JsonObject): Promise<boolean>;
  deleteBackupVersion(userId: string, version: string): Promise<boolean>;
  /**
   * Stores sessions (replacing same IDs); returns the new etag. NOT_FOUND for an unknown
   * version. With `replace`, a stored session is replaced only when `replace(stored, new)`
   * says so, decided in the same transaction.
   */
  putBackupSessions(
    userId: string,
    version: string,
    sessions: readonly { roomId: string; sessionId: string; data: JsonObject }[],
    replace?: (stored: JsonObject, incoming: JsonObject) => boolean,
  ): Promise<number>;
  getBackupSessions(
    userId: string,
    version: string,
    roomId?: string,
    sessionId?: string,
  ): Promise<{ roomId: string; sessionId: string; data: JsonObject }[]>;
  deleteBackupSessions(userId: string, version: string, roomId?: string, sessionId?: string): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// Media

export interface MediaInfo {
  origin: string;
  mediaId: string;
  contentType: string;
  size: number;
  uploadName: string | null;
  userId: string | null;
  createdAt: number;
  /**
   * Present only on an ID reserved for a later upload (`POST /_matrix/media/v1/create`) and
   * not yet filled: when the reservation lapses (ms since the epoch). Such media has no bytes.
   */
  pendingUntil?: number;
}

export interface MediaReservation {
  origin: string;
  mediaId: string;
  /** Who may fill it. */
  userId: string;
  createdAt: number;
  pendingUntil: number;
}

/**
 * Media bytes as a caller hands them over. A stream is read to its end (an error it raises,
 * such as a size limit, fails the call with that error and stores nothing).
 */
export type MediaBody = Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface MediaStore {
  /**
   * The form this backend takes media in without converting it (IndexedDB: Blobs; SQLite:
   * bytes; files under `--data`: a stream, written to disk as it arrives). Every method takes
   * any `MediaBody`; handing over this one saves a copy of the whole file. Files are read back
   * as file-backed Blobs.
   */
  readonly keeps: 'blob' | 'bytes' | 'stream';
  /** Fails with CONFLICT when the ID exists. */
  putMedia(info: Omit<MediaInfo, 'size' | 'pendingUntil'>, data: MediaBody): Promise<MediaInfo>;
  /** Media with its bytes; null when unknown or only reserved. */
  getMedia(origin: string, mediaId: string): Promise<{ info: MediaInfo; data: Blob } | null>;
  /**
   * `getMedia` with the bytes in the form kept (`keeps`): no copy into a Blob on SQLite, whose
   * Blobs are built by copying (on Node, slower than reading the row).
   */
  getMediaAsKept(
    origin: string,
    mediaId: string,
  ): Promise<{ info: MediaInfo; data: Blob | Uint8Array } | null>;
  /** The description of stored or reserved media (`pendingUntil` tells a reservation). */
  getMediaInfo(origin: string, mediaId: string): Promise<MediaInfo | null>;
  /** Reserves an ID whose bytes come later (`completeMedia`). Fails with CONFLICT when the ID exists. */
  reserveMedia(reservation: MediaReservation): Promise<void>;
  /**
   * Fills a reserved ID, atomically: NOT_FOUND when the ID is not stored, CONFLICT when it
   * already has bytes (so two racing uploads cannot both win). Who may fill it and until when
   * is the caller's rule, checked on `getMediaInfo` before.
   */
  completeMedia(info: Omit<MediaInfo, 'size' | 'pendingUntil'>, data: MediaBody): Promise<MediaInfo>;
  deleteMedia(origin: string, mediaId: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// Federation: outbox, destinations, server keys, secrets

export type OutboxItem =
  | { seq: number; kind: 'pdu'; eventId: string }
  | { seq: number; kind: 'edu'; edu: JsonObject };

export interface DestinationState {
  retryAt: number;
  retryInterval: number;
  lastSuccessAt: number | null;
}

export interface ServerKey {
  serverName: string;
  keyId: string;
  /** Unpadded base64 public key. */
  key: string;
  validUntil: number;
  /** Set for old_verify_keys. */
  expiredAt: number | null;
  fetchedAt: number;
  /**
   * The whole signed `/_matrix/key/v2/server` response that carried this key, kept so a
   * notary can serve it again with the origin's own signature (server-server-api "Querying
   * Keys Through Another Server"). Absent for keys stored without it.
   */
  response?: JsonObject;
}

/** A received transaction staged before it is applied. */
export interface StagedTransaction {
  origin: string;
  txnId: string;
  txn: JsonObject;
  receivedAt: number;
}

export interface FederationStore {
  /**
   * Stages a received transaction unless `origin` sent `txnId` before: then nothing is
   * written and the answer says what is known — the first answer (`response`) when it was
   * applied, or `staged` while it waits. One transaction.
   */
  stageTransaction(
    staged: StagedTransaction,
  ): Promise<{ status: 'new' | 'staged' } | { status: 'answered'; response: JsonObject }>;
  /** Records the answer of a staged transaction and unstages it, in one transaction. */
  finishTransaction(origin: string, txnId: string, response: JsonObject, now: number): Promise<void>;
  /** Transactions staged and not yet answered, oldest first (what a restart applies). */
  stagedTransactions(limit: number): Promise<StagedTransaction[]>;
  /** Forgets the answers of transactions answered before `before` (they are no longer retried). */
  pruneTransactions(before: number): Promise<number>;
  enqueueEdu(destinations: readonly string[], edu: JsonObject): Promise<void>;
  /** Outbox rows for one destination, oldest first. */
  outbox(destination: string, limit: number): Promise<OutboxItem[]>;
  /** Removes rows up to and including `seq` (a sent transaction). */
  ackOutbox(destination: string, seq: number): Promise<void>;
  destinationsWithOutbox(): Promise<string[]>;
  getDestination(destination: string): Promise<DestinationState | null>;
  setDestination(destination: string, state: DestinationState | null): Promise<void>;
  putServerKeys(keys: readonly ServerKey[]): Promise<void>;
  getServerKeys(serverName: string, keyIds?: readonly string[]): Promise<ServerKey[]>;
  getSecret(name: string): Promise<Uint8Array | null>;
  /** Stores `value` unless a value exists; returns the value kept (the first one wins). */
  putSecretOnce(name: string, value: Uint8Array): Promise<Uint8Array>;
}

// ---------------------------------------------------------------------------------------
// The operator's side: application services' queue, stream followers, reports, admin views

export interface AppserviceQueueItem {
  seq: number;
  /** A room event, an ephemeral event (typing, receipt, presence), or a to-device message. */
  kind: 'event' | 'ephemeral' | 'to_device';
  data: JsonObject;
}

/** The transaction an application service is being sent, kept so a retry resends the same one. */
export interface AppserviceTxnState {
  txnId: string;
  /** The last queue position the transaction carries. */
  upTo: number;
  /** Milliseconds before the next attempt after a failure (0 when none failed). */
  retryInterval: number;
}

export interface Report {
  id: string;
  userId: string;
  roomId: string | null;
  eventId: string | null;
  targetUserId: string | null;
  reason: string | null;
  score: number | null;
  createdAt: number;
}

export interface UserListPage {
  users: UserRecord[];
  total: number;
}

export interface OperatorStore {
  /** Where a background follower of the event stream has got (null: never started). */
  getCursor(name: string): Promise<number | null>;
  /**
   * Queues items for application services and moves a follower's cursor, in one
   * transaction: an event is queued once, whatever restarts happen between the two.
   */
  enqueueAppservice(
    items: readonly { asId: string; kind: AppserviceQueueItem['kind']; data: JsonObject }[],
    cursor?: { name: string; position: number },
  ): Promise<void>;
  /** The oldest queued items of one application service, up to `upTo` when given. */
  appserviceQueue(asId: string, limit: number, upTo?: number): Promise<AppserviceQueueItem[]>;
  /** Drops the queued items up to `upTo` and clears the transaction state (a delivered transaction). */
  ackAppservice(asId: string, upTo: number): Promise<void>;
  getAppserviceTxn(asId: string): Promise<AppserviceTxnState | null>;
  setAppserviceTxn(asId: string, state: AppserviceTxnState | null): Promise<void>;
  addReport(report: Report): Promise<void>;
  /** Newest first. */
  reports(limit: number): Promise<Report[]>;
  /** Users in user-ID order after `from`, filtered; `total` counts every match. */
  listUsers(options: {
    from?: string;
    limit: number;
    filter?: (user: UserRecord) => boolean;
  }): Promise<UserListPage>;
  /** Every room this server has, in room-ID order. */
  listRooms(): Promise<RoomRecord[]>;
  /** Blocks (or unblocks) a room: nobody on this server may join it. */
  setRoomBlocked(roomId: string, blocked: { by: string; at: number } | null): Promise<void>;
  roomBlocked(roomId: string): Promise<{ by: string; at: number } | null>;
  /**
   * Forgets a room: its events, state, members, aliases, extremities, receipts and
   * relations, in one transaction. State snapshots (shared, keyed by group) are left.
   */
  purgeRoom(roomId: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------

export interface StreamPositions {
  events: number;
  receipts: number;
  accountData: number;
  toDevice: number;
  deviceLists: number;
  /** Partial-state rooms whose full state was merged (`fillPartialState`). */
  partialState: number;
}

export interface PositionsWithEvents {
  positions: StreamPositions;
  events: StoredEvent[];
  complete: boolean;
}

export interface SyncSnapshotRequest {
  deviceId: string | null;
  unreadRooms: readonly string[];
}

export interface SyncSnapshot {
  memberships: Membership[];
  /** Counters of every room of `unreadRooms`. */
  unread: Map<string, RoomUnreadCounts>;
  /** Absent without a device. */
  keys?: { oneTimeKeyCounts: Record<string, number>; unusedFallbackKeyTypes: string[] };
}

export interface Store {
  readonly rooms: RoomStore;
  readonly accounts: AccountStore;
  readonly userData: UserDataStore;
  readonly receipts: ReceiptStore;
  readonly e2ee: E2eeStore;
  readonly media: MediaStore;
  readonly federation: FederationStore;
  readonly operator: OperatorStore;
  /** Every stream's position, read together: a /sync `next_batch`. */
  positions(): Promise<StreamPositions>;
  /**
   * `positions()` and the timeline events at events positions after `after` (stream order, at
   * most `limit`), read together from one snapshot: where an incremental /sync starts. The
   * events are all those in (after, positions.events] when `complete`.
   */
  positionsWithEvents(after: number, limit: number): Promise<PositionsWithEvents>;
  /**
   * What every /sync pass reads of one user, in one read transaction: their memberships,
   * their unread counters in `unreadRooms`, and the key counts of `deviceId` (none for null).
   * The memberships may be kept from an earlier snapshot that read the same `members` cache
   * mark (nothing in `room_members` changed between): the same answer, without the read.
   */
  syncSnapshot(userId: string, request: SyncSnapshotRequest): Promise<SyncSnapshot>;
  /**
   * Calls `listener` when this store finds that another store on the same database (an old and
   * a new Service Worker, the page fallback in two tabs, two `hearth serve` on one `--data`)
   * changed `family` — room memberships, partial-state rooms — so that the homeserver drops what
   * it keeps of them. Found in the snapshot of a send (`sendSnapshot`, `currentStateEventsAt`)
   * or a /sync pass (`positions`), before that read returns (areas/common.ts `CacheMarks`).
   */
  onChangedElsewhere(family: 'members' | 'partial_state', listener: () => void): () => void;
  /**
   * Calls `listener` soon after another store on the same database committed anything (two
   * `hearth serve` on one `--data`), found without a read of this store's: so that long-polls
   * waiting here hear of what the other wrote. Never for this store's own writes; a store that
   * cannot tell (or can have no other writer) never calls it.
   */
  onCommittedElsewhere(listener: () => void): () => void;
  /** Every table as one backup file (`backup.ts`), from one consistent snapshot. */
  exportBackup(options: { serverName: string; now?: number }): Promise<Blob>;
  /**
   * Replaces everything with a backup of the same server, in one transaction: a bad or
   * foreign file (`BackupError`) changes nothing. In-memory state built on the old data is
   * the caller's to drop.
   */
  importBackup(backup: Blob, options: { serverName: string }): Promise<BackupHeader>;
  close(): Promise<void>;
}
