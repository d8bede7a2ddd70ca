/**
 * The IndexedDB engine, on Dexie: the tables of `schema.ts` as object stores with their
 * compound indexes, Dexie's versioned upgrades as the migrations.
 *
 * It takes the `IDBFactory` (and `IDBKeyRange`) to use — the browser's in a page or
 * Service Worker, fake-indexeddb in Node — and touches no global. A write is one bare
 * IndexedDB transaction over the stores the operation names; a read joins the shared read
 * transaction (`IndexedDbEngine.sharedRead`). Callbacks await nothing but their requests,
 * so IndexedDB never commits early. (`bare: 'none'` runs both through Dexie instead.)
 */
import Dexie, { type Collection, type Table, type Transaction } from 'dexie';
import type { Engine, Key, KeyPart, Range, ReadOptions, Row, Tx, WriteOptions } from '../engine.ts';
import {
  declarationsAt,
  dexieDeclaration,
  type IndexSpec,
  SCHEMA,
  SCHEMA_VERSION,
  type TableSpec,
  tablesAt,
} from '../schema.ts';
import { StoreError } from '../store.ts';

export interface IndexedDbOptions {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  /** Database name; one origin can hold several homeservers. Default 'hearth'. */
  name?: string;
  /**
   * Chromium's commit durability. 'strict' flushes to disk before a write is acknowledged
   * (survives an OS crash); 'relaxed' acknowledges once the browser holds it (survives a
   * killed tab or worker, not a power loss). Default 'strict'.
   */
  durability?: 'strict' | 'relaxed';
  /**
   * Which transactions run on bare IndexedDB rather than Dexie's. Default 'all':
   * bench/storage.ts measures Dexie costing ~35–55% on event writes in Chromium and ~30% on
   * timeline reads, and bare reads share one transaction along a chain of reads (see
   * `IndexedDbEngine.sharedRead`). 'writes' and 'none' exist to measure and test the others.
   */
  bare?: 'writes' | 'all' | 'none';
  /** How long reads may go on joining one shared read transaction, in ms. Default 20 (`SHARED_READ_MS`). */
  sharedReadMs?: number;
}

/**
 * How long reads may go on joining one shared read transaction (`IndexedDbEngine.sharedRead`):
 * a /sync pass's chain of reads takes a few milliseconds; a write of another connection (a
 * second tab's in-page homeserver, a worker being replaced) waits no longer than this behind it.
 */
const SHARED_READ_MS = 20;
/**
 * The longest a commit waits to be told to the other connections on the database
 * (`IndexedDbEngine.tellCommitted`): the first of a run at once, the rest together after this.
 */
export const TELL_MS = 100;
/** Dexie multiplies declared versions by 10 for the native IndexedDB version. */
const NATIVE_VERSION_FACTOR = 10;
const MIN_KEY = Number.NEGATIVE_INFINITY;
/**
 * Sorts after every string and number: an array (IndexedDB "Keys" ordering). A new one
 * each time: the same object twice in one key reads as a cycle and the key is refused.
 */
const maxKey = (): KeyPart => [[]] as unknown as KeyPart;

/**
 * Asks IndexedDB to commit a read transaction that will get no new requests (the ones still
 * pending complete first); one already finished is left alone.
 */
function commitRead(trans: IDBTransaction): void {
  try {
    trans.commit?.();
  } catch {
    // Already committing or finished.
  }
}

/** Backend failures become StoreErrors; an error thrown by the operation itself passes as it is. */
function mapError(error: unknown): unknown {
  const fromBackend =
    error instanceof Dexie.DexieError ||
    (typeof DOMException !== 'undefined' && error instanceof DOMException) ||
    // fake-indexeddb's DOMException stand-ins in older Node
    (error instanceof Error &&
      /^(Constraint|Abort|Data|InvalidState|TransactionInactive|Quota|Unknown|NotFound|ReadOnly)Error$/.test(
        error.name,
      ));
  if (!fromBackend) return error;
  const name = (error as { name?: unknown })?.name;
  const inner = (error as { inner?: { name?: unknown } })?.inner?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'ConstraintError' || inner === 'ConstraintError')
    return new StoreError('CONFLICT', message, { cause: error });
  if (name === 'DatabaseClosedError') return new StoreError('CLOSED', message, { cause: error });
  return new StoreError('BACKEND', message, { cause: error });
}

