/**
 * Reads that the /sync passes of many waiters woken by one change have in common (issue 13):
 * the stream positions, and which rooms have events between two positions. One send to a
 * room where 200 clients long-poll wakes 200 passes at once; each would read the same
 * positions and walk the same range of the events stream. Here the first pass reads them and
 * the others, started while nothing else changed, take its answer.
 *
 * Safe to share: the positions are read again once the notifier moves (every committed
 * write that a /sync shows is followed by a notify) or after `FRESH_MS`, so a pass sees at
 * worst positions a few milliseconds old — what it then misses, the next pass delivers, and
 * a long-poll waits only for changes after the notifier version it read before its pass.
 * The rooms with events in a range of positions never change once both ends are written.
 */
import type { HomeserverContext } from '../context.ts';

/** How long shared positions are used while the notifier stays where it was. */
const FRESH_MS = 20;
/** Ranges of rooms-with-events kept (a handful of `since` positions are live at once). */
const RANGES_KEPT = 64;

type StoredPositions = Awaited<ReturnType<HomeserverContext['store']['positions']>>;

export interface SharedReads {
  positions(): Promise<StoredPositions>;
  /** Rooms with events at positions in (from, to]. */
  roomsWithEvents(from: number, to: number): Promise<ReadonlySet<string>>;
}

export function createSharedReads(ctx: Pick<HomeserverContext, 'store' | 'notifier'>): SharedReads {
  const { store, notifier } = ctx;
  let positions: { version: number; at: number; read: Promise<StoredPositions> } | undefined;
  const ranges = new Map<string, Promise<ReadonlySet<string>>>();
  return {
    positions() {
      const now = performance.now();
      if (!positions || positions.version !== notifier.version || now - positions.at > FRESH_MS) {
        const read = store.positions();
        positions = { version: notifier.version, at: now, read };
        // A failed read is not shared.
        read.catch(() => {
          if (positions?.read === read) positions = undefined;
        });
      }
      return positions.read;
    },
    roomsWithEvents(from, to) {
      const key = `${from}:${to}`;
      let found = ranges.get(key);
      if (!found) {
        found = store.rooms.roomsWithEvents(from, to).then((ids) => new Set(ids));
        ranges.set(key, found);
        found.catch(() => ranges.delete(key));
        if (ranges.size > RANGES_KEPT) ranges.delete(ranges.keys().next().value as string);
      }
      return found;
    },
  };
}
