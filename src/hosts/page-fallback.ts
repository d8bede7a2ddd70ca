/**
 * The homeserver in the page itself, for browsers without Service Workers here: the same
 * homeserver on the same IndexedDB database as the worker would use. Loaded by
 * `registerHomeserver` through a dynamic import, so pages that get a worker never load it.
 */
import type { RegistrationPolicy } from '../homeserver/context.ts';
import { type BrowserHomeserver, createBrowserHomeserver } from './browser-homeserver.ts';

export function startInPageHomeserver(options: {
  serverName: string;
  registration?: RegistrationPolicy;
  durability?: 'strict' | 'relaxed';
}): BrowserHomeserver {
  return createBrowserHomeserver({
    ...options,
    indexedDB: globalThis.indexedDB,
    IDBKeyRange: globalThis.IDBKeyRange,
  });
}
