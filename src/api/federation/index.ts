/**
 * Every Server-Server endpoint, one file per spec area, as `src/api/client/index.ts` does for
 * the client API. Authenticated endpoints are declared with `federationEndpoint` (auth.ts),
 * which checks X-Matrix before the handler runs.
 */
import type { ServerKeys } from '../../federation/server-keys.ts';
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import type { XMatrixDeps } from './auth.ts';
import { keyEndpoints, type ServerIdentity } from './keys.ts';
import { membershipEndpoints } from './membership.ts';
import { queryEndpoints } from './query.ts';
import { transactionEndpoints } from './transactions.ts';
import { versionEndpoints } from './version.ts';

export interface FederationEndpointDeps {
  /** The server's identity: its own key answers and notary countersignatures (no store access). */
  server: ServerIdentity;
  services: Services;
  /** Other servers' keys: checks X-Matrix signatures and backs the notary endpoints. */
  keys: ServerKeys;
  /** An authenticated request came from `origin` (see `XMatrixDeps.seen`). */
  seen?: (origin: string) => void;
}

export function federationEndpoints({ server, services, keys, seen }: FederationEndpointDeps): Endpoint[] {
  const xMatrix: XMatrixDeps = { serverName: server.serverName, keys, clock: server.clock, seen };
  return [
    ...keyEndpoints(server, keys),
    ...versionEndpoints(),
    ...queryEndpoints(xMatrix, services),
    ...membershipEndpoints(xMatrix, services),
    ...transactionEndpoints(xMatrix, services),
  ];
}
