/**
 * Receipts and read markers — client-server-api/modules/receipts.md (incl. "Private read
 * receipts", "Threaded read receipts"), modules/read_markers.md, receipts.yaml,
 * read_markers.yaml, and "Receiving notifications" (a read receipt clears the counts up to it).
 *
 * Receipts live in the store (`store.receipts`, its own stream); the fully read marker is
 * `m.fully_read` room account data. A receipt or marker never moves backwards: one naming an
 * event older than the current one is accepted and ignored (clients send them out of order
 * when several devices read the same room).
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import type { Receipt, StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, notFound } from '../errors.ts';
import type { UserDataService } from '../user-data.ts';

export const RECEIPT_TYPES = ['m.read', 'm.read.private', 'm.fully_read'] as const;
export type ReceiptType = (typeof RECEIPT_TYPES)[number];

/** receipts.md: the thread ID naming the main timeline. */
export const MAIN_THREAD = 'main';

export interface ReadMarkers {
  'm.fully_read'?: string;
  'm.read'?: string;
  'm.read.private'?: string;
}

export interface ReceiptDeps {
  userData: UserDataService;
  /** History visibility; every event of the room is visible to a joined user without it. */
  visibleToUser?: (userId: string, roomId: string, event: StoredEvent) => Promise<boolean>;
}

export interface ReceiptService {
  /** `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`; `m.fully_read` acts as /read_markers. */
  send(
    userId: string,
    roomId: string,
    receiptType: ReceiptType,
    eventId: string,
    threadId?: string,
  ): Promise<void>;
  /** `POST /rooms/{roomId}/read_markers`. */
  setReadMarkers(userId: string, roomId: string, markers: ReadMarkers): Promise<void>;
  /**
   * The `m.receipt` ephemeral event per room for /sync: receipts set at positions in
   * (from, to] in `roomIds`, without other users' private receipts. `from` 0 gives every
   * receipt (one row is kept per user, type and thread, so that is the current set).
   */
  receiptEvents(
    viewer: string,
    from: number,
    to: number,
    roomIds: readonly string[],
  ): Promise<Map<string, JsonObject>>;
}

/** Build `m.receipt` content: event ID → receipt type → user ID → `{ts, thread_id?}`. */
export function receiptContent(receipts: readonly Receipt[]): JsonObject {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {};
  for (const r of receipts) {
    const byType = content[r.eventId] ?? {};
    content[r.eventId] = byType;
    const byUser = byType[r.receiptType] ?? {};
    byType[r.receiptType] = byUser;
    byUser[r.userId] = { ...r.data, ...(r.threadId !== undefined ? { thread_id: r.threadId } : {}) };
  }
  return content as JsonObject;
}

/** The thread an event declares directly (`m.relates_to` with `rel_type: m.thread`), if any. */
function threadOf(event: StoredEvent): string | undefined {
  const relation = (event.event.content as { 'm.relates_to'?: unknown })['m.relates_to'];
  if (typeof relation !== 'object' || relation === null) return undefined;
  const { rel_type: relType, event_id: target } = relation as { rel_type?: unknown; event_id?: unknown };
  return relType === 'm.thread' && typeof target === 'string' ? target : undefined;
}

