/**
 * Wakes long-polling /sync requests when something they care about changes: an event in
 * one of their rooms, or data addressed to the user (account data, to-device, receipts…).
 *
 * A waiter passes the notifier `version` it read *before* computing its answer; a change
 * made after that point wakes it at once even if it happened before `wait` was called, so
 * no change slips between "nothing new" and "start waiting".
 */

export interface Change {
  users?: Iterable<string>;
  rooms?: Iterable<string>;
  /** Wakes every waiter: something changed that cannot be placed (another writer's commit). */
  everyone?: boolean;
  /** Timeline events the change committed (a hint for woken passes, see `changesSince`). */
  events?: Iterable<ChangedEvent>;
}

export interface ChangedEvent {
  roomId: string;
  eventId: string;
  stream: number;
}

/** What was notified after a version, as far as the recent history reaches. */
export interface RecentChanges {
  rooms: Set<string>;
  /** In the order they were notified. */
  events: ChangedEvent[];
}

export interface Notifier {
  /** Increases with every change; read it before computing a /sync answer. */
  readonly version: number;
  notify(change: Change): void;
  /**
   * Resolves true when a change after `sinceVersion` touches `userId` or one of `rooms`,
   * false after `timeoutMs` or when `signal` aborts.
   */
  wait(
    userId: string,
    rooms: ReadonlySet<string>,
    sinceVersion: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<boolean>;
  /**
   * Rooms and events notified after `sinceVersion`, as far as the recent history reaches: a
   * hint of where a woken /sync pass will find news (it reads what it shows, whatever this says).
   */
  changesSince(sinceVersion: number): RecentChanges;
}

interface Waiter {
  userId: string;
  rooms: ReadonlySet<string>;
  wake(woken: boolean): void;
}

interface Recorded {
  version: number;
  everyone: boolean;
  users: Set<string>;
  rooms: Set<string>;
  events: ChangedEvent[];
}

/** Recent changes kept to answer a `wait` that starts late; beyond this a late waiter just wakes. */
const HISTORY = 256;

export function createNotifier(): Notifier {
  let version = 0;
  const history: Recorded[] = [];
  const waiters = new Set<Waiter>();

  const touches = (change: Recorded, userId: string, rooms: ReadonlySet<string>) => {
    if (change.everyone || change.users.has(userId)) return true;
    for (const room of change.rooms) if (rooms.has(room)) return true;
    return false;
  };

  return {
    get version() {
      return version;
    },
    notify(change) {
      const recorded: Recorded = {
        version: ++version,
        everyone: change.everyone === true,
        users: new Set(change.users),
        rooms: new Set(change.rooms),
        events: [...(change.events ?? [])],
      };
      history.push(recorded);
      if (history.length > HISTORY) history.shift();
      for (const waiter of waiters) {
        if (touches(recorded, waiter.userId, waiter.rooms)) waiter.wake(true);
      }
    },
    changesSince(sinceVersion) {
      const changes: RecentChanges = { rooms: new Set(), events: [] };
      let first = history.length;
      while (first > 0 && (history[first - 1] as Recorded).version > sinceVersion) first--;
      for (const change of history.slice(first)) {
        for (const room of change.rooms) changes.rooms.add(room);
        changes.events.push(...change.events);
      }
      return changes;
    },
    wait(userId, rooms, sinceVersion, timeoutMs, signal) {
      const oldest = history[0]?.version ?? version + 1;
      if (
        sinceVersion < version &&
        (sinceVersion + 1 < oldest ||
          history.some((c) => c.version > sinceVersion && touches(c, userId, rooms)))
      ) {
        return Promise.resolve(true);
      }
      if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const waiter: Waiter = {
          userId,
          rooms,
          wake(woken) {
            waiters.delete(waiter);
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            resolve(woken);
          },
        };
        const onAbort = () => waiter.wake(false);
        const timer = setTimeout(() => waiter.wake(false), timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(waiter);
      });
    },
  };
}
