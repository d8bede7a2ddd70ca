/**
 * Typing notifications — client-server-api/modules/typing_notifications.md, typing.yaml.
 */

import { forbidden } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';
import { roomIdParam } from './room-params.ts';

export function typingEndpoints(services: Services): Endpoint[] {
  const { typing } = services;
  return [
    endpoint({
      // PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
      method: 'PUT',
      path: '/rooms/{roomId}/typing/{userId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: v.object({ typing: v.bool(), timeout: v.optional(v.int({ min: 0 })) }),
      spec: 'client-server-api/#put_matrixclientv3roomsroomidtypinguserid',
      handler: async ({ params, body, auth }) => {
        if (params.userId !== auth.userId) throw forbidden('Cannot set typing for another user');
        await typing.setTyping(params.roomId, auth.userId, body.typing, body.timeout);
        return {};
      },
    }),
  ];
}
