/**
 * Relations and threads — client-server-api "Relationship types" (relations.yaml) and
 * "Threading" (threads_list.yaml). Behaviour is in src/homeserver/rooms/relations.ts; bundled
 * aggregations on every served event are src/homeserver/aggregations.ts.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { eventIdParam, roomIdParam } from './room-params.ts';

const paging = {
  from: q.optional(q.string()),
  to: q.optional(q.string()),
  limit: q.optional(q.int({ min: 0 })),
  dir: q.optional(q.enum(['b', 'f'])),
  recurse: q.optional(q.bool()),
};

export function relationsEndpoints(services: Services): Endpoint[] {
  const { relations } = services;
  // GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
  const relationsAt = (path: string, spec: string) =>
    endpoint({
      method: 'GET',
      path,
      versions: ['v1'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam, eventId: eventIdParam },
      query: q.object(paging),
      spec: `client-server-api/#${spec}`,
      handler: async ({ params, query, auth }) => {
        const p = params as Record<string, string | undefined>;
        return relations.relations(auth, p.roomId as string, p.eventId as string, {
          ...(p.relType !== undefined ? { relType: p.relType } : {}),
          ...(p.eventType !== undefined ? { eventType: p.eventType } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          ...(query.dir !== undefined ? { dir: query.dir } : {}),
          ...(query.recurse !== undefined ? { recurse: query.recurse } : {}),
        });
      },
    });
  return [
    relationsAt('/rooms/{roomId}/relations/{eventId}', 'get_matrixclientv1roomsroomidrelationseventid'),
    relationsAt(
      '/rooms/{roomId}/relations/{eventId}/{relType}',
      'get_matrixclientv1roomsroomidrelationseventidreltype',
    ),
    relationsAt(
      '/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}',
      'get_matrixclientv1roomsroomidrelationseventidreltypeeventtype',
    ),
    endpoint({
      // GET /_matrix/client/v1/rooms/{roomId}/threads
      method: 'GET',
      path: '/rooms/{roomId}/threads',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      query: q.object({
        include: q.optional(q.enum(['all', 'participated']), 'all'),
        from: q.optional(q.string()),
        limit: q.optional(q.int({ min: 1 })),
      }),
      spec: 'client-server-api/#get_matrixclientv1roomsroomidthreads',
      handler: async ({ params, query, auth }) =>
        relations.threads(auth, params.roomId, {
          include: query.include,
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
        }),
    }),
  ];
}
