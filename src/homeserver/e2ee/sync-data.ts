/**
 * A stand-in for the E2EE service's sync-facing part, kept to the four methods sliding sync
 * reads (its `to_device` and `e2ee` extensions), over the store's E2EE area. The E2EE
 * endpoints' own service replaces this file: same names, same meaning. Positions are the
 * store's `toDevice` / `deviceLists` stream positions (`store.positions()`).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';

export interface E2eeSyncData {
  /** Users sharing a room with `userId` (or the user) whose devices changed in (from, to]. */
  deviceListChanges(
    userId: string,
    fromPosition: number,
    toPosition: number,
  ): Promise<{ changed: string[]; left: string[] }>;
  /** Up to `limit` messages after `afterPosition`, and the position the client has read to. */
  toDeviceMessages(
    userId: string,
    deviceId: string,
    afterPosition: number,
    limit: number,
  ): Promise<{ events: JsonObject[]; position: number }>;
  /** The device has the messages up to `position`: they may be deleted (send_to_device.md). */
  acknowledgeToDevice(userId: string, deviceId: string, position: number): Promise<void>;
  keyCounts(
    userId: string,
    deviceId: string,
  ): Promise<{ oneTimeKeyCounts: Record<string, number>; unusedFallbackKeyTypes: string[] }>;
}

export function createE2eeSyncData(ctx: Pick<HomeserverContext, 'store'>): E2eeSyncData {
  const { store } = ctx;
  return {
    async deviceListChanges(userId, fromPosition, toPosition) {
      if (toPosition <= fromPosition) return { changed: [], left: [] };
      const joined = new Set((await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId));
      const changed: string[] = [];
      for (const other of await store.e2ee.deviceListChanges(fromPosition, toPosition)) {
        const shares =
          other === userId ||
          (await store.rooms.roomsForUser(other, 'join')).some((m) => joined.has(m.roomId));
        if (shares) changed.push(other);
      }
      // Who stopped sharing a room is the E2EE service's to tell; this stand-in does not.
      return { changed: changed.sort(), left: [] };
    },
    async toDeviceMessages(userId, deviceId, afterPosition, limit) {
      const { messages, next } = await store.e2ee.toDeviceMessages(userId, deviceId, afterPosition, limit);
      const last = messages[messages.length - 1]?.stream ?? afterPosition;
      return {
        events: messages.map((m) => ({ sender: m.sender, type: m.type, content: m.content })),
        position: next ?? last,
      };
    },
    acknowledgeToDevice: (userId, deviceId, position) =>
      store.e2ee.deleteToDeviceMessages(userId, deviceId, position),
    async keyCounts(userId, deviceId) {
      const [oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
        store.e2ee.countOneTimeKeys(userId, deviceId),
        store.e2ee.unusedFallbackKeyTypes(userId, deviceId),
      ]);
      return { oneTimeKeyCounts, unusedFallbackKeyTypes };
    },
  };
}
