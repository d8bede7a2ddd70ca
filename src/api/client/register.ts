/**
 * Account registration — client-server-api/_index.md "Account registration" (legacy API),
 * "Token-authenticated registration" and "Guest access" (data/api/client-server/
 * registration.yaml, registration_tokens.yaml).
 */
import type { SessionGrant } from '../../homeserver/accounts/index.ts';
import { userIdForUsername } from '../../homeserver/accounts/usernames.ts';
import type { Auth } from '../../homeserver/context.ts';
import { forbidden, matrixError, missingParam, missingToken } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';

/** The token fields of a login or registration answer (login.yaml, registration.yaml). */
export function grantBody(grant: SessionGrant): Record<string, string | number> {
  return {
    user_id: grant.userId,
    access_token: grant.accessToken,
    device_id: grant.deviceId,
    ...(grant.refreshToken !== undefined ? { refresh_token: grant.refreshToken } : {}),
    ...(grant.expiresInMs !== undefined ? { expires_in_ms: grant.expiresInMs } : {}),
  };
}

const APPSERVICE_LOGIN = 'm.login.application_service';

export function registerEndpoints(services: Services): Endpoint[] {
  const { accounts, appservices } = services;
  const serverName = services.config.serverName;

  /** application-service-api "Server admin style permissions": a passwordless user of the service's namespace. */
  async function registerAppserviceUser(
    auth: Auth | null,
    body: {
      username?: string;
      inhibit_login?: boolean;
      device_id?: string;
      initial_device_display_name?: string;
    },
  ) {
    if (auth === null) throw missingToken('m.login.application_service needs the application service token');
    if (auth.appserviceId === undefined)
      throw forbidden('Only application services may use m.login.application_service');
    if (body.username === undefined) throw missingParam('username is required');
    const userId = userIdForUsername(body.username, serverName);
    appservices.checkUserId(userId, auth);
    const result = await accounts.createUser({
      localpart: userId.slice(1, userId.indexOf(':')),
      login: body.inhibit_login !== true,
    });
    return {
      ...(result.session ? grantBody(result.session) : {}),
      user_id: result.userId,
      home_server: serverName,
    };
  }

  /** Validating e-mail addresses or phone numbers needs a mailer or SMS gateway Hearth has not. */
  const threepidDenied = (medium: string) =>
    endpoint({
      // POST /_matrix/client/v3/register/{email,msisdn}/requestToken
      method: 'POST',
      path: `/register/${medium}/requestToken`,
      versions: ['r0', 'v3'],
      auth: 'none',
      rateLimit: 'register',
      body: v.jsonObject(),
      spec: `client-server-api/#post_matrixclientv3register${medium}requesttoken`,
      handler: async () => {
        throw matrixError(
          403,
          'M_THREEPID_DENIED',
          `This homeserver does not register accounts by ${medium}`,
        );
      },
    });

  return [
    endpoint({
      // POST /_matrix/client/v3/register
      method: 'POST',
      path: '/register',
      versions: ['r0', 'v3'],
      // Application services register their users with their as_token (m.login.application_service).
      auth: 'optional',
      guest: true,
      rateLimit: 'register',
      query: q.object({ kind: q.optional(q.enum(['user', 'guest']), 'user') }),
      body: v.object({
        type: v.optional(v.string()),
        auth: v.optional(v.jsonObject()),
        username: v.optional(v.string()),
        password: v.optional(v.string()),
        device_id: v.optional(v.string()),
        initial_device_display_name: v.optional(v.string()),
        inhibit_login: v.optional(v.bool()),
        refresh_token: v.optional(v.bool()),
        guest_access_token: v.optional(v.string()),
      }),
      // Some clients ask for the flows with no body at all.
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3register',
      handler: async ({ query, body, auth }) => {
        if (body.type === APPSERVICE_LOGIN || (auth?.appserviceId !== undefined && query.kind === 'user')) {
          return registerAppserviceUser(auth, body);
        }
        // A user ID in an application service's exclusive namespace is the service's alone.
        if (body.username !== undefined && query.kind === 'user') {
          appservices.checkUserId(userIdForUsername(body.username, serverName), null);
        }
        const result = await accounts.register({
          kind: query.kind,
          ...(body.username !== undefined ? { username: body.username } : {}),
          ...(body.password !== undefined ? { password: body.password } : {}),
          ...(body.device_id !== undefined ? { deviceId: body.device_id } : {}),
          ...(body.initial_device_display_name !== undefined
            ? { initialDeviceDisplayName: body.initial_device_display_name }
            : {}),
          ...(body.guest_access_token !== undefined ? { guestAccessToken: body.guest_access_token } : {}),
          inhibitLogin: body.inhibit_login === true,
          refreshToken: body.refresh_token === true,
          auth: body.auth,
        });
        return {
          ...(result.session ? grantBody(result.session) : {}),
          user_id: result.userId,
          home_server: serverName,
        };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/register/available
      method: 'GET',
      path: '/register/available',
      versions: ['r0', 'v3'],
      auth: 'none',
      query: q.object({ username: q.string() }),
      spec: 'client-server-api/#get_matrixclientv3registeravailable',
      handler: async ({ query }) => {
        await accounts.checkUsernameAvailable(query.username);
        return { available: true };
      },
    }),
    endpoint({
      // GET /_matrix/client/v1/register/m.login.registration_token/validity
      method: 'GET',
      path: '/register/m.login.registration_token/validity',
      versions: ['v1'],
      auth: 'none',
      // "Servers should be sure to rate limit this endpoint to avoid brute force attacks."
      rateLimit: 'register',
      query: q.object({ token: q.string() }),
      spec: 'client-server-api/#get_matrixclientv1registermloginregistration_tokenvalidity',
      handler: async ({ query }) => ({ valid: await accounts.registrationTokenValid(query.token) }),
    }),
    threepidDenied('email'),
    threepidDenied('msisdn'),
  ];
}
