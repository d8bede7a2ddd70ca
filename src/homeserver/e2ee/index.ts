/**
 * End-to-end encryption, the server's part — client-server-api end_to_end_encryption.md,
 * send_to_device.md: key distribution (keys.ts), to-device messages (to-device.ts),
 * server-side key backups (backup.ts), dehydrated devices (MSC3814, dehydrated.ts), and the data each sync answer carries (sync-data.ts;
 * `/sync` and sliding sync both read it through this service).
 *
 * Federation plugs in through `E2eeRemote` (ports.ts): remote key queries and claims, to-device
 * messages for remote users, and the device-list updates other servers are owed.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';
import type { E2eeRemote } from '../ports.ts';
import { serverOf } from '../rooms/accept.ts';
import { type BackupService, createBackupService } from './backup.ts';
import { createDehydratedDeviceService, type DehydratedDeviceService } from './dehydrated.ts';
import { createKeysService, type KeysService } from './keys.ts';
import { createE2eeSyncData, type E2eeSyncData } from './sync-data.ts';
import { createToDeviceService, type ToDeviceDeps, type ToDeviceService } from './to-device.ts';

export type { BackupService, BackupSession } from './backup.ts';
export type { DehydratedDeviceService, DehydratedDeviceUpload } from './dehydrated.ts';
export type { CrossSigningType, KeysService } from './keys.ts';
export type { E2eeSyncData } from './sync-data.ts';
export type { ToDeviceService } from './to-device.ts';

export interface E2eeService extends KeysService, ToDeviceService, E2eeSyncData, DehydratedDeviceService {
  readonly backup: BackupService;
  /**
   * A user's device list changed outside this service (a device deleted or renamed; the
   * store has recorded it): wakes the syncs that may show it and tells federation, naming
   * the devices `deleted`.
   */
  deviceListChanged(userId: string, deleted?: readonly string[]): Promise<void>;
  /**
   * An E2EE EDU from `origin` (`m.direct_to_device`, `m.device_list_update`,
   * `m.signing_key_update`); false when `eduType` is none of these. A remote user's device
   * list is not kept here (`/keys/query` asks their server each time): an update marks the
   * user changed, so the clients sharing a room with them see `device_lists.changed` and ask
   * again. An update about a user of another server than `origin` is dropped.
   */
  receiveEdu(origin: string, eduType: unknown, content: JsonObject): Promise<boolean>;
}

/** No federation: remote keys are failures, remote to-device messages are dropped (and logged). */
export const e2eeRemoteOff: E2eeRemote = {
  queryKeys: () => Promise.reject(new Error('federation is off')),
  claimKeys: () => Promise.reject(new Error('federation is off')),
  sendToDevice: () => Promise.reject(new Error('federation is off')),
  deviceListChanged: () => Promise.resolve(),
};

export function createE2eeService(
  ctx: HomeserverContext,
  deps: { remote?: E2eeRemote; toDeviceQueued?: ToDeviceDeps['queued'] } = {},
): E2eeService {
  const remote = deps.remote ?? e2eeRemoteOff;
  const syncData = createE2eeSyncData(ctx);

  /** Wakes the syncs that may show the change (the user's, and their rooms'), and tells federation. */
  async function keysChanged(userId: string, deleted?: readonly string[]): Promise<void> {
    const rooms = await ctx.store.rooms.roomsForUser(userId, 'join');
    ctx.notifier.notify({ users: [userId], rooms: rooms.map((r) => r.roomId) });
    try {
      await remote.deviceListChanged(userId, deleted);
    } catch (err) {
      ctx.logger.warn('device-list update for other servers failed', { userId, error: String(err) });
    }
  }

  const toDevice = createToDeviceService(ctx, {
    remote,
    ...(deps.toDeviceQueued ? { queued: deps.toDeviceQueued } : {}),
  });

  /** A remote user's devices or cross-signing keys changed: their local room-mates' syncs learn it. */
  async function remoteKeysChanged(origin: string, userId: unknown): Promise<void> {
    if (typeof userId !== 'string' || serverOf(userId) !== origin) return;
    const rooms = await ctx.store.rooms.roomsForUser(userId, 'join');
    // A user sharing no room with ours is nobody's concern here (Synapse ignores them too).
    if (rooms.length === 0) return;
    await ctx.store.e2ee.markDeviceListChanged(userId);
    ctx.notifier.notify({ rooms: rooms.map((r) => r.roomId) });
  }

  const keys = createKeysService(ctx, { remote, syncData, keysChanged });
  return {
    ...syncData,
    ...keys,
    ...createDehydratedDeviceService(ctx, { keys, syncData, keysChanged }),
    ...toDevice,
    backup: createBackupService(ctx),
    deviceListChanged: keysChanged,
    async receiveEdu(origin, eduType, content) {
      if (eduType === 'm.direct_to_device') await toDevice.receiveToDevice(origin, content);
      else if (eduType === 'm.device_list_update' || eduType === 'm.signing_key_update')
        await remoteKeysChanged(origin, content.user_id);
      else return false;
      return true;
    },
  };
}
