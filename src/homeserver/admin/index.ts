/**
 * The operator's actions behind Synapse's admin API (the subset operators' tools speak:
 * docs/admin_api/user_admin_api.md, register_api.md, rooms.md, version_api.md in Synapse)
 * and the spec's own `v1/admin/{lock,suspend}` (client-server admin.yaml). Every method
 * takes the caller and refuses anyone but a server admin; no HTTP here.
 *
 * Shared-secret registration: `GET` a nonce, then `POST` the new account with
 * `mac = hex(HMAC-SHA1(secret, nonce \0 username \0 password \0 admin|notadmin [\0 user_type]))`.
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import type { UserRecord } from '../../storage/store.ts';
import type { AccountsService } from '../accounts/index.ts';
import { type Auth, type HomeserverContext, isLocalId, randomString } from '../context.ts';
import { forbidden, invalidParam, MatrixError, matrixError, notFound } from '../errors.ts';
import type { RoomsService } from '../rooms/index.ts';

/** A nonce is good for this long and once (Synapse: 60 s). */
const NONCE_LIFETIME_MS = 60_000;
const MAX_NONCES = 1000;

export interface AdminUserQuery {
  from: number;
  limit: number;
  userId?: string;
  name?: string;
  guests: boolean;
  deactivated: boolean;
  admins?: boolean;
  locked?: boolean;
}

export interface AdminUserPatch {
  password?: string;
  logoutDevices?: boolean;
  displayname?: string | null;
  avatarUrl?: string | null;
  admin?: boolean;
  deactivated?: boolean;
  locked?: boolean;
  userType?: string | null;
}

export interface SharedSecretRegistration {
  nonce: string;
  username: string;
  password: string;
  admin: boolean;
  userType?: string;
  mac: string;
  displayname?: string;
}

export interface AdminService {
  /** Throws 403 M_FORBIDDEN unless the caller is a server admin. */
  requireAdmin(auth: Auth): Promise<void>;
  listUsers(auth: Auth, query: AdminUserQuery): Promise<JsonObject>;
  getUser(auth: Auth, userId: string): Promise<JsonObject>;
  /** Creates (`created: true`) or modifies an account. */
  putUser(auth: Auth, userId: string, patch: AdminUserPatch): Promise<{ created: boolean; user: JsonObject }>;
  deactivate(auth: Auth, userId: string, erase: boolean): Promise<void>;
  resetPassword(auth: Auth, userId: string, password: string, logoutDevices: boolean): Promise<void>;
  listRooms(auth: Auth, query: { from: number; limit: number; searchTerm?: string }): Promise<JsonObject>;
  getRoom(auth: Auth, roomId: string): Promise<JsonObject>;
  /** Makes every local member leave, optionally blocks and purges the room. */
  deleteRoom(auth: Auth, roomId: string, options: { block: boolean; purge: boolean }): Promise<JsonObject>;
  /** The outcome of an earlier `deleteRoom` (v2 is asynchronous in Synapse; here it is done at once). */
  deleteStatus(auth: Auth, deleteId: string): Promise<JsonObject>;
  setLocked(auth: Auth, userId: string, locked: boolean | undefined): Promise<boolean>;
  setSuspended(auth: Auth, userId: string, suspended: boolean | undefined): Promise<boolean>;
  /** GET /_synapse/admin/v1/register */
  nonce(): { nonce: string };
  /** POST /_synapse/admin/v1/register */
  registerWithSecret(
    input: SharedSecretRegistration,
  ): Promise<{ userId: string; accessToken: string; deviceId: string }>;
  roomBlocked(roomId: string): Promise<boolean>;
}

export interface AdminDeps {
  accounts: AccountsService;
  rooms: RoomsService;
  /** Synapse's `registration_shared_secret`; without it shared-secret registration is off. */
  sharedSecret?: string;
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** hex HMAC-SHA1 of `parts` joined by NUL (Synapse's register_api.md). */
export async function sharedSecretMac(secret: string, parts: readonly string[]): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    'raw',
    enc.encode(secret),
    { name: 'HMAC', hash: 'SHA-1' },
    false,
    ['sign'],
  );
  return hex(await crypto.subtle.sign('HMAC', key, enc.encode(parts.join('\u0000'))));
}

