/**
 * GET /_matrix/federation/v1/query/* — server-server-api.md "Querying for information"
 * (data/api/server-server/query.yaml): a local user's public profile, a local room alias;
 * any other query type is 404 M_UNRECOGNIZED ("the query type is not known").
 */

import { unrecognized } from '../../homeserver/errors.ts';
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
      // Only our own aliases; 404 M_NOT_FOUND for another server's, never a query onwards.
      handler: async ({ query }) => services.federationQueries.resolveAlias(query.room_alias),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/query/{queryType}
      method: 'GET',
      path: '/query/{queryType}',
      versions: ['v1'],
      spec: 'server-server-api/#get_matrixfederationv1queryquerytype',
      // Authenticated first, like every query: a stranger learns nothing, not even which types exist.
      handler: async ({ params }) => {
        throw unrecognized(`Unknown query type ${JSON.stringify(params.queryType)}`);
      },
    }),
  ];
}
