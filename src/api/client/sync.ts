/**
 * Syncing — client-server-api "Syncing", data/api/client-server/sync.yaml.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q } from '../endpoint.ts';
import { loadFilter } from './filter.ts';

export function syncEndpoints(services: Services): Endpoint[] {
  const { sync, filters } = services;
  return [
    endpoint({
      // GET /_matrix/client/v3/sync
      method: 'GET',
      path: '/sync',
      versions: ['r0', 'v3'],
      auth: 'required',
      // guest_access.md lists /sync among the endpoints guests may call.
      guest: true,
      query: q.object({
        filter: q.optional(q.string()),
        since: q.optional(q.string()),
        full_state: q.optional(q.bool()),
        set_presence: q.optional(q.enum(['offline', 'online', 'unavailable'])),
        timeout: q.optional(q.int({ min: 0 })),
        use_state_after: q.optional(q.bool()),
        // MSC4222's name before v1.16, sent by matrix-js-sdk, which then reads the answer under
        // `org.matrix.msc4222.state_after`.
        'org.matrix.msc4222.use_state_after': q.optional(q.bool()),
      }),
      spec: 'client-server-api/#get_matrixclientv3sync',
      handler: async ({ query, auth, request }) =>
        sync.sync({
          userId: auth.userId,
          deviceId: auth.deviceId,
          since: query.since,
          filter: await loadFilter(filters, auth.userId, query.filter),
          fullState: query.full_state,
          setPresence: query.set_presence,
          timeoutMs: query.timeout,
          stateAfter:
            query.use_state_after === true
              ? 'stable'
              : query['org.matrix.msc4222.use_state_after'] === true
                ? 'unstable'
                : undefined,
          signal: request.signal,
        }),
    }),
  ];
}