interface ResolvedRange {
  index: IndexSpec;
  primary: boolean;
  /** Null: the whole index. */
  bounds: { lower: Key; upper: Key; includeLower: boolean; includeUpper: boolean } | null;
}

/** A `Range` as IndexedDB bounds on the named index (a bound naming fewer columns is padded). */
function resolveRange(specs: Map<string, TableSpec>, name: string, range: Range): ResolvedRange {
  const spec = specs.get(name);
  if (!spec) throw new StoreError('INVALID', `no table ${name}`);
  const index = range.index === undefined ? spec.key : spec.indexes.find((ix) => ix.name === range.index);
  if (!index) throw new StoreError('INVALID', `${name} has no index ${range.index}`);
  const primary = range.index === undefined;
  const prefix = range.prefix ?? [];
  const width = index.columns.length;
  if (prefix.length > width) throw new StoreError('INVALID', `${name}: prefix longer than ${index.name}`);
  if (prefix.length === 0 && !range.lower?.length && !range.upper?.length)
    return { index, primary, bounds: null };
  const pad = (
    values: KeyPart[] | undefined,
    open: boolean,
    side: 'lower' | 'upper',
  ): [KeyPart[], boolean] => {
    const key = [...prefix, ...(values ?? [])];
    if (key.length > width) throw new StoreError('INVALID', `${name}: bound longer than ${index.name}`);
    const exclusive = open && key.length > prefix.length;
    if (key.length === width) return [key, !exclusive];
    // Exclusive lower / inclusive upper: past every key with this start; else before them.
    const max = (side === 'lower') === exclusive;
    while (key.length < width) key.push(max ? maxKey() : MIN_KEY);
    return [key, true];
  };
  const [lower, includeLower] = pad(range.lower, range.lowerOpen === true, 'lower');
  const [upper, includeUpper] = pad(range.upper, range.upperOpen === true, 'upper');
  // A one-column index's keys are the value itself; a multi-entry index's entries are always arrays.
  const single = width === 1 && !index.multi;
  return {
    index,
    primary,
    bounds: {
      lower: single ? (lower[0] as KeyPart) : lower,
      upper: single ? (upper[0] as KeyPart) : upper,
      includeLower,
      includeUpper,
    },
  };
}

class DexieTx implements Tx {
  private readonly trans: Transaction;
  private readonly specs: Map<string, TableSpec>;
  constructor(trans: Transaction, specs: Map<string, TableSpec>) {
    this.trans = trans;
    this.specs = specs;
  }

  private table(name: string): Table {
    try {
      return this.trans.table(name);
    } catch (error) {
      throw outOfScope(error, name);
    }
  }

  private collection(name: string, range: Range): Collection {
    const { index, primary, bounds } = resolveRange(this.specs, name, range);
    const table = this.table(name);
    let collection = !bounds
      ? primary
        ? table.toCollection()
        : table.orderBy(index.name)
      : table.where(index.name).between(bounds.lower, bounds.upper, bounds.includeLower, bounds.includeUpper);
    if (range.reverse) collection = collection.reverse();
    if (range.filter) collection = collection.filter(range.filter as (row: unknown) => boolean);
    if (range.limit !== undefined) collection = collection.limit(range.limit);
    return collection;
  }

  async get(table: string, key: Key): Promise<Row | undefined> {
    return this.table(table).get(key as never);
  }

  async getMany(table: string, keys: Key[]): Promise<(Row | undefined)[]> {
    return this.table(table).bulkGet(keys as never[]);
  }

  async query(table: string, range: Range = {}): Promise<Row[]> {
    if (range.limit !== undefined && range.limit <= 0) return [];
    return this.collection(table, range).toArray();
  }

  async count(table: string, range: Range = {}): Promise<number> {
    return this.collection(table, range).count();
  }

  async put(table: string, row: Row): Promise<void> {
    await this.table(table).put(row);
  }

  async putMany(table: string, rows: Row[]): Promise<void> {
    if (rows.length > 0) await this.table(table).bulkPut(rows);
  }

  async insert(table: string, row: Row): Promise<void> {
    try {
      await this.table(table).add(row);
    } catch (error) {
      throw mapError(error);
    }
  }

  async delete(table: string, key: Key): Promise<void> {
    await this.table(table).delete(key as never);
  }

