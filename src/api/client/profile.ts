/**
 * Profiles — client-server-api/_index.md "Profiles" (data/api/client-server/profile.yaml):
 * the whole profile, one field (`displayname`, `avatar_url`, `m.tz` or a custom namespaced
 * key, v1.16), set and delete (only one's own).
 */
import type { JsonValue } from '../../core/canonical-json.ts';
import { missingParam } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

export function profileEndpoints(services: Services): Endpoint[] {
  const { accounts } = services;
  return [
    endpoint({
      // GET /_matrix/client/v3/profile/{userId}
      method: 'GET',
      path: '/profile/{userId}',
      versions: ['r0', 'v3'],
      auth: 'optional',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3profileuserid',
      handler: async ({ params }) => accounts.getProfile(params.userId),
    }),
    endpoint({
      // GET /_matrix/client/v3/profile/{userId}/{keyName}
      method: 'GET',
      path: '/profile/{userId}/{keyName}',
      versions: ['r0', 'v3'],
      auth: 'optional',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3profileuseridkeyname',
      handler: async ({ params }) => ({
        [params.keyName]: await accounts.getProfileField(params.userId, params.keyName),
      }),
    }),
    endpoint({
      // PUT /_matrix/client/v3/profile/{userId}/{keyName}
      method: 'PUT',
      path: '/profile/{userId}/{keyName}',
      versions: ['r0', 'v3'],
      auth: 'required',
      // Guests may set their display name (the service refuses other keys for them).
      guest: true,
      body: v.jsonObject(),
      spec: 'client-server-api/#put_matrixclientv3profileuseridkeyname',
      handler: async ({ auth, params, body }) => {
        if (!Object.hasOwn(body, params.keyName)) {
          throw missingParam(
            `The body must hold the key ${JSON.stringify(params.keyName)} named in the path`,
          );
        }
        await accounts.setProfileField(
          auth,
          params.userId,
          params.keyName,
          body[params.keyName] as JsonValue,
        );
        return {};
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/profile/{userId}/{keyName}
      method: 'DELETE',
      path: '/profile/{userId}/{keyName}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#delete_matrixclientv3profileuseridkeyname',
      handler: async ({ auth, params }) => {
        await accounts.deleteProfileField(auth, params.userId, params.keyName);
        return {};
      },
    }),
  ];
}
