/**
 * The SQLite engine: the tables of `schema.ts` as SQL tables, driven through a small
 * synchronous driver (`SqlDriver`) so the same code can later sit on another SQLite host
 * (Durable Objects' `sql.exec` is synchronous too). Only portable SQL is generated:
 * CREATE TABLE/INDEX, SELECT/INSERT … ON CONFLICT/DELETE with row-value comparisons
 * (SQLite ≥ 3.24). Host specifics (journal mode, sync level) stay in the driver.
 *
 * A row is stored as its key, index and blob columns plus `v`, the JSON of its other
 * fields. One transaction runs at a time (the driver holds one connection); each is
 * BEGIN IMMEDIATE … COMMIT for writes, so a second process waits rather than interleaves —
 * or, on a host that owns transactions itself (Durable Objects refuse BEGIN in SQL), the
 * driver's `transaction`.
 */

import { JsonRules, parseJson } from '../../core/json.ts';
import type { Engine, Key, KeyPart, Range, ReadOptions, Row, Tx, WriteOptions } from '../engine.ts';
import {
  type IndexSpec,
  SCHEMA,
  SCHEMA_VERSION,
  sqliteDdl,
  sqliteIndexColumns,
  sqliteSideTable,
  type TableSpec,
  tablesAt,
} from '../schema.ts';
import { StoreError } from '../store.ts';

/**
 * A stored row's JSON text, read back exactly (core/json.ts: the runtime's JSON.parse can
 * misread escaped keys). Rows are this program's own JSON.stringify output of what it accepted
 * before, so no rule of today's inputs is re-applied: a row written before lone surrogates were
 * refused still reads.
 */
const STORED_JSON = new JsonRules({ trusted: true });
function parseStored(text: string): unknown {
  return parseJson(text, STORED_JSON);
}

export type SqlValue = string | number | null | Uint8Array;
export type SqlRow = Record<string, SqlValue>;

export interface SqlDriver {
  exec(sql: string): void;
  all(sql: string, params: readonly SqlValue[]): SqlRow[];
  iterate(sql: string, params: readonly SqlValue[]): Iterable<SqlRow>;
  run(sql: string, params: readonly SqlValue[]): void;
  begin(mode: 'read' | 'write'): void;
  commit(): void;
  rollback(): void;
  close(): void;
  /**
   * Makes every commit made so far durable, off the caller's thread; the engine acknowledges a
   * write only once the `sync` asked for after its COMMIT has resolved. A driver has it when its
   * COMMIT itself does not wait for the disk (node:sqlite in WAL mode: `synchronous=NORMAL` plus
   * an fdatasync of the WAL file in Node's thread pool), so the one thread keeps serving while
   * the disk works, and one sync covers every commit made while the previous one ran.
   */
  sync?(): Promise<void>;
  /**
   * Runs `fn` as one transaction, for hosts whose SQL refuses BEGIN/COMMIT and which roll back
   * themselves when `fn` rejects (Durable Objects' `storage.transaction`). When present,
   * `begin`, `commit` and `rollback` are never called.
   */
  transaction?<T>(mode: 'read' | 'write', fn: () => Promise<T>): Promise<T>;
}

/** `fn` in one transaction of the driver: its own `transaction`, or BEGIN … COMMIT/ROLLBACK. */
async function inTransaction<T>(driver: SqlDriver, mode: 'read' | 'write', fn: () => Promise<T>): Promise<T> {
  if (driver.transaction) return driver.transaction(mode, fn);
  driver.begin(mode);
  try {
    const result = await fn();
    driver.commit();
    return result;
  } catch (error) {
    driver.rollback();
    throw error;
  }
}

const q = (id: string) => `"${id}"`;

/** A multi-entry index as SQLite keeps it: a side table of (entry parts, owning row's key). */
interface SideIndex {
  index: IndexSpec;
  name: string;
  insertSql: string;
  deleteSql: string;
}

class TableCodec {
  readonly spec: TableSpec;
  private readonly columnSet: Set<string>;
  readonly upsertSql: string;
  readonly insertSql: string;
  readonly keyWhere: string;
  /** The table's multi-entry indexes; a write of the table also writes their entries. */
  readonly sides: SideIndex[];