  async deleteRange(table: string, range: Range): Promise<void> {
    if (range.filter || range.limit !== undefined || range.reverse) {
      throw new StoreError('INVALID', 'deleteRange takes no filter, limit or reverse');
    }
    await this.collection(table, range).delete();
  }
}

/**
 * A request's result. In a shared read transaction (`keep`) a failed request must not abort
 * the transaction under the other reads using it: its error is only this request's.
 */
function request<T>(req: IDBRequest<T>, keep = false): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = (event) => {
      if (keep) event.preventDefault();
      reject(req.error);
    };
  });
}

/** A store of the transaction; one outside its scope is the caller's mistake (INVALID), not the backend's. */
function objectStore(trans: IDBTransaction, name: string): IDBObjectStore {
  try {
    return trans.objectStore(name);
  } catch (error) {
    throw outOfScope(error, name);
  }
}

/** What to throw for `error`, met asking a transaction for the table `name`: INVALID when the table is outside its scope. */
function outOfScope(error: unknown, name: string): unknown {
  if ((error as { name?: unknown } | null)?.name !== 'NotFoundError') return error;
  return new StoreError('INVALID', `table ${name} is not in this transaction`, { cause: error });
}

/** The request could not be made because the transaction is no longer active or has finished. */
function inactive(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'TransactionInactiveError' || name === 'InvalidStateError';
}

/**
 * The same operations on a bare `IDBTransaction`. Dexie still declares the schema, opens
 * and migrates; bench/storage.ts shows its per-request machinery costing ~35–55% on event
 * writes and ~30% on reads — past the 20% where the issue allows raw IndexedDB.
 * A failed request is left to abort the transaction, which is what all-or-nothing wants;
 * writes therefore resolve once issued, and the failure is reported for the transaction.
 */
class RawTx implements Tx {
  /** A read's is null until its first request, which picks it (see `issue`). */
  private trans: IDBTransaction | null;
  private readonly engine: IndexedDbEngine;
  /** A read: requests that fail do not abort the (possibly shared) transaction. */
  private readonly read: boolean;
  constructor(trans: IDBTransaction | null, engine: IndexedDbEngine) {
    this.trans = trans;
    this.engine = engine;
    this.read = trans === null;
  }

  /** The transaction a read's requests went to, once it made one. */
  get joined(): IDBTransaction | null {
    return this.trans;
  }

  private store(name: string): IDBObjectStore {
    return objectStore(this.trans as IDBTransaction, name);
  }

  /**
   * Makes a request on `table`. A read's first request joins the engine's current read
   * transaction while that is still active, else starts the next one; its later requests
   * stay on the same transaction, so one `read` sees one snapshot.
   */
  private issue<T>(table: string, make: (store: IDBObjectStore) => IDBRequest<T>): IDBRequest<T> {
    if (this.trans) return make(objectStore(this.trans, table));
    const shared = this.engine.joinableRead();
    if (shared) {
      try {
        const req = make(shared.objectStore(table));
        this.trans = shared;
        this.engine.enterRead(shared);
        return req;
      } catch (error) {
        if (!inactive(error)) throw error;
      }
    }
    this.trans = this.engine.startRead();
    this.engine.enterRead(this.trans);
    return make(this.trans.objectStore(table));
  }

  /** `issue`, then the request's result. */
  private ask<T>(table: string, make: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    return request(this.issue(table, make), this.read);
  }

  /** The source and key range of a range; null when the range is empty. */
  private target(
    name: string,
    range: Range,
  ): { source: (store: IDBObjectStore) => IDBObjectStore | IDBIndex; keys: IDBKeyRange | null } | null {
    const { index, primary, bounds } = resolveRange(this.engine.specs, name, range);
    const source = (store: IDBObjectStore) => (primary ? store : store.index(index.name));
    if (!bounds) return { source, keys: null };
    const order = this.engine.factory.cmp(bounds.lower, bounds.upper);
    if (order > 0 || (order === 0 && !(bounds.includeLower && bounds.includeUpper))) return null;
    return {
      source,
      keys: this.engine.keyRange.bound(
        bounds.lower,
        bounds.upper,
        !bounds.includeLower,
        !bounds.includeUpper,
      ),
    };
  }

  async get(table: string, key: Key): Promise<Row | undefined> {
    return this.ask(table, (store) => store.get(key));
  }

