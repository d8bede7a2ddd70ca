/**
 * Presence — client-server-api/modules/presence.md, data/api/client-server/presence.yaml.
 */

import { forbidden, notFound } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';

/** A status message is a short line of text; this bounds what every room-mate's sync carries. */
const MAX_STATUS_MSG = 1024;

export function presenceEndpoints(services: Pick<Services, 'presence'>): Endpoint[] {
  const { presence } = services;
  return [
    endpoint({
      // PUT /_matrix/client/v3/presence/{userId}/status
      method: 'PUT',
      path: '/presence/{userId}/status',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      body: v.object({
        presence: v.enum(['online', 'offline', 'unavailable']),
        status_msg: v.optional(v.nullable(v.string({ max: MAX_STATUS_MSG }))),
      }),
      spec: 'client-server-api/#put_matrixclientv3presenceuseridstatus',
      handler: async ({ params, body, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot set the presence of another user');
        await presence.set(auth.userId, body.presence, body.status_msg);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/presence/{userId}/status
      method: 'GET',
      path: '/presence/{userId}/status',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3presenceuseridstatus',
      handler: async ({ params, auth }) => {
        const userId = params.userId;
        if (!(await presence.canSee(auth.userId, userId))) {
          throw forbidden('You are not allowed to see their presence');
        }
        const status = await presence.status(userId);
        if (!status) throw notFound('No presence state for this user');
        return status;
      },
    }),
  ];
}
