/**
 * `hearth` storage: the `Store` seam and its shared implementation. The backends are
 * imported from their own modules (`./indexeddb/index.ts`, `./sqlite/index.ts`) so a
 * browser bundle never pulls in `node:sqlite`, nor a Node host Dexie.
 */
export { createStore } from './create-store.ts';
export type { Engine, Key, Range, Row, Tx } from './engine.ts';
export { SCHEMA, SCHEMA_VERSION } from './schema.ts';
export * from './store.ts';
