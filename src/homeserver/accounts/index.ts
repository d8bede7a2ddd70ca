/**
 * Accounts — client-server-api/_index.md "Client Authentication" (access tokens, "Relationship
 * between access tokens and devices", "Refreshing access tokens", "Soft logout"), the legacy
 * API's "Login", "Account registration", "Account management" (password, deactivation),
 * "Current account information", "Device Management" and "Profiles" (in `profile.ts`).
 *
 * No HTTP here: the endpoints in src/api/client/{register,login,account,devices,profile}.ts
 * validate requests and call these methods; errors are `MatrixError`s.
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import { isValidDeviceId, isValidOpaqueId, isValidUserId, parseUserId } from '../../core/identifiers.ts';
import { StoreError } from '../../storage/store.ts';
import { type Auth, type HomeserverContext, randomString } from '../context.ts';
import {
  badJson,
  forbidden,
  guestAccessForbidden,
  invalidParam,
  MatrixError,
  missingParam,
  notFound,
  unknownToken,
  userDeactivated,
  userInUse,
} from '../errors.ts';
import { hashPassword, needsRehash, verifyPassword } from './passwords.ts';
import { createProfileService, type ProfileService, type RoomsForAccounts } from './profile.ts';
import { createUia, DUMMY, PASSWORD, REGISTRATION_TOKEN, type StageHandler } from './uia.ts';
import { generatedLocalpart, userIdForUsername } from './usernames.ts';

export type { RoomsForAccounts } from './profile.ts';
export { UiaChallenge } from './uia.ts';

/** Passwords longer than this are refused (Synapse's limit): nobody types more, and it bounds work. */
export const MAX_PASSWORD_LENGTH = 512;
/** Device display names are shown in lists and key queries; Synapse's limit. */
export const MAX_DEVICE_NAME_LENGTH = 100;
/** How often a device's `last_seen_ts` is written at most: a write per request would be waste. */
const LAST_SEEN_INTERVAL_MS = 10 * 60 * 1000;
/** Registration tokens are opaque IDs of at most 64 characters ("Token-authenticated registration"). */
const MAX_REGISTRATION_TOKEN_LENGTH = 64;

/** A new access token (and refresh token) bound to a device. */
export interface SessionGrant {
  userId: string;
  deviceId: string;
  accessToken: string;
  refreshToken?: string;
  /** Lifetime of the access token, when it expires. */
  expiresInMs?: number;
}

export interface RegisterInput {
  kind: 'user' | 'guest';
  username?: string;
  password?: string;
  deviceId?: string;
  initialDeviceDisplayName?: string;
  inhibitLogin?: boolean;
  refreshToken?: boolean;
  /** Upgrading a guest account (guest access module); not supported yet. */
  guestAccessToken?: string;
  auth?: JsonObject;
}

export interface RegisterResult {
  userId: string;
  /** Null with `inhibit_login`. */
  session: SessionGrant | null;
}

export interface LoginInput {
  type: string;
  identifier?: JsonObject;
  /** Deprecated forms of `identifier`. */
  user?: string;
  medium?: string;
  address?: string;
  password?: string;
  token?: string;
  deviceId?: string;
  initialDeviceDisplayName?: string;
  refreshToken?: boolean;
}

export interface DeviceInfo {
  device_id: string;
  display_name?: string;
  last_seen_ip?: string;
  last_seen_ts?: number;
}

/** admin.yaml `GET /admin/whois/{userId}` */
export interface WhoisResult {
  user_id: string;
  devices: Record<string, { sessions: { connections: { ip?: string; last_seen?: number }[] }[] }>;
}

