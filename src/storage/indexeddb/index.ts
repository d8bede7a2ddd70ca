/**
 * The IndexedDB backend: a Service Worker's or page's store in browsers; with
 * fake-indexeddb, Hearth's in-memory store in Node (no third, hand-rolled store).
 */
import { createStore } from '../create-store.ts';
import type { Store } from '../store.ts';
import { IndexedDbEngine, type IndexedDbOptions } from './engine.ts';

export type { IndexedDbOptions } from './engine.ts';
export { IndexedDbEngine } from './engine.ts';

export function openIndexedDbEngine(options: IndexedDbOptions): Promise<IndexedDbEngine> {
  return IndexedDbEngine.open(options);
}

export async function openIndexedDbStore(options: IndexedDbOptions): Promise<Store> {
  return createStore(await IndexedDbEngine.open(options));
}