  constructor(spec: TableSpec) {
    this.spec = spec;
    this.columnSet = new Set(spec.columns);
    this.sides = spec.indexes
      .filter((index) => index.multi)
      .map((index) => {
        const side = sqliteSideTable(spec, index);
        const marks = side.columns.map(() => '?').join(', ');
        return {
          index,
          name: side.name,
          // IndexedDB keeps a repeated entry of one row once (the store repeats none in a
          // unique index: there a clash is another row's entry, refused as in IndexedDB).
          insertSql: `INSERT${index.unique ? '' : ' OR IGNORE'} INTO ${q(side.name)} (${side.columns.map(q).join(', ')}) VALUES (${marks})`,
          deleteSql: `DELETE FROM ${q(side.name)} WHERE (${side.columns.map(q).join(', ')}) = (${marks})`,
        };
      });
    const cols = [...spec.columns, 'v'].map(q).join(', ');
    const marks = [...spec.columns, 'v'].map(() => '?').join(', ');
    const updates = [...spec.columns.filter((c) => !spec.key.columns.includes(c)), 'v'].map(
      (c) => `${q(c)} = excluded.${q(c)}`,
    );
    this.insertSql = `INSERT INTO ${q(spec.name)} (${cols}) VALUES (${marks})`;
    // An upsert on the primary key only: a clash on a unique index still fails, as in IndexedDB.
    this.upsertSql = `${this.insertSql} ON CONFLICT (${spec.key.columns.map(q).join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
    this.keyWhere = spec.key.columns.map((c) => `${q(c)} = ?`).join(' AND ');
  }

  encode(row: Row): SqlValue[] {
    const { columns, name } = this.spec;
    const values: SqlValue[] = [];
    for (const column of columns) values.push(toSql(row[column], name, column));
    // The other fields, in the row's own order (rows are plain objects of own fields).
    const rest: Row = {};
    for (const field in row) {
      const value = row[field];
      if (value !== undefined && !this.columnSet.has(field)) rest[field] = value;
    }
    values.push(JSON.stringify(rest));
    return values;
  }

  decode(sqlRow: SqlRow): Row {
    const row: Row = typeof sqlRow.v === 'string' ? (parseStored(sqlRow.v) as Row) : {};
    for (const c of this.spec.columns) row[c] = sqlRow[c] ?? null;
    return row;
  }

  keyValues(key: Key): SqlValue[] {
    const parts = Array.isArray(key) ? key : [key];
    if (parts.length !== this.spec.key.columns.length) {
      throw new StoreError('INVALID', `${this.spec.name}: key needs ${this.spec.key.columns.length} parts`);
    }
    return parts.map((part) => toSql(part, this.spec.name, 'key'));
  }

  /**
   * The side-table rows of a row's multi-entry index: each element of its field that is a key
   * of the index's width (IndexedDB would index other keys too; the store writes none).
   */
  entries(side: SideIndex, row: Row): SqlValue[][] {
    const value = row[side.index.name];
    const width = side.index.columns.length;
    const key = this.spec.key.columns.map((c) => toSql(row[c], this.spec.name, c));
    const found: SqlValue[][] = [];
    for (const entry of Array.isArray(value) ? value : []) {
      if (!Array.isArray(entry) || entry.length !== width) continue;
      if (
        !entry.every((part) => typeof part === 'string' || (typeof part === 'number' && !Number.isNaN(part)))
      )
        continue;
      found.push([...(entry as SqlValue[]), ...key]);
    }
    return found;
  }

  /**
   * The SQL of each shape of range asked so far (index, how many key parts each bound gives,
   * open or closed, direction): a store query repeats a few shapes with other values, so the
   * text is made once per shape, and only the parameters per query.
   */
  private readonly shapes = new Map<string, RangeSql>();

  /** FROM, WHERE and ORDER BY for a range, mirroring IndexedDB's index semantics (rows are `table.*`). */
  range(range: Range): RangeSql & { params: SqlValue[] } {
    const prefix = range.prefix ?? [];
    const lower = range.lower ?? [];
    const upper = range.upper ?? [];
    const shape = `${range.index ?? ''}|${prefix.length}|${lower.length}${range.lowerOpen ? '<' : '≤'}|${upper.length}${range.upperOpen ? '<' : '≤'}|${range.reverse ? 'desc' : 'asc'}`;
    let sql = this.shapes.get(shape);
    if (!sql) {
      sql = this.rangeSql(range);
      this.shapes.set(shape, sql);
    }
    const params: SqlValue[] = [];
    for (const [i, value] of prefix.entries())
      params.push(toSql(value, this.spec.name, sql.columns[i] as string));
    for (const value of lower) params.push(toSql(value, this.spec.name, 'bound'));
    for (const value of upper) params.push(toSql(value, this.spec.name, 'bound'));
    return { ...sql, params };
  }

  private rangeSql(range: Range): RangeSql {
    const index =
      range.index === undefined ? this.spec.key : this.spec.indexes.find((ix) => ix.name === range.index);
    if (!index) throw new StoreError('INVALID', `${this.spec.name} has no index ${range.index}`);
    const side = index.multi ? this.sides.find((x) => x.index === index) : undefined;
    // A multi-entry index: its side table, joined to the rows by key, is what is ranged over.
    const at = (c: string) => (side ? `${q(side.name)}.${q(c)}` : q(c));
    const from = side
      ? `FROM ${q(side.name)} JOIN ${q(this.spec.name)} USING (${this.spec.key.columns.map(q).join(', ')})`
      : `FROM ${q(this.spec.name)}`;
    const cols = index.columns;
    const prefix = range.prefix ?? [];
    if (prefix.length > cols.length)
      throw new StoreError('INVALID', `${this.spec.name}: prefix longer than ${index.name}`);
    const clauses: string[] = [];
    prefix.forEach((_, i) => {
      clauses.push(`${at(cols[i] as string)} = ?`);
    });
    const rest = cols.slice(prefix.length);
    const bound = (values: KeyPart[] | undefined, op: string) => {
      if (!values || values.length === 0) return;
      if (values.length > rest.length)
        throw new StoreError('INVALID', `${this.spec.name}: bound longer than ${index.name}`);
      const names = rest.slice(0, values.length).map(at).join(', ');
      clauses.push(`(${names}) ${op} (${values.map(() => '?').join(', ')})`);
    };
    bound(range.lower, range.lowerOpen ? '>' : '>=');
    bound(range.upper, range.upperOpen ? '<' : '<=');
    // IndexedDB leaves out of an index every row whose indexed fields are not all keys.
    if (index !== this.spec.key && !side) for (const c of rest) clauses.push(`${q(c)} IS NOT NULL`);
    const orderCols = index === this.spec.key ? cols : sqliteIndexColumns(this.spec, index);
    const dir = range.reverse ? 'DESC' : 'ASC';
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const order = `ORDER BY ${orderCols.map((c) => `${at(c)} ${dir}`).join(', ')}`;
    const select = `SELECT ${q(this.spec.name)}.* ${from} ${where} ${order}`;
    // `+?`, not `?`: SQLite (3.53 as Node 24 bundles it) plans with the value bound to a bare
    // LIMIT parameter, so each new binding expires the prepared statement and the next run
    // compiles it again — parse, plan, code, ~15 µs of every limited query (a send's read of
    // its room's latest event: ~20 µs instead of ~4). An expression hides the value from the
    // planner, as SQLite did before; the limit itself is unchanged.
    return { columns: cols, from, where, order, select, selectLimit: `${select} LIMIT +?` };
  }
}

/** The SQL of one shape of range (`TableCodec.range`). */
interface RangeSql {
  /** The index's columns, the prefix's first. */
  columns: readonly string[];
  from: string;
  where: string;
  order: string;
  /** The whole query of the rows, and the same with a `LIMIT +?` parameter after the range's. */
  select: string;
  selectLimit: string;
}

function toSql(value: unknown, table: string, field: string): SqlValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number' || value instanceof Uint8Array) return value;
  throw new StoreError('INVALID', `${table}.${field}: ${typeof value} cannot be a SQL column value`);
}

/** SQLite failures become StoreErrors; an error thrown by the operation itself passes as it is. */
function mapError(error: unknown): unknown {
  const errcode = (error as { errcode?: unknown })?.errcode;
  if (typeof errcode !== 'number' && (error as { code?: unknown })?.code !== 'ERR_SQLITE_ERROR') return error;
  const message = error instanceof Error ? error.message : String(error);
  // SQLITE_CONSTRAINT and its extended codes (primary key, unique).
  if (typeof errcode === 'number' && (errcode & 0xff) === 19)
    return new StoreError('CONFLICT', message, { cause: error });
  return new StoreError('BACKEND', message, { cause: error });
}

class SqlTx implements Tx {
  private readonly driver: SqlDriver;
  private readonly codecs: Map<string, TableCodec>;
  constructor(driver: SqlDriver, codecs: Map<string, TableCodec>) {
    this.driver = driver;
    this.codecs = codecs;
  }

  private codec(table: string): TableCodec {
    const codec = this.codecs.get(table);
    if (!codec) throw new StoreError('INVALID', `no table ${table}`);
    return codec;
  }

  async get(table: string, key: Key): Promise<Row | undefined> {
    const c = this.codec(table);
    const [row] = this.driver.all(`SELECT * FROM ${q(table)} WHERE ${c.keyWhere}`, c.keyValues(key));
    return row ? c.decode(row) : undefined;
  }

  async getMany(table: string, keys: Key[]): Promise<(Row | undefined)[]> {
    const c = this.codec(table);
    const sql = `SELECT * FROM ${q(table)} WHERE ${c.keyWhere}`;
    return keys.map((key) => {
      const [row] = this.driver.all(sql, c.keyValues(key));
      return row ? c.decode(row) : undefined;
    });
  }

  async query(table: string, range: Range = {}): Promise<Row[]> {
    const c = this.codec(table);
    const { select: sql, selectLimit, params } = c.range(range);
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return [];
    if (!range.filter) {
      const rows = Number.isFinite(limit)
        ? this.driver.all(selectLimit, [...params, limit])
        : this.driver.all(sql, params);
      return rows.map((row) => c.decode(row));
    }
    const found: Row[] = [];
    for (const sqlRow of this.driver.iterate(sql, params)) {
      const row = c.decode(sqlRow);
      if (!range.filter(row)) continue;
      found.push(row);
      if (found.length >= limit) break;
    }
    return found;
  }

  async count(table: string, range: Range = {}): Promise<number> {
    if (range.filter || range.limit !== undefined) return (await this.query(table, range)).length;
    const c = this.codec(table);
    const { from, where, params } = c.range(range);
    const [row] = this.driver.all(`SELECT COUNT(*) AS n ${from} ${where}`, params);
    return Number(row?.n ?? 0);
  }

  /** Removes the multi-entry index entries of the stored row with `row`'s key, if any. */
  private dropEntries(c: TableCodec, key: SqlValue[]): void {
    const [old] = this.driver.all(`SELECT * FROM ${q(c.spec.name)} WHERE ${c.keyWhere}`, key);
    if (!old) return;
    const row = c.decode(old);
    for (const side of c.sides)
      for (const entry of c.entries(side, row)) this.driver.run(side.deleteSql, entry);
  }

  private addEntries(c: TableCodec, row: Row): void {
    try {
      for (const side of c.sides)
        for (const entry of c.entries(side, row)) this.driver.run(side.insertSql, entry);
    } catch (error) {
      throw mapError(error);
    }
  }

  private putOne(c: TableCodec, row: Row): void {
    if (c.sides.length > 0) this.dropEntries(c, c.keyValues(c.spec.key.columns.map((k) => row[k]) as Key));
    this.driver.run(c.upsertSql, c.encode(row));
    this.addEntries(c, row);
  }

  async put(table: string, row: Row): Promise<void> {
    this.putOne(this.codec(table), row);
  }

  async putMany(table: string, rows: Row[]): Promise<void> {
    const c = this.codec(table);
    for (const row of rows) this.putOne(c, row);
  }

  async insert(table: string, row: Row): Promise<void> {
    const c = this.codec(table);
    try {
      this.driver.run(c.insertSql, c.encode(row));
    } catch (error) {
      throw mapError(error);
    }
    this.addEntries(c, row);
  }

  async delete(table: string, key: Key): Promise<void> {
    const c = this.codec(table);
    if (c.sides.length > 0) this.dropEntries(c, c.keyValues(key));
    this.driver.run(`DELETE FROM ${q(table)} WHERE ${c.keyWhere}`, c.keyValues(key));
  }

  async deleteRange(table: string, range: Range): Promise<void> {
    if (range.filter || range.limit !== undefined || range.reverse) {
      throw new StoreError('INVALID', 'deleteRange takes no filter, limit or reverse');
    }
    const c = this.codec(table);
    const whole =
      range.index === undefined && !range.prefix?.length && !range.lower?.length && !range.upper?.length;
    if (c.sides.length > 0 && !whole) {
      // Each row's entries go with it.
      for (const row of await this.query(table, range))
        await this.delete(table, c.spec.key.columns.map((k) => row[k]) as Key);
      return;
    }
    // The whole table: its entries too.
    for (const side of c.sides) this.driver.run(`DELETE FROM ${q(side.name)}`, []);
    const { where, params } = c.range(range);
    this.driver.run(`DELETE FROM ${q(table)} ${where}`, params);
  }
}

function codecsAt(version: number): Map<string, TableCodec> {
  return new Map([...tablesAt(version)].map(([name, spec]) => [name, new TableCodec(spec)]));
}

/** A transaction waiting for the connection. */
interface Queued {
  mode: 'read' | 'write';
  fn: (tx: Tx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Told once the write is committed, before its sync (`WriteOptions.committed`). */
  committed?: () => void;
  /**
   * A write: its place among the writes asked for (1, 2, …). A read asked with
   * `afterQueuedWrites`: the place of the last write asked for before it, which it waits for.
   */
  seq?: number;
}

/** The most write transactions one commit holds (bounds the wait of the first of them). */
export const GROUP_COMMIT_LIMIT = 64;
/** The most reads run ahead of waiting writes before the writes have their turn. */
export const READS_PER_TURN = 64;

/**
 * How often a store with listeners looks for other connections' commits (`onCommitElsewhere`):
 * the longest a long-poll here waits to hear of a message another process stored. One
 * `PRAGMA data_version` a time, ~2 µs.
 */
export const ELSEWHERE_POLL_MS = 200;

/**
 * One connection, one SQL transaction at a time, and **group commit**: the write transactions
 * waiting for the connection run one after the other inside one `BEGIN IMMEDIATE … COMMIT`,
 * each after the first within its own SAVEPOINT, so a failing one is undone alone and the others
 * still commit (a failing first is undone by rolling back the whole group, then holding only it).
 * Each is resolved only once the COMMIT that holds it is on disk (after the driver's `sync`,
 * or the COMMIT itself under `synchronous=FULL`): nothing is acknowledged before it is
 * durable, and one sync serves every commit made while the previous one ran.
 *
 * **Reads go ahead of waiting writes; writes join the group under way.** Writes run in the
 * order they were asked for. A read runs against the committed state as soon as the
 * connection is free, ahead of writes waiting to start — none of those is acknowledged to
 * anyone yet (nor told `committed`), so no caller can depend on seeing it; a read asked with
 * `afterQueuedWrites` waits instead until every write asked before it is committed (or has
 * failed). A write asked while a group runs joins it, even past reads waiting (which then see
 * it: it committed before they ran), and on a driver with `sync` a group waits one turn of the
 * event loop before its COMMIT, so that requests arriving together — each its own I/O
 * callback, built and written within it — share it (its acknowledgment waits for a sync
 * anyway). Without that wait each such request found the queue empty and committed alone
 * (16 loopback clients: one commit a send; with it ~0.13–0.2), and a read waiting between
 * writes ended their group. Reads and groups take turns (`READS_PER_TURN`), so neither holds
 * the other back for long.
 */
export class SqliteEngine implements Engine {
  readonly kind = 'sqlite';
  readonly bytes = 'uint8array';
  private readonly driver: SqlDriver;
  private readonly tx: SqlTx;
  private readonly reads: Queued[] = [];
  private readonly writes: Queued[] = [];
  /** Writes asked for so far, and the place of the last one settled (committed or failed). */
  private writesAsked = 0;
  private writesSettled = 0;
  /** Whether the queue's runner is running (set and cleared synchronously, so none is missed). */
  private running = false;
  /** The runner's last run; `close` waits for it. */
  private idle: Promise<void> = Promise.resolve();
  /** The last durability sync asked for (`SqlDriver.sync`); `close` waits for it. */
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;
  /** Write transactions committed and commits made (for tests and benchmarks). */
  readonly commits = { transactions: 0, commits: 0 };
  /** Listeners for other connections' commits, and what watches for them while there are any. */
  private readonly elsewhere = new Set<() => void>();
  private watch: { timer: ReturnType<typeof setInterval>; dataVersion: number; missed: boolean } | undefined;

  private constructor(driver: SqlDriver) {
    this.driver = driver;
    this.tx = new SqlTx(driver, codecsAt(SCHEMA_VERSION));
  }

  /** Opens (creating or migrating) the schema on a driver. Refuses a newer schema untouched. */
  static async open(driver: SqlDriver): Promise<SqliteEngine> {
    try {
      await migrate(driver);
    } catch (error) {
      driver.close();
      throw mapError(error);
    }
    return new SqliteEngine(driver);
  }

  read<T>(_tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: ReadOptions): Promise<T> {
    return this.enqueue<T>(this.reads, (queued) => {
      queued.mode = 'read';
      queued.fn = fn;
      if (options?.afterQueuedWrites) queued.seq = this.writesAsked;
    });
  }

  write<T>(_tables: readonly string[], fn: (tx: Tx) => Promise<T>, options?: WriteOptions): Promise<T> {
    return this.enqueue<T>(this.writes, (queued) => {
      queued.mode = 'write';
      queued.fn = fn;
      queued.committed = options?.committed;
      queued.seq = ++this.writesAsked;
    });
  }

  private enqueue<T>(queue: Queued[], fill: (queued: Queued) => void): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('CLOSED', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      const queued = { resolve: resolve as (value: unknown) => void, reject } as Queued;
      fill(queued);
      queue.push(queued);
      if (!this.running) {
        this.running = true;
        this.idle = this.drain();
      }
    });
  }

  /** The first read that may run now (one asked with `afterQueuedWrites` may have to wait). */
  private nextRead(): Queued | undefined {
    const at = this.reads.findIndex((queued) => (queued.seq ?? 0) <= this.writesSettled);
    return at < 0 ? undefined : this.reads.splice(at, 1)[0];
  }

  /**
   * Runs the queues until both are empty, taking turns: the reads that may run (`readTurn`),
   * then the writes waiting, as a group in one commit, then the reads again.
   */
  private async drain(): Promise<void> {
    try {
      while (this.reads.length > 0 || this.writes.length > 0) {
        if (this.closed) {
          const error = new StoreError('CLOSED', 'the store is closed');
          for (const queued of this.reads.splice(0)) queued.reject(error);
          for (const queued of this.writes.splice(0)) queued.reject(error);
          break;
        }
        await this.readTurn();
        const first = this.writes.shift();
        if (!first) continue;
        // A host owning its transactions (Durable Objects) commits each write by itself.
        if (this.driver.transaction) await this.runAlone(first);
        else await this.writeGroup(first);
        // Writes run in order: every one before the next waiting is settled.
        this.writesSettled = (this.writes[0]?.seq ?? this.writesAsked + 1) - 1;
      }
    } finally {
      this.running = false;
      if (this.watch?.missed) this.checkElsewhere();
    }
  }

  /**
   * The reads that may run now, those asked meanwhile too, up to `READS_PER_TURN`: in one read
   * transaction (one snapshot: no write commits in between), each resolved as it ends.
   */
  private async readTurn(): Promise<void> {
    let read = this.nextRead();
    if (!read) return;
    const next = (n: number) => (n < READS_PER_TURN ? this.nextRead() : undefined);
    if (this.driver.transaction) {
      for (let n = 1; read; read = next(n++)) await this.runAlone(read);
      return;
    }
    try {
      this.driver.begin('read');
    } catch (error) {
      read.reject(mapError(error));
      return;
    }
    try {
      for (let n = 1; read; read = next(n++)) {
        const queued = read;
        await queued.fn(this.tx).then(queued.resolve, (error: unknown) => queued.reject(mapError(error)));
      }
    } finally {
      try {
        this.driver.commit();
      } catch {
        // A read changed nothing: SQLite may already have ended it.
        this.driver.rollback();
      }
    }
  }

  /** One transaction by itself: a read, or a write on a host that owns its transactions. */
  private async runAlone(queued: Queued): Promise<void> {
    await inTransaction(this.driver, queued.mode, () => queued.fn(this.tx)).then(
      queued.resolve,
      (error: unknown) => queued.reject(mapError(error)),
    );
  }

  /** `first` and the writes queued right behind it (up to the limit), in one commit. */
  private async writeGroup(first: Queued): Promise<void> {
    try {
      this.driver.begin('write');
    } catch (error) {
      first.reject(mapError(error));
      return;
    }
    const done: [Queued, unknown][] = [];
    const failed: [Queued, unknown][] = [];
    let member: Queued | undefined = first;
    let waited = false;
    try {
      while (member) {
        if (member === first) {
          // The first runs without a SAVEPOINT: were it to fail, the group holds nothing else
          // yet, and rolling the whole transaction back undoes it alone. A SAVEPOINT costs each
          // page it changes a copy into the statement journal (a temporary file past 64 KiB:
          // create, write, unlink at every commit) — for one sender, every send paid it.
          try {
            done.push([first, await first.fn(this.tx)]);
          } catch (error) {
            this.driver.rollback();
            first.reject(mapError(error));
            // The writes queued behind it start a group of their own.
            return;
          }
        } else {
          this.driver.run('SAVEPOINT hearth_write', []);
          try {
            const result = await member.fn(this.tx);
            this.driver.run('RELEASE hearth_write', []);
            done.push([member, result]);
          } catch (error) {
            // Undo this one alone; if SQLite already ended the whole transaction, the group fails.
            try {
              this.driver.run('ROLLBACK TO hearth_write', []);
              this.driver.run('RELEASE hearth_write', []);
            } catch {
              throw error;
            }
            failed.push([member, mapError(error)]);
          }
        }
        const size = done.length + failed.length;
        if (size >= GROUP_COMMIT_LIMIT || this.closed) break;
        member = this.writes.shift();
        if (!member && !waited && this.driver.sync) {
          // Wait one turn of the event loop before committing: requests that arrived together
          // (each its own I/O callback, each built and written in it) then share the commit.
          waited = true;
          await new Promise((resolve) => setImmediate(resolve));
          member = this.closed ? undefined : this.writes.shift();
        }
      }
      this.driver.commit();
    } catch (error) {
      // The commit (or the transaction itself) failed: none of the group is stored.
      try {
        this.driver.rollback();
      } catch {
        // Already rolled back by SQLite.
      }
      const mapped = mapError(error);
      for (const [queued] of done) queued.reject(mapped);
      if (member) member.reject(mapped);
      for (const [queued, reason] of failed) queued.reject(reason);
      return;
    }
    this.commits.commits += 1;
    this.commits.transactions += done.length;
    for (const [queued, reason] of failed) queued.reject(reason);
    for (const [queued] of done) queued.committed?.();
    if (!this.driver.sync) {
      for (const [queued, result] of done) queued.resolve(result);
      return;
    }
    // Acknowledged once on disk; meanwhile the queue goes on (its reads may already see these
    // rows, as another connection would: committed, the sync under way).
    const durable = this.driver.sync();
    this.syncing = durable.catch(() => undefined);
    durable.then(
      () => {
        for (const [queued, result] of done) queued.resolve(result);
      },
      (error: unknown) => {
        const failure = new StoreError('BACKEND', `the commit did not reach the disk: ${String(error)}`, {
          cause: error,
        });
        for (const [queued] of done) queued.reject(failure);
      },
    );
  }

  /**
   * SQLite's `data_version` moves when another connection commits, never for this one's own
   * commits: read every `ELSEWHERE_POLL_MS` while someone listens, and only while no
   * transaction of this engine is open (an open read would still show the snapshot before the
   * other's commit, and a pass woken by it must read after). A host owning its transactions
   * (a Durable Object) is the one writer of its database: nothing to watch.
   */
  onCommitElsewhere(listener: () => void): () => void {
    if (this.driver.transaction || this.closed) return () => {};
    this.elsewhere.add(listener);
    if (!this.watch) {
      const timer = setInterval(() => this.checkElsewhere(), ELSEWHERE_POLL_MS);
      // A server waiting for requests is kept alive by its listener, not by this.
      (timer as { unref?: () => void }).unref?.();
      this.watch = { timer, dataVersion: this.dataVersion(), missed: false };
    }
    return () => {
      this.elsewhere.delete(listener);
      if (this.elsewhere.size === 0) this.stopWatching();
    };
  }

  private dataVersion(): number {
    return Number(this.driver.all('PRAGMA data_version', [])[0]?.data_version ?? 0);
  }

  private checkElsewhere(): void {
    if (!this.watch || this.closed) return;
    if (this.running) {
      // Asked again as the queue empties: a server busy without pause still looks.
      this.watch.missed = true;
      return;
    }
    this.watch.missed = false;
    let now: number;
    try {
      now = this.dataVersion();
    } catch {
      return; // busy or closing: the next tick asks again
    }
    if (now === this.watch.dataVersion) return;
    this.watch.dataVersion = now;
    for (const listener of [...this.elsewhere]) listener();
  }

  private stopWatching(): void {
    if (this.watch) clearInterval(this.watch.timer);
    this.watch = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.elsewhere.clear();
    await this.idle;
    await this.syncing;
    this.driver.close();
  }
}

/** The schema version recorded in `meta`, 0 for an empty database. */
export function schemaVersionOf(driver: SqlDriver): number {
  const tables = driver.all("SELECT name FROM sqlite_master WHERE type = 'table'", []);
  if (tables.length === 0) return 0;
  if (!tables.some((t) => t.name === 'meta')) {
    throw new StoreError(
      'INVALID',
      'this SQLite database is not a Hearth store (it has tables but no meta table)',
    );
  }
  const [row] = driver.all(`SELECT v FROM meta WHERE name = 'schema_version'`, []);
  const version = typeof row?.v === 'string' ? (parseStored(row.v) as { value?: unknown }).value : undefined;
  if (typeof version !== 'number') throw new StoreError('INVALID', 'the Hearth store has no schema version');
  return version;
}

function tooNew(version: number): StoreError {
  return new StoreError(
    'SCHEMA_TOO_NEW',
    `the database has schema version ${version}, newer than this Hearth's ${SCHEMA_VERSION}; it was left untouched — run a newer Hearth`,
  );
}

