/**
 * Builders of IndexedDB databases as other Hearth versions left them, for the migration
 * tests (in Node on fake-indexeddb and in Chromium on the real thing).
 */
import Dexie from 'dexie';
import type { Row } from '../engine.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import { declareSchema } from './engine.ts';

/** A database at an earlier schema `version` holding `rows` per table. */
export async function createIndexedDbAtVersion(
  indexedDB: IDBFactory,
  keyRange: typeof IDBKeyRange,
  name: string,
  version: number,
  rows: Record<string, Row[]>,
): Promise<void> {
  const db = new Dexie(name, { indexedDB, IDBKeyRange: keyRange });
  declareSchema(db, version);
  await db.open();
  await db.transaction('rw', Object.keys(rows), async (trans) => {
    for (const [table, list] of Object.entries(rows)) await trans.table(table).bulkPut(list);
  });
  db.close();
}

const NEWER = (SCHEMA_VERSION + 1) * 10;
const MARKER = { name: 'marker', value: 'written by a newer Hearth' };

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** A database as a later Hearth (schema SCHEMA_VERSION + 1) might leave it, with a marker row. */
export async function createNewerIndexedDb(indexedDB: IDBFactory, name: string): Promise<void> {
  const open = indexedDB.open(name, NEWER);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('meta', { keyPath: 'name' }).put(MARKER);
    open.result.createObjectStore('future_table', { keyPath: 'id' });
  };
  (await request(open)).close();
}

/** Whether the database is exactly as `createNewerIndexedDb` left it. */
export async function newerIndexedDbIntact(indexedDB: IDBFactory, name: string): Promise<boolean> {
  const db = await request(indexedDB.open(name));
  try {
    const stores = [...db.objectStoreNames].sort();
    if (db.version !== NEWER || stores.join() !== 'future_table,meta') return false;
    const marker = await request(db.transaction('meta').objectStore('meta').get('marker'));
    return JSON.stringify(marker) === JSON.stringify(MARKER);
  } finally {
    db.close();
  }
}
