/**
 * The one implementation of `Store`, written once over an `Engine`; the backends differ
 * only in the engine they provide (`indexeddb/`, `sqlite/`).
 */
import { accountStore } from './areas/accounts.ts';
import {
  type CacheFamily,
  CacheMarks,
  currentPosition,
  invalid,
  KeptReads,
  requirePosition,
} from './areas/common.ts';
import { e2eeStore, oneTimeKeyCountsIn, unusedFallbackKeyTypesIn } from './areas/e2ee.ts';
import { federationStore, mediaStore } from './areas/media-federation.ts';
import { operatorStore } from './areas/operator.ts';
import { receiptStore, unreadCountsIn } from './areas/receipts.ts';
import { roomStore } from './areas/rooms.ts';
import { roomsOfUser, toStoredEvent } from './areas/rooms-read.ts';
import { PushSettingsCache, userDataStore } from './areas/user-data.ts';
import { exportBackup, importBackup } from './backup.ts';
import type { Engine, ReadOptions, Row, Tx, WriteOptions } from './engine.ts';
import type {
  MediaStore,
  Membership,
  Store,
  StreamPositions,
  SyncSnapshot,
  SyncSnapshotRequest,
} from './store.ts';

/** Parts a backend may provide instead of the engine-backed ones. */
export interface StoreParts {
  /** Media kept elsewhere than in the engine's rows (files under `--data`). */
  media?: {
    store: MediaStore;
    /** The bytes of media whose row holds none, for backups. */
    fileBlob(origin: string, mediaId: string): Promise<Blob | null>;
    /** After an import replaced every row: drops the bytes no row names any more. */
    sweep(): Promise<number>;
  };
}

/**
 * The reads a /sync pass starts with: woken as a write asks to commit, it must see that write
 * once committed (`WriteOptions.committing`). Every IndexedDB read does; a SQLite read does
 * only when asked, since other reads go ahead of writes waiting to start.
 */
const PASS_START: ReadOptions = { afterQueuedWrites: true };

/** The tables a sync snapshot reads (all of them for a batch: any request may want the keys). */
const SNAPSHOT_TABLES = ['room_members', 'notification_counts', 'one_time_keys', 'fallback_keys', 'streams'];
/** Snapshots read in one transaction at most (bounds how long one batch holds the connection). */
const SNAPSHOTS_PER_READ = 256;

type DeviceKeys = NonNullable<SyncSnapshot['keys']>;

/** Devices whose key counts are kept; past this the least recently read are dropped. */
const KEY_COUNTS_KEPT = 10_000;

/** Tables whose writes change a device's key counts. */
const KEY_TABLES: ReadonlySet<string> = new Set(['one_time_keys', 'fallback_keys']);

/**
 * Each device's key counts (one-time keys left by algorithm, unused fallback key types), which
 * every /sync answer of the device shows: kept between its passes instead of read at each
 * (issue 13), and dropped, all of them, before and after every write transaction that names
 * `one_time_keys` or `fallback_keys` (`markWrites`). IndexedDB refuses a transaction the
 * use of a table it does not name, so every write of them names them (and the conformance
 * suite runs every store write on IndexedDB). Keyed by user and device.
 */
type KeyCounts = KeptReads<DeviceKeys>;
const deviceKey = (userId: string, deviceId: string) => `${userId}\u0000${deviceId}`;

/** The family whose mark a write of `table` moves (account data: only as `touches` says). */
const FAMILY_OF_TABLE: ReadonlyMap<string, CacheFamily> = new Map([
  ['one_time_keys', 'keys'],
  ['fallback_keys', 'keys'],
  ['push_rules', 'push'],
  ['account_data', 'push'],
  ['room_members', 'members'],
  ['partial_state_rooms', 'partial_state'],
]);

const IGNORED_USER_LIST = 'm.ignored_user_list';

/** Whether a write of `table` with these arguments changes what its family's caches hold. */
function touches(table: string, op: (typeof WRITE_OPERATIONS)[number], arg: unknown): boolean {
  if (table !== 'account_data') return true;
  // Of account data, push settings hold only each user's global ignore list.
  const ignoreList = (row: unknown) => {
    const { type, room_id } = row as Row;
    return type === IGNORED_USER_LIST && room_id === '';
  };
  switch (op) {
    case 'put':
    case 'insert':
      return ignoreList(arg);
    case 'putMany':
      return (arg as Row[]).some(ignoreList);
    case 'delete':
      return Array.isArray(arg) && arg[1] === '' && arg[2] === IGNORED_USER_LIST;
    case 'deleteRange':
      return true;
  }
}