export function createReceiptService(
  ctx: Pick<HomeserverContext, 'store' | 'clock' | 'notifier'>,
  deps: ReceiptDeps,
): ReceiptService {
  const { store, clock, notifier } = ctx;

  const requireJoined = async (userId: string, roomId: string) => {
    const membership = await store.rooms.membership(roomId, userId);
    if (membership?.membership !== 'join') throw forbidden(`You are not joined to ${roomId}`);
  };

  /** The event, if it is in this room's timeline and the user may see it; M_NOT_FOUND otherwise. */
  const requireEvent = async (userId: string, roomId: string, eventId: string): Promise<StoredEvent> => {
    const event = await store.rooms.getEvent(eventId);
    if (!event || event.roomId !== roomId || event.stream === null || event.rejected !== null) {
      throw notFound(`Event ${eventId} not found in ${roomId}`);
    }
    if (deps.visibleToUser && !(await deps.visibleToUser(userId, roomId, event))) {
      throw notFound(`Event ${eventId} not found in ${roomId}`);
    }
    return event;
  };

  /** Whether `event` is not older (in stream order) than the event `currentId` names. */
  const isNotBehind = async (event: StoredEvent, currentId: string | undefined) => {
    if (currentId === undefined || currentId === event.event.event_id) return currentId === undefined;
    const current = await store.rooms.getEvent(currentId);
    return current?.stream == null || (event.stream as number) > current.stream;
  };

  const putReceipt = async (
    userId: string,
    roomId: string,
    receiptType: 'm.read' | 'm.read.private',
    event: StoredEvent,
    threadId: string | undefined,
  ) => {
    const existing = await store.receipts.getReceipt(roomId, receiptType, userId, threadId);
    if (!(await isNotBehind(event, existing?.eventId))) return;
    await store.receipts.putReceipt({
      roomId,
      receiptType,
      userId,
      ...(threadId !== undefined ? { threadId } : {}),
      eventId: event.event.event_id,
      data: { ts: clock.now() },
    });
    // "Receiving notifications": counts restart after the newest of m.read / m.read.private —
    // of the receipt's thread, or of every thread for an unthreaded one (receipts.md
    // "Threaded read receipts"). The counters are kept by the store, moved at write time.
    await store.receipts.markRead(userId, roomId, event.stream as number, threadId);
    // receipts.md: m.read.private MUST NOT reach any other user.
    notifier.notify(receiptType === 'm.read' ? { rooms: [roomId], users: [userId] } : { users: [userId] });
  };

  const setFullyRead = async (userId: string, roomId: string, event: StoredEvent) => {
    const current = await deps.userData.getAccountData(userId, 'm.fully_read', roomId);
    const currentId = typeof current?.event_id === 'string' ? current.event_id : undefined;
    if (!(await isNotBehind(event, currentId))) return;
    await deps.userData.setManagedAccountData(
      userId,
      'm.fully_read',
      { event_id: event.event.event_id },
      roomId,
    );
  };

  const service: ReceiptService = {
    async send(userId, roomId, receiptType, eventId, threadId) {
      if (threadId !== undefined) {
        if (receiptType === 'm.fully_read') throw invalidParam('thread_id cannot be given for m.fully_read');
        if (threadId === '') throw invalidParam('thread_id must be a non-empty string');
        if (threadId !== MAIN_THREAD && !threadId.startsWith('$')) {
          throw invalidParam(`thread_id must be "main" or a thread root's event ID`);
        }
      }
      await requireJoined(userId, roomId);
      const event = await requireEvent(userId, roomId, eventId);
      if (threadId !== undefined) {
        // Only what the event itself declares is checked: deeper relations (receipts.md allows
        // up to 3 hops) would need more reads than a receipt is worth.
        const thread = threadOf(event);
        if (thread !== undefined && thread !== threadId) {
          throw invalidParam(`${eventId} is in thread ${thread}, not ${threadId}`);
        }
      }
      if (receiptType === 'm.fully_read') return setFullyRead(userId, roomId, event);
      await putReceipt(userId, roomId, receiptType, event, threadId);
    },

    async setReadMarkers(userId, roomId, markers) {
      await requireJoined(userId, roomId);
      // Check every event first, so a bad one leaves nothing half-set.
      const fullyRead =
        markers['m.fully_read'] && (await requireEvent(userId, roomId, markers['m.fully_read']));
      const read = markers['m.read'] && (await requireEvent(userId, roomId, markers['m.read']));
      const readPrivate =
        markers['m.read.private'] && (await requireEvent(userId, roomId, markers['m.read.private']));
      if (fullyRead) await setFullyRead(userId, roomId, fullyRead);
      if (read) await putReceipt(userId, roomId, 'm.read', read, undefined);
      if (readPrivate) await putReceipt(userId, roomId, 'm.read.private', readPrivate, undefined);
    },

    async receiptEvents(viewer, from, to, roomIds) {
      const out = new Map<string, JsonObject>();
      if (roomIds.length === 0 || to <= from) return out;
      // From the start, each room's rows are read by room (indexed) rather than by walking
      // the whole receipts stream of the server.
      const receipts =
        from <= 0
          ? (await Promise.all(roomIds.map((roomId) => store.receipts.roomReceipts(roomId))))
              .flat()
              .filter((r) => r.stream <= to)
          : await store.receipts.receiptsSince(from, to, roomIds);
      const byRoom = new Map<string, Receipt[]>();
      for (const r of receipts) {
        if (r.receiptType === 'm.read.private' && r.userId !== viewer) continue;
        const list = byRoom.get(r.roomId) ?? [];
        byRoom.set(r.roomId, list);
        list.push(r);
      }
      for (const [roomId, list] of byRoom)
        out.set(roomId, { type: 'm.receipt', content: receiptContent(list) });
      return out;
    },
  };
  return service;
}