  async getMany(table: string, keys: Key[]): Promise<(Row | undefined)[]> {
    return Promise.all(keys.map((key) => this.ask(table, (store) => store.get(key))));
  }

  async query(table: string, range: Range = {}): Promise<Row[]> {
    const limit = range.limit;
    if (limit !== undefined && limit <= 0) return [];
    const target = this.target(table, range);
    if (!target) return [];
    const { source, keys } = target;
    const direction: IDBCursorDirection = range.reverse ? 'prev' : 'next';
    const { filter } = range;
    const getAll = (count: number | undefined) =>
      direction === 'next'
        ? this.ask(table, (store) => source(store).getAll(keys, count))
        : // IndexedDB 3.1: getAll takes a direction (Chromium ≥ 141); one request instead of a cursor walk.
          this.ask(table, (store) => {
            const from = source(store);
            const all = from.getAll as unknown as (options: object) => IDBRequest<Row[]>;
            return all.call(from, { query: keys, count, direction });
          });
    const oneRequest = direction === 'next' || this.engine.getAllWithDirection;
    if (!filter && oneRequest) return getAll(limit);
    let found: Row[] = [];
    let skip = 0;
    if (filter && limit !== undefined && oneRequest) {
      // A cursor walk costs a round trip to the backend per row: the first `limit` rows come
      // in one request and are filtered here. Only when the filter left fewer than `limit` of
      // a full page is the rest walked, from the row after it.
      const page = await getAll(limit);
      found = page.filter(filter);
      if (page.length < limit || found.length >= limit) return found.slice(0, limit);
      skip = page.length;
    }
    const cursorRequest = this.issue(table, (store) => source(store).openCursor(keys, direction));
    return new Promise((resolve, reject) => {
      cursorRequest.onerror = (event) => {
        if (this.read) event.preventDefault();
        reject(cursorRequest.error);
      };
      cursorRequest.onsuccess = () => {
        const cursor = cursorRequest.result;
        if (!cursor) return resolve(found);
        if (skip > 0) {
          // The rows the first page read: the walk goes on after them (same transaction, same rows).
          cursor.advance(skip);
          skip = 0;
          return;
        }
        try {
          const row = cursor.value as Row;
          if (!filter || filter(row)) found.push(row);
        } catch (error) {
          return reject(error);
        }
        if (limit !== undefined && found.length >= limit) return resolve(found);
        cursor.continue();
      };
    });
  }

  async count(table: string, range: Range = {}): Promise<number> {
    if (range.filter || range.limit !== undefined) return (await this.query(table, range)).length;
    const target = this.target(table, range);
    if (!target) return 0;
    const { source, keys } = target;
    return this.ask(table, (store) => source(store).count(keys ?? undefined));
  }

  // Writes are issued, not awaited: the transaction commits only if every request succeeds,
  // and a failed one aborts it with its error (reported by `transaction`, CONFLICT for a
  // ConstraintError). Waiting for each success would add an IPC round trip before the commit.
  async put(table: string, row: Row): Promise<void> {
    this.store(table).put(row);
  }

  async putMany(table: string, rows: Row[]): Promise<void> {
    const store = this.store(table);
    for (const row of rows) store.put(row);
  }

  async insert(table: string, row: Row): Promise<void> {
    this.store(table).add(row);
  }

  async delete(table: string, key: Key): Promise<void> {
    this.store(table).delete(key);
  }

  async deleteRange(table: string, range: Range): Promise<void> {
    if (range.filter || range.limit !== undefined || range.reverse) {
      throw new StoreError('INVALID', 'deleteRange takes no filter, limit or reverse');
    }
    const target = this.target(table, range);
    if (!target) return;
    const store = this.store(table);
    const source = target.source(store);
    const { keys } = target;
    if (source === store) {
      await request(keys ? store.delete(keys) : store.clear());
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const cursorRequest = source.openCursor(keys);
      cursorRequest.onerror = () => reject(cursorRequest.error);
      cursorRequest.onsuccess = () => {
        const cursor = cursorRequest.result;
        if (!cursor) return resolve();
        cursor.delete();
        cursor.continue();
      };
    });
  }
}

/**
 * The native version of an existing database, or 0 when there is none — without creating
 * one and without upgrading one (a newer database must be refused untouched).
 */
