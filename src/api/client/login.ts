/**
 * Sessions — client-server-api/_index.md "Login" (legacy API), "Refreshing access tokens" and
 * logout (data/api/client-server/login.yaml, refresh.yaml, logout.yaml).
 */
import type { Services } from '../../homeserver/services.ts';
import { extractAccessToken } from '../auth.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';
import { grantBody } from './register.ts';

export function loginEndpoints(services: Services): Endpoint[] {
  const { accounts } = services;
  const { serverName, publicBaseUrl } = services.config;
  return [
    endpoint({
      // GET /_matrix/client/v3/login
      method: 'GET',
      path: '/login',
      versions: ['r0', 'v3'],
      auth: 'none',
      spec: 'client-server-api/#get_matrixclientv3login',
      handler: async () => ({ flows: accounts.loginFlows() }),
    }),
    endpoint({
      // POST /_matrix/client/v3/login
      method: 'POST',
      path: '/login',
      versions: ['r0', 'v3'],
      auth: 'none',
      rateLimit: 'login',
      body: v.object({
        type: v.string(),
        identifier: v.optional(v.jsonObject()),
        user: v.optional(v.string()),
        medium: v.optional(v.string()),
        address: v.optional(v.string()),
        password: v.optional(v.string()),
        token: v.optional(v.string()),
        device_id: v.optional(v.string()),
        initial_device_display_name: v.optional(v.string()),
        refresh_token: v.optional(v.bool()),
      }),
      spec: 'client-server-api/#post_matrixclientv3login',
      handler: async ({ body, request, url }) => {
        // Appservice Login: the service's as_token authorises it; the endpoint is otherwise
        // unauthenticated, so a stale token sent with a password login is not looked at.
        const accessToken =
          body.type === 'm.login.application_service' ? extractAccessToken(request, url) : null;
        const grant = await accounts.login({
          ...(accessToken !== null ? { accessToken } : {}),
          type: body.type,
          ...(body.identifier !== undefined ? { identifier: body.identifier } : {}),
          ...(body.user !== undefined ? { user: body.user } : {}),
          ...(body.medium !== undefined ? { medium: body.medium } : {}),
          ...(body.address !== undefined ? { address: body.address } : {}),
          ...(body.password !== undefined ? { password: body.password } : {}),
          ...(body.token !== undefined ? { token: body.token } : {}),
          ...(body.device_id !== undefined ? { deviceId: body.device_id } : {}),
          ...(body.initial_device_display_name !== undefined
            ? { initialDeviceDisplayName: body.initial_device_display_name }
            : {}),
          refreshToken: body.refresh_token === true,
        });
        return {
          ...grantBody(grant),
          home_server: serverName,
          ...(publicBaseUrl ? { well_known: { 'm.homeserver': { base_url: publicBaseUrl } } } : {}),
        };
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/refresh
      method: 'POST',
      path: '/refresh',
      versions: ['v3'],
      auth: 'none',
      body: v.object({ refresh_token: v.string() }),
      spec: 'client-server-api/#post_matrixclientv3refresh',
      handler: async ({ body }) => {
        const grant = await accounts.refresh(body.refresh_token);
        return {
          access_token: grant.accessToken,
          ...(grant.refreshToken !== undefined ? { refresh_token: grant.refreshToken } : {}),
          ...(grant.expiresInMs !== undefined ? { expires_in_ms: grant.expiresInMs } : {}),
        };
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/logout
      method: 'POST',
      path: '/logout',
      versions: ['r0', 'v3'],
      auth: 'required',
      // Not in the guest-access list, but a guest ending its own session harms nobody.
      guest: true,
      spec: 'client-server-api/#post_matrixclientv3logout',
      handler: async ({ auth }) => {
        await accounts.logout(auth);
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/logout/all
      method: 'POST',
      path: '/logout/all',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#post_matrixclientv3logoutall',
      handler: async ({ auth }) => {
        await accounts.logoutAll(auth.userId);
        return {};
      },
    }),
  ];
}
