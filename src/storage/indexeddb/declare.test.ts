/**
 * A database already at the current schema (or none yet) is opened with the schema declared
 * to Dexie as its last version alone (`declareSchema`'s short path, for the Service Worker's
 * cold start): it must make and find exactly what the step-by-step declaration does.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SCHEMA_VERSION } from '../schema.ts';
import { IndexedDbEngine } from './engine.ts';
import { createIndexedDbAtVersion } from './testing.ts';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** The native schema: version, and each store's key and indexes. */
async function nativeSchema(indexedDB: IDBFactory, name: string): Promise<unknown> {
  const db = await request(indexedDB.open(name));
  try {
    const names = [...db.objectStoreNames].sort();
    const trans = db.transaction(names, 'readonly');
    return {
      version: db.version,
      stores: names.map((storeName) => {
        const store = trans.objectStore(storeName);
        return {
          name: storeName,
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
          indexes: [...store.indexNames].sort().map((indexName) => {
            const index = store.index(indexName);
            return { indexName, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry };
          }),
        };
      }),
    };
  } finally {
    db.close();
  }
}

/**
 * Two current databases: `steps` declared step by step (as a migration from the first
 * version would leave it), `latest` made by the engine, which declares the last version alone
 * when there is no database yet.
 */
async function bothWays(): Promise<IDBFactory> {
  const indexedDB = new IDBFactory();
  await createIndexedDbAtVersion(indexedDB, IDBKeyRange, 'steps', SCHEMA_VERSION, {
    meta: [{ name: 'made', value: 'step by step' }],
  });
  (await IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: 'latest' })).close();
  return indexedDB;
}

describe('declaring the schema to Dexie', () => {
  afterEach(() => vi.restoreAllMocks());

  it('creates a new database exactly as the step-by-step declaration does', async () => {
    const indexedDB = await bothWays();
    const steps = await nativeSchema(indexedDB, 'steps');
    expect(steps).toMatchObject({ version: SCHEMA_VERSION * 10 });
    expect(await nativeSchema(indexedDB, 'latest')).toEqual(steps);
  });

  it('opens a current database with no schema change, whichever way it was made', async () => {
    const indexedDB = await bothWays();
    const before = await nativeSchema(indexedDB, 'steps');
    // Dexie warns, and bumps the native version, when what it opens differs from what it was told.
    const warn = vi.spyOn(console, 'warn');
    for (const name of ['steps', 'latest', 'steps']) {
      const engine = await IndexedDbEngine.open({ indexedDB, IDBKeyRange, name });
      await engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'probe', value: name });
      });
      engine.close();
      expect(await nativeSchema(indexedDB, name)).toEqual(before);
    }
    expect(warn).not.toHaveBeenCalled();
  });
});
