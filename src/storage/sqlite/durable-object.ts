/**
 * The SQLite backend on a Cloudflare Durable Object's own SQLite database (`ctx.storage.sql`,
 * SQLite-backed Durable Objects): the same schema and engine as `node:sqlite`, through a
 * `SqlDriver` over `sql.exec`. Described structurally, so nothing here imports a runtime.
 *
 * Durable Objects refuse BEGIN and SAVEPOINT in SQL; a transaction is `storage.transaction(fn)`,
 * which rolls back every write `fn` made if it rejects, awaits included. Reads need none: the
 * engine runs one transaction at a time and this object is the database's only user. Journal
 * mode and durability are the platform's (each write is replicated before output is released).
 */
import { createStore } from '../create-store.ts';
import type { Store } from '../store.ts';
import { type SqlDriver, SqliteEngine, type SqlRow, type SqlValue } from './engine.ts';

type DoSqlValue = string | number | null | ArrayBuffer;

/** What the driver uses of `DurableObjectState['storage']`. */
export interface DurableObjectSqlStorage {
  sql: {
    exec(
      query: string,
      ...bindings: unknown[]
    ): Iterable<Record<string, DoSqlValue>> & {
      toArray(): Record<string, DoSqlValue>[];
    };
  };
  transaction<T>(closure: () => Promise<T>): Promise<T>;
}

/** SQLite's primary result code for constraint failures (unique, primary key). */
const SQLITE_CONSTRAINT = 19;

function fromDo(row: Record<string, DoSqlValue>): SqlRow {
  const out: SqlRow = {};
  for (const [name, value] of Object.entries(row))
    out[name] = value instanceof ArrayBuffer ? new Uint8Array(value) : (value as SqlValue);
  return out;
}

/**
 * Durable Objects throw plain Errors naming SQLite's code in the message; the engine maps
 * errors by SQLite's numeric code, as `node:sqlite` reports it.
 */
function withCode(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  if (/SQLITE_CONSTRAINT/.test(error.message))
    return Object.assign(new Error(error.message, { cause: error }), { errcode: SQLITE_CONSTRAINT });
  if (/SQLITE_/.test(error.message))
    return Object.assign(new Error(error.message, { cause: error }), { errcode: 1 });
  return error;
}

function exec(storage: DurableObjectSqlStorage, sql: string, params: readonly SqlValue[]) {
  try {
    return storage.sql.exec(sql, ...params);
  } catch (error) {
    throw withCode(error);
  }
}

const ownTransactions = (): never => {
  throw new Error('Durable Objects run transactions through storage.transaction');
};

export function durableObjectSqlDriver(storage: DurableObjectSqlStorage): SqlDriver {
  return {
    exec: (sql) => {
      exec(storage, sql, []);
    },
    all: (sql, params) => exec(storage, sql, params).toArray().map(fromDo),
    *iterate(sql, params) {
      for (const row of exec(storage, sql, params)) yield fromDo(row);
    },
    run: (sql, params) => {
      exec(storage, sql, params).toArray();
    },
    begin: ownTransactions,
    commit: ownTransactions,
    rollback: ownTransactions,
    close: () => {},
    transaction: (mode, fn) => (mode === 'read' ? fn() : storage.transaction(fn)),
  };
}

export async function openDurableObjectStore(storage: DurableObjectSqlStorage): Promise<Store> {
  return createStore(await SqliteEngine.open(durableObjectSqlDriver(storage)));
}
