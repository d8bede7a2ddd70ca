/**
 * GET /_matrix/federation/v1/openid/userinfo — server-server-api.md "OpenID" (openid.yaml):
 * who an OpenID token (from the client API's `/user/{userId}/openid/request_token`,
 * src/api/client/openid.ts) belongs to. An unknown or expired token is 401 M_UNKNOWN_TOKEN.
 * Not X-Matrix signed: the asker is a third party, and the token is the credential.
 */
import { MatrixError } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { FEDERATION_BASE } from './auth.ts';

export function openIdEndpoints(services: Pick<Services, 'accounts'>): Endpoint[] {
  return [
    endpoint({
      // GET /_matrix/federation/v1/openid/userinfo
      method: 'GET',
      path: '/openid/userinfo',
      versions: ['v1'],
      base: FEDERATION_BASE,
      auth: 'none',
      rateLimit: 'default',
      query: q.object({ access_token: q.optional(q.string()) }),
      spec: 'server-server-api/#get_matrixfederationv1openiduserinfo',
      handler: async ({ query }) => {
        const sub = query.access_token ? await services.accounts.openIdUser(query.access_token) : null;
        if (sub === null) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unknown or expired OpenID token');
        return { sub };
      },
    }),
  ];
}
