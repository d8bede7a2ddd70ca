/**
 * The SQLite backend on Node's built-in `node:sqlite` (Node ≥ 22.5; Hearth runs on 24):
 * what `hearth serve --data DIR` uses. WAL mode, so readers never block the writer.
 */
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
   * acknowledged write survives power loss. 'normal': survives a crashed or killed
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

/** `node:sqlite` as a `SqlDriver`, with a statement cache. */
export function nodeSqliteDriver(options: SqliteOptions): SqlDriver {
  const db = new DatabaseSync(options.path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeout ?? 5000))}`);
  const statements = new Map<string, StatementSync>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    exec: (sql) => db.exec(sql),
    all: (sql, params) => prepare(sql).all(...(params as SqlValue[])) as Record<string, SqlValue>[],
    iterate: (sql, params) =>
      prepare(sql).iterate(...(params as SqlValue[])) as Iterable<Record<string, SqlValue>>,
    run: (sql, params) => {
      prepare(sql).run(...(params as SqlValue[]));
    },
    begin: (mode) => db.exec(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN'),
    commit: () => db.exec('COMMIT'),
    rollback: () => {
      if (db.isTransaction) db.exec('ROLLBACK');
    },
    close: () => {
      statements.clear();
      db.close();
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
