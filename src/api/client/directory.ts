/**
 * Room aliases and the published room directory — client-server-api "Room aliases"
 * (directory.yaml) and "Published room directory" (list_public_rooms.yaml).
 */
import { isValidRoomId } from '../../core/index.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { roomAliasParam, roomIdParam } from './room-params.ts';

const roomIdField = v.refine(v.string(), (id) => (isValidRoomId(id) ? undefined : 'is not a valid room ID'));
/** Another server's directory needs federation; the service answers M_UNRECOGNIZED for it. */
const serverQuery = q.optional(q.string({ min: 1, max: 255 }));

const publicRoomsBody = v.object({
  limit: v.optional(v.int({ min: 0 })),
  since: v.optional(v.string()),
  filter: v.optional(
    v.object({
      generic_search_term: v.optional(v.string()),
      room_types: v.optional(v.array(v.nullable(v.string()))),
    }),
  ),
  include_all_networks: v.optional(v.bool()),
  third_party_instance_id: v.optional(v.string()),
});

export function directoryEndpoints(services: Services): Endpoint[] {
  const { rooms } = services;
  return [
    endpoint({
      // PUT /_matrix/client/v3/directory/room/{roomAlias}
      method: 'PUT',
      path: '/directory/room/{roomAlias}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomAlias: roomAliasParam },
      body: v.object({ room_id: roomIdField }),
      spec: 'client-server-api/#put_matrixclientv3directoryroomroomalias',
      handler: async ({ params, body, auth }) => {
        await rooms.createAlias(auth.userId, params.roomAlias, body.room_id);
        return {};
      },
    }),

    endpoint({
      // GET /_matrix/client/v3/directory/room/{roomAlias}
      method: 'GET',
      path: '/directory/room/{roomAlias}',
      versions: ['r0', 'v3'],
      auth: 'optional',
      guest: true,
      params: { roomAlias: roomAliasParam },
      spec: 'client-server-api/#get_matrixclientv3directoryroomroomalias',
      handler: async ({ params }) => {
        const { roomId, servers } = await rooms.resolveAlias(params.roomAlias);
        return { room_id: roomId, servers };
      },
    }),

    endpoint({
      // DELETE /_matrix/client/v3/directory/room/{roomAlias}
      method: 'DELETE',
      path: '/directory/room/{roomAlias}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomAlias: roomAliasParam },
      spec: 'client-server-api/#delete_matrixclientv3directoryroomroomalias',
      handler: async ({ params, auth }) => {
        await rooms.deleteAlias(auth.userId, params.roomAlias);
        return {};
      },
    }),

    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/aliases
      method: 'GET',
      path: '/rooms/{roomId}/aliases',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { roomId: roomIdParam },
      spec: 'client-server-api/#get_matrixclientv3roomsroomidaliases',
      handler: async ({ params, auth }) => ({
        aliases: await rooms.localAliases(auth.userId, params.roomId),
      }),
    }),

    endpoint({
      // GET /_matrix/client/v3/directory/list/room/{roomId}
      method: 'GET',
      path: '/directory/list/room/{roomId}',
      versions: ['r0', 'v3'],
      auth: 'optional',
      guest: true,
      params: { roomId: roomIdParam },
      spec: 'client-server-api/#get_matrixclientv3directorylistroomroomid',
      handler: async ({ params }) => ({ visibility: await rooms.getDirectoryVisibility(params.roomId) }),
    }),

    endpoint({
      // PUT /_matrix/client/v3/directory/list/room/{roomId}
      method: 'PUT',
      path: '/directory/list/room/{roomId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: v.object({ visibility: v.optional(v.enum(['public', 'private']), 'public') }),
      allowEmptyBody: true,
      spec: 'client-server-api/#put_matrixclientv3directorylistroomroomid',
      handler: async ({ params, body, auth }) => {
        await rooms.setDirectoryVisibility(auth.userId, params.roomId, body.visibility);
        return {};
      },
    }),

    endpoint({
      // GET /_matrix/client/v3/publicRooms
      method: 'GET',
      path: '/publicRooms',
      versions: ['r0', 'v3'],
      auth: 'optional',
      guest: true,
      query: q.object({
        limit: q.optional(q.int({ min: 0 })),
        since: q.optional(q.string()),
        server: serverQuery,
      }),
      spec: 'client-server-api/#get_matrixclientv3publicrooms',
      handler: async ({ query }) => rooms.publicRooms(query),
    }),

    endpoint({
      // POST /_matrix/client/v3/publicRooms
      method: 'POST',
      path: '/publicRooms',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      query: q.object({ server: serverQuery }),
      body: publicRoomsBody,
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3publicrooms',
      handler: async ({ query, body }) => rooms.publicRooms({ ...body, ...query }),
    }),
  ];
}
