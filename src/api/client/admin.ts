/**
 * Administration: the Synapse admin API subset operators' tools speak (Synapse's
 * docs/admin_api: register_api.md, user_admin_api.md, rooms.md, version_api.md), under
 * `/_synapse/admin`, and the spec's account locking and suspension (client-server admin.yaml
 * `GET/PUT /_matrix/client/v1/admin/{lock,suspend}/{userId}`). Every endpoint but the
 * shared-secret registration is for server admins only (the service checks); every call is
 * logged with who made it (`operatorCheck`).
 */
import { isValidRoomId, isValidUserId } from '../../core/identifiers.ts';
import type { Auth, Logger } from '../../homeserver/context.ts';
import { matrixError } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';

const SYNAPSE_BASE = '/_synapse/admin';
/** What `GET /_synapse/admin/v1/server_version` reports. */
export const SERVER_VERSION = 'Hearth 0.1.0';

const userIdParam = v.refine(v.string(), (id) => (isValidUserId(id) ? undefined : 'is not a valid user ID'));
const roomIdParam = v.refine(v.string(), (id) => (isValidRoomId(id) ? undefined : 'is not a valid room ID'));

/**
 * Endpoints a suspended account may not use (client-server-api "Account suspension": the
 * recommended set — joining, knocking, invites, sending, profile changes, new rooms).
 */
const REFUSED_WHEN_SUSPENDED = new Set([
  'POST /join/{roomIdOrAlias}',
  'POST /rooms/{roomId}/join',
  'POST /knock/{roomIdOrAlias}',
  'POST /rooms/{roomId}/invite',
  'PUT /rooms/{roomId}/send/{eventType}/{txnId}',
  'PUT /rooms/{roomId}/state/{eventType}/{stateKey?}',
  'PUT /profile/{userId}/{keyName}',
  'DELETE /profile/{userId}/{keyName}',
  'PUT /profile/{userId}/displayname',
  'PUT /profile/{userId}/avatar_url',
  'POST /createRoom',
]);

const isAdminEndpoint = (e: Endpoint) => e.base === SYNAPSE_BASE || e.path.startsWith('/admin/');

/**
 * The router's `checkAuth`: logs every admin API call with its caller, and refuses a
 * suspended account what suspension forbids (403 M_USER_SUSPENDED).
 */
export function operatorCheck(logger: Logger): (auth: Auth | null, e: Endpoint, method: string) => void {
  return (auth, e, method) => {
    if (isAdminEndpoint(e)) {
      logger.info('admin API call', { caller: auth?.userId ?? null, method, path: e.path });
    }
    if (auth?.suspended && REFUSED_WHEN_SUSPENDED.has(`${method} ${e.path}`)) {
      throw matrixError(403, 'M_USER_SUSPENDED', 'You cannot perform this action while suspended.');
    }
  };
}

