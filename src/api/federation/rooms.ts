/**
 * Our rooms as other servers see them from outside — server-server-api.md "Public Room
 * Directory" (public_rooms.yaml) and "Spaces" (space_hierarchy.yaml).
 */
import { forbidden } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { roomIdParam } from '../client/room-params.ts';
import { type Endpoint, q, v } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

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

export function roomEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  const { rooms, federationQueries } = services;
  return [
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/publicRooms
      method: 'GET',
      path: '/publicRooms',
      versions: ['v1'],
      query: q.object({
        limit: q.optional(q.int({ min: 0 })),
        since: q.optional(q.string()),
        include_all_networks: q.optional(q.bool()),
        third_party_instance_id: q.optional(q.string()),
      }),
      spec: 'server-server-api/#get_matrixfederationv1publicrooms',
      // Our published rooms only: no `server`, which would send us asking another server.
      handler: async ({ query }) => rooms.publicRooms(query),
    }),
    federationEndpoint(deps, {
      // POST /_matrix/federation/v1/publicRooms
      method: 'POST',
      path: '/publicRooms',
      versions: ['v1'],
      body: publicRoomsBody,
      spec: 'server-server-api/#post_matrixfederationv1publicrooms',
      handler: async ({ body }) => rooms.publicRooms(body),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/hierarchy/{roomId}
      method: 'GET',
      path: '/hierarchy/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      query: q.object({ suggested_only: q.optional(q.bool(), false) }),
      spec: 'server-server-api/#get_matrixfederationv1hierarchyroomid',
      handler: async ({ origin, params, query }) => {
        // server-server-api.md "Server Access Control Lists": a denied server is 403 M_FORBIDDEN.
        if (!(await rooms.serverAllowed(params.roomId, origin))) {
          throw forbidden(`${origin} is denied by the room's server ACL`);
        }
        return federationQueries.hierarchy(origin, params.roomId, query.suggested_only);
      },
    }),
  ];
}
