/**
 * The notifications list — client-server-api "Listing Notifications" (notifications.yaml,
 * `GET /notifications`): the events that notified the user (push actions recorded with the
 * event, `PersistEventInput.notify`), newest first, across the rooms they are or were in, with
 * `only=highlight`, `from` and `limit`. `read` says whether the user's read receipt (public
 * or private) in that room is at or after the event.
 *
 * The store keeps a notification until the user's read receipt passes it (the unread counts
 * are counted from these rows and cleared by receipts): read ones are then no longer listed.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { StoredEvent } from '../storage/store.ts';
import { loadClientEvents, type Viewer } from './client-event.ts';
import type { HomeserverContext } from './context.ts';
import { invalidParam } from './errors.ts';
import { formatStreamToken, parseStreamToken } from './tokens.ts';

/** notifications.yaml leaves the default to the server. */
export const DEFAULT_NOTIFICATIONS_LIMIT = 20;
export const MAX_NOTIFICATIONS_LIMIT = 100;

export interface NotificationsQuery {
  from?: string;
  limit?: number;
  only?: string;
}

export interface NotificationsService {
  list(viewer: Viewer, query: NotificationsQuery): Promise<JsonObject>;
}

export function createNotificationsService(ctx: HomeserverContext): NotificationsService {
  const { store, clock } = ctx;

  /** The stream position of the user's latest read receipt (public or private) in a room. */
  async function readUpTo(userId: string, roomId: string): Promise<number> {
    const receipts = await Promise.all(
      ['m.read', 'm.read.private'].map((type) => store.receipts.getReceipt(roomId, type, userId)),
    );
    const ids = receipts.filter((r) => r !== null).map((r) => r.eventId);
    const events = await store.rooms.getEvents(ids);
    return Math.max(0, ...[...events.values()].map((e) => e.stream ?? 0));
  }

  return {
    async list(viewer, query) {
      const limit = Math.min(query.limit ?? DEFAULT_NOTIFICATIONS_LIMIT, MAX_NOTIFICATIONS_LIMIT);
      let before: number | undefined;
      if (query.from !== undefined) {
        const position = parseStreamToken(query.from);
        if (position === null) throw invalidParam('from is not a notifications token of this server');
        before = position + 1;
      }
      const roomIds = (await store.rooms.roomsForUser(viewer.userId)).map((m) => m.roomId);
      const rows = await store.rooms.notificationsFor(viewer.userId, roomIds, {
        ...(before !== undefined ? { before } : {}),
        limit: limit + 1,
        highlightOnly: query.only === 'highlight',
      });
      const page = rows.slice(0, limit);
      const found = await store.rooms.getEvents(page.map((n) => n.eventId));
      const kept = page.filter((n) => found.has(n.eventId));
      const events = await loadClientEvents(
        store,
        kept.map((n) => found.get(n.eventId) as StoredEvent),
        viewer,
        clock.now(),
      );
      const readIn = new Map<string, number>();
      for (const roomId of new Set(kept.map((n) => n.roomId)))
        readIn.set(roomId, await readUpTo(viewer.userId, roomId));
      const notifications = kept.map((n, i) => {
        const event = events[i] as JsonObject;
        return {
          actions: n.highlight ? ['notify', { set_tweak: 'highlight' }] : ['notify'],
          event,
          read: (readIn.get(n.roomId) ?? 0) >= n.stream,
          room_id: n.roomId,
          ts: event.origin_server_ts as number,
        } satisfies JsonObject;
      });
      const body: JsonObject = { notifications };
      const last = page.at(-1);
      if (rows.length > limit && last) body.next_token = formatStreamToken(last.stream - 1);
      return body;
    },
  };
}
