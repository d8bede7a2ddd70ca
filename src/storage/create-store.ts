/**
 * The one implementation of `Store`, written once over an `Engine`; the backends differ
 * only in the engine they provide (`indexeddb/`, `sqlite/`).
 */
import { accountStore } from './areas/accounts.ts';
import { currentPosition } from './areas/common.ts';
import { e2eeStore } from './areas/e2ee.ts';
import { federationStore, mediaStore } from './areas/media-federation.ts';
import { operatorStore } from './areas/operator.ts';
import { receiptStore } from './areas/receipts.ts';
import { roomStore } from './areas/rooms.ts';
import { PushSettingsCache, userDataStore } from './areas/user-data.ts';
import { exportBackup, importBackup } from './backup.ts';
import type { Engine } from './engine.ts';
import type { Store } from './store.ts';

const POSITION_STREAMS = ['receipts', 'account_data', 'to_device', 'device_lists'] as const;

export function createStore(engine: Engine): Store {
  const pushSettings = new PushSettingsCache();
  return {
    rooms: roomStore(engine),
    accounts: accountStore(engine),
    userData: userDataStore(engine, pushSettings),
    receipts: receiptStore(engine),
    e2ee: e2eeStore(engine),
    media: mediaStore(engine),
    federation: federationStore(engine),
    operator: operatorStore(engine),
    async positions() {
      const [events, rows] = await engine.read(['streams', 'events'], async (tx) => [
        await currentPosition(tx, 'events'),
        await tx.getMany('streams', [...POSITION_STREAMS]),
      ]);
      const [receipts, accountData, toDevice, deviceLists] = rows.map(
        (row) => (row?.position as number | undefined) ?? 0,
      );
      return {
        events,
        receipts: receipts ?? 0,
        accountData: accountData ?? 0,
        toDevice: toDevice ?? 0,
        deviceLists: deviceLists ?? 0,
      };
    },
    exportBackup: (options) => exportBackup(engine, options),
    async importBackup(backup, options) {
      try {
        return await importBackup(engine, backup, options);
      } finally {
        pushSettings.forget();
      }
    },
    close: () => engine.close(),
  };
}
