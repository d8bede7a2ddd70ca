/**
 * GET /_matrix/federation/v1/version — server-server-api.md "Server implementation"
 * (data/api/server-server/version.yaml). Unauthenticated, as the spec declares no security.
 */
import packageJson from '../../../package.json' with { type: 'json' };
import { type Endpoint, endpoint } from '../endpoint.ts';
import { FEDERATION_BASE } from './auth.ts';

export const SERVER_SOFTWARE = { name: 'Hearth', version: packageJson.version } as const;

export function versionEndpoints(): Endpoint[] {
  return [
    endpoint({
      // GET /_matrix/federation/v1/version
      method: 'GET',
      path: '/version',
      versions: ['v1'],
      base: FEDERATION_BASE,
      auth: 'none',
      spec: 'server-server-api/#get_matrixfederationv1version',
      handler: async () => ({ server: SERVER_SOFTWARE }),
    }),
  ];
}
