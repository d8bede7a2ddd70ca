/**
 * Spaces and room previews — space_hierarchy.yaml (`GET /rooms/{roomId}/hierarchy`),
 * room_summary.yaml (`GET /room_summary/{roomIdOrAlias}`, MSC3266) and mutual_rooms.yaml
 * (`GET /mutual_rooms`, MSC2666). Behaviour is in src/homeserver/spaces.ts.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { roomIdOrAliasParam, roomIdParam } from './room-params.ts';

export function spacesEndpoints(services: Services): Endpoint[] {
  const { spaces } = services;
  return [
    endpoint({
      // GET /_matrix/client/v1/rooms/{roomId}/hierarchy
      method: 'GET',
      path: '/rooms/{roomId}/hierarchy',
      versions: ['v1'],
      auth: 'required',
      params: { roomId: roomIdParam },
      query: q.object({
        suggested_only: q.optional(q.bool(), false),
        max_depth: q.optional(q.int({ min: 0 })),
        limit: q.optional(q.int({ min: 1 })),
        from: q.optional(q.string()),
      }),
      spec: 'client-server-api/#get_matrixclientv1roomsroomidhierarchy',
      handler: async ({ params, query, auth }) =>
        spaces.hierarchy(auth.userId, params.roomId, {
          suggestedOnly: query.suggested_only,
          ...(query.max_depth !== undefined ? { maxDepth: query.max_depth } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
        }),
    }),
    endpoint({
      // GET /_matrix/client/v1/room_summary/{roomIdOrAlias}
      method: 'GET',
      path: '/room_summary/{roomIdOrAlias}',
      versions: ['v1'],
      auth: 'optional',
      guest: true,
      params: { roomIdOrAlias: roomIdOrAliasParam },
      query: q.object({ via: q.list({ max: 20 }) }),
      spec: 'client-server-api/#get_matrixclientv1room_summaryroomidoralias',
      handler: async ({ params, query, auth }) =>
        spaces.roomSummary(auth?.userId ?? null, params.roomIdOrAlias, query.via),
    }),
    endpoint({
      // GET /_matrix/client/v1/mutual_rooms
      method: 'GET',
      path: '/mutual_rooms',
      versions: ['v1'],
      auth: 'required',
      query: q.object({ user_id: q.string(), from: q.optional(q.string()) }),
      spec: 'client-server-api/#get_matrixclientv1mutual_rooms',
      handler: async ({ query, auth }) => spaces.mutualRooms(auth.userId, query.user_id, query.from),
    }),
  ];
}
