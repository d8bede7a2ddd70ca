/**
 * Sessions: access and refresh tokens bound to devices — client-server-api/_index.md "Client
 * Authentication", "Relationship between access tokens and devices", "Refreshing access
 * tokens", "Soft logout" — and when each device was last seen.
 */
import { sha256Utf8Base64 } from '../../core/crypto.ts';
import { isValidDeviceId } from '../../core/identifiers.ts';
import { type Auth, type HomeserverContext, randomString } from '../context.ts';
import { invalidParam, matrixError, unknownToken } from '../errors.ts';
import type { SessionGrant } from './index.ts';

/** How often a device's `last_seen_ts` is written at most: a write per request would be waste. */
const LAST_SEEN_INTERVAL_MS = 10 * 60 * 1000;
/** Tokens whose owner is remembered (a bound on memory, not a tuning knob). */
const TOKEN_OWNERS_KEPT = 4096;

export interface Sessions {
  newToken(prefix: string): string;
  newDeviceId(): string;
  /** When a new access token expires: never for clients that cannot refresh. */
  tokenExpiry(wantsRefresh: boolean): { expiresAt: number | null; expiresInMs?: number };
  issue(input: {
    userId: string;
    deviceId?: string;
    displayName?: string;
    refreshToken?: boolean;
  }): Promise<SessionGrant>;
  /** Deletes devices (tokens, keys, to-device inbox) and wakes the user's other /sync requests. */
  removeDevices(userId: string, deviceIds: readonly string[]): Promise<void>;
  /** Drops what this process remembers of a deactivated user's devices. */
  forgetUser(userId: string): void;
  /** `clientAddress` (the caller's IP, when the host knows it) becomes the device's `last_seen_ip`. */
  resolveAccessToken(token: string, clientAddress?: string): Promise<Auth | null>;
  refresh(refreshToken: string): Promise<Omit<SessionGrant, 'userId' | 'deviceId'>>;
}

export function checkDeviceId(deviceId: string | undefined): void {
  if (deviceId !== undefined && !isValidDeviceId(deviceId)) {
    throw invalidParam('device_id must be 1–255 bytes of printable text');
  }
}

export function createSessions(
  ctx: HomeserverContext,
  hooks: { deviceListChanged?: (userId: string, deleted?: readonly string[]) => Promise<void> } = {},
): Sessions {
  const { store, clock, config, random } = ctx;
  /** Device → when its last_seen_ts was last written by this process. */
  const lastSeenWritten = new Map<string, number>();
  /** Device → the address last written as its `last_seen_ip`: a new address is written at once. */
  const lastSeenIp = new Map<string, string>();
  /**
   * Access token (its sha256, not the token itself) → the user its row named, most recently
   * used last: see `resolveAccessToken`.
   */
  const owners = new Map<string, string>();

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

  /** Deletes devices (tokens, keys, to-device inbox) and wakes the user's other /sync requests. */
  async function removeDevices(userId: string, deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await store.accounts.deleteDevices(userId, deviceIds);
    for (const d of deviceIds) lastSeenWritten.delete(`${userId}\u0000${d}`);
    ctx.notifier.notify({ users: [userId] });
    // Others sharing a room stop encrypting for the deleted devices once they hear of it.
    await hooks.deviceListChanged?.(userId, deviceIds);
  }

  return {
    newToken,
    newDeviceId,
    tokenExpiry,
    issue: issueSession,
    removeDevices,

    forgetUser(userId) {
      for (const key of lastSeenWritten.keys())
        if (key.startsWith(`${userId}\u0000`)) lastSeenWritten.delete(key);
    },

    async resolveAccessToken(token, clientAddress) {
      // The user's row is read beside the token's when the token's owner is known from an
      // earlier request (a token never changes owner); otherwise, or if the token's row names
      // another user, after it. Either way both rows are read for this request.
      const tokenKey = sha256Utf8Base64(token);
      const hint = owners.get(tokenKey);
      const [info, hinted] = await Promise.all([
        store.accounts.getAccessToken(token),
        hint === undefined ? undefined : store.accounts.getUser(hint),
      ]);
      if (!info) {
        owners.delete(tokenKey);
        return null;
      }
      const now = clock.now();
      if (info.expiresAt !== null && info.expiresAt <= now) {
        throw unknownToken('Access token has expired', { softLogout: true });
      }
      const user = info.userId === hint ? hinted : await store.accounts.getUser(info.userId);
      owners.delete(tokenKey);
      owners.set(tokenKey, info.userId);
      if (owners.size > TOKEN_OWNERS_KEPT) owners.delete(owners.keys().next().value as string);
      if (!user || user.deactivated) return null;
      const key = `${info.userId}\u0000${info.deviceId}`;
      const written = lastSeenWritten.get(key);
      const ipChanged = clientAddress !== undefined && lastSeenIp.get(key) !== clientAddress;
      if (written === undefined || now - written >= LAST_SEEN_INTERVAL_MS || ipChanged) {
        lastSeenWritten.set(key, now);
        if (clientAddress !== undefined) lastSeenIp.set(key, clientAddress);
        await store.accounts.updateDevice(info.userId, info.deviceId, {
          lastSeenAt: now,
          ...(clientAddress !== undefined ? { lastSeenIp: clientAddress } : {}),
        });
      }
      // admin.yaml "Account locking": a locked account's tokens are soft-logged-out.
      if (user.locked)
        throw matrixError(401, 'M_USER_LOCKED', 'This account has been locked', { soft_logout: true });
      return {
        userId: info.userId,
        deviceId: info.deviceId,
        isGuest: user.isGuest,
        ...(user.admin ? { admin: true } : {}),
        ...(user.suspended ? { suspended: true } : {}),
      };
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
  };
}
