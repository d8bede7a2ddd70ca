/**
 * Users, devices, access and refresh tokens, UIA sessions, registration tokens
 * (client-server-api "Client authentication", "Device management", "Registration").
 * Tokens are kept as sha256 hashes only.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import type { AccountStore, DeviceRecord, NewSession, RegistrationToken, UserRecord } from '../store.ts';
import { StoreError } from '../store.ts';
import { hashToken, nextPosition, requireString } from './common.ts';

/** Every table a device owns: deleting a device empties its rows in each. */
export const DEVICE_TABLES = [
  'devices',
  'access_tokens',
  'refresh_tokens',
  'device_keys',
  'one_time_keys',
  'fallback_keys',
  'to_device',
  'sliding_sync_connections',
  'device_list_changes',
  'streams',
] as const;

export function toUser(row: Row): UserRecord {
  return {
    userId: row.user_id as string,
    passwordHash: (row.password_hash as string | null) ?? null,
    createdAt: row.created_ts as number,
    isGuest: row.is_guest === true,
    admin: row.admin === true,
    deactivated: row.deactivated === true,
    userType: (row.user_type as string | null) ?? null,
    locked: row.locked === true,
    suspended: row.suspended === true,
  };
}

function toDevice(row: Row): DeviceRecord {
  return {
    userId: row.user_id as string,
    deviceId: row.device_id as string,
    displayName: (row.display_name as string | null) ?? null,
    createdAt: row.created_ts as number,
    lastSeenAt: (row.last_seen_ts as number | null) ?? null,
    lastSeenIp: (row.last_seen_ip as string | null) ?? null,
  };
}

function toRegistrationToken(row: Row): RegistrationToken {
  return {
    token: row.token as string,
    usesAllowed: (row.uses_allowed as number | null) ?? null,
    completed: row.completed as number,
    expiresAt: (row.expires_ts as number | null) ?? null,
  };
}

async function createSession(tx: Tx, session: NewSession, replaceDeviceTokens = false): Promise<void> {
  requireString(session.accessToken, 'accessToken');
  const key = [session.userId, session.deviceId];
  if (replaceDeviceTokens) {
    // client-server-api "Relationship between access tokens and devices": when a client names
    // its device_id "the server will invalidate any access and refresh tokens previously
    // assigned to that device" — a surviving refresh token could mint access again.
    await tx.deleteRange('access_tokens', { index: '[user_id+device_id]', prefix: key });
    await tx.deleteRange('refresh_tokens', { index: '[user_id+device_id]', prefix: key });
  }
  const device = await tx.get('devices', key);
  if (!device) {
    await tx.put('devices', {
      user_id: session.userId,
      device_id: session.deviceId,
      display_name: session.displayName ?? null,
      created_ts: session.now,
      last_seen_ts: session.now,
      last_seen_ip: null,
    });
  } else if (session.displayName !== undefined) {
    await tx.put('devices', { ...device, display_name: session.displayName });
  }
  await tx.insert('access_tokens', {
    token_hash: hashToken(session.accessToken),
    user_id: session.userId,
    device_id: session.deviceId,
    created_ts: session.now,
    expires_ts: session.expiresAt ?? null,
  });
  if (session.refreshToken !== undefined) {
    await tx.insert('refresh_tokens', {
      token_hash: hashToken(requireString(session.refreshToken, 'refreshToken')),
      user_id: session.userId,
      device_id: session.deviceId,
      created_ts: session.now,
    });
  }
}

/** Records that a user's device list changed; one row per user (its latest position). */
export async function markDeviceListChanged(tx: Tx, userId: string): Promise<number> {
  const position = await nextPosition(tx, 'device_lists');
  for (const old of await tx.query('device_list_changes', { index: 'user_id', prefix: [userId] })) {
    await tx.delete('device_list_changes', old.stream as number);
  }
  await tx.put('device_list_changes', { stream: position, user_id: userId });
  return position;
}

async function deleteDevices(tx: Tx, userId: string, deviceIds: readonly string[]): Promise<void> {
  for (const deviceId of deviceIds) {
    const prefix = [userId, deviceId];
    await tx.delete('devices', prefix);
    await tx.deleteRange('access_tokens', { index: '[user_id+device_id]', prefix });
    await tx.deleteRange('refresh_tokens', { index: '[user_id+device_id]', prefix });
    await tx.delete('device_keys', prefix);
    await tx.deleteRange('one_time_keys', { prefix });
    await tx.deleteRange('fallback_keys', { prefix });
    await tx.deleteRange('to_device', { prefix });
    await tx.deleteRange('sliding_sync_connections', { prefix });
  }
  if (deviceIds.length > 0) await markDeviceListChanged(tx, userId);
}

