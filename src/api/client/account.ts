/**
 * Account management — client-server-api/_index.md "Password management", "Account
 * deactivation", "Current account information" and "Adding Account Administrative Contact
 * Information" (data/api/client-server/password_management.yaml, account_deactivation.yaml,
 * whoami.yaml, administrative_contact.yaml), plus the server administration whois (admin.yaml).
 *
 * Hearth keeps no third-party identifiers (it sends no e-mail or SMS and talks to no identity
 * server): the list is empty and the endpoints that would add one answer with the spec's
 * error for that case.
 */
import { isValidUserId } from '../../core/identifiers.ts';
import { invalidParam, matrixError } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

const MEDIUM = v.enum(['email', 'msisdn']);

export function accountEndpoints(services: Pick<Services, 'accounts'>): Endpoint[] {
  const { accounts } = services;

  const requestTokenEndpoint = (path: string, spec: string, fail: () => never) =>
    endpoint({
      method: 'POST',
      path,
      versions: ['r0', 'v3'],
      auth: 'none',
      rateLimit: 'register',
      body: v.jsonObject(),
      spec,
      handler: async () => fail(),
    });

  return [
    endpoint({
      // GET /_matrix/client/v3/account/whoami
      method: 'GET',
      path: '/account/whoami',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3accountwhoami',
      handler: async ({ auth }) => ({
        user_id: auth.userId,
        ...(auth.deviceId !== null ? { device_id: auth.deviceId } : {}),
        is_guest: auth.isGuest,
      }),
    }),
    endpoint({
      // POST /_matrix/client/v3/account/password
      method: 'POST',
      path: '/account/password',
      versions: ['r0', 'v3'],
      // Without a token the password stage says whose password it is.
      auth: 'optional',
      // The password stage answers whether a password is right: limit it like login.
      rateLimit: 'login',
      body: v.object({
        new_password: v.string(),
        logout_devices: v.optional(v.bool(), true),
        auth: v.optional(v.jsonObject()),
      }),
      spec: 'client-server-api/#post_matrixclientv3accountpassword',
      handler: async ({ auth, body }) => {
        await accounts.changePassword({
          auth,
          newPassword: body.new_password,
          logoutDevices: body.logout_devices,
          uia: body.auth,
        });
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/account/deactivate
      method: 'POST',
      path: '/account/deactivate',
      versions: ['r0', 'v3'],
      auth: 'optional',
      rateLimit: 'login',
      body: v.object({
        auth: v.optional(v.jsonObject()),
        id_server: v.optional(v.string()),
        erase: v.optional(v.bool(), false),
      }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3accountdeactivate',
      handler: async ({ auth, body }) => {
        await accounts.deactivate({ auth, erase: body.erase, uia: body.auth });
        // "This must be `success` if the homeserver has no identifiers to unbind."
        return { id_server_unbind_result: 'success' };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/account/3pid
      method: 'GET',
      path: '/account/3pid',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3account3pid',
      handler: async () => ({ threepids: [] }),
    }),
    endpoint({
      // POST /_matrix/client/v3/account/3pid (deprecated)
      method: 'POST',
      path: '/account/3pid',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({ three_pid_creds: v.jsonObject(), bind: v.optional(v.bool()) }),
      spec: 'client-server-api/#post_matrixclientv3account3pid',
      handler: async () => {
        throw matrixError(
          403,
          'M_THREEPID_AUTH_FAILED',
          'No third-party identifier was validated by this homeserver',
        );
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/account/3pid/add
      method: 'POST',
      path: '/account/3pid/add',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({ client_secret: v.string(), sid: v.string(), auth: v.optional(v.jsonObject()) }),
      spec: 'client-server-api/#post_matrixclientv3account3pidadd',
      handler: async () => {
        // No validation session can exist: this server never sends validation tokens.
        throw matrixError(403, 'M_THREEPID_AUTH_FAILED', 'No such third-party validation session');
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/account/3pid/bind
      method: 'POST',
      path: '/account/3pid/bind',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        client_secret: v.string(),
        id_server: v.string(),
        id_access_token: v.string(),
        sid: v.string(),
      }),
      spec: 'client-server-api/#post_matrixclientv3account3pidbind',
      handler: async () => {
        throw matrixError(400, 'M_SERVER_NOT_TRUSTED', 'This homeserver does not talk to identity servers');
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/account/3pid/delete
      method: 'POST',
      path: '/account/3pid/delete',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({ medium: MEDIUM, address: v.string(), id_server: v.optional(v.string()) }),
      spec: 'client-server-api/#post_matrixclientv3account3piddelete',
      // Nothing is bound, so nothing is left to unbind: "success" as the spec asks then.
      handler: async () => ({ id_server_unbind_result: 'success' }),
    }),
    endpoint({
      // POST /_matrix/client/v3/account/3pid/unbind
      method: 'POST',
      path: '/account/3pid/unbind',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({ medium: MEDIUM, address: v.string(), id_server: v.optional(v.string()) }),
      spec: 'client-server-api/#post_matrixclientv3account3pidunbind',
      // "no-support": the server knows no identity server this address could be bound on.
      handler: async () => ({ id_server_unbind_result: 'no-support' }),
    }),
    requestTokenEndpoint(
      '/account/3pid/email/requestToken',
      'client-server-api/#post_matrixclientv3account3pidemailrequesttoken',
      () => {
        throw matrixError(
          400,
          'M_THREEPID_MEDIUM_NOT_SUPPORTED',
          'This homeserver does not add e-mail addresses',
        );
      },
    ),
    requestTokenEndpoint(
      '/account/3pid/msisdn/requestToken',
      'client-server-api/#post_matrixclientv3account3pidmsisdnrequesttoken',
      () => {
        throw matrixError(
          400,
          'M_THREEPID_MEDIUM_NOT_SUPPORTED',
          'This homeserver does not add phone numbers',
        );
      },
    ),
    requestTokenEndpoint(
      '/account/password/email/requestToken',
      'client-server-api/#post_matrixclientv3accountpasswordemailrequesttoken',
      () => {
        throw matrixError(400, 'M_THREEPID_NOT_FOUND', 'No account has this e-mail address');
      },
    ),
    requestTokenEndpoint(
      '/account/password/msisdn/requestToken',
      'client-server-api/#post_matrixclientv3accountpasswordmsisdnrequesttoken',
      () => {
        throw matrixError(400, 'M_THREEPID_NOT_FOUND', 'No account has this phone number');
      },
    ),
    endpoint({
      // GET /_matrix/client/v3/admin/whois/{userId}
      method: 'GET',
      path: '/admin/whois/{userId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3adminwhoisuserid',
      handler: async ({ auth, params }) => {
        if (!isValidUserId(params.userId, { historical: true })) throw invalidParam('Invalid user ID');
        return accounts.whois(auth, params.userId);
      },
    }),
  ];
}
