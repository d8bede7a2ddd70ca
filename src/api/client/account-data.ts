/**
 * Account data and room tags — client-server-api/modules/account_data.md ("Client Config"),
 * modules/tags.md; data/api/client-server/account-data.yaml, tags.yaml.
 */
import { isValidRoomId } from '../../core/identifiers.ts';
import { forbidden, invalidParam } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { accountDataNotFound } from '../../homeserver/user-data.ts';
import type { Auth } from '../auth.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

/** account-data.yaml: the token must belong to the user named in the path. */
function requireSelf(auth: Auth, userId: string, what: string): void {
  if (userId !== auth.userId) throw forbidden(`Cannot ${what} for other users`);
}

/** account-data.yaml answers 400 M_INVALID_PARAM for a room ID that is not one. */
function requireRoomId(roomId: string): void {
  if (!isValidRoomId(roomId))
    throw invalidParam(`${JSON.stringify(roomId.slice(0, 80))} is not a valid room ID`);
}

export function accountDataEndpoints(services: Services): Endpoint[] {
  const { userData } = services;
  return [
    endpoint({
      // PUT /_matrix/client/v3/user/{userId}/account_data/{type}
      method: 'PUT',
      path: '/user/{userId}/account_data/{type}',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.jsonObject(),
      spec: 'client-server-api/#put_matrixclientv3useruseridaccount_datatype',
      handler: async ({ params, body, auth }) => {
        requireSelf(auth, params.userId, 'set account data');
        await userData.setAccountData(auth.userId, params.type, body);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/user/{userId}/account_data/{type}
      method: 'GET',
      path: '/user/{userId}/account_data/{type}',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3useruseridaccount_datatype',
      handler: async ({ params, auth }) => {
        requireSelf(auth, params.userId, 'read account data');
        const content = await userData.getAccountData(auth.userId, params.type);
        if (!content) throw accountDataNotFound();
        return content;
      },
    }),
    endpoint({
      // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
      method: 'PUT',
      path: '/user/{userId}/rooms/{roomId}/account_data/{type}',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.jsonObject(),
      spec: 'client-server-api/#put_matrixclientv3useruseridroomsroomidaccount_datatype',
      handler: async ({ params, body, auth }) => {
        requireSelf(auth, params.userId, 'set account data');
        requireRoomId(params.roomId);
        await userData.setAccountData(auth.userId, params.type, body, params.roomId);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
      method: 'GET',
      path: '/user/{userId}/rooms/{roomId}/account_data/{type}',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3useruseridroomsroomidaccount_datatype',
      handler: async ({ params, auth }) => {
        requireSelf(auth, params.userId, 'read account data');
        requireRoomId(params.roomId);
        const content = await userData.getAccountData(auth.userId, params.type, params.roomId);
        if (!content) throw accountDataNotFound(params.roomId);
        return content;
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags
      method: 'GET',
      path: '/user/{userId}/rooms/{roomId}/tags',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3useruseridroomsroomidtags',
      handler: async ({ params, auth }) => {
        requireSelf(auth, params.userId, 'read tags');
        requireRoomId(params.roomId);
        return { tags: await userData.getTags(auth.userId, params.roomId) };
      },
    }),
    endpoint({
      // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
      method: 'PUT',
      path: '/user/{userId}/rooms/{roomId}/tags/{tag}',
      versions: ['r0', 'v3'],
      auth: 'required',
      // definitions/tag.yaml: `order` is a number; other keys are kept as the client sent them.
      body: v.object({ order: v.optional(v.number()) }, { unknownKeys: 'keep' }),
      spec: 'client-server-api/#put_matrixclientv3useruseridroomsroomidtagstag',
      handler: async ({ params, body, auth }) => {
        requireSelf(auth, params.userId, 'set tags');
        requireRoomId(params.roomId);
        await userData.putTag(auth.userId, params.roomId, params.tag, body);
        return {};
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
      method: 'DELETE',
      path: '/user/{userId}/rooms/{roomId}/tags/{tag}',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#delete_matrixclientv3useruseridroomsroomidtagstag',
      handler: async ({ params, auth }) => {
        requireSelf(auth, params.userId, 'delete tags');
        requireRoomId(params.roomId);
        await userData.deleteTag(auth.userId, params.roomId, params.tag);
        return {};
      },
    }),
  ];
}
