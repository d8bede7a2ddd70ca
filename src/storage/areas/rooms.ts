/**
 * Events, room state and membership: `RoomStore` over the engine.
 *
 * Orders (server-server-api.md "Room state", client-server-api "Syncing", "Pagination"):
 * - stream order: the order this server learned events (`events.stream`), which /sync
 *   follows; backfilled history takes negative positions so it never looks new;
 * - topological order: (depth, stream), which /messages and backfill follow.
 * Outliers, rejected and soft-failed events have no stream position: they are kept and
 * found by ID, but are in no timeline and never forward extremities.
 */
import type { Engine } from '../engine.ts';
import type { RoomStore } from '../store.ts';
import type { CacheMarks } from './common.ts';
import { eventIndexReads } from './event-index.ts';
import { roomReads } from './rooms-read.ts';
import { roomWrites } from './rooms-write.ts';

export { toStoredEvent } from './rooms-read.ts';
export { roomIdOf } from './rooms-write.ts';

/** `marks`: checked by the reads whose snapshot a caller's caches are served beside (`CacheMarks`). */
export function roomStore(engine: Engine, marks?: CacheMarks): RoomStore {
  return { ...roomReads(engine, marks), ...roomWrites(engine), ...eventIndexReads(engine) };
}