const WRITE_OPERATIONS = ['put', 'putMany', 'insert', 'delete', 'deleteRange'] as const;

/**
 * `engine`, whose write transactions move the mark of each cache family whose rows they change
 * (`CacheMarks`), in the same transaction: every area writes through it, so no write is missed
 * (IndexedDB refuses a transaction the use of a table it does not name, and the conformance
 * suite runs every store write on IndexedDB). Those naming a key table also drop `counts`
 * before and after them. A plain message's write names no family's table and is left as is.
 *
 * The marks a move starts from are asked for as the write's first request when its scope names
 * a table every write of which changes a family (all but account data): on IndexedDB their
 * answer is a round trip to the backend before the move can be put, and asked first it travels
 * while the write's other requests are made and handled rather than after them (a join's
 * persist in Chromium: ~0.2 ms of the ~0.7 ms the marks cost it).
 */
function markWrites(engine: Engine, counts: KeyCounts, marks: CacheMarks): Engine {
  const marked = <T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: WriteOptions) => {
    let moved: Map<CacheFamily, number> | undefined;
    const scope = tables.includes('streams') ? tables : [...tables, 'streams'];
    const eager = tables.some((table) => FAMILY_OF_TABLE.has(table) && table !== 'account_data');
    const written = engine.write(
      scope,
      async (tx) => {
        const families = new Set<CacheFamily>();
        let before: Promise<Row[]> | undefined;
        const readMarks = () => {
          // Issued before the change, in order: it finds the marks as they were. A failing
          // transaction rejects it unawaited: its failure is the transaction's, reported there.
          if (!before) {
            before = marks.marksBefore(tx);
            before.catch(() => {});
          }
        };
        if (eager) readMarks();
        const watched: Tx = {
          get: (table, key) => tx.get(table, key),
          getMany: (table, keys) => tx.getMany(table, keys),
          query: (table, range) => tx.query(table, range),
          count: (table, range) => tx.count(table, range),
        } as Tx;
        for (const op of WRITE_OPERATIONS) {
          const inner = tx[op] as (table: string, arg: unknown) => Promise<void>;
          (watched as unknown as Record<string, unknown>)[op] = (table: string, arg: unknown) => {
            const family = FAMILY_OF_TABLE.get(table);
            if (family !== undefined && touches(table, op, arg)) {
              readMarks();
              families.add(family);
            }
            return inner.call(tx, table, arg);
          };
        }
        const result = await fn(watched);
        // A write that changed no family moves nothing (its early read is left unawaited).
        if (before && families.size > 0) moved = await marks.move(tx, before, families);
        return result;
      },
      options,
    );
    return written.then(
      (result) => {
        if (moved) marks.settle(moved);
        return result;
      },
      (error: unknown) => {
        if (moved) marks.abandon(moved);
        throw error;
      },
    );
  };
  return {
    kind: engine.kind,
    bytes: engine.bytes,
    read: (tables, fn, options) => engine.read(tables, fn, options),
    write(tables, fn, options) {
      if (!tables.some((table) => FAMILY_OF_TABLE.has(table))) return engine.write(tables, fn, options);
      if (!tables.some((table) => KEY_TABLES.has(table))) return marked(tables, fn, options);
      return counts.writing(undefined, () => marked(tables, fn, options));
    },
    ...(engine.onCommitElsewhere ? { onCommitElsewhere: engine.onCommitElsewhere.bind(engine) } : {}),
    close: () => engine.close(),
  };
}

/** Users whose memberships are kept; past this the least recently read are dropped. */
const MEMBERSHIPS_KEPT = 10_000;

/**
 * Each user's memberships as a sync snapshot read them, with the `members` mark (`CacheMarks`)
 * of that snapshot: every write transaction changing `room_members`, by this store or another
 * on the database, moves the mark in the same transaction, so an entry whose mark is the one a
 * later snapshot reads is exactly what that snapshot would read (issue 13: a wake's passes each
 * read their user's memberships, on pages spread over the table by user). Checked in the
 * snapshot itself against its mark, not dropped by writes (no `forget`: no write can slip
 * between). Entries are read only.
 */