async function migrate(driver: SqlDriver): Promise<void> {
  const found = schemaVersionOf(driver);
  if (found > SCHEMA_VERSION) throw tooNew(found);
  if (found === SCHEMA_VERSION) return;
  await inTransaction(driver, 'write', async () => {
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = schemaVersionOf(driver);
    if (current > SCHEMA_VERSION) throw tooNew(current);
    for (const step of SCHEMA) {
      if (step.version <= current) continue;
      for (const statement of sqliteDdl(current, step.version)) driver.exec(statement);
      if (step.upgrade && current > 0) await step.upgrade(new SqlTx(driver, codecsAt(step.version)));
      current = step.version;
    }
    await new SqlTx(driver, codecsAt(current)).put('meta', { name: 'schema_version', value: current });
  });
}

/**
 * Creates the schema as it was at `version` on an empty database and fills it with `rows`:
 * how tests build a database of an earlier version to migrate.
 */
export async function createSqliteAtVersion(
  driver: SqlDriver,
  version: number,
  rows: Record<string, Row[]>,
): Promise<void> {
  await inTransaction(driver, 'write', async () => {
    for (const statement of sqliteDdl(0, version)) driver.exec(statement);
    const tx = new SqlTx(driver, codecsAt(version));
    for (const [table, list] of Object.entries(rows)) await tx.putMany(table, list);
    await tx.put('meta', { name: 'schema_version', value: version });
  });
}

/** The SELECT a query on `table` runs, with its limit if it has one (for plan checks in tests). */
export function selectFor(table: string, range: Range): { sql: string; params: SqlValue[] } {
  const codec = codecsAt(SCHEMA_VERSION).get(table);
  if (!codec) throw new StoreError('INVALID', `no table ${table}`);
  const { select, selectLimit, params } = codec.range(range);
  if (range.limit === undefined) return { sql: select, params };
  return { sql: selectLimit, params: [...params, range.limit] };
}
