/**
 * The remaining client endpoints of issue 14 that have no area of their own: content reports
 * (report_content.yaml), TURN (voip.yaml), login tokens (login_token.yaml), the support
 * contacts (support.yaml), the deprecated `/events`, `/events/{eventId}`, `/initialSync` and
 * `/rooms/{roomId}/initialSync` that older clients still call (peeking_events.yaml,
 * room_initial_sync.yaml, and the legacy initial sync), and the parts Hearth leaves out —
 * single sign-on, OAuth 2.0, the policy server — each answering the spec's "not here" error.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { isValidEventId, isValidUserId } from '../../core/identifiers.ts';
import { notFound, unrecognized } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import type { JoinedRoom, SyncResponse } from '../../homeserver/sync/types.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { eventIdParam, roomIdParam } from './room-params.ts';

const userIdParam = v.refine(v.string(), (id) => (isValidUserId(id) ? undefined : 'is not a valid user ID'));

/** A timeline or state event of a sync answer with its room ID (the old APIs carry it). */
const withRoom = (roomId: string, events: readonly JsonObject[]) =>
  events.map((e) => ({ ...e, room_id: roomId }));

/** One room of the legacy initial sync (room_initial_sync.yaml `RoomInfo`). */
function legacyRoom(roomId: string, room: JoinedRoom, nextBatch: string, membership: string): JsonObject {
  const state = room.state?.events ?? [];
  const timeline = room.timeline.events;
  return {
    room_id: roomId,
    membership,
    messages: {
      chunk: withRoom(roomId, timeline),
      ...(room.timeline.prev_batch !== undefined ? { start: room.timeline.prev_batch } : {}),
      end: nextBatch,
    },
    // The state at the end of the timeline: the state before it plus the timeline's state events.
    state: withRoom(roomId, [...state, ...timeline.filter((e) => typeof e.state_key === 'string')]),
    account_data: room.account_data.events,
    presence: [],
  };
}

