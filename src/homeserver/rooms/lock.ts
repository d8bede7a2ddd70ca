/**
 * Per-key serialisation in memory: the events of one room are built one at a time, so each
 * new event's `prev_events`, `depth` and auth state are read after the previous event of that
 * room was persisted. Different rooms never wait for each other.
 *
 * In memory is enough because one homeserver instance owns its store (a Service Worker or one
 * Node process); a second writer would need the store's own transaction to arbitrate.
 */
export interface KeyedLock {
  /**
   * Runs `fn` once every earlier `run` with the same key has settled, or released the key
   * early: `fn` may call `release` to let the next one start while it still runs.
   */
  run<T>(key: string, fn: (release: () => void) => Promise<T>): Promise<T>;
  /** Keys with a holder or waiters (for tests: the map must not grow without bound). */
  readonly size: number;
}

export function createKeyedLock(): KeyedLock {
  // The promise each key's last caller resolves when it is done. It never rejects, so a
  // failed holder never poisons the queue behind it.
  const tails = new Map<string, Promise<void>>();
  return {
    get size() {
      return tails.size;
    },
    async run(key, fn) {
      const previous = tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const done = new Promise<void>((resolve) => {
        release = resolve;
      });
      const tail = previous.then(() => done);
      tails.set(key, tail);
      await previous;
      try {
        return await fn(release);
      } finally {
        release();
        if (tails.get(key) === tail) tails.delete(key);
      }
    },
  };
}
