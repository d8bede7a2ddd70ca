/**
 * Room membership — client-server-api "Room membership": joining.yaml, inviting.yaml,
 * third_party_membership.yaml, leaving.yaml, kicking.yaml, banning.yaml, knocking.yaml.
 * Each handler names its operation; `services.rooms` decides, through the room's
 * authorization rules.
 */

import { badJson, missingParam, unrecognized } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { roomIdOrAliasParam, roomIdParam } from './room-params.ts';

/** `server_name` (deprecated) and `via`: servers to join through — only needed for remote rooms. */
const joinQuery = q.object({
  server_name: q.optional(q.list()),
  via: q.optional(q.list()),
});

/** `via` first (v1.12), then the deprecated `server_name`. */
const serversOf = (query: { server_name?: string[]; via?: string[] }): string[] => [
  ...(query.via ?? []),
  ...(query.server_name ?? []),
];

const joinBody = v.object({
  reason: v.optional(v.string()),
  third_party_signed: v.optional(v.jsonObject()),
});

const reasonBody = v.object({ reason: v.optional(v.string()) });

const targetBody = v.object({ user_id: v.string(), reason: v.optional(v.string()) });

const noThirdPartySigned = (body: { third_party_signed?: unknown }) => {
  if (body.third_party_signed !== undefined) {
    throw unrecognized('Joining with a third-party invite (third_party_signed) is not supported yet');
  }
};

/** The 3PID form of /invite (third_party_membership.yaml): its fields, checked, before refusing it. */
function checkThirdPartyInvite(body: Record<string, unknown>): never {
  for (const key of ['id_server', 'id_access_token', 'medium', 'address']) {
    if (body[key] === undefined)
      throw missingParam(`JSON field "${key}" is required for a third-party invite`);
    if (typeof body[key] !== 'string') throw badJson(`JSON field "${key}": expected a string`);
  }
  throw unrecognized('Third-party invites need an identity server, which this server does not use');
}

export function membershipEndpoints(services: Services): Endpoint[] {
  const { rooms } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/join
      method: 'POST',
      path: '/rooms/{roomId}/join',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: joinBody,
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidjoin',
      handler: async ({ params, body, auth }) => {
        noThirdPartySigned(body);
        const roomId = await rooms.join(auth.userId, params.roomId, {
          reason: body.reason,
          isGuest: auth.isGuest,
        });
        return { room_id: roomId };
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/join/{roomIdOrAlias}
      method: 'POST',
      path: '/join/{roomIdOrAlias}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: { roomIdOrAlias: roomIdOrAliasParam },
      // Servers to join through matter only for rooms of other servers (federation).
      query: joinQuery,
      body: joinBody,
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3joinroomidoralias',
      handler: async ({ params, query, body, auth }) => {
        noThirdPartySigned(body);
        const roomId = await rooms.join(auth.userId, params.roomIdOrAlias, {
          reason: body.reason,
          isGuest: auth.isGuest,
          servers: serversOf(query),
        });
        return { room_id: roomId };
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/knock/{roomIdOrAlias}
      method: 'POST',
      path: '/knock/{roomIdOrAlias}',
      versions: ['v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomIdOrAlias: roomIdOrAliasParam },
      query: joinQuery,
      body: reasonBody,
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3knockroomidoralias',
      handler: async ({ params, query, body, auth }) => {
        const roomId = await rooms.knock(auth.userId, params.roomIdOrAlias, {
          reason: body.reason,
          servers: serversOf(query),
        });
        return { room_id: roomId };
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/invite
      method: 'POST',
      path: '/rooms/{roomId}/invite',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      // Either {user_id, reason} (inviting.yaml) or the 3PID form (third_party_membership.yaml).
      body: v.jsonObject(),
      spec: 'client-server-api/#post_matrixclientv3roomsroomidinvite',
      handler: async ({ params, body, auth }) => {
        if (body.user_id === undefined) {
          if (['id_server', 'id_access_token', 'medium', 'address'].some((key) => body[key] !== undefined)) {
            checkThirdPartyInvite(body);
          }
          throw missingParam('JSON field "user_id" is required');
        }
        if (typeof body.user_id !== 'string') throw badJson('JSON field "user_id": expected a string');
        if (body.reason !== undefined && typeof body.reason !== 'string') {
          throw badJson('JSON field "reason": expected a string');
        }
        await rooms.invite(auth.userId, params.roomId, body.user_id, {
          ...(typeof body.reason === 'string' ? { reason: body.reason } : {}),
        });
        return {};
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/leave
      method: 'POST',
      path: '/rooms/{roomId}/leave',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: reasonBody,
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidleave',
      handler: async ({ params, body, auth }) => {
        await rooms.leave(auth.userId, params.roomId, { reason: body.reason });
        return {};
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/forget
      method: 'POST',
      path: '/rooms/{roomId}/forget',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: v.jsonObject(),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidforget',
      handler: async ({ params, auth }) => {
        await rooms.forget(auth.userId, params.roomId);
        return {};
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/kick
      method: 'POST',
      path: '/rooms/{roomId}/kick',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: targetBody,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidkick',
      handler: async ({ params, body, auth }) => {
        await rooms.kick(auth.userId, params.roomId, body.user_id, { reason: body.reason });
        return {};
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/ban
      method: 'POST',
      path: '/rooms/{roomId}/ban',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: targetBody,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidban',
      handler: async ({ params, body, auth }) => {
        await rooms.ban(auth.userId, params.roomId, body.user_id, { reason: body.reason });
        return {};
      },
    }),

    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/unban
      method: 'POST',
      path: '/rooms/{roomId}/unban',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: targetBody,
      spec: 'client-server-api/#post_matrixclientv3roomsroomidunban',
      handler: async ({ params, body, auth }) => {
        await rooms.unban(auth.userId, params.roomId, body.user_id, { reason: body.reason });
        return {};
      },
    }),
  ];
}
