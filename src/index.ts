/**
 * `hearth` — the homeserver as one function: `createHomeserver(options).fetch(request)`.
 * Hosts feed it requests (`hearth/sw` in a Service Worker, `hearth/page` in a page,
 * `hearth serve` on Node). The protocol core is re-exported for convenience; it is also
 * importable alone as `hearth/core`.
 */
export * from './core/index.ts';
export type { Clock, Logger, Random, RegistrationPolicy } from './homeserver/context.ts';
export {
  type EventTemplate,
  type FederationPort,
  federationOff,
  type KeyStore,
  type RemoteState,
  type RemoteStateIds,
  type SendJoinResponse,
} from './homeserver/ports.ts';
export { createHomeserver, type Homeserver, type HomeserverOptions } from './server.ts';
export { type IndexedDbOptions, openIndexedDbStore } from './storage/indexeddb/index.ts';
export type { Store } from './storage/store.ts';
