/**
 * Receipts and read markers — client-server-api/modules/receipts.md, modules/read_markers.md;
 * data/api/client-server/receipts.yaml, read_markers.yaml.
 */
import { RECEIPT_TYPES, type ReceiptType } from '../../homeserver/ephemeral/receipts.ts';
import { invalidParam } from '../../homeserver/errors.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, v } from '../endpoint.ts';
import { eventIdParam, roomIdParam } from './room-params.ts';

const eventIdField = v.string({ pattern: /^\$/, patternName: 'an event ID' });

export function receiptEndpoints(services: Services): Endpoint[] {
  const { receipts } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
      method: 'POST',
      path: '/rooms/{roomId}/receipt/{receiptType}/{eventId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam, receiptType: v.enum(RECEIPT_TYPES), eventId: eventIdParam },
      // receipts.yaml requires a body, but clients before v1.4 sent none.
      allowEmptyBody: true,
      // A bad `thread_id` is M_INVALID_PARAM (receipts.yaml "400"), so it is checked by hand.
      body: v.object({ thread_id: v.optional(v.json()) }),
      spec: 'client-server-api/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid',
      handler: async ({ params, body, auth }) => {
        const threadId = body.thread_id;
        if (threadId !== undefined && (typeof threadId !== 'string' || threadId === '')) {
          throw invalidParam('thread_id must be a non-empty string');
        }
        await receipts.send(
          auth.userId,
          params.roomId,
          params.receiptType as ReceiptType,
          params.eventId,
          threadId,
        );
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/rooms/{roomId}/read_markers
      method: 'POST',
      path: '/rooms/{roomId}/read_markers',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { roomId: roomIdParam },
      body: v.object({
        'm.fully_read': v.optional(eventIdField),
        'm.read': v.optional(eventIdField),
        'm.read.private': v.optional(eventIdField),
      }),
      spec: 'client-server-api/#post_matrixclientv3roomsroomidread_markers',
      handler: async ({ params, body, auth }) => {
        await receipts.setReadMarkers(auth.userId, params.roomId, body);
        return {};
      },
    }),
  ];
}