export interface AccountsService extends ProfileService {
  /** Access token → who is calling; an expired token is a soft logout (401, `soft_logout`). */
  resolveAccessToken(token: string): Promise<Auth | null>;
  /** A new registration token for the `token` policy (the CLI prints one at start). */
  createRegistrationToken(options?: {
    usesAllowed?: number | null;
    expiresAt?: number | null;
  }): Promise<string>;
  /**
   * Creates a local account whatever the registration policy: the operator's action (the
   * browser owner's first account, a host's set-up), which no HTTP endpoint offers. Without a
   * password the account can only be used through the session `login: true` returns.
   */
  createUser(input: { localpart: string; password?: string; login?: boolean }): Promise<RegisterResult>;
  /**
   * GET /admin/whois/{userId}: the user's devices and where they were last seen. admin.yaml:
   * "may be restricted to only be called by the user being looked up, or by a server admin".
   */
  whois(caller: Auth, userId: string): Promise<WhoisResult>;
  /** GET /register/m.login.registration_token/validity */
  registrationTokenValid(token: string): Promise<boolean>;
  /** GET /register/available: the user ID, or M_INVALID_USERNAME / M_USER_IN_USE. */
  checkUsernameAvailable(username: string): Promise<string>;
  register(input: RegisterInput): Promise<RegisterResult>;
  /** The login types `POST /login` accepts. */
  loginFlows(): { type: string }[];
  login(input: LoginInput): Promise<SessionGrant>;
  /** Deletes the caller's device with its tokens and keys. */
  logout(auth: Auth): Promise<void>;
  logoutAll(userId: string): Promise<void>;
  refresh(refreshToken: string): Promise<Omit<SessionGrant, 'userId' | 'deviceId'>>;
  changePassword(input: {
    auth: Auth | null;
    newPassword: string;
    logoutDevices: boolean;
    uia: JsonObject | undefined;
  }): Promise<void>;
  deactivate(input: { auth: Auth | null; erase: boolean; uia: JsonObject | undefined }): Promise<void>;
  listDevices(userId: string): Promise<DeviceInfo[]>;
  getDevice(userId: string, deviceId: string): Promise<DeviceInfo>;
  updateDevice(userId: string, deviceId: string, displayName: string | undefined): Promise<void>;
  deleteDevices(input: {
    auth: Auth;
    deviceIds: readonly string[];
    uia: JsonObject | undefined;
  }): Promise<void>;
}

export interface AccountsDeps {
  /** The rooms service, looked up when needed (profile propagation, leaving on deactivation). */
  rooms?: () => RoomsForAccounts | undefined;
}

const invalidCredentials = () => forbidden('Invalid username or password');

function deviceInfo(d: {
  deviceId: string;
  displayName: string | null;
  lastSeenAt: number | null;
  lastSeenIp: string | null;
}): DeviceInfo {
  const out: DeviceInfo = { device_id: d.deviceId };
  if (d.displayName !== null) out.display_name = d.displayName;
  if (d.lastSeenIp !== null) out.last_seen_ip = d.lastSeenIp;
  if (d.lastSeenAt !== null) out.last_seen_ts = d.lastSeenAt;
  return out;
}

