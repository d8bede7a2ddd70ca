/**
 * Dehydrated devices (MSC3814, `org.matrix.msc3814.v1`, as matrix-js-sdk's Rust crypto and
 * Element use them): a device with no access token whose keys are published like any other,
 * so room keys are shared with it while the user has no client open. Its private keys are
 * encrypted by the client into `device_data`, kept here opaque; a later login fetches them,
 * becomes the device for a moment, and reads the to-device messages it was sent, in pages.
 *
 * One per user: a new one replaces the old (with its keys and inbox). Its keys go through the
 * ordinary `keys/upload` path, so they are checked the same way and tell the user's
 * device list watchers.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { StoreError } from '../../storage/store.ts';
import type { Auth, HomeserverContext } from '../context.ts';
import { invalidParam, notFound } from '../errors.ts';
import type { KeysService } from './keys.ts';
import type { E2eeSyncData } from './sync-data.ts';

/** To-device messages per page of `dehydrated_device/{deviceId}/events`. */
export const DEHYDRATED_EVENTS_PAGE = 100;

export interface DehydratedDeviceUpload {
  deviceId: string;
  deviceData: JsonObject;
  displayName: string | null;
  deviceKeys: JsonObject;
  oneTimeKeys?: JsonObject;
  fallbackKeys?: JsonObject;
}

export interface DehydratedDeviceService {
  /** PUT /dehydrated_device: replaces the user's dehydrated device. */
  putDehydratedDevice(auth: Auth, upload: DehydratedDeviceUpload): Promise<{ device_id: string }>;
  /** GET /dehydrated_device */
  getDehydratedDevice(userId: string): Promise<{ device_id: string; device_data: JsonObject }>;
  /** DELETE /dehydrated_device */
  deleteDehydratedDevice(userId: string): Promise<{ device_id: string }>;
  /**
   * GET or POST /dehydrated_device/{deviceId}/events: the messages after `nextBatch` (the
   * ones up to it are acknowledged and deleted). `next_batch` only while there are events:
   * clients page until it is absent.
   */
  dehydratedEvents(
    userId: string,
    deviceId: string,
    nextBatch: string | undefined,
  ): Promise<{ events: JsonObject[]; next_batch?: string }>;
}

const noDevice = () => notFound('No dehydrated device');

export function createDehydratedDeviceService(
  ctx: HomeserverContext,
  deps: { keys: KeysService; syncData: E2eeSyncData; keysChanged(userId: string): Promise<void> },
): DehydratedDeviceService {
  const { store } = ctx;
  return {
    async putDehydratedDevice(auth, upload) {
      const { userId } = auth;
      try {
        await store.accounts.putDehydratedDevice(
          {
            userId,
            deviceId: upload.deviceId,
            deviceData: upload.deviceData,
            displayName: upload.displayName,
          },
          ctx.clock.now(),
        );
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT')
          throw invalidParam('device_id names one of your ordinary devices');
        throw err;
      }
      try {
        // As that device: the same checks as any upload (its user, its ID, its signatures).
        await deps.keys.uploadKeys(
          { userId, deviceId: upload.deviceId, isGuest: auth.isGuest },
          {
            deviceKeys: upload.deviceKeys,
            ...(upload.oneTimeKeys ? { oneTimeKeys: upload.oneTimeKeys } : {}),
            ...(upload.fallbackKeys ? { fallbackKeys: upload.fallbackKeys } : {}),
          },
        );
      } catch (err) {
        // Keys refused: no device left behind that nobody could encrypt to.
        await store.accounts.deleteDehydratedDevice(userId);
        throw err;
      }
      return { device_id: upload.deviceId };
    },

    async getDehydratedDevice(userId) {
      const found = await store.accounts.getDehydratedDevice(userId);
      if (!found) throw noDevice();
      return { device_id: found.deviceId, device_data: found.deviceData };
    },

    async deleteDehydratedDevice(userId) {
      const deviceId = await store.accounts.deleteDehydratedDevice(userId);
      if (deviceId === null) throw noDevice();
      await deps.keysChanged(userId);
      return { device_id: deviceId };
    },

    async dehydratedEvents(userId, deviceId, nextBatch) {
      const found = await store.accounts.getDehydratedDevice(userId);
      if (!found || found.deviceId !== deviceId) throw noDevice();
      let after = 0;
      if (nextBatch !== undefined) {
        if (!/^(0|[1-9][0-9]{0,15})$/.test(nextBatch))
          throw invalidParam('next_batch is not a batch of this server');
        after = Number(nextBatch);
        await deps.syncData.acknowledgeToDevice(userId, deviceId, after);
      }
      const page = await deps.syncData.toDeviceMessages(userId, deviceId, after, DEHYDRATED_EVENTS_PAGE);
      return page.events.length === 0
        ? { events: [] }
        : { events: page.events, next_batch: String(page.position) };
    },
  };
}