type KeptMemberships = KeptReads<{ mark: number; memberships: readonly Membership[] }>;

/**
 * One user's sync snapshot, within a transaction whose cache marks are `marks` (issued first);
 * the device's key counts kept in `counts`, the user's memberships in `kept`.
 */
async function snapshotIn(
  tx: Tx,
  userId: string,
  { deviceId, unreadRooms }: SyncSnapshotRequest,
  counts: KeyCounts,
  startedAt: number,
  kept: KeptMemberships,
  marks: Promise<ReadonlyMap<CacheFamily, number>>,
) {
  let known = deviceId === null ? undefined : counts.get(deviceKey(userId, deviceId));
  const readKeys = deviceId !== null && known === undefined;
  // A kept entry is checked against the marks, answered before this snapshot's requests.
  const entry = kept.get(userId);
  // Requests run in order within the transaction: issue them all, then wait.
  let [read, unread, oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
    entry ? undefined : roomsOfUser(tx, userId),
    unreadCountsIn(tx, userId, unreadRooms),
    readKeys ? oneTimeKeyCountsIn(tx, userId, deviceId) : undefined,
    readKeys ? unusedFallbackKeyTypesIn(tx, userId, deviceId) : undefined,
  ]);
  const mark = (await marks).get('members') ?? 0;
  const found = entry?.mark === mark ? entry.memberships : undefined;
  // Moved since it was kept: read in this snapshot.
  const memberships = read ?? found ?? (await roomsOfUser(tx, userId));
  if (!found) kept.set(userId, { mark, memberships }, kept.begin());
  if (known && deviceId !== null && counts.get(deviceKey(userId, deviceId)) === undefined) {
    // Dropped meanwhile: the marks read ahead of this found another store's key write.
    known = undefined;
    [oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
      oneTimeKeyCountsIn(tx, userId, deviceId),
      unusedFallbackKeyTypesIn(tx, userId, deviceId),
    ]);
  }
  const snapshot: SyncSnapshot = { memberships: [...memberships], unread };
  if (known) snapshot.keys = known;
  else if (oneTimeKeyCounts && unusedFallbackKeyTypes && deviceId !== null) {
    snapshot.keys = { oneTimeKeyCounts, unusedFallbackKeyTypes };
    counts.set(deviceKey(userId, deviceId), snapshot.keys, startedAt);
  }
  return snapshot;
}

interface SnapshotRequest {
  userId: string;
  request: SyncSnapshotRequest;
  resolve(snapshot: SyncSnapshot): void;
  reject(error: unknown): void;
}

/**
 * `syncSnapshot` for many passes at once (issue 13): one send wakes every long-poll of its
 * room, and each pass asks for its user's snapshot. The requests made while a read waits for
 * the connection join it and are read in that one transaction, each as it would have been
 * alone (a request's failure is its own) — one transaction for a wake instead of one a waiter.
 */
class SnapshotReads {
  private readonly engine: Engine;
  private readonly counts: KeyCounts;
  private readonly marks: CacheMarks;
  private readonly memberships: KeptMemberships = new KeptReads(MEMBERSHIPS_KEPT);
  /** Requests waiting for the read that will take them (undefined: none queued). */
  private waiting: SnapshotRequest[] | undefined;

  constructor(engine: Engine, counts: KeyCounts, marks: CacheMarks) {
    this.engine = engine;
    this.counts = counts;
    this.marks = marks;
  }

  read(userId: string, request: SyncSnapshotRequest): Promise<SyncSnapshot> {
    return new Promise((resolve, reject) => {
      const entry = { userId, request, resolve, reject };
      if (this.waiting && this.waiting.length < SNAPSHOTS_PER_READ) {
        this.waiting.push(entry);
        return;
      }
      const batch: SnapshotRequest[] = [entry];
      this.waiting = batch;
      // Asked for a microtask later: the passes one notify woke reach here in the same round
      // of microtasks, and an idle engine would otherwise start the first read at once, alone.
      queueMicrotask(() => this.start(batch));
    });
  }

