/**
 * The engine: the few table operations each backend provides (IndexedDB through Dexie,
 * SQLite through `node:sqlite`), on which the one implementation of the `Store` is written
 * (`create-store.ts`). Tables, keys and indexes are those of `schema.ts`.
 *
 * A transaction is a callback: `write(tables, fn)` commits what `fn` did when its promise
 * resolves and undoes all of it when it rejects. Inside `fn` await only `Tx` operations —
 * an IndexedDB transaction commits itself as soon as nothing is pending.
 */

/** A key or key component: the subset of IndexedDB keys that SQLite compares the same way. */
export type KeyPart = string | number;
/** A primary key: one value, or an array for a compound key (`[a+b]`). */
export type Key = KeyPart | KeyPart[];
export type Row = Record<string, unknown>;

/**
 * A range over an index (or the primary key): equality on the first index columns
 * (`prefix`), then optional bounds on the following ones. A bound may name fewer columns
 * than remain; it then compares only those (`lower: [5]` with `lowerOpen` on
 * `[room_id+depth+stream]` after a room prefix means depth > 5).
 */
export interface Range {
  /** As declared in `schema.ts` (`'[room_id+stream]'`, `'stream'`); the primary key when absent. */
  index?: string;
  prefix?: KeyPart[];
  lower?: KeyPart[];
  lowerOpen?: boolean;
  upper?: KeyPart[];
  upperOpen?: boolean;
  reverse?: boolean;
  limit?: number;
  /** Applied before `limit`; synchronous, so it can run inside any transaction. */
  filter?: (row: Row) => boolean;
}

export interface Tx {
  get(table: string, key: Key): Promise<Row | undefined>;
  getMany(table: string, keys: Key[]): Promise<(Row | undefined)[]>;
  query(table: string, range?: Range): Promise<Row[]>;
  count(table: string, range?: Range): Promise<number>;
  /** Insert or replace. */
  put(table: string, row: Row): Promise<void>;
  putMany(table: string, rows: Row[]): Promise<void>;
  /**
   * Insert; when the key exists the transaction fails with `StoreError('CONFLICT')` — at this
   * call or, on IndexedDB, where writes resolve once issued, when the transaction ends.
   */
  insert(table: string, row: Row): Promise<void>;
  delete(table: string, key: Key): Promise<void>;
  /** Deletes every row in the range (`limit`, `reverse` and `filter` are not allowed). */
  deleteRange(table: string, range: Range): Promise<void>;
}

export interface ReadOptions {
  /**
   * The caller's next store call is a write (a send's snapshot, read before its event is
   * built): an engine that keeps a read transaction open for the reads that follow may end
   * it now rather than have the write wait for it (IndexedDB's shared read).
   */
  beforeWrite?: boolean;
  /**
   * This read sees every write asked for before it, once committed (a write that fails is
   * simply not seen). Without it an engine may run a read against the committed state ahead
   * of writes still waiting to start (none of them is acknowledged yet, so no caller can rely
   * on seeing them): SQLite does, so that the writes waiting together share one commit.
   */
  afterQueuedWrites?: boolean;
}

export interface Engine {
  readonly kind: 'indexeddb' | 'sqlite';
  /** How this engine keeps media bytes: IndexedDB stores `Blob`s, SQLite `Uint8Array` BLOBs. */
  readonly bytes: 'blob' | 'uint8array';
  read<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: ReadOptions): Promise<T>;
  /**
   * Resolves once what `fn` did is committed and durable. `options.committed` is called as
   * soon as it is committed, perhaps before it is durable (SQLite's COMMIT, its WAL sync still
   * under way): a later write's durability then implies this one's. Engines whose commit is
   * their durability may never call it.
   */
  write<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: WriteOptions): Promise<T>;
  /**
   * Calls `listener`, soon after, when another connection to the same database (another
   * process, another store) has committed: nothing of what this engine wrote itself. Engines
   * with no way to see that (or no other writer possible) leave it out.
   */
  onCommitElsewhere?(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface WriteOptions {
  committed?(): void;
  /**
   * Called once `fn` has resolved and the engine asks to commit, before it is committed: a
   * read asked from then on with `afterQueuedWrites` sees this write once it is committed,
   * and nothing of it if it then fails (the write's promise rejects). Only where such a read
   * sees the write no sooner than it is durable (IndexedDB, whose commit is its durability;
   * not SQLite's COMMIT before its WAL sync): the homeserver wakes /sync here. Engines that
   * cannot say may never call it.
   */
  committing?(): void;
}
