/**
 * Device management — client-server-api/_index.md "Device Management"
 * (data/api/client-server/device_management.yaml). Deleting devices uses user-interactive
 * authentication; guests may list, read and rename their devices ("Guest access").
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

/** One request deletes at most this many devices; more is a client bug or an attack. */
const MAX_DELETE_DEVICES = 1000;

export function deviceEndpoints(services: Services): Endpoint[] {
  const { accounts } = services;
  return [
    endpoint({
      // GET /_matrix/client/v3/devices
      method: 'GET',
      path: '/devices',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3devices',
      handler: async ({ auth }) => ({ devices: await accounts.listDevices(auth.userId) }),
    }),
    endpoint({
      // GET /_matrix/client/v3/devices/{deviceId}
      method: 'GET',
      path: '/devices/{deviceId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3devicesdeviceid',
      handler: async ({ auth, params }) => accounts.getDevice(auth.userId, params.deviceId),
    }),
    endpoint({
      // PUT /_matrix/client/v3/devices/{deviceId}
      method: 'PUT',
      path: '/devices/{deviceId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      body: v.object({ display_name: v.optional(v.string()) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#put_matrixclientv3devicesdeviceid',
      handler: async ({ auth, params, body }) => {
        // Only application services may create devices here (v1.17); others update existing ones.
        await accounts.updateDevice(auth.userId, params.deviceId, body.display_name);
        return {};
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/devices/{deviceId}
      method: 'DELETE',
      path: '/devices/{deviceId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({ auth: v.optional(v.jsonObject()) }),
      // The first, auth-less request is often sent without a body.
      allowEmptyBody: true,
      spec: 'client-server-api/#delete_matrixclientv3devicesdeviceid',
      handler: async ({ auth, params, body }) => {
        await accounts.deleteDevices({ auth, deviceIds: [params.deviceId], uia: body.auth });
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/delete_devices
      method: 'POST',
      path: '/delete_devices',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        devices: v.array(v.string(), { max: MAX_DELETE_DEVICES }),
        auth: v.optional(v.jsonObject()),
      }),
      spec: 'client-server-api/#post_matrixclientv3delete_devices',
      handler: async ({ auth, body }) => {
        await accounts.deleteDevices({ auth, deviceIds: body.devices, uia: body.auth });
        return {};
      },
    }),
  ];
}
