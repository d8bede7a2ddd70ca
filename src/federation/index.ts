/**
 * The outgoing side of federation for one homeserver, built from its context: the signed
 * request client and the server-keys cache (the `KeyStore`). `createHomeserver` builds this
 * once and hands `keys` to the federation endpoints (X-Matrix checks, notary) and, next, to
 * the accept pipeline.
 */
import type { HomeserverContext } from '../homeserver/context.ts';
import { type FederationTransport, TransportError } from '../transport/transport.ts';
import {
  createFederationClient,
  createFederationFetch,
  type FederationClient,
  type FederationFetch,
} from './client.ts';
import { createServerKeys, type NotaryConfig, type ServerKeys } from './server-keys.ts';

export interface FederationOptions {
  /** How requests reach other servers. Without one, every other server is unreachable. */
  transport?: FederationTransport;
  /** Notaries asked for a server's keys when it does not answer itself. */
  notaries?: readonly NotaryConfig[];
}

export interface Federation {
  readonly client: FederationClient;
  /** Signed requests whose answers are not JSON (media). */
  readonly fetch: FederationFetch;
  readonly keys: ServerKeys;
}

/** Federation is off: every send fails as unreachable, so lookups find nothing. */
export const noTransport: FederationTransport = {
  async send(destination) {
    throw new TransportError('UNREACHABLE', `federation is off: cannot reach ${destination}`);
  },
};

export function createFederation(
  ctx: Pick<HomeserverContext, 'config' | 'signingKey' | 'store' | 'clock' | 'logger'>,
  options: FederationOptions = {},
): Federation {
  const clientOptions = {
    serverName: ctx.config.serverName,
    signingKey: ctx.signingKey,
    transport: options.transport ?? noTransport,
  };
  const client = createFederationClient(clientOptions);
  const keys = createServerKeys({
    serverName: ctx.config.serverName,
    signingKey: ctx.signingKey,
    store: ctx.store.federation,
    client,
    clock: ctx.clock,
    notaries: options.notaries,
    logger: ctx.logger,
  });
  return { client, keys, fetch: createFederationFetch(clientOptions) };
}
