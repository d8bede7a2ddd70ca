/**
 * Room creation and sending events — client-server-api "Creation" (create_room.yaml),
 * "Sending events to a room" (room_send.yaml, room_state.yaml), "Redactions"
 * (redaction.yaml). Room upgrades are in room-extras.ts. Membership endpoints are in
 * membership.ts, aliases and the directory in directory.ts; `roomsEndpoints` gathers all three.
 */

import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';
import { directoryEndpoints } from './directory.ts';
import { membershipEndpoints } from './membership.ts';
import { eventIdParam, roomIdParam } from './room-params.ts';

const preset = v.enum(['private_chat', 'public_chat', 'trusted_private_chat']);

const createRoomBody = v.object({
  visibility: v.optional(v.enum(['public', 'private'])),
  room_alias_name: v.optional(v.string()),
  name: v.optional(v.string()),
  topic: v.optional(v.string()),
  invite: v.optional(v.array(v.string())),
  invite_3pid: v.optional(v.array(v.jsonObject())),
  room_version: v.optional(v.string()),
  creation_content: v.optional(v.jsonObject()),
  initial_state: v.optional(
    v.array(
      v.object({
        type: v.string(),
        state_key: v.optional(v.string()),
        content: v.jsonObject(),
      }),
    ),
  ),
  preset: v.optional(preset),
  is_direct: v.optional(v.bool()),
  power_level_content_override: v.optional(v.jsonObject()),
});

export function roomsEndpoints(services: Services): Endpoint[] {
  const { rooms } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/createRoom
      method: 'POST',
      path: '/createRoom',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      body: createRoomBody,
      spec: 'client-server-api/#post_matrixclientv3createroom',
      handler: async ({ body, auth }) => {
        const { roomId } = await rooms.createRoom(auth.userId, body);
        return { room_id: roomId };
      },
    }),

    endpoint({
      // PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
      method: 'PUT',
      path: '/rooms/{roomId}/send/{eventType}/{txnId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'message',
      params: { roomId: roomIdParam },
      body: v.jsonObject(),
      spec: 'client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid',
      handler: async ({ params, body, auth }) => {
        const { eventId } = await rooms.sendEvent({
          sender: auth.userId,
          deviceId: auth.deviceId,
          roomId: params.roomId,
          type: params.eventType,
          content: body,
          txnId: params.txnId,
        });
        return { event_id: eventId };
      },
    }),

    endpoint({
      // PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
      // The empty state key may be sent with or without the trailing slash (room_state.yaml).
      method: 'PUT',
      path: '/rooms/{roomId}/state/{eventType}/{stateKey?}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'message',
      params: { roomId: roomIdParam },
      body: v.jsonObject(),
      spec: 'client-server-api/#put_matrixclientv3roomsroomidstateeventtypestatekey',
      handler: async ({ params, body, auth }) => {
        const { eventId } = await rooms.setState(
          auth.userId,
          params.roomId,
          params.eventType,
          params.stateKey,
          body,
        );
        return { event_id: eventId };
      },
    }),

    endpoint({
      // PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
      method: 'PUT',
      path: '/rooms/{roomId}/redact/{eventId}/{txnId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'message',
      params: { roomId: roomIdParam, eventId: eventIdParam },
      body: v.object({ reason: v.optional(v.string()) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid',
      handler: async ({ params, body, auth }) => {
        const { eventId } = await rooms.redact({
          sender: auth.userId,
          deviceId: auth.deviceId,
          roomId: params.roomId,
          eventId: params.eventId,
          txnId: params.txnId,
          ...(body.reason !== undefined ? { reason: body.reason } : {}),
        });
        return { event_id: eventId };
      },
    }),

    ...membershipEndpoints(services),
    ...directoryEndpoints(services),
  ];
}