export function createAccountsService(ctx: HomeserverContext, deps: AccountsDeps = {}): AccountsService {
  const { store, clock, config, random, logger } = ctx;
  const rooms = deps.rooms ?? (() => undefined);
  const profile = createProfileService(ctx, rooms);
  /** Device → when its last_seen_ts was last written by this process. */
  const lastSeenWritten = new Map<string, number>();
  /** A hash to check against when the user is unknown, so a miss costs the same as a hit. */
  let decoyHash: Promise<string> | undefined;

  const newToken = (prefix: string) => `${prefix}_${randomString(random, 40)}`;

  function newDeviceId(): string {
    // Ten upper-case letters, the form Synapse gives and clients show.
    const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    let out = '';
    while (out.length < 10) {
      for (const byte of random.bytes(16)) {
        // 26 × 9 = 234: reject the top bytes so every letter is equally likely.
        if (byte < 234 && out.length < 10) out += letters[byte % 26];
      }
    }
    return out;
  }

  /** The local user a `m.id.user` identifier (localpart or full user ID) names. */
  function userIdFromIdentifierUser(user: string): string {
    if (user.startsWith('@')) {
      if (!isValidUserId(user, { historical: true })) throw invalidCredentials();
      const { localpart, serverName } = parseUserId(user, { historical: true });
      if (serverName !== config.serverName) throw invalidCredentials();
      return `@${localpart.toLowerCase()}:${serverName}`;
    }
    return `@${user.toLowerCase()}:${config.serverName}`;
  }

  /**
   * The user an identifier (or the deprecated `user` / `medium`+`address` keys) names.
   * Third-party IDs are never bound here, so they name nobody: 403 as the spec requires.
   */
  function resolveIdentifier(input: {
    identifier?: JsonObject;
    user?: string;
    medium?: string;
    address?: string;
  }): string {
    const id = input.identifier;
    if (id !== undefined) {
      const type = id.type;
      if (typeof type !== 'string') throw missingParam('identifier.type is required');
      if (type === 'm.id.user') {
        if (typeof id.user !== 'string') throw missingParam('identifier.user is required for m.id.user');
        return userIdFromIdentifierUser(id.user);
      }
      if (type === 'm.id.thirdparty') {
        if (typeof id.medium !== 'string' || typeof id.address !== 'string') {
          throw missingParam('identifier.medium and identifier.address are required for m.id.thirdparty');
        }
        throw forbidden('No account is bound to this third-party identifier');
      }
      if (type === 'm.id.phone') {
        if (typeof id.country !== 'string' || typeof id.phone !== 'string') {
          throw missingParam('identifier.country and identifier.phone are required for m.id.phone');
        }
        throw forbidden('No account is bound to this phone number');
      }
      throw new MatrixError(400, 'M_UNKNOWN', `Unknown identifier type ${JSON.stringify(type)}`);
    }
    if (input.user !== undefined) return userIdFromIdentifierUser(input.user);
    if (input.medium !== undefined || input.address !== undefined) {
      throw forbidden('No account is bound to this third-party identifier');
    }
    throw missingParam('identifier is required');
  }

  /** Checks a password for a user: the user ID on success, 403 otherwise. */
  async function checkPassword(userId: string, password: string): Promise<string> {
    const user = isValidUserId(userId, { historical: true }) ? await store.accounts.getUser(userId) : null;
    if (!user || user.passwordHash === null) {
      decoyHash ??= hashPassword('decoy', config.passwordIterations, random);
      await verifyPassword(password, await decoyHash);
      if (user?.deactivated) throw userDeactivated();
      throw invalidCredentials();
    }
    if (!(await verifyPassword(password, user.passwordHash))) throw invalidCredentials();
    if (user.deactivated) throw userDeactivated();
    if (needsRehash(user.passwordHash, config.passwordIterations)) {
      await store.accounts.updateUser(userId, {
        passwordHash: await hashPassword(password, config.passwordIterations, random),
      });
    }
    return userId;
  }

  const passwordStage: StageHandler = async (auth) => {
    if (auth.password === undefined) throw missingParam('auth.password is required for m.login.password');
    if (typeof auth.password !== 'string') throw badJson('auth.password must be a string');
    const identifier = auth.identifier;
    if (
      identifier !== undefined &&
      (typeof identifier !== 'object' || identifier === null || Array.isArray(identifier))
    ) {
      throw badJson('auth.identifier must be an object');
    }
    const userId = resolveIdentifier({
      identifier,
      user: typeof auth.user === 'string' ? auth.user : undefined,
      medium: typeof auth.medium === 'string' ? auth.medium : undefined,
      address: typeof auth.address === 'string' ? auth.address : undefined,
    });
    return { userId: await checkPassword(userId, auth.password) };
  };

  const registrationTokenStage: StageHandler = async (auth) => {
    if (typeof auth.token !== 'string')
      throw missingParam('auth.token is required for m.login.registration_token');
    if (!(await registrationTokenValid(auth.token))) {
      throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid registration token');
    }
    return { remember: { registrationToken: auth.token } };
  };

  const uia = createUia(ctx, {
    [DUMMY]: async () => ({}),
    [PASSWORD]: passwordStage,
    [REGISTRATION_TOKEN]: registrationTokenStage,
  });

  async function registrationTokenValid(token: string): Promise<boolean> {
    if (!isValidOpaqueId(token, MAX_REGISTRATION_TOKEN_LENGTH)) return false;
    const t = await store.accounts.getRegistrationToken(token);
    if (!t) return false;
    if (t.expiresAt !== null && t.expiresAt <= clock.now()) return false;
    return t.usesAllowed === null || t.completed < t.usesAllowed;
  }

  /** Flows proving the account's owner is present: the password, or nothing for accounts without one. */
  async function ownerFlows(auth: Auth | null): Promise<string[][]> {
    if (auth === null) return [[PASSWORD]];
    const user = await store.accounts.getUser(auth.userId);
    return user?.passwordHash ? [[PASSWORD]] : [[DUMMY]];
  }

  function tokenExpiry(wantsRefresh: boolean): { expiresAt: number | null; expiresInMs?: number } {
    // Clients that cannot refresh get tokens that do not expire ("Refreshing access tokens":
    // handling them "is up to the homeserver").
    const lifetime = config.accessTokenLifetimeMs;
    if (!wantsRefresh || lifetime === null) return { expiresAt: null };
    return { expiresAt: clock.now() + lifetime, expiresInMs: lifetime };
  }

  /**
   * A new access token (and refresh token) on a device, creating the device if needed. When
   * the device exists, its earlier tokens are revoked ("Relationship between access tokens and
   * devices": "the server will invalidate any access and refresh tokens previously assigned").
   */
  async function issueSession(input: {
    userId: string;
    deviceId?: string;
    displayName?: string;
    refreshToken?: boolean;
  }): Promise<SessionGrant> {
    let deviceId = input.deviceId;
    if (deviceId === undefined) {
      do deviceId = newDeviceId();
      while (await store.accounts.getDevice(input.userId, deviceId));
    }
    const existing =
      input.deviceId !== undefined ? await store.accounts.getDevice(input.userId, deviceId) : null;
    const accessToken = newToken('hat');
    const refreshToken = input.refreshToken ? newToken('hrt') : undefined;
    const { expiresAt, expiresInMs } = tokenExpiry(input.refreshToken === true);
    const now = clock.now();
    // One transaction: the device's earlier access and refresh tokens go as the new ones come.
    // Revoking whenever the client names the device (a no-op for a new one) also covers a
    // concurrent login that creates it after the lookup above. A known device keeps its name
    // ("initial_device_display_name": "Ignored if device_id corresponds to a known device").
    await store.accounts.createSession(
      {
        userId: input.userId,
        deviceId,
        ...(existing ? {} : { displayName: input.displayName ?? null }),
        accessToken,
        ...(refreshToken ? { refreshToken } : {}),
        expiresAt,
        now,
      },
      { replaceDeviceTokens: input.deviceId !== undefined },
    );
    lastSeenWritten.set(`${input.userId}\u0000${deviceId}`, now);
    return {
      userId: input.userId,
      deviceId,
      accessToken,
      ...(refreshToken ? { refreshToken } : {}),
      ...(expiresInMs !== undefined ? { expiresInMs } : {}),
    };
  }

  function checkDeviceId(deviceId: string | undefined): void {
    if (deviceId !== undefined && !isValidDeviceId(deviceId)) {
      throw invalidParam('device_id must be 1–255 bytes of printable text');
    }
  }

  function checkNewPassword(password: string): void {
    if (password.length === 0) throw invalidParam('The password must not be empty');
    if (password.length > MAX_PASSWORD_LENGTH) {
      throw invalidParam(`The password is longer than ${MAX_PASSWORD_LENGTH} characters`);
    }
  }

  async function checkAvailable(userId: string): Promise<void> {
    if (await store.accounts.getUser(userId)) throw userInUse('This user ID is already taken');
  }

  async function registerGuest(input: RegisterInput): Promise<RegisterResult> {
    if (!config.guestAccess) throw guestAccessForbidden('Guest access is disabled on this homeserver');
    for (;;) {
      const userId = `@${generatedLocalpart(random)}:${config.serverName}`;
      const deviceId = newDeviceId();
      const accessToken = newToken('hat');
      const refreshToken = input.refreshToken ? newToken('hrt') : undefined;
      const { expiresAt, expiresInMs } = tokenExpiry(input.refreshToken === true);
      try {
        await store.accounts.createUser(
          { userId, passwordHash: null, createdAt: clock.now(), isGuest: true, userType: null },
          {
            session: {
              userId,
              deviceId,
              // registration.yaml: for guests every parameter but this one is ignored.
              displayName: input.initialDeviceDisplayName ?? null,
              accessToken,
              ...(refreshToken ? { refreshToken } : {}),
              expiresAt,
              now: clock.now(),
            },
          },
        );
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT') continue;
        throw err;
      }
      return {
        userId,
        session: {
          userId,
          deviceId,
          accessToken,
          ...(refreshToken ? { refreshToken } : {}),
          ...(expiresInMs !== undefined ? { expiresInMs } : {}),
        },
      };
    }
  }

  async function register(input: RegisterInput): Promise<RegisterResult> {
    if (input.kind === 'guest') return registerGuest(input);
    if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
    if (input.guestAccessToken !== undefined) {
      throw forbidden('Upgrading a guest account is not supported by this homeserver');
    }
    // registration.yaml: username problems are reported before user-interactive auth.
    const requested =
      input.username === undefined ? undefined : userIdForUsername(input.username, config.serverName);
    if (requested) await checkAvailable(requested);
    checkDeviceId(input.deviceId);
    if (input.password !== undefined) checkNewPassword(input.password);

    const flows = config.registration === 'token' ? [[REGISTRATION_TOKEN]] : [[DUMMY]];
    const done = await uia.authenticate({ operation: 'register', userId: null, flows, auth: input.auth });

    if (input.password === undefined) throw missingParam('password is required');
    // The same checks again: another registration may have taken the name meanwhile.
    if (requested) await checkAvailable(requested);
    const passwordHash = await hashPassword(input.password, config.passwordIterations, random);
    const token = done.remembered.registrationToken;
    if (config.registration === 'token') {
      // A use counts only for a registration that happens (the check at the stage was a preview).
      if (typeof token !== 'string' || !(await store.accounts.useRegistrationToken(token, clock.now()))) {
        await uia.finish(done.sessionId);
        throw new MatrixError(401, 'M_UNAUTHORIZED', 'The registration token is no longer valid');
      }
    }

    let userId = requested;
    for (;;) {
      userId ??= `@${generatedLocalpart(random)}:${config.serverName}`;
      const localpart = userId.slice(1, userId.indexOf(':'));
      try {
        await store.accounts.createUser(
          { userId, passwordHash, createdAt: clock.now(), isGuest: false, userType: null },
          // The localpart as the first display name, as other servers do: rooms show a name at once.
          { profile: { displayname: localpart } },
        );
        break;
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 'CONFLICT')) throw err;
        if (requested) throw userInUse('This user ID is already taken');
        userId = undefined;
      }
    }
    await uia.finish(done.sessionId);
    logger.info('registered a user', { userId });
    if (input.inhibitLogin) return { userId, session: null };
    const session = await issueSession({
      userId,
      ...(input.deviceId !== undefined ? { deviceId: input.deviceId } : {}),
      ...(input.initialDeviceDisplayName !== undefined
        ? { displayName: input.initialDeviceDisplayName }
        : {}),
      refreshToken: input.refreshToken === true,
    });
    return { userId, session };
  }

  async function login(input: LoginInput): Promise<SessionGrant> {
    if (input.type !== 'm.login.password') {
      throw new MatrixError(400, 'M_UNKNOWN', `Unsupported login type ${JSON.stringify(input.type)}`);
    }
    if (input.password === undefined) throw missingParam('password is required for m.login.password');
    checkDeviceId(input.deviceId);
    const userId = await checkPassword(resolveIdentifier(input), input.password);
    if (input.deviceId !== undefined) {
      // login.yaml: "The given device ID must not be the same as a cross-signing key ID."
      const keys = await store.e2ee.getCrossSigningKeys(userId);
      for (const key of Object.values(keys)) {
        const ids = key.keys;
        if (typeof ids === 'object' && ids !== null && Object.hasOwn(ids, `ed25519:${input.deviceId}`)) {
          throw forbidden('The device ID is the same as a cross-signing key ID');
        }
      }
    }
    return issueSession({
      userId,
      ...(input.deviceId !== undefined ? { deviceId: input.deviceId } : {}),
      ...(input.initialDeviceDisplayName !== undefined
        ? { displayName: input.initialDeviceDisplayName }
        : {}),
      refreshToken: input.refreshToken === true,
    });
  }

  /** Deletes devices (tokens, keys, to-device inbox) and wakes the user's other /sync requests. */
  async function removeDevices(userId: string, deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await store.accounts.deleteDevices(userId, deviceIds);
    for (const d of deviceIds) lastSeenWritten.delete(`${userId}\u0000${d}`);
    ctx.notifier.notify({ users: [userId] });
  }

  return {
    ...profile,

    async resolveAccessToken(token) {
      const info = await store.accounts.getAccessToken(token);
      if (!info) return null;
      const now = clock.now();
      if (info.expiresAt !== null && info.expiresAt <= now) {
        throw unknownToken('Access token has expired', { softLogout: true });
      }
      const user = await store.accounts.getUser(info.userId);
      if (!user || user.deactivated) return null;
      const key = `${info.userId}\u0000${info.deviceId}`;
      const written = lastSeenWritten.get(key);
      if (written === undefined || now - written >= LAST_SEEN_INTERVAL_MS) {
        lastSeenWritten.set(key, now);
        await store.accounts.updateDevice(info.userId, info.deviceId, { lastSeenAt: now });
      }
      return { userId: info.userId, deviceId: info.deviceId, isGuest: user.isGuest };
    },

    async createRegistrationToken(options = {}) {
      const token = randomString(random, 16);
      await store.accounts.putRegistrationToken({
        token,
        usesAllowed: options.usesAllowed ?? null,
        completed: 0,
        expiresAt: options.expiresAt ?? null,
      });
      return token;
    },

    async createUser({ localpart, password, login }) {
      const userId = userIdForUsername(localpart, config.serverName);
      if (password !== undefined) checkNewPassword(password);
      const passwordHash =
        password === undefined ? null : await hashPassword(password, config.passwordIterations, random);
      try {
        await store.accounts.createUser(
          { userId, passwordHash, createdAt: clock.now(), isGuest: false, userType: null },
          { profile: { displayname: userId.slice(1, userId.indexOf(':')) } },
        );
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT') throw userInUse(`${userId} already exists`);
        throw err;
      }
      logger.info('created a user', { userId });
      return { userId, session: login ? await issueSession({ userId }) : null };
    },

    async whois(caller, userId) {
      if (userId !== caller.userId && !(await store.accounts.getUser(caller.userId))?.admin) {
        throw forbidden('Only server administrators may look up other users');
      }
      if (!(await store.accounts.getUser(userId))) throw notFound('No such user');
      const devices: WhoisResult['devices'] = {};
      for (const d of await store.accounts.listDevices(userId)) {
        const connection = {
          ...(d.lastSeenIp !== null ? { ip: d.lastSeenIp } : {}),
          ...(d.lastSeenAt !== null ? { last_seen: d.lastSeenAt } : {}),
        };
        devices[d.deviceId] = {
          sessions: [{ connections: Object.keys(connection).length ? [connection] : [] }],
        };
      }
      return { user_id: userId, devices };
    },

    async registrationTokenValid(token) {
      if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
      return registrationTokenValid(token);
    },

    async checkUsernameAvailable(username) {
      if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
      const userId = userIdForUsername(username, config.serverName);
      await checkAvailable(userId);
      return userId;
    },

    register,

    loginFlows: () => [{ type: 'm.login.password' }],

    login,

    async logout(auth) {
      if (auth.deviceId !== null) await removeDevices(auth.userId, [auth.deviceId]);
    },

    async logoutAll(userId) {
      const devices = await store.accounts.listDevices(userId);
      await removeDevices(
        userId,
        devices.map((d) => d.deviceId),
      );
    },

    async refresh(refreshToken) {
      const accessToken = newToken('hat');
      const nextRefresh = newToken('hrt');
      const { expiresAt, expiresInMs } = tokenExpiry(true);
      const owner = await store.accounts.rotateRefreshToken(refreshToken, {
        accessToken,
        refreshToken: nextRefresh,
        expiresAt,
        now: clock.now(),
      });
      if (!owner) throw unknownToken('Unknown or already used refresh token');
      return {
        accessToken,
        refreshToken: nextRefresh,
        ...(expiresInMs !== undefined ? { expiresInMs } : {}),
      };
    },

    async changePassword({ auth, newPassword, logoutDevices, uia: authDict }) {
      checkNewPassword(newPassword);
      const done = await uia.authenticate({
        operation: 'change_password',
        userId: auth?.userId ?? null,
        flows: await ownerFlows(auth),
        auth: authDict,
      });
      const userId = done.userId;
      if (userId === null) throw forbidden('Could not tell whose password to change');
      await store.accounts.updateUser(userId, {
        passwordHash: await hashPassword(newPassword, config.passwordIterations, random),
      });
      await uia.finish(done.sessionId);
      if (logoutDevices) {
        // password_management.yaml: "SHOULD NOT revoke the access token provided in the request".
        const keep = auth?.userId === userId ? auth.deviceId : null;
        const devices = await store.accounts.listDevices(userId);
        await removeDevices(
          userId,
          devices.map((d) => d.deviceId).filter((d) => d !== keep),
        );
      }
    },

    async deactivate({ auth, erase, uia: authDict }) {
      const done = await uia.authenticate({
        operation: 'deactivate',
        userId: auth?.userId ?? null,
        flows: await ownerFlows(auth),
        auth: authDict,
      });
      const userId = done.userId;
      if (userId === null) throw forbidden('Could not tell which account to deactivate');
      await uia.finish(done.sessionId);
      // First the account (no more logins or requests), then the rooms, as far as they go.
      await store.accounts.deactivateUser(userId);
      for (const key of lastSeenWritten.keys())
        if (key.startsWith(`${userId}\u0000`)) lastSeenWritten.delete(key);
      ctx.notifier.notify({ users: [userId] });
      const service = rooms();
      if (service) {
        for (const membership of ['join', 'invite', 'knock']) {
          for (const m of await store.rooms.roomsForUser(userId, membership)) {
            try {
              await service.setMembership(userId, m.roomId, userId, 'leave');
            } catch (err) {
              logger.warn('deactivated user could not leave a room', {
                userId,
                roomId: m.roomId,
                error: String(err),
              });
            }
          }
        }
      } else {
        logger.warn('deactivated user left in their rooms: no rooms service', { userId });
      }
      if (erase) {
        const fields = Object.keys((await store.userData.getProfile(userId)) ?? {});
        if (fields.length > 0)
          await store.userData.updateProfile(userId, Object.fromEntries(fields.map((f) => [f, null])));
      }
      logger.info('deactivated a user', { userId, erase });
    },

    async listDevices(userId) {
      return (await store.accounts.listDevices(userId)).map(deviceInfo);
    },

    async getDevice(userId, deviceId) {
      const device = await store.accounts.getDevice(userId, deviceId);
      if (!device) throw notFound('No such device');
      return deviceInfo(device);
    },

    async updateDevice(userId, deviceId, displayName) {
      if (displayName !== undefined && displayName.length > MAX_DEVICE_NAME_LENGTH) {
        throw invalidParam(`display_name is longer than ${MAX_DEVICE_NAME_LENGTH} characters`);
      }
      const found = await store.accounts.updateDevice(
        userId,
        deviceId,
        displayName === undefined ? {} : { displayName },
      );
      if (!found) throw notFound('No such device');
      // Device names travel with device keys: other users' clients refetch them on this signal.
      if (displayName !== undefined) {
        await store.e2ee.markDeviceListChanged(userId);
        ctx.notifier.notify({ users: [userId] });
      }
    },

    async deleteDevices({ auth, deviceIds, uia: authDict }) {
      const unique = [...new Set(deviceIds)].sort();
      const done = await uia.authenticate({
        // The session authorises deleting exactly these devices, not whichever come next.
        operation: `delete_devices ${JSON.stringify(unique)}`,
        userId: auth.userId,
        flows: await ownerFlows(auth),
        auth: authDict,
      });
      await uia.finish(done.sessionId);
      // Devices already gone count as deleted (device_management.yaml) but change nothing.
      const existing = new Set((await store.accounts.listDevices(auth.userId)).map((d) => d.deviceId));
      await removeDevices(
        auth.userId,
        unique.filter((d) => existing.has(d)),
      );
    },
  };
}
