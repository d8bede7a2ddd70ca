/**
 * Receipts (client-server-api "Receipts", threaded receipts) and the push actions behind
 * `unread_notifications` ("Push Notifications": counts of notifying events after the user's
 * read receipt).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import { MAIN_THREAD } from '../schema.ts';
import type { Receipt, ReceiptStore, RoomUnreadCounts } from '../store.ts';
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

/** A user's unread counters in each of `roomIds`, within a transaction (a few rows per room). */
export async function unreadCountsIn(
  tx: Tx,
  userId: string,
  roomIds: readonly string[],
): Promise<Map<string, RoomUnreadCounts>> {
  // Requests run in order within the transaction: issue them all, then wait.
  const rows = await Promise.all(
    roomIds.map((roomId) => tx.query('notification_counts', { prefix: [userId, roomId] })),
  );
  const counts = new Map<string, RoomUnreadCounts>();
  for (const [i, roomId] of roomIds.entries()) {
    const room: RoomUnreadCounts = { main: { notifications: 0, highlights: 0 }, threads: new Map() };
    for (const row of rows[i] ?? []) {
      const count = { notifications: row.notifications as number, highlights: row.highlights as number };
      if (row.thread_id === MAIN_THREAD) room.main = count;
      else if (count.notifications > 0 || count.highlights > 0)
        room.threads.set(row.thread_id as string, count);
    }
    counts.set(roomId, room);
  }
  return counts;
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

    unreadCounts(userId, roomIds) {
      return engine.read(['notification_counts'], (tx) => unreadCountsIn(tx, userId, roomIds));
    },

    async markRead(userId, roomId, upTo, threadId) {
      requirePosition(upTo, 'upTo');
      await engine.write(['notification_counts', 'notifications'], async (tx) => {
        const counters = (await tx.query('notification_counts', { prefix: [userId, roomId] })).filter(
          (row) =>
            (threadId === undefined || row.thread_id === threadId) && ((row.since as number) ?? 0) < upTo,
        );
        if (counters.length === 0) return;
        // What is still unread after the receipt: usually nothing, a receipt names a recent event.
        const after = await tx.query('notifications', {
          prefix: [userId, roomId],
          lower: [upTo],
          lowerOpen: true,
        });
        for (const counter of counters) {
          const left = after.filter(
            (row) => ((row.thread_id as string | undefined) ?? MAIN_THREAD) === counter.thread_id,
          );
          await tx.put('notification_counts', {
            ...counter,
            notifications: left.length,
            highlights: left.filter((row) => row.highlight === true).length,
            since: upTo,
          });
        }
      });
    },
  };
}
