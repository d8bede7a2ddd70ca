/**
 * Jumping to a date — client-server-api `GET /rooms/{roomId}/timestamp_to_event`
 * (room_event_by_timestamp.yaml) and its federation twin (server-server-api
 * `GET /timestamp_to_event/{roomId}`): the event closest to `ts` in direction `dir` (at or
 * before for `b`, at or after for `f`) that the asker may see. The timeline is read in stream
 * order, page by page, from the end (b) or the start (f); at most MAX_PAGES pages.
 */
import type { Store, StoredEvent } from '../../storage/store.ts';

const PAGE = 100;
const MAX_PAGES = 100;

export async function eventAtTimestamp(
  store: Store,
  roomId: string,
  ts: number,
  dir: 'f' | 'b',
  visible: (event: StoredEvent) => Promise<boolean>,
): Promise<{ event_id: string; origin_server_ts: number } | null> {
  let cursor: number | undefined;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const page = await store.rooms.timeline(roomId, {
      dir,
      limit: PAGE,
      ...(cursor !== undefined ? { from: cursor } : {}),
    });
    for (const stored of page.events) {
      const at = stored.event.origin_server_ts;
      if (typeof at !== 'number') continue;
      const fits = dir === 'b' ? at <= ts : at >= ts;
      if (fits && (await visible(stored))) return { event_id: stored.event.event_id, origin_server_ts: at };
    }
    if (page.next === null) break;
    cursor = page.next;
  }
  return null;
}