export function nativeVersion(factory: IDBFactory, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let created = false;
    const request = factory.open(name);
    request.onupgradeneeded = () => {
      // Only a database that did not exist gets here (no version asked): undo its creation.
      created = true;
      request.transaction?.abort();
    };
    request.onsuccess = () => {
      request.result.close();
      resolve(request.result.version);
    };
    request.onerror = (event) => {
      event.preventDefault();
      if (created) resolve(0);
      else reject(request.error);
    };
    request.onblocked = () => undefined;
  });
}

/**
 * Declares the schema steps up to `upTo` to Dexie. `installed` is the database's native
 * version when known: a database already at `upTo`, or none yet, needs no upgrade path, and
 * then one version holding every table as the steps leave it is what Dexie opens or creates
 * (it creates a new database from the last version's tables alone, and never runs an
 * upgrade there). Declaring each step instead costs Dexie several milliseconds of CPU per
 * step — it rebuilds its whole table API at each — which a Service Worker's cold start pays.
 */
export function declareSchema(db: Dexie, upTo: number = SCHEMA_VERSION, installed?: number): void {
  if (installed === 0 || installed === upTo * NATIVE_VERSION_FACTOR) {
    const tables: Record<string, string | null> = {};
    for (const [name, declaration] of declarationsAt(upTo)) tables[name] = dexieDeclaration(declaration);
    db.version(upTo).stores(tables);
    return;
  }
  for (const step of SCHEMA) {
    if (step.version > upTo) break;
    const tables = Object.fromEntries(
      Object.entries(step.tables).map(([name, declaration]) => [name, dexieDeclaration(declaration)]),
    );
    const version = db.version(step.version).stores(tables);
    const { upgrade } = step;
    if (upgrade) version.upgrade((trans) => upgrade(new DexieTx(trans, tablesAt(step.version))));
  }
}

export class IndexedDbEngine implements Engine {
  readonly kind = 'indexeddb';
  readonly bytes = 'blob';
  readonly db: Dexie;
  readonly specs = tablesAt(SCHEMA_VERSION);
  readonly factory: IDBFactory;
  readonly keyRange: typeof IDBKeyRange;
  readonly getAllWithDirection: boolean;
  private readonly durability: 'strict' | 'relaxed';
  private readonly bare: 'writes' | 'all' | 'none';
  private closed = false;
  /**
   * The read transaction that reads may join while it is active: its own task, and the
   * callbacks of its requests with the promise reactions they run. A /sync pass or a send is
   * a chain of reads, each awaiting the one before, so most of them join the first one's
   * transaction instead of paying for another (in Chromium a transaction is a round trip to
   * the storage process to begin and another to commit). Over every object store, so that any
   * read can join. Nothing committed is missed: a write made after it started waits for it to
   * end, and one made before it is in its snapshot. So that no write waits long behind it,
   * it takes no new reads once a write of this engine is asked for, nor past
   * `sharedReadMs` (a write of another connection waits for it too).
   */
  private sharedRead: IDBTransaction | null = null;
  private sharedReadAt = 0;
  private readonly sharedReadMs: number;
  /**
   * The `read` calls under way on each read transaction they made requests on. Once a shared
   * read transaction takes no new reads and none is under way on it, it is committed at once
   * (`leaveRead`): left to itself, IndexedDB would commit it only when the task that let it go
   * ends — a send builds its event in that task, and its write waits behind the read.
   */
  private readonly readers = new Map<IDBTransaction, number>();
  private readonly storeNames: string[];
  /**
   * Commits told to the other connections on this database, and theirs heard
   * (`onCommitElsewhere`): a BroadcastChannel named after it, which reaches the other tabs and
   * workers of the origin (an old and a new Service Worker, the page fallback in two tabs) and
   * never its own sender. Made at the first write or listener; none where the runtime has no
   * BroadcastChannel.
   */
  private channel: BroadcastChannel | undefined;
  private readonly channelName: string;
  private readonly elsewhere = new Set<() => void>();
  /** When this engine last told of a commit, and whether a later one is still to be told. */
  private toldAt = Number.NEGATIVE_INFINITY;
  private telling = false;