export function accountStore(engine: Engine): AccountStore {
  return {
    async createUser(user, extras = {}) {
      requireString(user?.userId, 'userId');
      const tables = ['users', 'profiles', 'devices', 'access_tokens', 'refresh_tokens'];
      await engine.write(tables, async (tx) => {
        await tx.insert('users', {
          user_id: user.userId,
          password_hash: user.passwordHash ?? null,
          created_ts: user.createdAt,
          is_guest: user.isGuest === true,
          admin: user.admin === true,
          deactivated: false,
          user_type: user.userType ?? null,
        });
        if (extras.profile) await tx.put('profiles', { user_id: user.userId, fields: extras.profile });
        if (extras.session) {
          if (extras.session.userId !== user.userId)
            throw new StoreError('INVALID', 'the session is for another user');
          await createSession(tx, extras.session);
        }
      });
    },

    async getUser(userId) {
      const row = await engine.read(['users'], (tx) => tx.get('users', userId));
      return row ? toUser(row) : null;
    },

    async updateUser(userId, patch) {
      await engine.write(['users'], async (tx) => {
        const row = await tx.get('users', userId);
        if (!row) throw new StoreError('NOT_FOUND', `user ${userId} is not stored`);
        await tx.put('users', {
          ...row,
          ...(patch.passwordHash !== undefined ? { password_hash: patch.passwordHash } : {}),
          ...(patch.admin !== undefined ? { admin: patch.admin } : {}),
          ...(patch.userType !== undefined ? { user_type: patch.userType } : {}),
          ...(patch.locked !== undefined ? { locked: patch.locked } : {}),
          ...(patch.suspended !== undefined ? { suspended: patch.suspended } : {}),
        });
      });
    },

    async deactivateUser(userId) {
      await engine.write(['users', ...DEVICE_TABLES], async (tx) => {
        const row = await tx.get('users', userId);
        if (!row) throw new StoreError('NOT_FOUND', `user ${userId} is not stored`);
        await tx.put('users', { ...row, deactivated: true, password_hash: null });
        const devices = await tx.query('devices', { prefix: [userId] });
        await deleteDevices(
          tx,
          userId,
          devices.map((device) => device.device_id as string),
        );
      });
    },

    async createSession(session, options = {}) {
      await engine.write(['devices', 'access_tokens', 'refresh_tokens'], (tx) =>
        createSession(tx, session, options.replaceDeviceTokens === true),
      );
    },

    async getAccessToken(token) {
      const row = await engine.read(['access_tokens'], (tx) => tx.get('access_tokens', hashToken(token)));
      if (!row) return null;
      return {
        userId: row.user_id as string,
        deviceId: row.device_id as string,
        createdAt: row.created_ts as number,
        expiresAt: (row.expires_ts as number | null) ?? null,
      };
    },

    async deleteAccessToken(token) {
      await engine.write(['access_tokens'], (tx) => tx.delete('access_tokens', hashToken(token)));
    },

    async putOpenIdToken(token, userId, expiresAt, now) {
      await engine.write(['openid_tokens'], async (tx) => {
        for (const old of await tx.query('openid_tokens', { index: 'expires_at', upper: [now], limit: 100 }))
          await tx.delete('openid_tokens', old.token_hash as string);
        await tx.put('openid_tokens', {
          token_hash: hashToken(token),
          user_id: userId,
          expires_at: expiresAt,
        });
      });
    },

    async openIdTokenUser(token, now) {
      const row = await engine.read(['openid_tokens'], (tx) => tx.get('openid_tokens', hashToken(token)));
      return row && (row.expires_at as number) > now ? (row.user_id as string) : null;
    },

    rotateRefreshToken(refreshToken, next) {
      const oldHash = hashToken(refreshToken);
      return engine.write(['devices', 'access_tokens', 'refresh_tokens'], async (tx) => {
        const row = await tx.get('refresh_tokens', oldHash);
        if (!row) return null;
        const userId = row.user_id as string;
        const deviceId = row.device_id as string;
        await tx.delete('refresh_tokens', oldHash);
        await tx.deleteRange('access_tokens', { index: '[user_id+device_id]', prefix: [userId, deviceId] });
        await createSession(tx, { userId, deviceId, ...next });
        return { userId, deviceId };
      });
    },

    async getDevice(userId, deviceId) {
      const row = await engine.read(['devices'], (tx) => tx.get('devices', [userId, deviceId]));
      return row ? toDevice(row) : null;
    },

    async listDevices(userId) {
      const rows = await engine.read(['devices'], (tx) => tx.query('devices', { prefix: [userId] }));
      return rows.map(toDevice);
    },

    updateDevice(userId, deviceId, patch) {
      return engine.write(['devices'], async (tx) => {
        const row = await tx.get('devices', [userId, deviceId]);
        if (!row) return false;
        await tx.put('devices', {
          ...row,
          ...(patch.displayName !== undefined ? { display_name: patch.displayName } : {}),
          ...(patch.lastSeenAt !== undefined ? { last_seen_ts: patch.lastSeenAt } : {}),
          ...(patch.lastSeenIp !== undefined ? { last_seen_ip: patch.lastSeenIp } : {}),
        });
        return true;
      });
    },

    async deleteDevices(userId, deviceIds) {
      await engine.write(DEVICE_TABLES, (tx) => deleteDevices(tx, userId, deviceIds));
    },

    async getDehydratedDevice(userId) {
      const rows = await engine.read(['devices'], (tx) => tx.query('devices', { prefix: [userId] }));
      const row = rows.find((r) => r.dehydrated != null);
      return row ? { deviceId: row.device_id as string, deviceData: row.dehydrated as JsonObject } : null;
    },

    async putDehydratedDevice(device, now) {
      const userId = requireString(device?.userId, 'userId');
      const deviceId = requireString(device.deviceId, 'deviceId');
      await engine.write(DEVICE_TABLES, async (tx) => {
        const existing = await tx.get('devices', [userId, deviceId]);
        if (existing && existing.dehydrated == null)
          throw new StoreError('CONFLICT', `${deviceId} is an ordinary device of ${userId}`);
        const earlier = (await tx.query('devices', { prefix: [userId] })).filter((r) => r.dehydrated != null);
        await deleteDevices(
          tx,
          userId,
          earlier.map((r) => r.device_id as string),
        );
        await tx.put('devices', {
          user_id: userId,
          device_id: deviceId,
          display_name: device.displayName,
          created_ts: now,
          last_seen_ts: null,
          last_seen_ip: null,
          dehydrated: device.deviceData,
        });
      });
    },

    deleteDehydratedDevice(userId) {
      return engine.write(DEVICE_TABLES, async (tx) => {
        const row = (await tx.query('devices', { prefix: [userId] })).find((r) => r.dehydrated != null);
        if (!row) return null;
        await deleteDevices(tx, userId, [row.device_id as string]);
        return row.device_id as string;
      });
    },

    async putUiaSession(sessionId, data, expiresAt) {
      await engine.write(['uia_sessions'], (tx) =>
        tx.put('uia_sessions', { session_id: sessionId, data, expires_ts: expiresAt }),
      );
    },

    async getUiaSession(sessionId, now) {
      const row = await engine.read(['uia_sessions'], (tx) => tx.get('uia_sessions', sessionId));
      return row && (row.expires_ts as number) > now ? (row.data as JsonObject) : null;
    },

    async deleteUiaSession(sessionId) {
      await engine.write(['uia_sessions'], (tx) => tx.delete('uia_sessions', sessionId));
    },

    async putRegistrationToken(token) {
      await engine.write(['registration_tokens'], (tx) =>
        tx.put('registration_tokens', {
          token: requireString(token.token, 'token'),
          uses_allowed: token.usesAllowed,
          completed: token.completed,
          expires_ts: token.expiresAt,
        }),
      );
    },

    async getRegistrationToken(token) {
      const row = await engine.read(['registration_tokens'], (tx) => tx.get('registration_tokens', token));
      return row ? toRegistrationToken(row) : null;
    },

    useRegistrationToken(token, now) {
      return engine.write(['registration_tokens'], async (tx) => {
        const row = await tx.get('registration_tokens', token);
        if (!row) return false;
        const t = toRegistrationToken(row);
        if (t.expiresAt !== null && t.expiresAt <= now) return false;
        if (t.usesAllowed !== null && t.completed >= t.usesAllowed) return false;
        await tx.put('registration_tokens', { ...row, completed: t.completed + 1 });
        return true;
      });
    },
  };
}
