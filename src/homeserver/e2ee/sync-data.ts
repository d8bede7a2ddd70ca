/**
 * The end-to-end-encryption data a sync answer carries (end_to_end_encryption.md "Extensions
 * to /sync", send_to_device.md "Extensions to /sync"), for every sync flavour: `/sync`
 * (src/homeserver/sync/devices.ts) and simplified sliding sync's `to_device` and `e2ee`
 * extensions read these, so both see the same device lists, messages and counts.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';

export interface E2eeSyncData {
  /** Users whose device lists changed between two device-list stream positions, as seen by `userId` (sharing a room), and users who no longer share any room with `userId`. */
  deviceListChanges(
    userId: string,
    fromPosition: number,
    toPosition: number,
  ): Promise<{ changed: string[]; left: string[] }>;
  /** To-device messages for the device after `afterPosition` (exclusive), at most `limit`, and the position of the last one returned (or afterPosition). */
  toDeviceMessages(
    userId: string,
    deviceId: string,
    afterPosition: number,
    limit: number,
  ): Promise<{ events: JsonObject[]; position: number }>;
  /** Acknowledge: deletes the device's to-device messages up to and including `position`. */
  acknowledgeToDevice(userId: string, deviceId: string, position: number): Promise<void>;
  /** device_one_time_keys_count and device_unused_fallback_key_types for the device. */
  keyCounts(
    userId: string,
    deviceId: string,
  ): Promise<{ oneTimeKeyCounts: Record<string, number>; unusedFallbackKeyTypes: string[] }>;
}

/** The key counts a sync answer shows, from the stored ones. */
export function keyCountsOf(stored: {
  oneTimeKeyCounts: Record<string, number>;
  unusedFallbackKeyTypes: string[];
}): { oneTimeKeyCounts: Record<string, number>; unusedFallbackKeyTypes: string[] } {
  // Some clients read a missing count as "unknown" and upload again: say 0, as Synapse does.
  return {
    oneTimeKeyCounts: { signed_curve25519: 0, ...stored.oneTimeKeyCounts },
    unusedFallbackKeyTypes: stored.unusedFallbackKeyTypes,
  };
}

export function createE2eeSyncData(ctx: Pick<HomeserverContext, 'store'>): E2eeSyncData {
  const { store } = ctx;
  return {
    async deviceListChanges(userId, fromPosition, toPosition) {
      const changed: string[] = [];
      const left: string[] = [];
      if (toPosition <= fromPosition) return { changed, left };
      const others = await store.e2ee.deviceListChanges(fromPosition, toPosition);
      if (others.length === 0) return { changed, left };
      const mine = await store.rooms.roomsForUser(userId);
      const joined = new Set(mine.filter((m) => m.membership === 'join').map((m) => m.roomId));
      const everShared = new Set(mine.map((m) => m.roomId));
      for (const other of others) {
        if (other === userId) {
          changed.push(other);
          continue;
        }
        const theirs = await store.rooms.roomsForUser(other);
        if (theirs.some((m) => m.membership === 'join' && joined.has(m.roomId))) changed.push(other);
        // No room in common now, but one both have been members of: the client may be
        // tracking them and should stop. A stranger's change is not shown at all.
        else if (theirs.some((m) => everShared.has(m.roomId))) left.push(other);
      }
      return { changed: changed.sort(), left: left.sort() };
    },

    async toDeviceMessages(userId, deviceId, afterPosition, limit) {
      const page = await store.e2ee.toDeviceMessages(userId, deviceId, afterPosition, limit);
      const events = page.messages.map((m) => ({ sender: m.sender, type: m.type, content: m.content }));
      const position = page.messages[page.messages.length - 1]?.stream ?? afterPosition;
      return { events, position };
    },

    async acknowledgeToDevice(userId, deviceId, position) {
      if (position > 0) await store.e2ee.deleteToDeviceMessages(userId, deviceId, position);
    },

    async keyCounts(userId, deviceId) {
      const [counts, unusedFallbackKeyTypes] = await Promise.all([
        store.e2ee.countOneTimeKeys(userId, deviceId),
        store.e2ee.unusedFallbackKeyTypes(userId, deviceId),
      ]);
      return keyCountsOf({ oneTimeKeyCounts: counts, unusedFallbackKeyTypes });
    },
  };
}
