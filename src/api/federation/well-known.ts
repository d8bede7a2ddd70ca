/**
 * GET /.well-known/matrix/server — server-server-api.md "Server discovery" (wellknown.yaml):
 * delegation of this server's federation traffic to another host and port. Only served when
 * the operator names one; otherwise 404, which other servers read as "no delegation".
 */
import { notFound } from '../../homeserver/errors.ts';
import { type Endpoint, endpoint } from '../endpoint.ts';

export function wellKnownServerEndpoints(delegateTo: string | undefined): Endpoint[] {
  return [
    endpoint({
      // GET /.well-known/matrix/server
      method: 'GET',
      path: '/.well-known/matrix/server',
      auth: 'none',
      spec: 'server-server-api/#getwell-knownmatrixserver',
      handler: async () => {
        if (delegateTo === undefined) throw notFound('This server does not delegate federation');
        return { 'm.server': delegateTo };
      },
    }),
  ];
}
