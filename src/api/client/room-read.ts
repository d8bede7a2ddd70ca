/**
 * Reading rooms — client-server-api "Getting events for a room" (rooms.yaml,
 * list_joined_rooms.yaml), "Retrieving the event context" (event_context.yaml) and
 * "Pagination" (message_pagination.yaml). Behaviour is in src/homeserver/rooms/read.ts.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { parseJsonParam, parseRoomEventFilter } from './filter.ts';
import { eventIdParam, roomIdParam } from './room-params.ts';

const MEMBERSHIPS = ['join', 'invite', 'knock', 'leave', 'ban'] as const;

/** A `filter` query parameter holding a RoomEventFilter as JSON (M_INVALID_PARAM when bad). */
const roomEventFilterParam = (text: string | undefined) =>
  text === undefined ? undefined : parseRoomEventFilter(parseJsonParam(text, 'filter'), 'query', 'filter');

export function roomReadEndpoints(services: Services): Endpoint[] {
  const { roomRead } = services;
  return [
    endpoint({
      // GET /_matrix/client/v3/joined_rooms
      method: 'GET',
      path: '/joined_rooms',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3joined_rooms',
      handler: async ({ auth }) => ({ joined_rooms: await roomRead.joinedRooms(auth.userId) }),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/state
      method: 'GET',
      path: '/rooms/{roomId}/state',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      spec: 'client-server-api/#get_matrixclientv3roomsroomidstate',
      // The answer is a JSON array (rooms.yaml "RoomState"), not an object.
      handler: async ({ params, auth }) => roomRead.state(auth, params.roomId),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
      // The empty state key may come with or without the trailing slash (rooms.yaml).
      method: 'GET',
      path: '/rooms/{roomId}/state/{eventType}/{stateKey?}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      query: q.object({ format: q.optional(q.enum(['content', 'event']), 'content') }),
      spec: 'client-server-api/#get_matrixclientv3roomsroomidstateeventtypestatekey',
      handler: async ({ params, query, auth }) =>
        roomRead.stateEvent(auth, params.roomId, params.eventType, params.stateKey, query.format),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/members
      method: 'GET',
      path: '/rooms/{roomId}/members',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      query: q.object({
        at: q.optional(q.string()),
        membership: q.optional(q.enum(MEMBERSHIPS)),
        not_membership: q.optional(q.enum(MEMBERSHIPS)),
      }),
      spec: 'client-server-api/#get_matrixclientv3roomsroomidmembers',
      handler: async ({ params, query, auth }) => ({
        chunk: await roomRead.members(auth, params.roomId, {
          ...(query.at !== undefined ? { at: query.at } : {}),
          ...(query.membership !== undefined ? { membership: query.membership } : {}),
          ...(query.not_membership !== undefined ? { notMembership: query.not_membership } : {}),
        }),
      }),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/joined_members
      method: 'GET',
      path: '/rooms/{roomId}/joined_members',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { roomId: roomIdParam },
      spec: 'client-server-api/#get_matrixclientv3roomsroomidjoined_members',
      handler: async ({ params, auth }) => ({
        joined: await roomRead.joinedMembers(auth.userId, params.roomId),
      }),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
      method: 'GET',
      path: '/rooms/{roomId}/event/{eventId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam, eventId: eventIdParam },
      spec: 'client-server-api/#get_matrixclientv3roomsroomideventeventid',
      handler: async ({ params, auth }) => roomRead.event(auth, params.roomId, params.eventId),
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}
      method: 'GET',
      path: '/rooms/{roomId}/context/{eventId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam, eventId: eventIdParam },
      query: q.object({ limit: q.optional(q.int({ min: 0 })), filter: q.optional(q.string()) }),
      spec: 'client-server-api/#get_matrixclientv3roomsroomidcontexteventid',
      handler: async ({ params, query, auth }) => {
        const filter = roomEventFilterParam(query.filter);
        return roomRead.context(auth, params.roomId, params.eventId, {
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          ...(filter ? { filter } : {}),
        });
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/messages
      method: 'GET',
      path: '/rooms/{roomId}/messages',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      query: q.object({
        dir: q.enum(['b', 'f']),
        from: q.optional(q.string()),
        to: q.optional(q.string()),
        limit: q.optional(q.int({ min: 0 })),
        filter: q.optional(q.string()),
      }),
      spec: 'client-server-api/#get_matrixclientv3roomsroomidmessages',
      handler: async ({ params, query, auth }) => {
        const filter = roomEventFilterParam(query.filter);
        return roomRead.messages(auth, params.roomId, {
          dir: query.dir,
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          ...(filter ? { filter } : {}),
        });
      },
    }),
  ];
}