/** Compares two strings in time independent of where they differ. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export function createAdminService(ctx: HomeserverContext, deps: AdminDeps): AdminService {
  const { store, config, clock, random, logger } = ctx;
  const { accounts, rooms } = deps;
  const nonces = new Map<string, number>();
  const deletions = new Map<string, JsonObject>();

  async function requireAdmin(auth: Auth): Promise<void> {
    const user = await store.accounts.getUser(auth.userId);
    if (!user?.admin) throw forbidden('You are not a server admin');
  }

  function requireLocal(userId: string): void {
    if (!isLocalId(config, userId)) throw invalidParam('Only local users can be administered here');
  }

  async function requireUser(userId: string): Promise<UserRecord> {
    requireLocal(userId);
    const user = await store.accounts.getUser(userId);
    if (!user) throw notFound('User not found');
    return user;
  }

  async function describeUser(user: UserRecord, full: boolean): Promise<JsonObject> {
    const profile = (await store.userData.getProfile(user.userId)) ?? {};
    const out: JsonObject = {
      name: user.userId,
      displayname: typeof profile.displayname === 'string' ? profile.displayname : null,
      avatar_url: typeof profile.avatar_url === 'string' ? profile.avatar_url : null,
      is_guest: user.isGuest,
      admin: user.admin,
      user_type: user.userType,
      deactivated: user.deactivated,
      locked: user.locked,
      suspended: user.suspended,
      shadow_banned: false,
      creation_ts: user.createdAt,
    };
    if (full) {
      out.threepids = [];
      out.external_ids = [];
      out.erased = false;
    }
    return out;
  }

  async function describeRoom(roomId: string): Promise<JsonObject> {
    const room = await store.rooms.getRoom(roomId);
    if (!room) throw notFound('Room not found');
    const content = async (type: string) =>
      ((await store.rooms.currentStateEvent(roomId, type, ''))?.event.content ?? null) as JsonObject | null;
    const joined = await store.rooms.members(roomId, 'join');
    const [name, alias, joinRules, history, guest, encryption, create] = await Promise.all([
      content('m.room.name'),
      content('m.room.canonical_alias'),
      content('m.room.join_rules'),
      content('m.room.history_visibility'),
      content('m.room.guest_access'),
      content('m.room.encryption'),
      content('m.room.create'),
    ]);
    const state = await store.rooms.currentState(roomId);
    const str = (v: JsonValue | undefined) => (typeof v === 'string' ? v : null);
    return {
      room_id: roomId,
      name: str(name?.name),
      canonical_alias: str(alias?.alias),
      joined_members: joined.length,
      joined_local_members: joined.filter((m) => isLocalId(config, m.userId)).length,
      version: room.roomVersion,
      creator: room.creator,
      encryption: str(encryption?.algorithm),
      federatable: create?.['m.federate'] !== false,
      public: room.published,
      join_rules: str(joinRules?.join_rule),
      guest_access: str(guest?.guest_access),
      history_visibility: str(history?.history_visibility),
      state_events: Object.keys(state).length,
      room_type: str(create?.type),
      blocked: (await store.operator.roomBlocked(roomId)) !== null,
    };
  }

  return {
    requireAdmin,

    async listUsers(auth, q) {
      await requireAdmin(auth);
      const nameCache = new Map<string, string>();
      const matchesName = async (u: UserRecord) => {
        if (q.name === undefined) return true;
        if (u.userId.includes(q.name)) return true;
        const dn =
          nameCache.get(u.userId) ?? String((await store.userData.getProfile(u.userId))?.displayname ?? '');
        return dn.toLowerCase().includes(q.name.toLowerCase());
      };
      const all = await store.operator.listUsers({
        limit: Number.MAX_SAFE_INTEGER,
        filter: (u) =>
          (q.guests || !u.isGuest) &&
          (q.deactivated || !u.deactivated) &&
          (q.admins === undefined || u.admin === q.admins) &&
          (q.locked === undefined || u.locked === q.locked) &&
          (q.userId === undefined || u.userId.includes(q.userId)),
      });
      const matching: UserRecord[] = [];
      for (const u of all.users) if (await matchesName(u)) matching.push(u);
      const page = matching.slice(q.from, q.from + q.limit);
      const users: JsonObject[] = [];
      for (const u of page) users.push(await describeUser(u, false));
      return {
        users,
        total: matching.length,
        ...(q.from + q.limit < matching.length ? { next_token: String(q.from + q.limit) } : {}),
      };
    },

    async getUser(auth, userId) {
      await requireAdmin(auth);
      return describeUser(await requireUser(userId), true);
    },

    async putUser(auth, userId, patch) {
      await requireAdmin(auth);
      requireLocal(userId);
      let user = await store.accounts.getUser(userId);
      const created = user === null;
      if (!user) {
        if (patch.deactivated) throw invalidParam('Cannot create a deactivated user');
        const localpart = userId.slice(1, userId.indexOf(':'));
        await accounts.createUser({
          localpart,
          ...(patch.password !== undefined ? { password: patch.password } : {}),
        });
        user = await requireUser(userId);
      } else if (patch.password !== undefined) {
        await accounts.setPassword(userId, patch.password, { logoutDevices: patch.logoutDevices !== false });
      }
      if (patch.admin !== undefined || patch.locked !== undefined || patch.userType !== undefined) {
        await store.accounts.updateUser(userId, {
          ...(patch.admin !== undefined ? { admin: patch.admin } : {}),
          ...(patch.locked !== undefined ? { locked: patch.locked } : {}),
          ...(patch.userType !== undefined ? { userType: patch.userType } : {}),
        });
      }
      if (patch.displayname !== undefined || patch.avatarUrl !== undefined) {
        await store.userData.updateProfile(userId, {
          ...(patch.displayname !== undefined ? { displayname: patch.displayname } : {}),
          ...(patch.avatarUrl !== undefined ? { avatar_url: patch.avatarUrl } : {}),
        });
      }
      if (patch.deactivated === true && !user.deactivated)
        await accounts.deactivateAccount(userId, { erase: false });
      if (patch.deactivated === false && user.deactivated) {
        throw invalidParam('Reactivating a deactivated account is not supported');
      }
      logger.info(created ? 'admin created a user' : 'admin modified a user', { admin: auth.userId, userId });
      return {
        created,
        user: await describeUser((await store.accounts.getUser(userId)) as UserRecord, true),
      };
    },

    async deactivate(auth, userId, erase) {
      await requireAdmin(auth);
      const user = await requireUser(userId);
      if (!user.deactivated) await accounts.deactivateAccount(userId, { erase });
    },

    async resetPassword(auth, userId, password, logoutDevices) {
      await requireAdmin(auth);
      const user = await requireUser(userId);
      if (user.deactivated) throw forbidden('The account is deactivated');
      await accounts.setPassword(userId, password, { logoutDevices });
    },

    async listRooms(auth, q) {
      await requireAdmin(auth);
      const all = await store.operator.listRooms();
      const described: JsonObject[] = [];
      for (const room of all) {
        const d = await describeRoom(room.roomId);
        if (q.searchTerm !== undefined) {
          const term = q.searchTerm.toLowerCase();
          const hay = [d.name, d.canonical_alias, d.room_id].map((v) => String(v ?? '').toLowerCase());
          if (!hay.some((h) => h.includes(term))) continue;
        }
        described.push(d);
      }
      const page = described.slice(q.from, q.from + q.limit);
      return {
        rooms: page,
        offset: q.from,
        total_rooms: described.length,
        ...(q.from + q.limit < described.length ? { next_batch: q.from + q.limit } : {}),
        ...(q.from > 0 ? { prev_batch: Math.max(0, q.from - q.limit) } : {}),
      };
    },

    async getRoom(auth, roomId) {
      await requireAdmin(auth);
      return describeRoom(roomId);
    },

    async deleteRoom(auth, roomId, { block, purge }) {
      await requireAdmin(auth);
      const known = (await store.rooms.getRoom(roomId)) !== null;
      if (!known && !block) throw notFound('Room not found');
      if (block) await store.operator.setRoomBlocked(roomId, { by: auth.userId, at: clock.now() });
      const kicked: string[] = [];
      const failed: string[] = [];
      if (known) {
        for (const m of await store.rooms.members(roomId)) {
          if (!isLocalId(config, m.userId) || !['join', 'invite', 'knock'].includes(m.membership)) continue;
          try {
            await rooms.setMembership(m.userId, roomId, m.userId, 'leave');
            kicked.push(m.userId);
          } catch (err) {
            failed.push(m.userId);
            logger.warn('admin room deletion: a member could not leave', {
              roomId,
              userId: m.userId,
              error: String(err),
            });
          }
        }
      }
      const aliases = known ? (await store.rooms.aliasesOf(roomId)).map((a) => a.alias) : [];
      if (known && purge) {
        await store.operator.purgeRoom(roomId);
        ctx.notifier.notify({ rooms: [roomId], users: kicked });
      }
      const deleteId = randomString(random, 16);
      const status: JsonObject = {
        delete_id: deleteId,
        room_id: roomId,
        status: 'complete',
        shutdown_room: {
          kicked_users: kicked,
          failed_to_kick_users: failed,
          local_aliases: aliases,
          new_room_id: null,
        },
      };
      deletions.set(deleteId, status);
      logger.info('admin deleted a room', { admin: auth.userId, roomId, block, purge });
      return { delete_id: deleteId };
    },

    async deleteStatus(auth, deleteId) {
      await requireAdmin(auth);
      const status = deletions.get(deleteId);
      if (!status) throw notFound('No such deletion');
      return status;
    },

    async setLocked(auth, userId, locked) {
      await requireAdmin(auth);
      const user = await requireUser(userId);
      if (locked === undefined) return user.locked;
      await store.accounts.updateUser(userId, { locked });
      logger.info(locked ? 'admin locked a user' : 'admin unlocked a user', { admin: auth.userId, userId });
      return locked;
    },

    async setSuspended(auth, userId, suspended) {
      await requireAdmin(auth);
      const user = await requireUser(userId);
      if (suspended === undefined) return user.suspended;
      await store.accounts.updateUser(userId, { suspended });
      logger.info(suspended ? 'admin suspended a user' : 'admin unsuspended a user', {
        admin: auth.userId,
        userId,
      });
      return suspended;
    },

    nonce() {
      if (!deps.sharedSecret)
        throw matrixError(400, 'M_UNKNOWN', 'Shared secret registration is not enabled');
      const now = clock.now();
      for (const [n, at] of nonces)
        if (now - at > NONCE_LIFETIME_MS || nonces.size >= MAX_NONCES) nonces.delete(n);
      const nonce = randomString(random, 32);
      nonces.set(nonce, now);
      return { nonce };
    },

    async registerWithSecret(input) {
      const secret = deps.sharedSecret;
      if (!secret) throw matrixError(400, 'M_UNKNOWN', 'Shared secret registration is not enabled');
      const issued = nonces.get(input.nonce);
      if (issued === undefined || clock.now() - issued > NONCE_LIFETIME_MS) {
        throw matrixError(400, 'M_UNKNOWN', 'Unrecognised nonce');
      }
      // A nonce is spent by any attempt: a wrong MAC cannot be retried against it.
      nonces.delete(input.nonce);
      const parts = [input.nonce, input.username, input.password, input.admin ? 'admin' : 'notadmin'];
      if (input.userType !== undefined) parts.push(input.userType);
      if (!sameText(await sharedSecretMac(secret, parts), input.mac.toLowerCase())) {
        throw forbidden('HMAC incorrect');
      }
      const result = await accounts.createUser({
        localpart: input.username,
        password: input.password,
        login: true,
      });
      if (input.admin || input.userType !== undefined) {
        await store.accounts.updateUser(result.userId, {
          admin: input.admin,
          ...(input.userType !== undefined ? { userType: input.userType } : {}),
        });
      }
      if (input.displayname !== undefined)
        await store.userData.updateProfile(result.userId, { displayname: input.displayname });
      const session = result.session;
      if (!session) throw new MatrixError(500, 'M_UNKNOWN', 'No session was issued');
      logger.info('registered a user with the shared secret', { userId: result.userId, admin: input.admin });
      return { userId: result.userId, accessToken: session.accessToken, deviceId: session.deviceId };
    },

    async roomBlocked(roomId) {
      return (await store.operator.roomBlocked(roomId)) !== null;
    },
  };
}
