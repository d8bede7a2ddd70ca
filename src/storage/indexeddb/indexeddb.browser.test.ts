/**
 * The same conformance suite and abort test on real IndexedDB, in headless Chromium
 * (vitest's `chromium` project): the browser is where this backend matters.
 */
import { storeConformance } from '../conformance/index.ts';
import { IndexedDbEngine } from './engine.ts';
import { createIndexedDbAtVersion, createNewerIndexedDb, newerIndexedDbIntact } from './testing.ts';
import { abortTests } from './testing-abort.ts';
import { queuedReadTests } from './testing-queued.ts';

// The page's own IndexedDB, passed in as a host would (the store reads no globals).
const { indexedDB, IDBKeyRange } = globalThis;
const run = `${Date.now().toString(36)}`;
const named = (id: string) => `${run}-${id}`;

storeConformance({
  name: 'IndexedDB (Chromium)',
  openEngine: (id) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: named(id) }),
  createAtVersion: (id, version, rows) =>
    createIndexedDbAtVersion(indexedDB, IDBKeyRange, named(id), version, rows),
  createNewer: (id) => createNewerIndexedDb(indexedDB, named(id)),
  newerIntact: (id) => newerIndexedDbIntact(indexedDB, named(id)),
});

// The shipped path only: Dexie logs every request it sees fail after an abort, which is noise here.
abortTests(
  'Chromium',
  (name, bare) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: named(name), bare }),
  ['all'],
);

queuedReadTests('Chromium', (name) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: named(name) }));
