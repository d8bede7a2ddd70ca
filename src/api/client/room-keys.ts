/**
 * Server-side key backups — end_to_end_encryption.md "Server-side key backups",
 * data/api/client-server/key_backup.yaml: backup versions, and keys at three granularities
 * (the whole backup, one room, one session), each with PUT, GET and DELETE.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { BackupSession } from '../../homeserver/e2ee/index.ts';
import { notFound } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { roomIdParam } from './room-params.ts';

/** A backup upload carries hundreds of sessions; Element sends them in batches. */
const BACKUP_BODY_BYTES = 4 * 1024 * 1024;

const keyBackupData = v.object(
  {
    first_message_index: v.int({ min: 0 }),
    forwarded_count: v.int({ min: 0 }),
    is_verified: v.bool(),
    session_data: v.jsonObject(),
  },
  // Kept as given: a newer client's extra fields come back to it on restore.
  { unknownKeys: 'keep' },
);
const roomSessions = v.object({ sessions: v.record(keyBackupData) });
const versionQuery = q.object({ version: q.string() });
const versionParam = v.string({ max: 32 });

function sessionsOf(roomId: string, sessions: Record<string, JsonObject>): BackupSession[] {
  return Object.entries(sessions).map(([sessionId, data]) => ({ roomId, sessionId, data }));
}

function byRoom(
  sessions: readonly BackupSession[],
): Record<string, { sessions: Record<string, JsonObject> }> {
  const rooms: Record<string, { sessions: Record<string, JsonObject> }> = {};
  for (const s of sessions) {
    const room = rooms[s.roomId] ?? { sessions: {} };
    room.sessions[s.sessionId] = s.data;
    rooms[s.roomId] = room;
  }
  return rooms;
}