export function adminEndpoints(services: Services): Endpoint[] {
  const { admin } = services;
  const synapse = { base: SYNAPSE_BASE } as const;
  return [
    endpoint({
      // GET /_synapse/admin/v1/server_version
      ...synapse,
      method: 'GET',
      path: '/server_version',
      versions: ['v1'],
      auth: 'none',
      handler: async () => ({ server_version: SERVER_VERSION }),
    }),
    endpoint({
      // GET /_synapse/admin/v1/register: a nonce for shared-secret registration
      ...synapse,
      method: 'GET',
      path: '/register',
      versions: ['v1'],
      auth: 'none',
      rateLimit: 'register',
      handler: async () => admin.nonce(),
    }),
    endpoint({
      // POST /_synapse/admin/v1/register
      ...synapse,
      method: 'POST',
      path: '/register',
      versions: ['v1'],
      auth: 'none',
      rateLimit: 'register',
      body: v.object({
        nonce: v.string({ min: 1 }),
        username: v.string({ min: 1 }),
        password: v.string({ min: 1 }),
        admin: v.optional(v.bool()),
        user_type: v.optional(v.nullable(v.string())),
        displayname: v.optional(v.string()),
        mac: v.string({ min: 1 }),
      }),
      handler: async ({ body }) => {
        const result = await admin.registerWithSecret({
          nonce: body.nonce,
          username: body.username,
          password: body.password,
          admin: body.admin === true,
          ...(typeof body.user_type === 'string' ? { userType: body.user_type } : {}),
          ...(body.displayname !== undefined ? { displayname: body.displayname } : {}),
          mac: body.mac,
        });
        return {
          user_id: result.userId,
          access_token: result.accessToken,
          device_id: result.deviceId,
          home_server: services.config.serverName,
        };
      },
    }),
    endpoint({
      // GET /_synapse/admin/v2/users
      ...synapse,
      method: 'GET',
      path: '/users',
      versions: ['v2'],
      auth: 'required',
      query: q.object({
        from: q.optional(q.int({ min: 0 }), 0),
        limit: q.optional(q.int({ min: 1, max: 1000 }), 100),
        user_id: q.optional(q.string()),
        name: q.optional(q.string()),
        guests: q.optional(q.bool(), true),
        deactivated: q.optional(q.bool(), false),
        admins: q.optional(q.bool()),
        locked: q.optional(q.bool()),
      }),
      handler: async ({ auth, query }) =>
        admin.listUsers(auth, {
          from: query.from,
          limit: query.limit,
          guests: query.guests,
          deactivated: query.deactivated,
          ...(query.user_id !== undefined ? { userId: query.user_id } : {}),
          ...(query.name !== undefined ? { name: query.name } : {}),
          ...(query.admins !== undefined ? { admins: query.admins } : {}),
          ...(query.locked !== undefined ? { locked: query.locked } : {}),
        }),
    }),
    endpoint({
      // GET /_synapse/admin/v2/users/{userId}
      ...synapse,
      method: 'GET',
      path: '/users/{userId}',
      versions: ['v2'],
      auth: 'required',
      params: { userId: userIdParam },
      handler: async ({ auth, params }) => admin.getUser(auth, params.userId),
    }),
    endpoint({
      // PUT /_synapse/admin/v2/users/{userId}: create or modify
      ...synapse,
      method: 'PUT',
      path: '/users/{userId}',
      versions: ['v2'],
      auth: 'required',
      params: { userId: userIdParam },
      body: v.object({
        password: v.optional(v.string({ min: 1 })),
        logout_devices: v.optional(v.bool()),
        displayname: v.optional(v.nullable(v.string())),
        avatar_url: v.optional(v.nullable(v.string())),
        admin: v.optional(v.bool()),
        deactivated: v.optional(v.bool()),
        locked: v.optional(v.bool()),
        user_type: v.optional(v.nullable(v.string())),
      }),
      allowEmptyBody: true,
      handler: async ({ auth, params, body }) => {
        const { created, user } = await admin.putUser(auth, params.userId, {
          ...(body.password !== undefined ? { password: body.password } : {}),
          ...(body.logout_devices !== undefined ? { logoutDevices: body.logout_devices } : {}),
          ...(body.displayname !== undefined ? { displayname: body.displayname } : {}),
          ...(body.avatar_url !== undefined ? { avatarUrl: body.avatar_url } : {}),
          ...(body.admin !== undefined ? { admin: body.admin } : {}),
          ...(body.deactivated !== undefined ? { deactivated: body.deactivated } : {}),
          ...(body.locked !== undefined ? { locked: body.locked } : {}),
          ...(body.user_type !== undefined ? { userType: body.user_type } : {}),
        });
        return created ? Response.json(user, { status: 201 }) : user;
      },
    }),
    endpoint({
      // POST /_synapse/admin/v1/deactivate/{userId}
      ...synapse,
      method: 'POST',
      path: '/deactivate/{userId}',
      versions: ['v1'],
      auth: 'required',
      params: { userId: userIdParam },
      body: v.object({ erase: v.optional(v.bool()) }),
      allowEmptyBody: true,
      handler: async ({ auth, params, body }) => {
        await admin.deactivate(auth, params.userId, body.erase === true);
        return { id_server_unbind_result: 'success' };
      },
    }),
    endpoint({
      // POST /_synapse/admin/v1/reset_password/{userId}
      ...synapse,
      method: 'POST',
      path: '/reset_password/{userId}',
      versions: ['v1'],
      auth: 'required',
      params: { userId: userIdParam },
      body: v.object({ new_password: v.string({ min: 1 }), logout_devices: v.optional(v.bool()) }),
      handler: async ({ auth, params, body }) => {
        await admin.resetPassword(auth, params.userId, body.new_password, body.logout_devices !== false);
        return {};
      },
    }),
    endpoint({
      // GET /_synapse/admin/v1/rooms
      ...synapse,
      method: 'GET',
      path: '/rooms',
      versions: ['v1'],
      auth: 'required',
      query: q.object({
        from: q.optional(q.int({ min: 0 }), 0),
        limit: q.optional(q.int({ min: 1, max: 1000 }), 100),
        search_term: q.optional(q.string()),
      }),
      handler: async ({ auth, query }) =>
        admin.listRooms(auth, {
          from: query.from,
          limit: query.limit,
          ...(query.search_term !== undefined ? { searchTerm: query.search_term } : {}),
        }),
    }),
    endpoint({
      // GET /_synapse/admin/v1/rooms/{roomId}
      ...synapse,
      method: 'GET',
      path: '/rooms/{roomId}',
      versions: ['v1'],
      auth: 'required',
      params: { roomId: roomIdParam },
      handler: async ({ auth, params }) => admin.getRoom(auth, params.roomId),
    }),
    endpoint({
      // DELETE /_synapse/admin/v2/rooms/{roomId}
      ...synapse,
      method: 'DELETE',
      path: '/rooms/{roomId}',
      versions: ['v2'],
      auth: 'required',
      params: { roomId: roomIdParam },
      body: v.object({
        block: v.optional(v.bool()),
        purge: v.optional(v.bool()),
        message: v.optional(v.string()),
      }),
      allowEmptyBody: true,
      handler: async ({ auth, params, body }) =>
        admin.deleteRoom(auth, params.roomId, { block: body.block === true, purge: body.purge !== false }),
    }),
    endpoint({
      // GET /_synapse/admin/v2/rooms/delete_status/{deleteId}
      ...synapse,
      method: 'GET',
      path: '/rooms/delete_status/{deleteId}',
      versions: ['v2'],
      auth: 'required',
      handler: async ({ auth, params }) => admin.deleteStatus(auth, params.deleteId),
    }),
    ...(['lock', 'suspend'] as const).flatMap((what) => {
      const field = what === 'lock' ? 'locked' : 'suspended';
      const set = (auth: Auth, userId: string, value: boolean | undefined) =>
        what === 'lock' ? admin.setLocked(auth, userId, value) : admin.setSuspended(auth, userId, value);
      return [
        endpoint({
          // GET /_matrix/client/v1/admin/{lock,suspend}/{userId}
          method: 'GET',
          path: `/admin/${what}/{userId}`,
          versions: ['v1'],
          auth: 'required',
          params: { userId: userIdParam },
          spec: `client-server-api/#get_matrixclientv1admin${what}userid`,
          handler: async ({ auth, params }) => ({ [field]: await set(auth, params.userId, undefined) }),
        }),
        endpoint({
          // PUT /_matrix/client/v1/admin/{lock,suspend}/{userId}
          method: 'PUT',
          path: `/admin/${what}/{userId}`,
          versions: ['v1'],
          auth: 'required',
          params: { userId: userIdParam },
          body: v.object({ [field]: v.bool() } as Record<typeof field, ReturnType<typeof v.bool>>),
          spec: `client-server-api/#put_matrixclientv1admin${what}userid`,
          handler: async ({ auth, params, body }) => ({
            [field]: await set(auth, params.userId, (body as Record<string, boolean>)[field]),
          }),
        }),
      ];
    }),
  ];
}
