/**
 * Receipts (client-server-api "Receipts", threaded receipts) and the push actions behind
 * `unread_notifications` ("Push Notifications": counts of notifying events after the user's
 * read receipt).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Engine, Row } from '../engine.ts';
import type { Receipt, ReceiptStore } from '../store.ts';
import { nextPosition, requirePosition, requireString } from './common.ts';

/** Primary keys cannot hold null in SQLite: an unthreaded receipt is stored with thread ''. */
const UNTHREADED = '';

function toReceipt(row: Row): Receipt {
  return {
    roomId: row.room_id as string,
    receiptType: row.receipt_type as string,
    userId: row.user_id as string,
    ...(row.thread_id === UNTHREADED ? {} : { threadId: row.thread_id as string }),
    eventId: row.event_id as string,
    data: row.data as JsonObject,
    stream: row.stream as number,
  };
}

export function receiptStore(engine: Engine): ReceiptStore {
  return {
    async putReceipt(receipt) {
      requireString(receipt?.roomId, 'roomId');
      requireString(receipt.receiptType, 'receiptType');
      requireString(receipt.userId, 'userId');
      requireString(receipt.eventId, 'eventId');
      if (receipt.threadId !== undefined) requireString(receipt.threadId, 'threadId');
      return engine.write(['receipts', 'streams'], async (tx) => {
        const stream = await nextPosition(tx, 'receipts');
        await tx.put('receipts', {
          room_id: receipt.roomId,
          receipt_type: receipt.receiptType,
          user_id: receipt.userId,
          thread_id: receipt.threadId ?? UNTHREADED,
          event_id: receipt.eventId,
          data: receipt.data ?? {},
          stream,
        });
        return stream;
      });
    },

    async receiptsSince(from, to, roomIds) {
      const rooms = roomIds && new Set(roomIds);
      const rows = await engine.read(['receipts'], (tx) =>
        tx.query('receipts', {
          index: 'stream',
          lower: [requirePosition(from, 'from')],
          lowerOpen: true,
          upper: [requirePosition(to, 'to')],
          ...(rooms ? { filter: (row: Row) => rooms.has(row.room_id as string) } : {}),
        }),
      );
      return rows.map(toReceipt);
    },

    async roomReceipts(roomId) {
      const rows = await engine.read(['receipts'], (tx) => tx.query('receipts', { prefix: [roomId] }));
      return rows.map(toReceipt);
    },

    async getReceipt(roomId, receiptType, userId, threadId) {
      const row = await engine.read(['receipts'], (tx) =>
        tx.get('receipts', [roomId, receiptType, userId, threadId ?? UNTHREADED]),
      );
      return row ? toReceipt(row) : null;
    },

    async notificationCounts(userId, roomId, after) {
      const rows = await engine.read(['notifications'], (tx) =>
        tx.query('notifications', {
          prefix: [userId, roomId],
          lower: [requirePosition(after, 'after')],
          lowerOpen: true,
        }),
      );
      return { notifications: rows.length, highlights: rows.filter((row) => row.highlight === true).length };
    },

    async clearNotifications(userId, roomId, upTo) {
      await engine.write(['notifications'], (tx) =>
        tx.deleteRange('notifications', { prefix: [userId, roomId], upper: [requirePosition(upTo, 'upTo')] }),
      );
    },
  };
}
