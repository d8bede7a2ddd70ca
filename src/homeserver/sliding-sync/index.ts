/**
 * Simplified sliding sync — MSC4186, at `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`
 * (the unstable endpoint matrix-js-sdk's `SlidingSync` and Element X call).
 *
 * One answer: read the connection's state at `pos` (connection.ts), build the room list
 * (room-list.ts), decide per matched room whether to send it whole, send what changed, or
 * nothing, build those rooms (room-data.ts) and the extensions (extensions.ts), then save the
 * state if it changed. Long-poll as /sync does: the notifier's version is read before each
 * answer is computed; an answer with nothing in it waits for a change to the user or one of
 * their rooms (a new message anywhere may reorder the list), up to `config.maxSyncTimeoutMs`.
 */

import { canonicalJson } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';
import { clampSince, currentPositions, ignoredUsersOf } from '../sync/compute.ts';
import type { SyncDeps } from '../sync/types.ts';
import type { SyncPositions } from '../tokens.ts';
import {
  type ConnectionState,
  formatPos,
  loadState,
  parsePos,
  type SentRoom,
  toStored,
} from './connection.ts';
import { computeExtensions } from './extensions.ts';
import { combineConfigs, configFromSignature, requiredStateSignature } from './required-state.ts';
import { type RoomToSend, roomResults } from './room-data.ts';
import { createRoomFacts } from './room-facts.ts';
import { buildRoomList } from './room-list.ts';
import type { E2eeForSync, SlidingSyncRequest, SlidingSyncResponse } from './types.ts';

export type * from './types.ts';

export interface SlidingSyncService {
  sync(request: SlidingSyncRequest): Promise<SlidingSyncResponse>;
}

export interface SlidingSyncDeps extends SyncDeps {
  e2ee: E2eeForSync;
}

/** Subscriptions a connection keeps: past this the oldest go (clients that never unsubscribe). */
export const MAX_SUBSCRIPTIONS = 500;
/** Connection states kept in memory (see `loadCached`): a few per active connection. */
const RECENT_STATES = 64;
/** Wake-ups that found nothing for the user before giving up early (a guard, as in /sync). */
const MAX_EMPTY_WAKES = 1000;

interface Pass {
  body: SlidingSyncResponse;
  /** Every stream was read up to these: the answer's `pos` names them. */
  now: SyncPositions;
  next: ConnectionState;
  empty: boolean;
  wakeRooms: Set<string>;
}

