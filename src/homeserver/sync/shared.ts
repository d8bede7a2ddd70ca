/**
 * Reads that the /sync passes of many waiters woken by one change have in common (issue 13):
 * the stream positions, which rooms have events between two positions, and the reads of a
 * room's change that every member sees alike (its timeline page, its state at a position,
 * the events and relations of that page). One send to a room where 200 clients long-poll
 * wakes 200 passes at once; each would read the same positions, walk the same range of the
 * events stream and load the same page and state. Here the first pass reads them and the
 * others, started while nothing else changed, take its answer.
 *
 * Safe to share: shared reads are dropped once the notifier moves (every committed write
 * that a /sync shows is notified, once committed or as it asks to commit — reads asked from
 * then on are queued behind it) or after `FRESH_MS`, so a pass sees at worst
 * what it would have read up to `FRESH_MS` earlier — what it then misses, the next pass
 * delivers, and a long-poll waits only for changes after the notifier version it read before
 * its pass. Keys name every input of a read (room, positions, filter), so two passes share a
 * read only when they would have asked the store the same question. Shared answers are read
 * only: no caller changes a map or event it was given. The rooms with events in a range of
 * positions never change once both ends are written, and are kept longer.
 */
import type { HomeserverContext } from '../context.ts';

/**
 * How long shared reads are used while the notifier stays where it was: long enough for the
 * passes of one wake to share them (200 passes span ~50–100 ms on a loaded machine; at 20 ms
 * they were read again every few dozen passes).
 */
const FRESH_MS = 100;
/** Ranges of rooms-with-events kept (a handful of `since` positions are live at once). */
const RANGES_KEPT = 64;
/** Shared reads kept within one notifier version (a bound, not a tuning knob). */
const READS_KEPT = 4096;

type StoredPositions = Awaited<ReturnType<HomeserverContext['store']['positions']>>;

export interface SharedReads {
  positions(): Promise<StoredPositions>;
  /** Rooms with events at positions in (from, to]. */
  roomsWithEvents(from: number, to: number): Promise<ReadonlySet<string>>;
  /**
   * `read()`, or the answer of a read under the same `key` made since the notifier last
   * moved (and within `FRESH_MS`). The key must name everything the answer depends on.
   */
  memo<T>(key: string, read: () => Promise<T>): Promise<T>;
}

/** Reads made while the notifier stayed at `version`. */
interface Era {
  version: number;
  at: number;
  reads: Map<string, Promise<unknown>>;
}

export function createSharedReads(ctx: Pick<HomeserverContext, 'store' | 'notifier' | 'clock'>): SharedReads {
  const { store, notifier, clock } = ctx;
  let positions: { version: number; at: number; read: Promise<StoredPositions> } | undefined;
  const ranges = new Map<string, Promise<ReadonlySet<string>>>();
  let era: Era = { version: -1, at: 0, reads: new Map() };
  return {
    positions() {
      const now = clock.now();
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
    memo<T>(key: string, read: () => Promise<T>): Promise<T> {
      const now = clock.now();
      if (era.version !== notifier.version || now - era.at > FRESH_MS || era.reads.size >= READS_KEPT)
        era = { version: notifier.version, at: now, reads: new Map() };
      const { reads } = era;
      let found = reads.get(key) as Promise<T> | undefined;
      if (!found) {
        found = read();
        reads.set(key, found);
        // A failed read is not shared.
        found.catch(() => {
          if (reads.get(key) === found) reads.delete(key);
        });
      }
      return found;
    },
  };
}
