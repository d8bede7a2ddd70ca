/**
 * Every Server-Server endpoint, one file per spec area, as `src/api/client/index.ts` does for
 * the client API. Authenticated endpoints are declared with `federationEndpoint` (auth.ts),
 * which checks X-Matrix before the handler runs.
 */
import type { ServerKeys } from '../../federation/server-keys.ts';
import type { HomeserverContext } from '../../homeserver/context.ts';
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import type { XMatrixDeps } from './auth.ts';
import { keyEndpoints } from './keys.ts';
import { queryEndpoints } from './query.ts';
import { versionEndpoints } from './version.ts';

export interface FederationEndpointDeps {
  /** The server's name, clock and signing key (for its own key and notary answers). */
  ctx: HomeserverContext;
  services: Services;
  /** Other servers' keys: checks X-Matrix signatures and backs the notary endpoints. */
  keys: ServerKeys;
}

export function federationEndpoints({ ctx, services, keys }: FederationEndpointDeps): Endpoint[] {
  const xMatrix: XMatrixDeps = { serverName: ctx.config.serverName, keys, clock: ctx.clock };
  return [...keyEndpoints(ctx, keys), ...versionEndpoints(), ...queryEndpoints(xMatrix, services)];
}