export function operatorEndpoints(services: Services): Endpoint[] {
  const { extras, sync, roomRead, accounts, config } = services;

  async function initialSync(userId: string, deviceId: string | null, limit: number): Promise<SyncResponse> {
    return sync.sync({ userId, deviceId, filter: { room: { timeline: { limit } } }, setPresence: 'offline' });
  }

  return [
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/report
      method: 'POST',
      path: '/rooms/{roomId}/report',
      versions: ['v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: v.object({ reason: v.optional(v.string({ max: 10_000 })) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidreport',
      handler: async ({ auth, params, body }) => {
        await extras.reportContent(auth, {
          roomId: params.roomId,
          ...(body.reason !== undefined ? { reason: body.reason } : {}),
        });
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}
      method: 'POST',
      path: '/rooms/{roomId}/report/{eventId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam, eventId: eventIdParam },
      body: v.object({
        reason: v.optional(v.string({ max: 10_000 })),
        score: v.optional(v.int({ min: -100, max: 0 })),
      }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidreporteventid',
      handler: async ({ auth, params, body }) => {
        await extras.reportContent(auth, {
          roomId: params.roomId,
          eventId: params.eventId,
          ...(body.reason !== undefined ? { reason: body.reason } : {}),
          ...(body.score !== undefined ? { score: body.score } : {}),
        });
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/users/{userId}/report
      method: 'POST',
      path: '/users/{userId}/report',
      versions: ['v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { userId: userIdParam },
      body: v.object({ reason: v.optional(v.string({ max: 10_000 })) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3usersuseridreport',
      handler: async ({ auth, params, body }) => {
        await extras.reportUser(auth, params.userId, body.reason);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/voip/turnServer
      method: 'GET',
      path: '/voip/turnServer',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      spec: 'client-server-api/#get_matrixclientv3voipturnserver',
      handler: async ({ auth }) => extras.turnServer(auth.userId),
    }),
    endpoint({
      // POST /_matrix/client/v1/login/get_token
      method: 'POST',
      path: '/login/get_token',
      versions: ['v1'],
      auth: 'required',
      rateLimit: 'login',
      body: v.object({ auth: v.optional(v.jsonObject()) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv1loginget_token',
      handler: async ({ auth, body }) => {
        // login_token.yaml: user-interactive auth proves the user is present.
        await accounts.confirmOwner({ auth, operation: 'get_login_token', uia: body.auth });
        return extras.issueLoginToken(auth.userId);
      },
    }),
    endpoint({
      // GET /.well-known/matrix/support
      method: 'GET',
      path: '/.well-known/matrix/support',
      auth: 'none',
      spec: 'client-server-api/#getwell-knownmatrixsupport',
      handler: async () => {
        if (!config.support) throw notFound('No support information is configured');
        return config.support;
      },
    }),
    endpoint({
      // GET /.well-known/matrix/policy_server: "404: no policy server information available"
      method: 'GET',
      path: '/.well-known/matrix/policy_server',
      auth: 'none',
      spec: 'client-server-api/#getwell-knownmatrixpolicy_server',
      handler: async () => {
        throw notFound('This server names no policy server');
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/initialSync (deprecated)
      method: 'GET',
      path: '/initialSync',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      query: q.object({ limit: q.optional(q.int({ min: 0 }), 10), archived: q.optional(q.bool()) }),
      spec: 'client-server-api/#get_matrixclientv3initialsync',
      handler: async ({ auth, query }) => {
        // A huge limit is clamped, as every paginated endpoint here does.
        const answer = await initialSync(auth.userId, auth.deviceId, Math.min(query.limit, 100));
        const rooms: JsonObject[] = Object.entries(answer.rooms.join).map(([roomId, room]) =>
          legacyRoom(roomId, room, answer.next_batch, 'join'),
        );
        for (const [roomId, invite] of Object.entries(answer.rooms.invite)) {
          rooms.push({ room_id: roomId, membership: 'invite', invite_state: invite.invite_state as never });
        }
        return {
          end: answer.next_batch,
          rooms,
          presence: answer.presence.events,
          account_data: answer.account_data.events,
        };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/rooms/{roomId}/initialSync (deprecated)
      method: 'GET',
      path: '/rooms/{roomId}/initialSync',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: { roomId: roomIdParam },
      spec: 'client-server-api/#get_matrixclientv3roomsroomidinitialsync',
      handler: async ({ auth, params }) => {
        const viewer = { userId: auth.userId, deviceId: auth.deviceId };
        // The room's state and latest messages as this user may see them (403 otherwise).
        const state = await roomRead.state(viewer, params.roomId);
        const messages = await roomRead.messages(viewer, params.roomId, { dir: 'b', limit: 20 });
        const chunk = Array.isArray(messages.chunk) ? [...(messages.chunk as JsonObject[])].reverse() : [];
        const me = state.find((e) => e.type === 'm.room.member' && e.state_key === auth.userId);
        const join = state.find((e) => e.type === 'm.room.join_rules');
        const membership = (me?.content as JsonObject | undefined)?.membership;
        const joinRule = (join?.content as JsonObject | undefined)?.join_rule;
        return {
          room_id: params.roomId,
          ...(typeof membership === 'string' ? { membership } : {}),
          visibility: joinRule === 'public' ? 'public' : 'private',
          messages: {
            chunk,
            ...(typeof messages.end === 'string' ? { start: messages.end } : {}),
            ...(typeof messages.start === 'string' ? { end: messages.start } : {}),
          },
          state,
          presence: [],
          account_data: [],
        };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/events (deprecated): new events since `from`, as one list
      method: 'GET',
      path: '/events',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      query: q.object({
        from: q.optional(q.string()),
        timeout: q.optional(q.int({ min: 0 }), 0),
        room_id: q.optional(q.string()),
      }),
      spec: 'client-server-api/#get_matrixclientv3events',
      handler: async ({ auth, query, request }) => {
        const answer = await sync.sync({
          userId: auth.userId,
          deviceId: auth.deviceId,
          ...(query.from !== undefined ? { since: query.from } : {}),
          timeoutMs: query.from === undefined ? 0 : query.timeout,
          filter: { room: { timeline: { limit: 100 } } },
          setPresence: 'offline',
          signal: request.signal,
        });
        const chunk: JsonObject[] = [];
        if (query.from !== undefined) {
          for (const [roomId, room] of Object.entries(answer.rooms.join)) {
            if (query.room_id !== undefined && roomId !== query.room_id) continue;
            chunk.push(...withRoom(roomId, room.timeline.events));
          }
        }
        return { chunk, start: query.from ?? answer.next_batch, end: answer.next_batch };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/events/{eventId} (deprecated)
      method: 'GET',
      path: '/events/{eventId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      params: {
        eventId: v.refine(v.string(), (id) => (isValidEventId(id) ? undefined : 'is not a valid event ID')),
      },
      spec: 'client-server-api/#get_matrixclientv3eventseventid',
      handler: async ({ auth, params }) => {
        const roomId = await extras.roomOfEvent(params.eventId);
        if (roomId === null) throw notFound('Event not found');
        return roomRead.event({ userId: auth.userId, deviceId: auth.deviceId }, roomId, params.eventId);
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/login/sso/redirect
      method: 'GET',
      path: '/login/sso/redirect',
      versions: ['r0', 'v3'],
      auth: 'none',
      spec: 'client-server-api/#get_matrixclientv3loginssoredirect',
      handler: async () => {
        throw notFound('This homeserver offers no single sign-on');
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/login/sso/redirect/{idpId}
      method: 'GET',
      path: '/login/sso/redirect/{idpId}',
      versions: ['v3'],
      auth: 'none',
      spec: 'client-server-api/#get_matrixclientv3loginssoredirectidpid',
      handler: async () => {
        throw notFound('This homeserver offers no single sign-on, so knows no identity provider');
      },
    }),
    endpoint({
      // GET /_matrix/client/v1/auth_metadata: "404 M_UNRECOGNIZED: the homeserver does not support the OAuth 2.0 API"
      method: 'GET',
      path: '/auth_metadata',
      versions: ['v1'],
      auth: 'none',
      spec: 'client-server-api/#get_matrixclientv1auth_metadata',
      handler: async () => {
        throw unrecognized('This homeserver does not support the OAuth 2.0 API');
      },
    }),
  ];
}
