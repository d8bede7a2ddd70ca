/**
 * Send-to-device messaging — send_to_device.md, data/api/client-server/to_device.yaml.
 * Delivery is /sync's `to_device` section (src/homeserver/e2ee/sync-data.ts).
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

/** A room key shared with a few hundred devices is one request; the default 64 KiB is too small. */
const TO_DEVICE_BODY_BYTES = 1024 * 1024;

export function toDeviceEndpoints(services: Services): Endpoint[] {
  const { e2ee } = services;
  return [
    endpoint({
      // PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
      method: 'PUT',
      path: '/sendToDevice/{eventType}/{txnId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'message',
      body: v.object({ messages: v.record(v.record(v.jsonObject())) }),
      maxBodyBytes: TO_DEVICE_BODY_BYTES,
      spec: 'client-server-api/#put_matrixclientv3sendtodeviceeventtypetxnid',
      handler: async ({ auth, params, body }) => {
        await e2ee.sendToDevice(auth, params.eventType, params.txnId, body.messages);
        return {};
      },
    }),
  ];
}
