/**
 * HTTP pushers' delivery — client-server-api modules/push.md "Push Gateway" and
 * push-gateway-api (`POST {data.url}` with `{ notification }`). A follower reads the event
 * stream from a stored cursor; for each event, the local users it notifies (the same push
 * rules as the notification counts) who have `http` pushers are sent to their gateways.
 * The cursor moves once an event's notifications were tried: a gateway that fails is
 * retried a few times, then skipped (a late push is worth less than the next one; Synapse
 * also gives up), and a restart resumes after the last event handled.
 *
 * Without outgoing HTTP (a browser's Service Worker), pushers are stored only.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { StoredEvent } from '../../storage/store.ts';
import type { OutboundFetch } from '../appservices/index.ts';
import { repeatInBackground } from '../background.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import type { PushService } from './service.ts';

export const PUSH_CURSOR = 'push';
const ATTEMPTS = 3;
const POLL_MS = 100;
const GATEWAY_TIMEOUT_MS = 10_000;

export interface PushDelivery {
  /** Whether this host sends to push gateways. */
  readonly delivering: boolean;
  /** One step: the events since the cursor; the number of pushes sent. */
  step(): Promise<number>;
  start(): void;
  stop(): void;
}

export function createPushDelivery(
  ctx: HomeserverContext,
  deps: { push: PushService; fetch?: OutboundFetch },
): PushDelivery {
  const { store, logger } = ctx;
  const fetch = deps.fetch;

  async function notification(stored: StoredEvent, userId: string): Promise<JsonObject> {
    const event = stored.event;
    const roomId = stored.roomId;
    const counts = await store.receipts.notificationCounts(userId, roomId, 0);
    const name = (await store.rooms.currentStateEvent(roomId, 'm.room.name', ''))?.event.content.name;
    const sender = await store.rooms.currentStateEvent(roomId, 'm.room.member', event.sender);
    const displayName = sender?.event.content.displayname;
    return {
      event_id: event.event_id,
      room_id: roomId,
      type: event.type,
      sender: event.sender,
      ...(typeof displayName === 'string' ? { sender_display_name: displayName } : {}),
      ...(typeof name === 'string' ? { room_name: name } : {}),
      prio: 'high',
      content: event.content,
      ...(event.state_key !== undefined ? { user_is_target: event.state_key === userId } : {}),
      counts: { unread: Math.max(1, counts.notifications) },
    };
  }

  async function send(url: string, body: JsonObject): Promise<boolean> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        const res = await (fetch as OutboundFetch)(
          new Request(url, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(GATEWAY_TIMEOUT_MS),
          }),
        );
        await res.body?.cancel();
        if (res.ok) return true;
        // push-gateway-api: 4xx other than 429 will not get better by retrying.
        if (res.status >= 400 && res.status < 500 && res.status !== 429) return false;
      } catch (err) {
        logger.debug('push gateway unreachable', { url, error: String(err) });
      }
    }
    logger.warn('push gateway did not take a notification', { url });
    return false;
  }

  /** Whether a user has HTTP pushers, remembered briefly (pushers live in account data). */
  const pusherCache = new Map<string, { has: boolean; at: number }>();
  const PUSHER_CACHE_MS = 5_000;
  async function hasPushers(userId: string): Promise<boolean> {
    const now = ctx.clock.now();
    const cached = pusherCache.get(userId);
    if (cached && now - cached.at < PUSHER_CACHE_MS) return cached.has;
    const has = (await deps.push.pushers(userId)).some((p) => p.kind === 'http');
    if (pusherCache.size > 10_000) pusherCache.clear();
    pusherCache.set(userId, { has, at: now });
    return has;
  }
  async function anyPusherIn(roomId: string): Promise<boolean> {
    for (const m of await store.rooms.members(roomId)) {
      const candidate = m.membership === 'join' || m.membership === 'invite';
      if (candidate && isLocalId(ctx.config, m.userId) && (await hasPushers(m.userId))) return true;
    }
    return false;
  }

  async function step(): Promise<number> {
    if (!fetch) return 0;
    const head = (await store.positions()).events;
    const cursor = await store.operator.getCursor(PUSH_CURSOR);
    if (cursor === null) {
      await store.operator.enqueueAppservice([], { name: PUSH_CURSOR, position: head });
      return 0;
    }
    if (head <= cursor) return 0;
    const upTo = Math.min(head, cursor + 200);
    let sent = 0;
    for (const roomId of await store.rooms.roomsWithEvents(cursor, upTo)) {
      // Most rooms have nobody with a pusher: skip evaluating push rules for them altogether.
      if (!(await anyPusherIn(roomId))) continue;
      const page = await store.rooms.timeline(roomId, { from: cursor, to: upTo, dir: 'f', limit: 1000 });
      for (const stored of page.events) {
        for (const n of await deps.push.notificationsFor(stored.event, roomId)) {
          const pushers = (await deps.push.pushers(n.userId)).filter((p) => p.kind === 'http');
          if (pushers.length === 0) continue;
          const note = await notification(stored, n.userId);
          // One request per gateway URL, naming each of its devices (push-gateway-api `devices`).
          const byUrl = new Map<string, JsonObject[]>();
          for (const p of pushers) {
            const { url, ...data } = p.data as JsonObject & { url: string };
            const list = byUrl.get(url) ?? [];
            list.push({
              app_id: p.app_id,
              pushkey: p.pushkey,
              data,
              tweaks: n.highlight ? { highlight: true } : {},
            });
            byUrl.set(url, list);
          }
          for (const [url, devices] of byUrl) {
            const eventIdOnly = devices.every((d) => (d.data as JsonObject).format === 'event_id_only');
            const body: JsonObject = eventIdOnly
              ? {
                  event_id: note.event_id as string,
                  room_id: note.room_id as string,
                  counts: note.counts as JsonObject,
                  devices,
                }
              : { ...note, devices };
            if (await send(url, { notification: body })) sent++;
          }
        }
      }
    }
    await store.operator.enqueueAppservice([], { name: PUSH_CURSOR, position: upTo });
    return sent;
  }

  const background = repeatInBackground(step, { intervalMs: POLL_MS, logger, what: 'push delivery' });
  return {
    delivering: fetch !== undefined,
    step,
    start() {
      if (fetch) background.start();
    },
    stop: () => background.stop(),
  };
}
