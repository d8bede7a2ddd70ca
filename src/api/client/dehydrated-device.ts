/**
 * Dehydrated devices — MSC3814 (not yet in the spec), under
 * `/_matrix/client/unstable/org.matrix.msc3814.v1/`, as matrix-js-sdk's Rust crypto calls them
 * (`DehydratedDeviceManager`): PUT, GET and DELETE `dehydrated_device`, and the device's
 * to-device messages in pages from `dehydrated_device/{deviceId}/events` — GET with `from`
 * (what the SDK sends now) or POST with `next_batch` (the MSC's earlier form). The rules are
 * the service's (src/homeserver/e2ee/dehydrated.ts).
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';

const VERSION = 'unstable/org.matrix.msc3814.v1';

/** A device's pickled keys and its key upload: larger than a plain JSON body. */
const DEHYDRATED_BODY_BYTES = 1024 * 1024;

const deviceIdParam = v.string({ min: 1, max: 255 });

export function dehydratedDeviceEndpoints(services: Services): Endpoint[] {
  const { e2ee } = services;
  return [
    endpoint({
      // PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
      method: 'PUT',
      path: '/dehydrated_device',
      versions: [VERSION],
      auth: 'required',
      body: v.object({
        device_id: deviceIdParam,
        device_data: v.jsonObject(),
        initial_device_display_name: v.optional(v.string({ max: 255 })),
        device_keys: v.jsonObject(),
        one_time_keys: v.optional(v.jsonObject()),
        fallback_keys: v.optional(v.jsonObject()),
      }),
      maxBodyBytes: DEHYDRATED_BODY_BYTES,
      handler: ({ auth, body }) =>
        e2ee.putDehydratedDevice(auth, {
          deviceId: body.device_id,
          deviceData: body.device_data,
          displayName: body.initial_device_display_name ?? null,
          deviceKeys: body.device_keys,
          ...(body.one_time_keys ? { oneTimeKeys: body.one_time_keys } : {}),
          ...(body.fallback_keys ? { fallbackKeys: body.fallback_keys } : {}),
        }),
    }),
    endpoint({
      // GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
      method: 'GET',
      path: '/dehydrated_device',
      versions: [VERSION],
      auth: 'required',
      handler: ({ auth }) => e2ee.getDehydratedDevice(auth.userId),
    }),
    endpoint({
      // DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
      method: 'DELETE',
      path: '/dehydrated_device',
      versions: [VERSION],
      auth: 'required',
      allowEmptyBody: true,
      body: v.object({}),
      handler: ({ auth }) => e2ee.deleteDehydratedDevice(auth.userId),
    }),
    endpoint({
      // GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events
      method: 'GET',
      path: '/dehydrated_device/{deviceId}/events',
      versions: [VERSION],
      auth: 'required',
      params: { deviceId: deviceIdParam },
      query: q.object({ from: q.optional(q.string()) }),
      handler: ({ auth, params, query }) => e2ee.dehydratedEvents(auth.userId, params.deviceId, query.from),
    }),
    endpoint({
      // POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events
      method: 'POST',
      path: '/dehydrated_device/{deviceId}/events',
      versions: [VERSION],
      auth: 'required',
      params: { deviceId: deviceIdParam },
      body: v.object({ next_batch: v.optional(v.string({ max: 64 })) }),
      allowEmptyBody: true,
      handler: ({ auth, params, body }) =>
        e2ee.dehydratedEvents(auth.userId, params.deviceId, body.next_batch),
    }),
  ];
}
