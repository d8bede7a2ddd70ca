/**
 * Every Server-Server endpoint, one file per spec area, as `src/api/client/index.ts` does for
 * the client API. Authenticated endpoints are declared with `federationEndpoint` (auth.ts),
 * which checks X-Matrix before the handler runs.
 */
import type { ServerKeys } from '../../federation/server-keys.ts';
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import type { XMatrixDeps } from './auth.ts';
import { e2eeEndpoints } from './e2ee.ts';
import { eventEndpoints } from './events.ts';
import { keyEndpoints, type ServerIdentity } from './keys.ts';
import { mediaFederationEndpoints } from './media.ts';
import { membershipEndpoints } from './membership.ts';
import { openIdEndpoints } from './openid.ts';
import { queryEndpoints } from './query.ts';
import { roomEndpoints } from './rooms.ts';
import { transactionEndpoints } from './transactions.ts';
import { versionEndpoints } from './version.ts';
import { wellKnownServerEndpoints } from './well-known.ts';

export interface FederationEndpointDeps {
  /** The server's identity: its own key answers and notary countersignatures (no store access). */
  server: ServerIdentity;
  services: Services;
  /** Other servers' keys: checks X-Matrix signatures and backs the notary endpoints. */
  keys: ServerKeys;
  /** `m.server` of `/.well-known/matrix/server`, when federation is delegated. */
  wellKnownServer?: string;
  /** Refused federation requests are logged here. */
  logger?: XMatrixDeps['logger'];
  /** An authenticated request came from `origin` (see `XMatrixDeps.seen`). */
  seen?: (origin: string) => void;
}

export function federationEndpoints({
  server,
  services,
  keys,
  wellKnownServer,
  logger,
  seen,
}: FederationEndpointDeps): Endpoint[] {
  const xMatrix: XMatrixDeps = { serverName: server.serverName, keys, clock: server.clock, logger, seen };
  return [
    ...keyEndpoints(server, keys),
    ...versionEndpoints(),
    ...queryEndpoints(xMatrix, services),
    ...e2eeEndpoints(xMatrix, services),
    ...roomEndpoints(xMatrix, services),
    ...openIdEndpoints(services),
    ...wellKnownServerEndpoints(wellKnownServer),
    ...eventEndpoints(xMatrix, services),
    ...membershipEndpoints(xMatrix, services),
    ...transactionEndpoints(xMatrix, services),
    ...mediaFederationEndpoints(xMatrix, services),
  ];
}
