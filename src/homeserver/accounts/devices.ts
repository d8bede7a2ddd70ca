/**
 * Devices — client-server-api/_index.md "Device Management" (device_management.yaml) and the
 * administration whois (admin.yaml).
 */
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, notFound } from '../errors.ts';
import type { Credentials } from './credentials.ts';
import type { AccountsService, DeviceInfo, WhoisResult } from './index.ts';
import type { Sessions } from './sessions.ts';
import type { Uia } from './uia.ts';

/** Device display names are shown in lists and key queries; Synapse's limit. */
export const MAX_DEVICE_NAME_LENGTH = 100;

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

export type Devices = Pick<
  AccountsService,
  'listDevices' | 'getDevice' | 'updateDevice' | 'deleteDevices' | 'whois'
>;

export function createDevices(
  ctx: HomeserverContext,
  deps: {
    sessions: Sessions;
    uia: Uia;
    ownerFlows: Credentials['ownerFlows'];
    deviceListChanged?: (userId: string) => Promise<void>;
  },
): Devices {
  const { store } = ctx;
  const { sessions, uia, ownerFlows } = deps;
  return {
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
        await deps.deviceListChanged?.(userId);
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
      await sessions.removeDevices(
        auth.userId,
        unique.filter((d) => existing.has(d)),
      );
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
  };
}