export function createSlidingSyncService(ctx: HomeserverContext, deps: SlidingSyncDeps): SlidingSyncService {
  const { store } = ctx;
  const facts = createRoomFacts(store);
  /**
   * Recently used connection states by version. A saved version never changes (a new one is
   * written instead), so a copy kept here is never stale; it only saves reading and decoding
   * a row of a few hundred rooms on every long-poll. The store stays the record.
   */
  const recent = new Map<string, ConnectionState>();
  type Key = { userId: string; deviceId: string; connId: string };
  const remember = (key: Key, version: number, state: ConnectionState) => {
    const id = `${key.userId}\u0000${key.deviceId}\u0000${key.connId}\u0000${version}`;
    recent.delete(id);
    if (recent.size >= RECENT_STATES) recent.delete(recent.keys().next().value as string);
    recent.set(id, state);
  };
  async function loadCached(key: Key, version: number) {
    const state =
      recent.get(`${key.userId}\u0000${key.deviceId}\u0000${key.connId}\u0000${version}`) ??
      (await loadState(store, key, version));
    remember(key, version, state);
    return state;
  }

  async function computeOnce(
    request: SlidingSyncRequest,
    state: ConnectionState,
    since: SyncPositions | undefined,
  ): Promise<Pass> {
    const { userId } = request;
    const now = await currentPositions(ctx, deps);
    const from = since === undefined ? undefined : clampSince(since, now);
    const [list, ignoredContent] = await Promise.all([
      buildRoomList({ store, facts, userId, now: now.events, state, lists: request.lists }),
      store.userData.getAccountData(userId, 'm.ignored_user_list'),
    ]);
    const ignored = ignoredUsersOf(ignoredContent);
    const changedRooms = from
      ? new Set(await store.rooms.roomsWithEvents(from.events, now.events))
      : undefined;

    // Which rooms to send, and how (MSC4186 "Room results", "Changing room configs").
    const sends: RoomToSend[] = [];
    const next: ConnectionState = { rooms: new Map(), subscriptions: state.subscriptions };
    for (const [roomId, match] of list.matched) {
      const room = list.rooms.get(roomId);
      if (!room) continue;
      const config = combineConfigs(match.configs);
      const signature = requiredStateSignature(config);
      const membership = room.membership.membership;
      const prev = state.rooms.get(roomId);
      const sent: SentRoom = {
        at: null,
        requiredState: signature,
        timelineLimit: config.timelineLimit,
        membership,
      };
      const send = (initial: boolean, at?: number, grown?: Pick<RoomToSend, 'sentWith' | 'expandTimeline'>) =>
        sends.push({
          room,
          config,
          initial,
          since: at,
          lists: match.lists,
          isDm: list.dmRooms.has(roomId),
          ...grown,
        });
      const stripped = (m: string) => m === 'invite' || m === 'knock';
      if (!prev || (stripped(prev.membership) && !stripped(membership))) {
        // New to the client, or only known by its stripped state: sent whole (`initial`
        // tells the client to replace its copy).
        send(true);
      } else if (
        membership !== 'invite' &&
        membership !== 'knock' &&
        (prev.requiredState !== signature || config.timelineLimit > prev.timelineLimit)
      ) {
        // Asked for with more state or a longer timeline (MSC4186 "Changing room configs"):
        // only what the client lacks — the state the old config did not ask for, the longer
        // timeline — beside what changed since it last had the room; never `initial`, so it
        // keeps what it has.
        const at = prev.at ?? from?.events ?? 0;
        send(false, at, {
          sentWith: prev.requiredState === signature ? undefined : configFromSignature(prev.requiredState, 0),
          expandTimeline: config.timelineLimit > prev.timelineLimit,
        });
        sent.timelineLimit = Math.max(prev.timelineLimit, config.timelineLimit);
      } else {
        const at = prev.at ?? from?.events ?? 0;
        let news: boolean;
        if (membership !== 'join') {
          // Invited, knocked, left or banned: nothing in the room after the membership event
          // is the user's to see, so only a change of it is news.
          news = (room.membership.stream ?? 0) > at;
        } else if (prev.at === null) news = changedRooms?.has(roomId) ?? false;
        else news = ((await store.rooms.eventAtStream(roomId, now.events))?.stream ?? 0) > at;
        if (news || prev.membership !== membership) send(false, at);
        // A shorter limit needs no resend; remember the one the client's copy was made with.
        sent.timelineLimit = Math.max(prev.timelineLimit, config.timelineLimit);
      }
      next.rooms.set(roomId, sent);
    }
    // Rooms no rule matches now: the client keeps them as they were at `pos` (or earlier).
    for (const [roomId, prev] of state.rooms) {
      if (next.rooms.has(roomId)) continue;
      next.rooms.set(roomId, prev.at === null ? { ...prev, at: from?.events ?? 0 } : prev);
    }

    const dataInput = {
      ctx,
      deps,
      userId,
      deviceId: request.deviceId,
      ignored,
      now,
      posEvents: from?.events,
    };
    const { rooms, timelines } = await roomResults(dataInput, sends);
    const listRooms = new Map<string, string[]>();
    for (const [roomId, match] of list.matched)
      for (const name of match.lists) listRooms.set(name, [...(listRooms.get(name) ?? []), roomId]);
    const initialRooms = new Map(
      sends.filter((s) => s.initial).map((s) => [s.room.roomId, timelines.get(s.room.roomId) ?? []]),
    );
    const extensions = await computeExtensions(request.extensions, {
      ...dataInput,
      e2ee: deps.e2ee,
      since: from,
      listRooms,
      subscribedRooms: [...list.matched].filter(([, m]) => m.subscribed).map(([roomId]) => roomId),
      initialRooms,
    });
    const body: SlidingSyncResponse = {
      pos: '',
      lists: list.counts,
      rooms,
      extensions: extensions.body,
    };
    return {
      body,
      now,
      next,
      empty: Object.keys(rooms).length === 0 && !extensions.news,
      wakeRooms: list.wakeRooms,
    };
  }

  return {
    async sync(request) {
      const { userId } = request;
      const key = { userId, deviceId: request.deviceId ?? '', connId: request.connId };
      const pos = request.pos === undefined ? undefined : parsePos(request.pos);
      const loaded = await loadCached(key, pos?.version ?? 0);
      const state: ConnectionState = { rooms: loaded.rooms, subscriptions: new Map(loaded.subscriptions) };
      for (const roomId of request.unsubscribeRooms) state.subscriptions.delete(roomId);
      for (const [roomId, config] of Object.entries(request.roomSubscriptions)) {
        // Re-inserted, so the most recent subscriptions are the ones kept.
        state.subscriptions.delete(roomId);
        state.subscriptions.set(roomId, config);
      }
      while (state.subscriptions.size > MAX_SUBSCRIPTIONS) {
        const oldest = state.subscriptions.keys().next().value as string;
        state.subscriptions.delete(oldest);
      }
      await deps.presence?.syncing(userId, request.setPresence ?? 'online');

      const timeout = Math.max(0, Math.min(request.timeoutMs ?? 0, ctx.config.maxSyncTimeoutMs));
      const deadline = ctx.clock.now() + timeout;
      let result: Pass;
      for (let wakes = 0; ; wakes++) {
        const version = ctx.notifier.version;
        result = await computeOnce(request, state, pos?.positions);
        const remaining = deadline - ctx.clock.now();
        // "timeout … Ignored when no `pos` is set": a first request answers at once.
        if (!result.empty || pos === undefined || remaining <= 0 || request.signal?.aborted) break;
        if (wakes >= MAX_EMPTY_WAKES) break;
        const woken = await ctx.notifier.wait(userId, result.wakeRooms, version, remaining, request.signal);
        if (!woken) break;
      }

      let version = pos?.version ?? 0;
      const firstAndEmpty =
        pos === undefined && result.next.rooms.size === 0 && result.next.subscriptions.size === 0;
      if (!sameState(result.next, loaded) && !firstAndEmpty) {
        version = await store.userData.saveSlidingSyncConnection(
          key.userId,
          key.deviceId,
          key.connId,
          toStored(result.next),
          pos?.version ?? 0,
        );
        remember(key, version, result.next);
      }
      result.body.pos = formatPos(version, result.now);
      if (request.txnId !== undefined) result.body.txn_id = request.txnId;
      return result.body;
    },
  };
}

/** Whether two states would be stored alike (the answer changed nothing the connection remembers). */
function sameState(a: ConnectionState, b: ConnectionState): boolean {
  if (a.rooms.size !== b.rooms.size || a.subscriptions.size !== b.subscriptions.size) return false;
  for (const [roomId, x] of a.rooms) {
    const y = b.rooms.get(roomId);
    if (
      !y ||
      x.at !== y.at ||
      x.requiredState !== y.requiredState ||
      x.timelineLimit !== y.timelineLimit ||
      x.membership !== y.membership
    )
      return false;
  }
  const subs = (s: ConnectionState) =>
    [...s.subscriptions].map(([roomId, config]) => `${roomId} ${canonicalJson(config as never)}`).join('\n');
  return subs(a) === subs(b);
}
