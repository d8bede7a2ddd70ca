/**
 * What application services call beside the ordinary client API (application-service-api.md,
 * client-server appservice_ping.yaml, appservice_room_directory.yaml), and the third-party
 * lookups clients make, which the bridges answer (third_party_lookup.yaml: with no bridges,
 * no protocols).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { forbidden } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';
import { roomIdParam } from './room-params.ts';

export function appserviceEndpoints(services: Services): Endpoint[] {
  const { appservices, rooms } = services;
  /** Everything of the query string is the bridge's to read (third_party_lookup.yaml `fields`). */
  const fields = (url: URL) => url.searchParams;
  return [
    endpoint({
      // POST /_matrix/client/v1/appservice/{appserviceId}/ping
      method: 'POST',
      path: '/appservice/{appserviceId}/ping',
      versions: ['v1'],
      auth: 'required',
      body: v.object({ transaction_id: v.optional(v.string()) }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv1appserviceappserviceidping',
      handler: async ({ auth, params, body }) =>
        appservices.ping(auth, params.appserviceId, body.transaction_id),
    }),
    endpoint({
      // PUT /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}
      method: 'PUT',
      path: '/directory/list/appservice/{networkId}/{roomId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { roomId: roomIdParam },
      body: v.object({ visibility: v.enum(['public', 'private']) }),
      spec: 'client-server-api/#put_matrixclientv3directorylistappservicenetworkidroomid',
      handler: async ({ auth, params, body }) => {
        if (auth.appserviceId === undefined) throw forbidden('Only application services may call this');
        await rooms.setDirectoryVisibility(auth.userId, params.roomId, body.visibility);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/thirdparty/protocols
      method: 'GET',
      path: '/thirdparty/protocols',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3thirdpartyprotocols',
      handler: async () => appservices.protocols(),
    }),
    endpoint({
      // GET /_matrix/client/v3/thirdparty/protocol/{protocol}
      method: 'GET',
      path: '/thirdparty/protocol/{protocol}',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3thirdpartyprotocolprotocol',
      handler: async ({ params, url }) =>
        (await appservices.thirdparty('protocol', params.protocol, fields(url))) as JsonObject,
    }),
    ...(['location', 'user'] as const).flatMap((kind) => [
      endpoint({
        // GET /_matrix/client/v3/thirdparty/{location,user}/{protocol}
        method: 'GET',
        path: `/thirdparty/${kind}/{protocol}`,
        versions: ['r0', 'v3'],
        auth: 'required',
        spec: `client-server-api/#get_matrixclientv3thirdparty${kind}protocol`,
        handler: async ({ params, url }) =>
          Response.json(await appservices.thirdparty(kind, params.protocol, fields(url))),
      }),
      endpoint({
        // GET /_matrix/client/v3/thirdparty/{location,user}?alias= / ?userid=
        method: 'GET',
        path: `/thirdparty/${kind}`,
        versions: ['r0', 'v3'],
        auth: 'required',
        spec: `client-server-api/#get_matrixclientv3thirdparty${kind}`,
        handler: async ({ url }) => Response.json(await appservices.thirdparty(kind, null, fields(url))),
      }),
    ]),
  ];
}