export function roomKeysEndpoints(services: Services): Endpoint[] {
  const { e2ee } = services;
  const backup = () => e2ee.backup;
  const common = { versions: ['v3'] as const, auth: 'required' as const };
  return [
    endpoint({
      // POST /_matrix/client/v3/room_keys/version
      ...common,
      method: 'POST',
      path: '/room_keys/version',
      body: v.object({ algorithm: v.string({ min: 1 }), auth_data: v.jsonObject() }),
      spec: 'client-server-api/#post_matrixclientv3room_keysversion',
      handler: async ({ auth, body }) => ({
        version: await backup().createVersion(auth.userId, body.algorithm, body.auth_data),
      }),
    }),
    endpoint({
      // GET /_matrix/client/v3/room_keys/version
      ...common,
      method: 'GET',
      path: '/room_keys/version',
      spec: 'client-server-api/#get_matrixclientv3room_keysversion',
      handler: async ({ auth }) => ({ ...(await backup().getVersion(auth.userId)) }),
    }),
    endpoint({
      // GET /_matrix/client/v3/room_keys/version/{version}
      ...common,
      method: 'GET',
      path: '/room_keys/version/{version}',
      params: { version: versionParam },
      spec: 'client-server-api/#get_matrixclientv3room_keysversionversion',
      handler: async ({ auth, params }) => ({ ...(await backup().getVersion(auth.userId, params.version)) }),
    }),
    endpoint({
      // PUT /_matrix/client/v3/room_keys/version/{version}
      ...common,
      method: 'PUT',
      path: '/room_keys/version/{version}',
      params: { version: versionParam },
      body: v.object({
        algorithm: v.string({ min: 1 }),
        auth_data: v.jsonObject(),
        version: v.optional(v.string()),
      }),
      spec: 'client-server-api/#put_matrixclientv3room_keysversionversion',
      handler: async ({ auth, params, body }) => {
        await backup().updateVersion(auth.userId, params.version, {
          algorithm: body.algorithm,
          authData: body.auth_data,
          version: body.version,
        });
        return {};
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/room_keys/version/{version}
      ...common,
      method: 'DELETE',
      path: '/room_keys/version/{version}',
      params: { version: versionParam },
      spec: 'client-server-api/#delete_matrixclientv3room_keysversionversion',
      handler: async ({ auth, params }) => {
        await backup().deleteVersion(auth.userId, params.version);
        return {};
      },
    }),

    // --- keys: the whole backup ------------------------------------------------------------
    endpoint({
      // PUT /_matrix/client/v3/room_keys/keys
      ...common,
      method: 'PUT',
      path: '/room_keys/keys',
      query: versionQuery,
      body: v.object({ rooms: v.record(roomSessions) }),
      maxBodyBytes: BACKUP_BODY_BYTES,
      spec: 'client-server-api/#put_matrixclientv3room_keyskeys',
      handler: async ({ auth, query, body }) => {
        const sessions = Object.entries(body.rooms).flatMap(([roomId, room]) =>
          sessionsOf(roomId, room.sessions),
        );
        return backup().putSessions(auth.userId, query.version, sessions);
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/room_keys/keys
      ...common,
      method: 'GET',
      path: '/room_keys/keys',
      query: versionQuery,
      spec: 'client-server-api/#get_matrixclientv3room_keyskeys',
      handler: async ({ auth, query }) => ({
        rooms: byRoom(await backup().getSessions(auth.userId, query.version)),
      }),
    }),
    endpoint({
      // DELETE /_matrix/client/v3/room_keys/keys
      ...common,
      method: 'DELETE',
      path: '/room_keys/keys',
      query: versionQuery,
      spec: 'client-server-api/#delete_matrixclientv3room_keyskeys',
      handler: async ({ auth, query }) => backup().deleteSessions(auth.userId, query.version),
    }),

    // --- keys of one room ------------------------------------------------------------------
    endpoint({
      // PUT /_matrix/client/v3/room_keys/keys/{roomId}
      ...common,
      method: 'PUT',
      path: '/room_keys/keys/{roomId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      body: roomSessions,
      maxBodyBytes: BACKUP_BODY_BYTES,
      spec: 'client-server-api/#put_matrixclientv3room_keyskeysroomid',
      handler: async ({ auth, params, query, body }) =>
        backup().putSessions(auth.userId, query.version, sessionsOf(params.roomId, body.sessions)),
    }),
    endpoint({
      // GET /_matrix/client/v3/room_keys/keys/{roomId}
      ...common,
      method: 'GET',
      path: '/room_keys/keys/{roomId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      spec: 'client-server-api/#get_matrixclientv3room_keyskeysroomid',
      handler: async ({ auth, params, query }) => {
        // key_backup.yaml: a room with no keys is an empty `sessions`, not an error.
        const sessions = await backup().getSessions(auth.userId, query.version, params.roomId);
        return { sessions: byRoom(sessions)[params.roomId]?.sessions ?? {} };
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/room_keys/keys/{roomId}
      ...common,
      method: 'DELETE',
      path: '/room_keys/keys/{roomId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      spec: 'client-server-api/#delete_matrixclientv3room_keyskeysroomid',
      handler: async ({ auth, params, query }) =>
        backup().deleteSessions(auth.userId, query.version, params.roomId),
    }),

    // --- one session -----------------------------------------------------------------------
    endpoint({
      // PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
      ...common,
      method: 'PUT',
      path: '/room_keys/keys/{roomId}/{sessionId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      body: keyBackupData,
      spec: 'client-server-api/#put_matrixclientv3room_keyskeysroomidsessionid',
      handler: async ({ auth, params, query, body }) =>
        backup().putSessions(auth.userId, query.version, [
          { roomId: params.roomId, sessionId: params.sessionId, data: body as JsonObject },
        ]),
    }),
    endpoint({
      // GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
      ...common,
      method: 'GET',
      path: '/room_keys/keys/{roomId}/{sessionId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      spec: 'client-server-api/#get_matrixclientv3room_keyskeysroomidsessionid',
      handler: async ({ auth, params, query }) => {
        const [found] = await backup().getSessions(
          auth.userId,
          query.version,
          params.roomId,
          params.sessionId,
        );
        if (!found) throw notFound('No key for this session in the backup');
        return found.data;
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
      ...common,
      method: 'DELETE',
      path: '/room_keys/keys/{roomId}/{sessionId}',
      params: { roomId: roomIdParam },
      query: versionQuery,
      spec: 'client-server-api/#delete_matrixclientv3room_keyskeysroomidsessionid',
      handler: async ({ auth, params, query }) =>
        backup().deleteSessions(auth.userId, query.version, params.roomId, params.sessionId),
    }),
  ];
}
