/**
 * OpenID — client-server-api "OpenID" (data/api/client-server/openid.yaml):
 * `POST /_matrix/client/v3/user/{userId}/openid/request_token` gives the user a token a third
 * party (a widget, an integration manager) checks with this server's
 * `/_matrix/federation/v1/openid/userinfo` (src/api/federation/openid.ts).
 */
import { forbidden } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

export function openIdEndpoints(services: Pick<Services, 'accounts' | 'config'>): Endpoint[] {
  const { accounts, config } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/user/{userId}/openid/request_token
      method: 'POST',
      path: '/user/{userId}/openid/request_token',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      body: v.jsonObject(),
      spec: 'client-server-api/#post_matrixclientv3useruseridopenidrequest_token',
      handler: async ({ auth, params }) => {
        if (params.userId !== auth.userId)
          throw forbidden('An OpenID token can only be requested for your own user ID');
        const { accessToken, expiresInSeconds } = await accounts.requestOpenIdToken(auth);
        return {
          access_token: accessToken,
          token_type: 'Bearer',
          matrix_server_name: config.serverName,
          expires_in: expiresInSeconds,
        };
      },
    }),
  ];
}
