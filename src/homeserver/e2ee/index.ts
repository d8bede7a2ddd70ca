/**
 * End-to-end encryption, the server's part — client-server-api end_to_end_encryption.md,
 * send_to_device.md: key distribution (keys.ts), to-device messages (to-device.ts),
 * server-side key backups (backup.ts), dehydrated devices (MSC3814, dehydrated.ts), and the data each sync answer carries (sync-data.ts;
 * `/sync` and sliding sync both read it through this service).
 *
 * Federation plugs in through `E2eeRemote` (ports.ts): remote key queries and claims, to-device
 * messages for remote users, and the device-list updates other servers are owed.
 */
import type { HomeserverContext } from '../context.ts';
import type { E2eeRemote } from '../ports.ts';
import { type BackupService, createBackupService } from './backup.ts';
import { createDehydratedDeviceService, type DehydratedDeviceService } from './dehydrated.ts';
import { createKeysService, type KeysService } from './keys.ts';
import { createE2eeSyncData, type E2eeSyncData } from './sync-data.ts';
import { createToDeviceService, type ToDeviceService } from './to-device.ts';

export type { BackupService, BackupSession } from './backup.ts';
export type { DehydratedDeviceService, DehydratedDeviceUpload } from './dehydrated.ts';
export type { CrossSigningType, KeysService } from './keys.ts';
export type { E2eeSyncData } from './sync-data.ts';
export type { ToDeviceService } from './to-device.ts';

export interface E2eeService extends KeysService, ToDeviceService, E2eeSyncData, DehydratedDeviceService {
  readonly backup: BackupService;
  /**
   * A user's device list changed outside this service (a device deleted or renamed; the
   * store has recorded it): wakes the syncs that may show it and tells federation.
   */
  deviceListChanged(userId: string): Promise<void>;
}

/** No federation: remote keys are failures, remote to-device messages are dropped (and logged). */
export const e2eeRemoteOff: E2eeRemote = {
  queryKeys: () => Promise.reject(new Error('federation is off')),
  claimKeys: () => Promise.reject(new Error('federation is off')),
  sendToDevice: () => Promise.reject(new Error('federation is off')),
  deviceListChanged: () => Promise.resolve(),
};

export function createE2eeService(ctx: HomeserverContext, deps: { remote?: E2eeRemote } = {}): E2eeService {
  const remote = deps.remote ?? e2eeRemoteOff;
  const syncData = createE2eeSyncData(ctx);

  /** Wakes the syncs that may show the change (the user's, and their rooms'), and tells federation. */
  async function keysChanged(userId: string): Promise<void> {
    const rooms = await ctx.store.rooms.roomsForUser(userId, 'join');
    ctx.notifier.notify({ users: [userId], rooms: rooms.map((r) => r.roomId) });
    try {
      await remote.deviceListChanged(userId);
    } catch (err) {
      ctx.logger.warn('device-list update for other servers failed', { userId, error: String(err) });
    }
  }

  const keys = createKeysService(ctx, { remote, syncData, keysChanged });
  return {
    ...syncData,
    ...keys,
    ...createDehydratedDeviceService(ctx, { keys, syncData, keysChanged }),
    ...createToDeviceService(ctx, { remote }),
    backup: createBackupService(ctx),
    deviceListChanged: keysChanged,
  };
}
