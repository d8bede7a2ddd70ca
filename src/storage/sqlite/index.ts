/**
 * The SQLite backend on Node's built-in `node:sqlite` (Node ≥ 22.5; Hearth runs on 24):
 * what `hearth serve --data DIR` uses. WAL mode, so readers never block the writer.
 */
import { closeSync, fdatasync, openSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { createStore } from '../create-store.ts';
import { openMediaFiles } from '../files/media-files.ts';
import type { Store } from '../store.ts';
import { type SqlDriver, SqliteEngine, type SqlValue } from './engine.ts';

export interface SqliteOptions {
  /** A file path, or ':memory:'. The directory must exist. */
  path: string;
  /**
   * 'full' (default): each commit reaches the disk before it is acknowledged, so an
   * acknowledged write survives power loss (in WAL mode through the driver's `sync`: one
   * fdatasync of the WAL for every commit made while the previous one ran). 'normal': survives a crashed or killed
   * process (WAL), but the last commits may be lost if the machine loses power.
   */
  synchronous?: 'full' | 'normal';
  /** How long a writer waits for another process's transaction, in ms. */
  busyTimeout?: number;
}

export interface SqliteStoreOptions extends SqliteOptions {
  /**
   * A directory for media bytes, one file each (`hearth serve --data DIR` uses `DIR/media`):
   * streamed in and out, the rows keeping only their description. Without it the bytes are
   * BLOBs in the database.
   */
  mediaDir?: string;
}

/**
 * `sync` for a driver: each call resolves once a run of `run` that began after the call has
 * finished, and calls made while one runs share the next run (group commit's one fsync).
 */
export function coalescedSync(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const current: Promise<void> = run().finally(() => {
      if (running === current) running = undefined;
    });
    running = current;
    return current;
  };
  return () => {
    if (!running) return start();
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = undefined;
        return start();
      });
    return next;
  };
}

/** fdatasync of a file in Node's thread pool (the event loop goes on meanwhile). */
function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

/**
 * WAL frames (pages) after which a commit copies the WAL back into the database (SQLite's
 * default is 1,000). The copy runs in the committing call, on the one thread, with an fsync
 * of the database file; a page changed by many commits is copied once per checkpoint. A send
 * to a room of 1,000 members changes about as many pages (a notification row and a counter
 * per member, spread over the tables by user), so at 1,000 nearly every such send paid a
 * checkpoint; at 10,000 (a WAL of up to ~40 MB) one in eight or so does (issue 13: CPU per
 * send at 1,000 members −15%). Durability does not depend on it: the WAL is synced at each
 * commit (`sync`).
 */
const WAL_CHECKPOINT_PAGES = 10_000;

/**
 * The connection's page cache, in KiB (SQLite's default is 2,000 KiB). Pages are cached as
 * they are read, up to this. A send to a room of 200 members whose members also sit in a room
 * of 1,000 writes a notification row and a counter on some 400 pages spread over the tables by
 * user, and each woken /sync pass reads its user's memberships and counters from pages as
 * spread: past 2 MB of such pages, each wake read ~450 of them again from the file and the WAL
 * (issue 13: the scaling table's wake after its 1,000-member sends; 3–4 with this).
 */
const PAGE_CACHE_KIB = 32_768;

/**
 * `node:sqlite` as a `SqlDriver`, with a statement cache. In WAL mode with the default
 * `synchronous: 'full'`, SQLite's COMMIT does not wait for the disk (`synchronous=NORMAL`);
 * the driver's `sync` fdatasyncs the WAL file instead, off the event loop, and the engine
 * acknowledges a write only after it: as durable as FULL (the WAL holds every committed
 * frame; checkpoints sync as before), without holding the one thread for each fsync.
 */
export function nodeSqliteDriver(options: SqliteOptions): SqlDriver {
  const db = new DatabaseSync(options.path);
  const journal = db.prepare('PRAGMA journal_mode = WAL').get()?.journal_mode;
  const full = options.synchronous !== 'normal';
  const fileWal = journal === 'wal' && options.path !== ':memory:' && options.path !== '';
  const walSync = full && fileWal;
  db.exec(`PRAGMA synchronous = ${full && !walSync ? 'FULL' : 'NORMAL'}`);
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeout ?? 5000))}`);
  if (fileWal) db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  db.exec(`PRAGMA cache_size = -${PAGE_CACHE_KIB}`);
  // Temporary files in memory: a group commit's SAVEPOINTs journal the pages they change into
  // a statement journal, which SQLite otherwise spills past 64 KiB into a file it creates,
  // writes and unlinks in the committing call. It only ever undoes a part of a transaction not
  // yet committed, so nothing durable is kept there.
  db.exec('PRAGMA temp_store = MEMORY');
  const statements = new Map<string, StatementSync>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  // Opened at the first sync, once a commit has made the WAL file (it stays while the database is open).
  let walFd: number | undefined;
  const sync = walSync
    ? coalescedSync(() => {
        walFd ??= openSync(`${options.path}-wal`, 'r');
        return datasync(walFd);
      })
    : undefined;
  return {
    ...(sync ? { sync } : {}),
    exec: (sql) => db.exec(sql),
    all: (sql, params) => prepare(sql).all(...(params as SqlValue[])) as Record<string, SqlValue>[],
    iterate: (sql, params) =>
      prepare(sql).iterate(...(params as SqlValue[])) as Iterable<Record<string, SqlValue>>,
    run: (sql, params) => {
      prepare(sql).run(...(params as SqlValue[]));
    },
    // Prepared once like every statement here: `exec` compiles its text at each transaction.
    begin: (mode) => {
      prepare(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN').run();
    },
    commit: () => {
      prepare('COMMIT').run();
    },
    rollback: () => {
      if (db.isTransaction) prepare('ROLLBACK').run();
    },
    close: () => {
      statements.clear();
      db.close();
      if (walFd !== undefined) closeSync(walFd);
    },
  };
}

export function openSqliteEngine(options: SqliteOptions): Promise<SqliteEngine> {
  return SqliteEngine.open(nodeSqliteDriver(options));
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const engine = await openSqliteEngine(options);
  if (options.mediaDir === undefined) return createStore(engine);
  try {
    return createStore(engine, { media: await openMediaFiles(engine, options.mediaDir) });
  } catch (err) {
    await engine.close();
    throw err;
  }
}
