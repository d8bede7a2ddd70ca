/**
 * Room upgrades (room_upgrades.yaml, `POST /rooms/{roomId}/upgrade`), jumping to a date
 * (room_event_by_timestamp.yaml, `GET /rooms/{roomId}/timestamp_to_event`) and the
 * notifications list (notifications.yaml, `GET /notifications`). Behaviour is in
 * src/homeserver/rooms/upgrade.ts, rooms/timestamp.ts and notifications.ts.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { roomIdParam } from './room-params.ts';

export function roomExtrasEndpoints(services: Services): Endpoint[] {
  const { upgrades, roomRead, notifications } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/upgrade
      method: 'POST',
      path: '/rooms/{roomId}/upgrade',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'message',
      params: { roomId: roomIdParam },
      body: v.object({
        new_version: v.string({ min: 1, max: 32 }),
        additional_creators: v.optional(v.array(v.string())),
      }),
      spec: 'client-server-api/#post_matrixclientv3roomsroomidupgrade',
      handler: async ({ params, body, auth }) =>
        upgrades.upgrade(auth.userId, params.roomId, body.new_version),
    }),
    endpoint({
      // GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event
      method: 'GET',
      path: '/rooms/{roomId}/timestamp_to_event',
      versions: ['v1'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      query: q.object({ ts: q.int({ min: 0 }), dir: q.enum(['f', 'b']) }),
      spec: 'client-server-api/#get_matrixclientv1roomsroomidtimestamp_to_event',
      handler: async ({ params, query, auth }) =>
        roomRead.timestampToEvent(auth, params.roomId, query.ts, query.dir),
    }),
    endpoint({
      // GET /_matrix/client/v3/notifications
      method: 'GET',
      path: '/notifications',
      versions: ['r0', 'v3'],
      auth: 'required',
      query: q.object({
        from: q.optional(q.string()),
        limit: q.optional(q.int({ min: 0 })),
        only: q.optional(q.string()),
      }),
      spec: 'client-server-api/#get_matrixclientv3notifications',
      handler: async ({ query, auth }) =>
        notifications.list(auth, {
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          ...(query.only !== undefined ? { only: query.only } : {}),
        }),
    }),
  ];
}
