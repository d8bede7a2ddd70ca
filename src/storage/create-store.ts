/**
 * The one implementation of `Store`, written once over an `Engine`; the backends differ
 * only in the engine they provide (`indexeddb/`, `sqlite/`).
 */
import { accountStore } from './areas/accounts.ts';
import { currentPosition } from './areas/common.ts';
import { e2eeStore, oneTimeKeyCountsIn, unusedFallbackKeyTypesIn } from './areas/e2ee.ts';
import { federationStore, mediaStore } from './areas/media-federation.ts';
import { operatorStore } from './areas/operator.ts';
import { receiptStore, unreadCountsIn } from './areas/receipts.ts';
import { roomStore } from './areas/rooms.ts';
import { roomsOfUser } from './areas/rooms-read.ts';
import { PushSettingsCache, userDataStore } from './areas/user-data.ts';
import { exportBackup, importBackup } from './backup.ts';
import type { Engine } from './engine.ts';
import type { MediaStore, Store, SyncSnapshot } from './store.ts';

/** Parts a backend may provide instead of the engine-backed ones. */
export interface StoreParts {
  /** Media kept elsewhere than in the engine's rows (files under `--data`). */
  media?: {
    store: MediaStore;
    /** The bytes of media whose row holds none, for backups. */
    fileBlob(origin: string, mediaId: string): Promise<Blob | null>;
    /** After an import replaced every row: drops the bytes no row names any more. */
    sweep(): Promise<number>;
  };
}

const POSITION_STREAMS = ['receipts', 'account_data', 'to_device', 'device_lists', 'partial_state'] as const;

export function createStore(engine: Engine, parts: StoreParts = {}): Store {
  const pushSettings = new PushSettingsCache();
  return {
    rooms: roomStore(engine),
    accounts: accountStore(engine),
    userData: userDataStore(engine, pushSettings),
    receipts: receiptStore(engine),
    e2ee: e2eeStore(engine),
    media: parts.media?.store ?? mediaStore(engine),
    federation: federationStore(engine),
    operator: operatorStore(engine),
    async positions() {
      // Both issued at once: one round trip to the backend, not two.
      const [events, rows] = await engine.read(['streams', 'events'], (tx) =>
        Promise.all([currentPosition(tx, 'events'), tx.getMany('streams', [...POSITION_STREAMS])]),
      );
      const [receipts, accountData, toDevice, deviceLists, partialState] = rows.map(
        (row) => (row?.position as number | undefined) ?? 0,
      );
      return {
        events,
        receipts: receipts ?? 0,
        accountData: accountData ?? 0,
        toDevice: toDevice ?? 0,
        deviceLists: deviceLists ?? 0,
        partialState: partialState ?? 0,
      };
    },
    syncSnapshot(userId, { deviceId, unreadRooms }) {
      const tables = ['room_members', 'notification_counts'];
      if (deviceId !== null) tables.push('one_time_keys', 'fallback_keys');
      return engine.read(tables, async (tx): Promise<SyncSnapshot> => {
        // Requests run in order within the transaction: issue them all, then wait.
        const [memberships, unread, oneTimeKeyCounts, unusedFallbackKeyTypes] = await Promise.all([
          roomsOfUser(tx, userId),
          unreadCountsIn(tx, userId, unreadRooms),
          deviceId === null ? undefined : oneTimeKeyCountsIn(tx, userId, deviceId),
          deviceId === null ? undefined : unusedFallbackKeyTypesIn(tx, userId, deviceId),
        ]);
        const snapshot: SyncSnapshot = { memberships, unread };
        if (oneTimeKeyCounts && unusedFallbackKeyTypes)
          snapshot.keys = { oneTimeKeyCounts, unusedFallbackKeyTypes };
        return snapshot;
      });
    },
    exportBackup: (options) => exportBackup(engine, { ...options, mediaBytes: parts.media?.fileBlob }),
    async importBackup(backup, options) {
      try {
        const header = await importBackup(engine, backup, options);
        await parts.media?.sweep();
        return header;
      } finally {
        pushSettings.forget();
      }
    },
    close: () => engine.close(),
  };
}
