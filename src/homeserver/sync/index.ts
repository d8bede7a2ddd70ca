/**
 * `GET /sync` — client-server-api "Syncing" (data/api/client-server/sync.yaml): initial and
 * incremental sync and the long-poll.
 *
 * Long-poll: the notifier's version is read *before* each answer is computed; when the answer
 * holds nothing, the request waits for a change to the user or one of their rooms made after
 * that version (so none slips between computing and waiting), then computes again. It ends by
 * `config.maxSyncTimeoutMs` (25 s at most — a Service Worker host is stopped past 30 s)
 * whatever the client asks, and at once when the request is aborted.
 */

import type { HomeserverContext } from '../context.ts';
import { createE2eeSyncData } from '../e2ee/sync-data.ts';
import { invalidParam } from '../errors.ts';
import type { RecentChanges } from '../notifier.ts';
import { parseSyncToken, type SyncPositions } from '../tokens.ts';
import { clampSince, computePass, currentPositions } from './compute.ts';
import { type SyncFilterView, syncFilterView } from './filter-view.ts';
import { createSharedReads } from './shared.ts';
import type { SyncDeps, SyncRequest, SyncResponse } from './types.ts';

export { syncFilterView } from './filter-view.ts';
export type * from './types.ts';

export interface SyncService {
  sync(request: SyncRequest): Promise<SyncResponse>;
}

/** Devices whose last acknowledged to-device position is remembered (a bound, not a tuning knob). */
const ACKNOWLEDGED_KEPT = 10_000;

/** Wake-ups that found nothing for the user before giving up early (a guard, not a tuning knob). */
const MAX_EMPTY_WAKES = 1000;

export function createSyncService(ctx: HomeserverContext, given: SyncDeps): SyncService {
  const e2ee = given.e2ee ?? createE2eeSyncData(ctx);
  const deps: SyncDeps = { ...given, e2ee, shared: given.shared ?? createSharedReads(ctx) };
  /** The to-device position each device last acknowledged (most recent last). */
  const acknowledged = new Map<string, number>();
  return {
    async sync(request) {
      const { userId, deviceId } = request;
      let since: SyncPositions | undefined;
      if (request.since !== undefined) {
        const parsed = parseSyncToken(request.since);
        if (!parsed) {
          throw invalidParam(
            `"since" is not a sync token of this server: ${JSON.stringify(request.since.slice(0, 40))}`,
          );
        }
        since = parsed;
      }
      const filter: SyncFilterView = syncFilterView(request.filter ?? {});
      await deps.presence?.syncing(userId, request.setPresence ?? 'online');

      // Read before the positions: a change notified after it wakes the first wait below.
      const firstVersion = ctx.notifier.version;
      const now = await currentPositions(ctx, deps);
      const clamped = since === undefined ? undefined : clampSince(since, now);
      // Messages the client acknowledged by syncing from a later token are delivered: delete
      // them (send_to_device.md "Server behaviour"). Once up to a position, not again at each
      // long-poll from the same token: later messages take later positions.
      if (clamped && clamped.toDevice > 0 && deviceId !== null) {
        const device = JSON.stringify([userId, deviceId]);
        if ((acknowledged.get(device) ?? 0) < clamped.toDevice) {
          await e2ee.acknowledgeToDevice(userId, deviceId, clamped.toDevice);
          acknowledged.delete(device);
          acknowledged.set(device, clamped.toDevice);
          if (acknowledged.size > ACKNOWLEDGED_KEPT)
            acknowledged.delete(acknowledged.keys().next().value as string);
        }
      }

      const pass = (positions?: SyncPositions, hint?: RecentChanges) =>
        computePass({
          ...(positions ? { positions } : {}),
          ...(hint ? { hint } : {}),
          ctx,
          deps,
          userId,
          deviceId,
          filter,
          since: clamped,
          fullState: request.fullState === true,
          stateField:
            request.stateAfter === 'stable'
              ? 'state_after'
              : request.stateAfter === 'unstable'
                ? 'org.matrix.msc4222.state_after'
                : 'state',
        });
      const timeout = Math.max(0, Math.min(request.timeoutMs ?? 0, ctx.config.maxSyncTimeoutMs));
      const deadline = ctx.clock.now() + timeout;
      // "full_state … the timeout parameter will be ignored and the query will return immediately."
      const mayWait = clamped !== undefined && request.fullState !== true;
      let hint: RecentChanges | undefined;
      for (let wakes = 0; ; wakes++) {
        // The first pass takes the positions just read; a woken one reads them again.
        const version = wakes === 0 ? firstVersion : ctx.notifier.version;
        const result = await pass(wakes === 0 ? now : undefined, hint);
        const remaining = deadline - ctx.clock.now();
        if (
          !result.empty ||
          !mayWait ||
          remaining <= 0 ||
          request.signal?.aborted ||
          wakes >= MAX_EMPTY_WAKES
        ) {
          return result.body;
        }
        const woken = await ctx.notifier.wait(userId, result.rooms, version, remaining, request.signal);
        if (!woken) return result.body;
        // Where the woken pass will likely find news: its reads there start with its first ones.
        const changes = ctx.notifier.changesSince(version);
        for (const room of changes.rooms) if (!result.rooms.has(room)) changes.rooms.delete(room);
        changes.events = changes.events.filter((e) => changes.rooms.has(e.roomId));
        hint = changes;
      }
    },
  };
}
