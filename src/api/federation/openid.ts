/**
 * GET /_matrix/federation/v1/openid/userinfo — server-server-api.md "OpenID" (openid.yaml):
 * who an OpenID token (from the client API's `/user/{userId}/openid/request_token`) belongs to.
 * This server issues no OpenID tokens yet, so no token is one of ours: every request is
 * 401 M_UNKNOWN_TOKEN, as the spec says for "the token was not recognized or has expired".
 * Not X-Matrix signed: the token is the credential.
 */
import { MatrixError } from '../../homeserver/errors.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { FEDERATION_BASE } from './auth.ts';

export function openIdEndpoints(): Endpoint[] {
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
      handler: async () => {
        throw new MatrixError(
          401,
          'M_UNKNOWN_TOKEN',
          'Unknown or expired OpenID token (this server issues none yet)',
        );
      },
    }),
  ];
}
