/** Aborted IndexedDB transactions leave nothing: on fake-indexeddb. */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { abortTests } from './abort-cases.ts';
import { IndexedDbEngine } from './engine.ts';

const indexedDB = new IDBFactory();
abortTests('fake-indexeddb', (name, bare) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name, bare }));
