/**
 * Accounts — client-server-api/_index.md "Client Authentication" (access tokens, "Relationship
 * between access tokens and devices", "Refreshing access tokens", "Soft logout"), the legacy
 * API's "Login", "Account registration", "Account management" (password, deactivation),
 * "Current account information", "Device Management" and "Profiles" (in `profile.ts`).
 *
 * No HTTP here: the endpoints in src/api/client/{register,login,account,devices,profile}.ts
 * validate requests and call these methods; errors are `MatrixError`s.
 *
 * This file declares the service and wires its parts: sessions and tokens (sessions.ts),
 * identifiers, passwords and login (credentials.ts), registration (registration.ts), devices
 * (devices.ts), profiles (profile.ts), user-interactive auth (uia.ts); password change and
 * deactivation, which use several of them, are here.
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import { type Auth, type HomeserverContext, randomString } from '../context.ts';
import { forbidden } from '../errors.ts';
import { type AppserviceLogins, checkNewPassword, createCredentials } from './credentials.ts';
import { createDevices } from './devices.ts';
import { hashPassword } from './passwords.ts';
import { createProfileService, type ProfileService, type RoomsForAccounts } from './profile.ts';
import { createRegistration, registrationTokenStage } from './registration.ts';
import { createSessions } from './sessions.ts';
import { createUia, DUMMY, PASSWORD, REGISTRATION_TOKEN } from './uia.ts';

export { MAX_PASSWORD_LENGTH } from './credentials.ts';
export { MAX_DEVICE_NAME_LENGTH } from './devices.ts';
export type { RoomsForAccounts } from './profile.ts';
export { UiaChallenge } from './uia.ts';

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
  /** The request's access token: an application service's `as_token` for `m.login.application_service`. */
  accessToken?: string;
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
  /** `clientAddress` (the caller's IP, when the host knows it) becomes the device's `last_seen_ip`. */
  resolveAccessToken(token: string, clientAddress?: string): Promise<Auth | null>;
  /** A new registration token for the `token` policy (the CLI prints one at start). */
  createRegistrationToken(options?: {
    token?: string;
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
  loginFlows(): { type: string; get_login_token?: boolean }[];
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
  /** Deactivates an account without asking its owner: the operator's action (admin API). */
  deactivateAccount(userId: string, options: { erase: boolean }): Promise<void>;
  /** Sets a password without asking its owner (admin API), optionally signing every device out. */
  setPassword(userId: string, password: string, options: { logoutDevices: boolean }): Promise<void>;
  listDevices(userId: string): Promise<DeviceInfo[]>;
  getDevice(userId: string, deviceId: string): Promise<DeviceInfo>;
  updateDevice(userId: string, deviceId: string, displayName: string | undefined): Promise<void>;
  deleteDevices(input: {
    auth: Auth;
    deviceIds: readonly string[];
    uia: JsonObject | undefined;
  }): Promise<void>;
  /**
   * User-interactive auth proving the caller owns the account (their password, or a dummy
   * stage for an account without one), for another service's operation — replacing
   * cross-signing keys. Resolves once a flow is complete; throws the 401 challenge otherwise.
   * `operation` names what the session may authorise (a session cannot authorise another).
   */
  confirmOwner(input: { auth: Auth; operation: string; uia: JsonObject | undefined }): Promise<void>;
  /**
   * An OpenID token for `auth`'s user (client-server-api "OpenID"): proof of identity the
   * user hands a third party, which asks `/_matrix/federation/v1/openid/userinfo` whose it is.
   */
  requestOpenIdToken(auth: Auth): Promise<{ accessToken: string; expiresInSeconds: number }>;
  /** The user an OpenID token of ours names, while it has not expired; null otherwise. */
  openIdUser(token: string): Promise<string | null>;
}

/** Lifetime of an OpenID token: an hour, as Synapse gives, enough for a widget to ask once. */
export const OPENID_TOKEN_LIFETIME_MS = 60 * 60 * 1000;

export interface AccountsDeps {
  /** The rooms service, looked up when needed (profile propagation, leaving on deactivation). */
  rooms?: () => RoomsForAccounts | undefined;
  /**
   * A user's devices changed (deleted, renamed): wakes the syncs of those sharing a room and
   * tells federation (the e2ee service's `deviceListChanged`).
   */
  deviceListChanged?: (userId: string, deleted?: readonly string[]) => Promise<void>;
  /** The application services, for `m.login.application_service`. */
  appservices?: AppserviceLogins;
}

export function createAccountsService(ctx: HomeserverContext, deps: AccountsDeps = {}): AccountsService {
  const { store, config, random, logger } = ctx;
  const rooms = deps.rooms ?? (() => undefined);
  const sessions = createSessions(ctx, { deviceListChanged: deps.deviceListChanged });
  const credentials = createCredentials(ctx, sessions, deps.appservices);
  const uia = createUia(ctx, {
    [DUMMY]: async () => ({}),
    [PASSWORD]: credentials.passwordStage,
    [REGISTRATION_TOKEN]: registrationTokenStage(ctx),
  });

  return {
    ...createProfileService(ctx, rooms),
    ...createRegistration(ctx, { sessions, uia }),
    ...createDevices(ctx, {
      sessions,
      uia,
      ownerFlows: credentials.ownerFlows,
      deviceListChanged: deps.deviceListChanged,
    }),
    resolveAccessToken: sessions.resolveAccessToken,
    refresh: sessions.refresh,
    loginFlows: () => [
      { type: 'm.login.password' },
      { type: 'm.login.token', get_login_token: true },
      ...(deps.appservices && deps.appservices.registrations.length > 0
        ? [{ type: 'm.login.application_service' }]
        : []),
    ],
    login: credentials.login,

    async logout(auth) {
      if (auth.deviceId !== null) await sessions.removeDevices(auth.userId, [auth.deviceId]);
    },

    async logoutAll(userId) {
      const devices = await store.accounts.listDevices(userId);
      await sessions.removeDevices(
        userId,
        devices.map((d) => d.deviceId),
      );
    },

    async requestOpenIdToken(auth) {
      const accessToken = `oid_${randomString(random, 32)}`;
      const now = ctx.clock.now();
      await store.accounts.putOpenIdToken(accessToken, auth.userId, now + OPENID_TOKEN_LIFETIME_MS, now);
      return { accessToken, expiresInSeconds: OPENID_TOKEN_LIFETIME_MS / 1000 };
    },

    openIdUser(token) {
      return store.accounts.openIdTokenUser(token, ctx.clock.now());
    },

    async confirmOwner({ auth, operation, uia: authDict }) {
      const done = await uia.authenticate({
        operation,
        userId: auth.userId,
        flows: await credentials.ownerFlows(auth),
        auth: authDict,
      });
      await uia.finish(done.sessionId);
    },

    async changePassword({ auth, newPassword, logoutDevices, uia: authDict }) {
      checkNewPassword(newPassword);
      const done = await uia.authenticate({
        operation: 'change_password',
        userId: auth?.userId ?? null,
        flows: await credentials.ownerFlows(auth),
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
        await sessions.removeDevices(
          userId,
          devices.map((d) => d.deviceId).filter((d) => d !== keep),
        );
      }
    },

    async deactivate({ auth, erase, uia: authDict }) {
      const done = await uia.authenticate({
        operation: 'deactivate',
        userId: auth?.userId ?? null,
        flows: await credentials.ownerFlows(auth),
        auth: authDict,
      });
      const userId = done.userId;
      if (userId === null) throw forbidden('Could not tell which account to deactivate');
      await uia.finish(done.sessionId);
      await deactivateAccount(userId, erase);
    },

    deactivateAccount: (userId, { erase }) => deactivateAccount(userId, erase),

    async setPassword(userId, password, { logoutDevices }) {
      checkNewPassword(password);
      await store.accounts.updateUser(userId, {
        passwordHash: await hashPassword(password, config.passwordIterations, random),
      });
      if (logoutDevices) {
        const devices = await store.accounts.listDevices(userId);
        await sessions.removeDevices(
          userId,
          devices.map((d) => d.deviceId),
        );
      }
    },
  };

  async function deactivateAccount(userId: string, erase: boolean): Promise<void> {
    // First the account (no more logins or requests), then the rooms, as far as they go.
    await store.accounts.deactivateUser(userId);
    sessions.forgetUser(userId);
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
  }
}