  private constructor(db: Dexie, options: IndexedDbOptions) {
    this.db = db;
    this.factory = options.indexedDB;
    this.keyRange = options.IDBKeyRange;
    this.durability = options.durability ?? 'strict';
    this.bare = options.bare ?? 'all';
    this.sharedReadMs = options.sharedReadMs ?? SHARED_READ_MS;
    const probe = db.backendDB().transaction('meta').objectStore('meta');
    this.getAllWithDirection = 'getAllRecords' in probe;
    this.storeNames = [...db.backendDB().objectStoreNames];
    this.channelName = `hearth-commits:${options.name ?? 'hearth'}`;
  }

  static async open(options: IndexedDbOptions): Promise<IndexedDbEngine> {
    const name = options.name ?? 'hearth';
    const found = await nativeVersion(options.indexedDB, name);
    if (found > SCHEMA_VERSION * NATIVE_VERSION_FACTOR) {
      throw new StoreError(
        'SCHEMA_TOO_NEW',
        `IndexedDB database "${name}" has schema version ${found / NATIVE_VERSION_FACTOR}, newer than this Hearth's ${SCHEMA_VERSION}; it was left untouched — run a newer Hearth`,
      );
    }
    const db = new Dexie(name, {
      indexedDB: options.indexedDB,
      IDBKeyRange: options.IDBKeyRange,
      chromeTransactionDurability: options.durability ?? 'strict',
      // Rows are handed to callers; never share cached objects between calls.
      cache: 'disabled',
    });
    declareSchema(db, SCHEMA_VERSION, found);
    try {
      await db.open();
    } catch (error) {
      db.close();
      throw mapError(error);
    }
    return new IndexedDbEngine(db, options);
  }

  /** The shared read transaction a read may join, if there is one (see `sharedRead`). */
  joinableRead(): IDBTransaction | null {
    if (this.sharedRead && performance.now() - this.sharedReadAt > this.sharedReadMs) this.closeSharedRead();
    return this.sharedRead;
  }

  /** The shared read transaction takes no new reads; committed now if none is under way. */
  private closeSharedRead(): void {
    const trans = this.sharedRead;
    this.sharedRead = null;
    if (trans && !this.readers.has(trans)) commitRead(trans);
  }

  /** A `read` made its first request on `trans` (see `readers`). */
  enterRead(trans: IDBTransaction): void {
    this.readers.set(trans, (this.readers.get(trans) ?? 0) + 1);
  }

  /** A `read` that made requests on `trans` is over (see `readers`). */
  private leaveRead(trans: IDBTransaction): void {
    const left = (this.readers.get(trans) ?? 1) - 1;
    if (left > 0) {
      this.readers.set(trans, left);
      return;
    }
    this.readers.delete(trans);
    if (trans !== this.sharedRead) commitRead(trans);
  }

  /** A new shared read transaction (see `sharedRead`). */
  startRead(): IDBTransaction {
    const trans = this.db.backendDB().transaction(this.storeNames, 'readonly');
    this.sharedRead = trans;
    this.sharedReadAt = performance.now();
    const ended = () => {
      if (this.sharedRead === trans) this.sharedRead = null;
    };
    trans.addEventListener('complete', ended);
    trans.addEventListener('abort', ended);
    return trans;
  }

