/**
 * GET /_matrix/federation/v1/query/profile — server-server-api.md "Querying for information"
 * (data/api/server-server/query.yaml): a local user's public profile for another server.
 * The first X-Matrix authenticated endpoint; the next ones are declared the same way.
 */
import { notFound } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import { q } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

export function queryEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  return [
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/query/profile
      method: 'GET',
      path: '/query/profile',
      versions: ['v1'],
      query: q.object({ user_id: q.string(), field: q.optional(q.string()) }),
      spec: 'server-server-api/#get_matrixfederationv1queryprofile',
      handler: async ({ query }) => {
        // Both answer 404 for unknown and remote users: "MUST be local to the receiving homeserver".
        if (query.field === undefined) return services.accounts.getProfile(query.user_id);
        return { [query.field]: await services.accounts.getProfileField(query.user_id, query.field) };
      },
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/query/directory
      method: 'GET',
      path: '/query/directory',
      versions: ['v1'],
      query: q.object({ room_alias: q.string() }),
      spec: 'server-server-api/#get_matrixfederationv1querydirectory',
      handler: async ({ query }) => {
        // Only this server's aliases: another's is that server's to answer, never relayed.
        if (!query.room_alias.endsWith(`:${deps.serverName}`))
          throw notFound(`Room alias ${query.room_alias} is not of this server`);
        const { roomId, servers } = await services.rooms.resolveAlias(query.room_alias);
        return { room_id: roomId, servers };
      },
    }),
  ];
}
