/**
 * PUT /_matrix/federation/v1/send/{txnId} — server-server-api.md "Transactions"
 * (data/api/server-server/transactions.yaml): PDUs and EDUs from another server, staged then
 * applied by `services.transactions`; a replayed txnId gets the first answer.
 */
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import { v } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

/**
 * 50 PDUs of at most 64 KiB each (rooms' event size limit) and 100 EDUs: a little over 3 MiB
 * at worst; more is not a transaction the spec allows.
 */
const MAX_TXN_BYTES = 4 * 1024 * 1024;

export function transactionEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  return [
    federationEndpoint(deps, {
      // PUT /_matrix/federation/v1/send/{txnId}
      method: 'PUT',
      path: '/send/{txnId}',
      versions: ['v1'],
      body: v.object({
        origin: v.string(),
        origin_server_ts: v.int(),
        pdus: v.array(v.json()),
        edus: v.optional(v.array(v.json())),
      }),
      maxBodyBytes: MAX_TXN_BYTES,
      spec: 'server-server-api/#put_matrixfederationv1sendtxnid',
      handler: ({ origin, params, body }) =>
        services.transactions.receive(origin, params.txnId, {
          origin: body.origin,
          origin_server_ts: body.origin_server_ts,
          pdus: body.pdus,
          edus: body.edus ?? [],
        }),
    }),
  ];
}
