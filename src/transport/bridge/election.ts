/**
 * One leader among the tabs of an origin, elected with Web Locks (`navigator.locks`): every
 * tab asks for the same exclusive lock; the one holding it leads, the others wait in the
 * lock's queue. The browser lets a lock go when its tab closes (or crashes), and the next
 * tab in the queue gets it — no heartbeat, no stale leader.
 *
 * The leader runs `lead` (start the libp2p node, connect the bridge); if that fails the lock
 * is let go, so another tab may try, and this tab queues again after `retryMs`.
 */

export interface ElectionOptions {
  /** The origin's lock manager (`navigator.locks`). */
  locks: LockManager;
  /** The lock's name: one per homeserver (scope). */
  name: string;
  /** Starts leading; resolves with what stops it. */
  lead(): Promise<() => void | Promise<void>>;
  /** A failed start or stop (logged by the caller). */
  onError?(error: unknown): void;
  /** After a failed start, how long before this tab queues again; default 5 s. */
  retryMs?: number;
}

export interface Leadership {
  /** Whether this tab leads now. */
  readonly leading: boolean;
  /** Resolves when this tab starts leading (stays pending while another tab leads). */
  readonly elected: Promise<void>;
  /** Stops leading (running the stop `lead` gave) or leaves the queue; the lock passes on. */
  close(): Promise<void>;
}

export function electLeader(options: ElectionOptions): Leadership {
  const retryMs = options.retryMs ?? 5_000;
  const quit = new AbortController();
  let leading = false;
  let stopLeading: (() => void | Promise<void>) | null = null;
  let released: (() => void) | null = null;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let onElected!: () => void;
  const elected = new Promise<void>((resolve) => {
    onElected = resolve;
  });
  /** The lock request in flight (it settles when this tab lets the lock go). */
  let holding: Promise<unknown> = Promise.resolve();

  const queue = () => {
    holding = options.locks
      .request(options.name, { mode: 'exclusive', signal: quit.signal }, async () => {
        if (quit.signal.aborted) return;
        try {
          stopLeading = await options.lead();
        } catch (error) {
          options.onError?.(error);
          retry = setTimeout(() => {
            if (!quit.signal.aborted) queue();
          }, retryMs);
          return; // lets the lock go: another tab may start where this one failed
        }
        if (quit.signal.aborted) {
          // `close` came while starting: stop what just started.
          const stop = stopLeading;
          stopLeading = null;
          await Promise.resolve(stop?.()).catch((error: unknown) => options.onError?.(error));
          return;
        }
        leading = true;
        onElected();
        // Held until this tab closes, or `close` lets it go.
        await new Promise<void>((resolve) => {
          released = resolve;
          if (quit.signal.aborted) resolve();
        });
      })
      // Aborted while still queued (`close`): nothing to undo.
      .catch((error: unknown) => {
        if (!quit.signal.aborted) options.onError?.(error);
      });
  };
  queue();

  return {
    get leading() {
      return leading;
    },
    elected,
    async close() {
      quit.abort();
      clearTimeout(retry);
      const stop = stopLeading;
      stopLeading = null;
      leading = false;
      if (stop) {
        try {
          await stop();
        } catch (error) {
          options.onError?.(error);
        }
      }
      released?.();
      await holding;
    },
  };
}