  /**
   * Every read here is one with `afterQueuedWrites`: its transaction is created after every
   * write asked before it (the shared read takes no new reads once a write is asked, and a
   * Dexie-path transaction is created in the order it was asked), and IndexedDB runs a read
   * transaction only after the readwrite ones created before it whose scope overlaps its own
   * have finished — committed, or aborted and undone.
   */
  read<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: ReadOptions): Promise<T> {
    return this.transaction('readonly', tables, fn, options?.beforeWrite === true);
  }

  /**
   * `options.committing` is called once the bare transaction is asked to commit (never on the
   * Dexie paths, where the read it would start would run in the write's own zone).
   */
  write<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: WriteOptions): Promise<T> {
    return this.transaction('readwrite', tables, fn, false, options?.committing);
  }

  private async transaction<T>(
    mode: IDBTransactionMode,
    tables: readonly string[],
    fn: (tx: Tx) => Promise<T>,
    beforeWrite = false,
    committing?: () => void,
  ): Promise<T> {
    if (this.closed) throw new StoreError('CLOSED', 'the store is closed');
    if (this.bare === 'none' || (this.bare === 'writes' && mode === 'readonly')) {
      let result: T;
      try {
        result = await this.db.transaction(mode === 'readonly' ? 'r' : 'rw', tables as string[], (trans) =>
          fn(new DexieTx(trans, this.specs)),
        );
      } catch (error) {
        throw mapError(error);
      }
      if (mode === 'readwrite') this.tellCommitted();
      return result;
    }
    // Dexie closes the connection when a newer version of the page upgrades the database.
    if (!this.db.isOpen())
      throw new StoreError('CLOSED', 'the database was closed (a newer version is upgrading it?)');
    if (mode === 'readonly') {
      // Its requests join the shared read transaction or start one (`RawTx.issue`). Nothing to
      // commit: the answer is in once the last request has succeeded.
      const tx = new RawTx(null, this);
      try {
        return await fn(tx);
      } catch (error) {
        throw mapError(error);
      } finally {
        const trans = tx.joined;
        if (trans) {
          // A write comes next: the shared read takes no more reads (`ReadOptions.beforeWrite`).
          if (beforeWrite && trans === this.sharedRead) this.sharedRead = null;
          this.leaveRead(trans);
        }
      }
    }
    // Reads from now on start a transaction behind this write rather than hold it up.
    this.closeSharedRead();
    let trans: IDBTransaction;
    try {
      trans = this.db.backendDB().transaction(tables as string[], mode, { durability: this.durability });
    } catch (error) {
      throw mapError(error);
    }
    const finished = new Promise<void>((resolve, reject) => {
      trans.oncomplete = () => resolve();
      trans.onabort = () => reject(trans.error ?? new StoreError('BACKEND', 'the transaction was aborted'));
    });
    finished.catch(() => undefined);
    let result: T;
    try {
      result = await fn(new RawTx(trans, this));
    } catch (error) {
      try {
        trans.abort();
      } catch {
        // Already aborted by the failed request.
      }
      // A failed request aborted the transaction (later requests then fail with AbortError):
      // report the request's error, the cause.
      throw mapError(trans.error ?? error);
    }
    // Nothing more is coming: let IndexedDB commit now rather than when it notices.
    trans.commit?.();
    // Reads asked from here on are queued behind it (`read`), in the backend, with no wait
    // for its commit to come back here first.
    committing?.();
    try {
      await finished;
    } catch (error) {
      throw mapError(error);
    }
    this.tellCommitted();
    return result;
  }

  /**
   * Calls `listener` when another connection on this database told of a commit (its
   * `tellCommitted`), after ending the shared read transaction: a read asked from then on, as
   * a woken /sync pass's, starts a transaction that sees that commit.
   */
  onCommitElsewhere(listener: () => void): () => void {
    if (this.closed || !this.openChannel()) return () => {};
    this.elsewhere.add(listener);
    return () => this.elsewhere.delete(listener);
  }

  private openChannel(): BroadcastChannel | undefined {
    if (this.channel || this.closed || typeof BroadcastChannel !== 'function') return this.channel;
    const channel = new BroadcastChannel(this.channelName);
    // Node: a channel listening would keep the process alive; the database does not.
    (channel as { unref?: () => void }).unref?.();
    channel.onmessage = () => {
      if (this.closed || this.elsewhere.size === 0) return;
      this.closeSharedRead();
      for (const listener of [...this.elsewhere]) listener();
    };
    this.channel = channel;
    return channel;
  }

  /**
   * Tells the other connections that this one committed: at once, or — within `TELL_MS` of
   * the last time — once at the end of that span for all the commits made meanwhile, so that
   * a run of writes costs one message, not one each.
   */
  private tellCommitted(): void {
    if (this.telling || this.closed) return;
    const since = performance.now() - this.toldAt;
    if (since >= TELL_MS) {
      this.tell();
      return;
    }
    this.telling = true;
    const timer = setTimeout(() => {
      this.telling = false;
      this.tell();
    }, TELL_MS - since);
    (timer as { unref?: () => void }).unref?.();
  }

  private tell(): void {
    this.toldAt = performance.now();
    try {
      this.openChannel()?.postMessage(0);
    } catch {
      // Closed meanwhile: nobody here to tell for.
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.elsewhere.clear();
    this.channel?.close();
    this.channel = undefined;
    // IndexedDB closes the connection once its running transactions finish.
    this.db.close({ disableAutoOpen: true });
  }
}
