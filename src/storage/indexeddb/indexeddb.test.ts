/** The conformance suite on the IndexedDB backend over fake-indexeddb (Hearth's in-memory store). */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { storeConformance } from '../conformance/index.ts';
import { IndexedDbEngine } from './engine.ts';
import { createIndexedDbAtVersion, createNewerIndexedDb, newerIndexedDbIntact } from './testing.ts';

const indexedDB = new IDBFactory();

// The default engine (bare IndexedDB writes, Dexie reads), and every transaction on each path.
for (const bare of ['writes', 'all', 'none'] as const) {
  storeConformance({
    name: `IndexedDB (fake-indexeddb, bare: ${bare})`,
    openEngine: (id) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: id, bare }),
    createAtVersion: (id, version, rows) =>
      createIndexedDbAtVersion(indexedDB, IDBKeyRange, id, version, rows),
    createNewer: (id) => createNewerIndexedDb(indexedDB, id),
    newerIntact: (id) => newerIndexedDbIntact(indexedDB, id),
  });
}
