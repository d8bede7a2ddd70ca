/** Aborted IndexedDB transactions leave nothing: on fake-indexeddb. */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { IndexedDbEngine } from './engine.ts';
import { abortTests } from './testing-abort.ts';

const indexedDB = new IDBFactory();
abortTests('fake-indexeddb', (name, bare) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name, bare }));
