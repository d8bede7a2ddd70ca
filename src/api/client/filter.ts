/**
 * Filters — client-server-api/_index.md "Filtering", data/api/client-server/filter.yaml.
 */

import { forbidden } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

export function filterEndpoints(services: Services): Endpoint[] {
  const { filters } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/user/{userId}/filter
      method: 'POST',
      path: '/user/{userId}/filter',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      body: v.jsonObject(),
      spec: 'client-server-api/#post_matrixclientv3useruseridfilter',
      handler: async ({ params, body, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot create filters for other users');
        return { filter_id: await filters.create(auth.userId, body) };
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/user/{userId}/filter/{filterId}
      method: 'GET',
      path: '/user/{userId}/filter/{filterId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      guest: true,
      spec: 'client-server-api/#get_matrixclientv3useruseridfilterfilterid',
      handler: async ({ params, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot read filters of other users');
        return filters.get(auth.userId, params.filterId);
      },
    }),
  ];
}
