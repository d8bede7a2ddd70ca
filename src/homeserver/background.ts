/**
 * A step repeated in the background until stopped: the followers of the event stream
 * (application services, push delivery) poll the store's position this way. Each round
 * starts `intervalMs` after the last one ended, so a slow round is never overlapped.
 */
import type { Logger } from './context.ts';

export interface Repeater {
  start(): void;
  stop(): void;
}

export function repeatInBackground(
  step: () => Promise<unknown>,
  options: { intervalMs: number; logger: Logger; what: string },
): Repeater {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  const tick = async () => {
    try {
      await step();
    } catch (err) {
      options.logger.error(`${options.what} failed`, { error: String(err) });
    }
    if (running) timer = setTimeout(tick, options.intervalMs);
  };
  return {
    start() {
      if (running) return;
      running = true;
      timer = setTimeout(tick, 0);
    },
    stop() {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
