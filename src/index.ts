/**
 * `hearth` — the homeserver as one function: `createHomeserver(options).fetch(request)`.
 * Hosts feed it requests (`hearth/sw` in a Service Worker, `hearth/page` in a page,
 * `hearth serve` on Node). The protocol core is re-exported for convenience; it is also
 * importable alone as `hearth/core`.
 */
export * from './core/index.ts';
export type { FederationOptions } from './federation/index.ts';
export type { NotaryConfig } from './federation/server-keys.ts';
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
export {
  createHomeserver,
  type Homeserver,
  type HomeserverAdmin,
  type HomeserverOptions,
  openP2pIdentity,
} from './server.ts';
export { type IndexedDbOptions, openIndexedDbStore } from './storage/indexeddb/index.ts';
export type { Store } from './storage/store.ts';
export { createMemoryNetwork, type MemoryNetwork } from './transport/memory.ts';
export {
  type FederationTransport,
  type InboundHandler,
  type InboundInfo,
  isTransportError,
  TransportError,
} from './transport/transport.ts';
