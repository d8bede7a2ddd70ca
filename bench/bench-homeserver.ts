/**
 * The homeserver the in-process benchmarks drive (homeserver, media, scaling): open
 * registration, cheap password hashing and no rate limits, so that what is timed is the work
 * under test, not the guards around it.
 */
import { startHomeserver } from '../src/server.ts';
import type { Store } from '../src/storage/store.ts';

const UNLIMITED = { perSecond: 1e9, burst: 1e9 };

export function startBenchHomeserver(serverName: string, store: Store): ReturnType<typeof startHomeserver> {
  return startHomeserver({
    serverName,
    store,
    registration: 'open',
    passwordIterations: 1000,
    rateLimits: { message: UNLIMITED, default: UNLIMITED },
  });
}
