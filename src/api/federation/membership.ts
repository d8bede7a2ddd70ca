/**
 * The membership handshakes — server-server-api.md "Joining Rooms", "Leaving Rooms",
 * "Knocking upon a room", "Inviting to a room" (data/api/server-server/joins-v1.yaml,
 * joins-v2.yaml, leaving-v2.yaml, knocks.yaml, invites-v2.yaml). Each checks the room's
 * server ACL against the origin and sends the completed event through accept
 * (`services.rooms`, rooms/resident.ts).
 */
import type { Pdu } from '../../core/pdu.ts';
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import { q, v } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

/** A room's state in a send_join answer is large; the request is one event. */
const MEMBERSHIP_BODY_BYTES = 128 * 1024;

export function membershipEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  const { rooms } = services;
  const pduBody = v.jsonObject();
  /** make_join and make_knock: one request shape, the room versions the origin supports as `ver`. */
  const makeEndpoint = (membership: 'join' | 'knock', versionsOf: (ver: string[]) => string[]) =>
    federationEndpoint(deps, {
      method: 'GET',
      path: `/make_${membership}/{roomId}/{userId}`,
      versions: ['v1'],
      query: q.object({ ver: q.list() }),
      spec: `server-server-api/#get_matrixfederationv1make_${membership}roomiduserid`,
      handler: ({ origin, params, query }) =>
        rooms.makeMembership(origin, params.roomId, params.userId, membership, versionsOf(query.ver)),
    });
  return [
    // GET /_matrix/federation/v1/make_join/{roomId}/{userId}: `ver` "defaults to [1]".
    makeEndpoint('join', (ver) => (ver.length > 0 ? ver : ['1'])),
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
      method: 'PUT',
      path: '/send_join/{roomId}/{eventId}',
      versions: ['v2'],
      query: q.object({ omit_members: q.optional(q.bool(), false) }),
      body: pduBody,
      maxBodyBytes: MEMBERSHIP_BODY_BYTES,
      spec: 'server-server-api/#put_matrixfederationv2send_joinroomideventid',
      handler: ({ origin, params, query, body }) =>
        rooms.sendMembership(origin, params.roomId, params.eventId, body as Pdu, 'join', {
          omitMembers: query.omit_members,
        }),
    }),
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v1/send_join/{roomId}/{eventId} (deprecated): [200, answer]
      method: 'PUT',
      path: '/send_join/{roomId}/{eventId}',
      versions: ['v1'],
      body: pduBody,
      maxBodyBytes: MEMBERSHIP_BODY_BYTES,
      spec: 'server-server-api/#put_matrixfederationv1send_joinroomideventid',
      handler: async ({ origin, params, body }) =>
        Response.json([
          200,
          await rooms.sendMembership(origin, params.roomId, params.eventId, body as Pdu, 'join'),
        ]),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
      method: 'GET',
      path: '/make_leave/{roomId}/{userId}',
      versions: ['v1'],
      spec: 'server-server-api/#get_matrixfederationv1make_leaveroomiduserid',
      handler: ({ origin, params }) => rooms.makeMembership(origin, params.roomId, params.userId, 'leave'),
    }),
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
      method: 'PUT',
      path: '/send_leave/{roomId}/{eventId}',
      versions: ['v2'],
      body: pduBody,
      maxBodyBytes: MEMBERSHIP_BODY_BYTES,
      spec: 'server-server-api/#put_matrixfederationv2send_leaveroomideventid',
      handler: ({ origin, params, body }) =>
        rooms.sendMembership(origin, params.roomId, params.eventId, body as Pdu, 'leave'),
    }),
    // GET /_matrix/federation/v1/make_knock/{roomId}/{userId}: `ver` is required here; an
    // absent one offers nothing (M_INCOMPATIBLE_ROOM_VERSION).
    makeEndpoint('knock', (ver) => ver),
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
      method: 'PUT',
      path: '/send_knock/{roomId}/{eventId}',
      versions: ['v1'],
      body: pduBody,
      maxBodyBytes: MEMBERSHIP_BODY_BYTES,
      spec: 'server-server-api/#put_matrixfederationv1send_knockroomideventid',
      handler: ({ origin, params, body }) =>
        rooms.sendMembership(origin, params.roomId, params.eventId, body as Pdu, 'knock'),
    }),
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
      method: 'PUT',
      path: '/invite/{roomId}/{eventId}',
      versions: ['v2'],
      body: v.object({
        room_version: v.string(),
        event: v.jsonObject(),
        invite_room_state: v.optional(v.array(v.jsonObject())),
      }),
      maxBodyBytes: MEMBERSHIP_BODY_BYTES,
      spec: 'server-server-api/#put_matrixfederationv2inviteroomideventid',
      handler: async ({ origin, params, body }) => ({
        event: await rooms.receiveInvite(origin, params.roomId, params.eventId, {
          roomVersion: body.room_version,
          event: body.event as Pdu,
          inviteRoomState: body.invite_room_state ?? [],
        }),
      }),
    }),
  ];
}
