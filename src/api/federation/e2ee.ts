/**
 * Device lists and keys of our users for other servers — server-server-api.md "Device
 * Management" (user_devices.yaml) and "End-to-End Encryption" (user_keys.yaml).
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, v } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

export function e2eeEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  const { federationQueries } = services;
  return [
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/user/devices/{userId}
      method: 'GET',
      path: '/user/devices/{userId}',
      versions: ['v1'],
      spec: 'server-server-api/#get_matrixfederationv1userdevicesuserid',
      handler: async ({ params }) => federationQueries.userDevices(params.userId),
    }),
    federationEndpoint(deps, {
      // POST /_matrix/federation/v1/user/keys/query
      method: 'POST',
      path: '/user/keys/query',
      versions: ['v1'],
      body: v.object({ device_keys: v.record(v.array(v.string())) }),
      spec: 'server-server-api/#post_matrixfederationv1userkeysquery',
      handler: async ({ body }) => federationQueries.queryKeys(body.device_keys),
    }),
    federationEndpoint(deps, {
      // POST /_matrix/federation/v1/user/keys/claim
      method: 'POST',
      path: '/user/keys/claim',
      versions: ['v1'],
      body: v.object({ one_time_keys: v.record(v.record(v.string())) }),
      spec: 'server-server-api/#post_matrixfederationv1userkeysclaim',
      handler: async ({ body }) => federationQueries.claimKeys(body.one_time_keys),
    }),
  ];
}