  private start(batch: SnapshotRequest[]): void {
    // Before the read is asked for: a key write queued ahead of it moves the epoch after.
    const startedAt = this.counts.begin();
    this.engine
      .read(
        SNAPSHOT_TABLES,
        async (tx) => {
          // From here on, later requests wait for the next read.
          if (this.waiting === batch) this.waiting = undefined;
          // First: the key counts kept are served only if no other store changed keys before this snapshot.
          const marked = this.marks.readIn(tx);
          // Awaited after the loop: a failure meanwhile is the transaction's (reported below).
          marked.catch(() => {});
          for (const one of batch) {
            try {
              one.resolve(
                await snapshotIn(
                  tx,
                  one.userId,
                  one.request,
                  this.counts,
                  startedAt,
                  this.memberships,
                  marked,
                ),
              );
            } catch (error) {
              one.reject(error);
            }
          }
          await marked;
        },
        PASS_START,
      )
      .catch((error: unknown) => {
        if (this.waiting === batch) this.waiting = undefined;
        // The transaction itself failed: every request not answered yet fails with it.
        for (const one of batch) one.reject(error);
      });
  }
}

/** Every stream's position, within a transaction over `streams` and `events`. */
async function positionsIn(tx: Tx, marks: CacheMarks): Promise<StreamPositions> {
  // Both issued at once: one round trip to the backend, not two. The counters table holds a
  // row per counter (about ten): one request for all of them costs less than five.
  const [events, rows] = await Promise.all([currentPosition(tx, 'events'), tx.query('streams')]);
  // Every counter's row: the cache marks among them, so a /sync pass's caches are checked here.
  marks.observeRows(rows);
  const byName = new Map(rows.map((row) => [row.name as string, row.position as number]));
  const at = (name: string) => byName.get(name) ?? 0;
  return {
    events,
    receipts: at('receipts'),
    accountData: at('account_data'),
    toDevice: at('to_device'),
    deviceLists: at('device_lists'),
    partialState: at('partial_state'),
  };
}

export function createStore(given: Engine, parts: StoreParts = {}): Store {
  const pushSettings = new PushSettingsCache();
  const keyCounts: KeyCounts = new KeptReads(KEY_COUNTS_KEPT);
  // Every area writes through it, so no write of a key table is missed.
  const marks = new CacheMarks();
  marks.onMoved('push', () => pushSettings.forget());
  marks.onMoved('keys', () => keyCounts.forget());
  const engine = markWrites(given, keyCounts, marks);
  const snapshots = new SnapshotReads(engine, keyCounts, marks);
  return {
    rooms: roomStore(engine, marks),
    accounts: accountStore(engine),
    userData: userDataStore(engine, pushSettings),
    receipts: receiptStore(engine),
    e2ee: e2eeStore(engine),
    media: parts.media?.store ?? mediaStore(engine),
    federation: federationStore(engine),
    operator: operatorStore(engine),
    positions: () => engine.read(['streams', 'events'], (tx) => positionsIn(tx, marks), PASS_START),
    async positionsWithEvents(after, limit) {
      requirePosition(after, 'after');
      if (!Number.isSafeInteger(limit) || limit < 0) throw invalid('limit must be a non-negative integer');
      return engine.read(
        ['streams', 'events'],
        async (tx) => {
          // Issued together: one round trip to the backend.
          const [positions, rows] = await Promise.all([
            positionsIn(tx, marks),
            tx.query('events', { index: 'stream', lower: [after], lowerOpen: true, limit: limit + 1 }),
          ]);
          return {
            positions,
            events: rows.slice(0, limit).map(toStoredEvent),
            complete: rows.length <= limit,
          };
        },
        PASS_START,
      );
    },
    syncSnapshot: (userId, request) => snapshots.read(userId, request),
    onChangedElsewhere: (family, listener) => marks.onMoved(family, listener),
    onCommittedElsewhere: (listener) => engine.onCommitElsewhere?.(listener) ?? (() => {}),
    exportBackup: (options) => exportBackup(engine, { ...options, mediaBytes: parts.media?.fileBlob }),
    async importBackup(backup, options) {
      try {
        const header = await importBackup(engine, backup, options);
        await parts.media?.sweep();
        return header;
      } finally {
        pushSettings.forget();
      }
    },
    close: () => engine.close(),
  };
}
