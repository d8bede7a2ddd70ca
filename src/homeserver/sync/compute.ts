/**
 * One /sync answer, computed from the store at one moment — client-server-api "Syncing",
 * data/api/client-server/sync.yaml, "Lazy-loading room members", "Stripped state",
 * "Receiving notifications", "Ignoring Users", "Extensions to /sync" of send-to-device and
 * end-to-end encryption.
 *
 * Every stream is read up to the positions taken at the start (`now`), so the `next_batch`
 * names exactly what the answer covers and the next sync neither repeats nor skips anything.
 *
 * Per room, the timeline is the latest `limit` events in (lower, upper]:
 * - joined rooms: upper = now; lower = `since`, or nothing (the room's whole history) on an
 *   initial sync and for a room the user joined since `since`;
 * - left rooms: upper = the user's leave, so nothing after it shows.
 * `state` is the state at the start of that timeline: whole when the client has none of it
 * (initial, `full_state`, newly joined), otherwise the change from the state at `since` —
 * which is empty unless the timeline was `limited` and the gap held state changes.
 *
 * `computePass` reads the streams, then hands each part to its own module: which rooms
 * (plan.ts), their timelines and state (room-state.ts), ephemeral events (ephemeral.ts),
 * account data (account-data.ts), and the user-wide sections (devices.ts); it assembles the
 * rooms itself.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Membership, Receipt, RoomUnreadCounts, StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { formatSyncToken, type SyncPositions } from '../tokens.ts';
import { accountDataParts } from './account-data.ts';
import { fillUserSections, type MemberChange } from './devices.ts';
import { ephemeralParts } from './ephemeral.ts';
import {
  createPass,
  limitList,
  MEMBER,
  membershipOf,
  type PassInput,
  prevBatchFor,
  type RoomPlan,
  relationsKey,
  sharedStateAtStream,
  sharedStateBefore,
} from './pass.ts';
import { planRooms, statesAtSince } from './plan.ts';
import { chooseState, loadTimelines, type RecentEvents } from './room-state.ts';
import { strippedStateFor } from './stripped.ts';
import type { JoinedRoom, LeftRoom, SyncDeps, SyncResponse } from './types.ts';

export type { PassInput } from './pass.ts';

/** Rooms with new events whose unread counts are read up front (beyond, only those shown). */
const UNREAD_AHEAD_MAX = 32;
/**
 * Events since `since` read with the positions at most: beyond, the pass is far behind and
 * reads which rooms have news, then their pages, room by room.
 */
const RECENT_EVENTS_MAX = 100;

export interface PassResult {
  body: SyncResponse;
  /** Nothing for the client: a long-poll may wait. */
  empty: boolean;
  /** Rooms whose changes concern this user (for the notifier). */
  rooms: Set<string>;
}

/** The positions of every stream now, the in-memory ones included. */
export async function currentPositions(ctx: HomeserverContext, deps: SyncDeps): Promise<SyncPositions> {
  const stored = await (deps.shared ?? ctx.store).positions();
  return { ...stored, typing: deps.typing?.position ?? 0, presence: deps.presence?.position ?? 0 };
}

/**
 * A `since` from the future is read as "now" for stored streams (nothing is skipped), and as
 * "from the beginning" for the in-memory ones, whose counters restart with the server
 * (tokens.ts).
 */
export function clampSince(since: SyncPositions, now: SyncPositions): SyncPositions {
  return {
    events: Math.min(since.events, now.events),
    receipts: Math.min(since.receipts, now.receipts),
    accountData: Math.min(since.accountData, now.accountData),
    toDevice: Math.min(since.toDevice, now.toDevice),
    deviceLists: Math.min(since.deviceLists, now.deviceLists),
    typing: since.typing > now.typing ? 0 : since.typing,
    presence: since.presence > now.presence ? 0 : since.presence,
    partialState: Math.min(since.partialState, now.partialState),
  };
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function ignoredUsersOf(content: JsonObject | null): Set<string> {
  const ignored = content?.ignored_users;
  return new Set(isObject(ignored) ? Object.keys(ignored) : []);
}

/**
 * The positions of the pass and, for an incremental one not far behind, every timeline event
 * since `since` up to them (read with the positions, one snapshot; shared by the passes of a
 * wake from the same `since`).
 */
async function startPass(input: PassInput): Promise<{ now: SyncPositions; recent?: RecentEvents }> {
  const { ctx, deps, since } = input;
  if (!since) return { now: input.positions ?? (await currentPositions(ctx, deps)) };
  const read = () => ctx.store.positionsWithEvents(since.events, RECENT_EVENTS_MAX);
  const started = await (deps.shared
    ? deps.shared.memo(`positionsWithEvents ${since.events}`, read)
    : read());
  const now = input.positions ?? {
    ...started.positions,
    typing: deps.typing?.position ?? 0,
    presence: deps.presence?.position ?? 0,
  };
  // Positions given by the request may be later than a shared read: its events cover them only
  // if its snapshot reached them (positions are taken in commit order).
  if (!started.complete || started.positions.events < now.events) return { now };
  const events = started.events.filter((e) => (e.stream ?? 0) <= now.events);
  return { now, recent: { after: since.events, upTo: now.events, events } };
}

/**
 * The reads of the hinted rooms that need no earlier answer, made with the pass's first reads
 * and shared (`deps.shared`) under the keys the pass will ask them by: the state at `since`,
 * the state before the first hinted event since `since` and — under a key naming the events
 * position the hint ends at, so used only if the pass reads up to it — the relation summaries
 * of the hinted events, which its page shows when nothing else came.
 */
function readAhead(
  input: PassInput,
  since: SyncPositions,
  rooms: readonly string[],
): { ids: string[]; upTo: number; read: Promise<unknown> }[] {
  const { deps, hint } = input;
  if (!deps.shared || rooms.length > UNREAD_AHEAD_MAX) return [];
  const ahead: { ids: string[]; upTo: number; read: Promise<unknown> }[] = [];
  for (const roomId of rooms) {
    void sharedStateAtStream(input, roomId, since.events).catch(() => undefined);
    const events = (hint?.events ?? [])
      .filter((e) => e.roomId === roomId && e.stream > since.events)
      .sort((a, b) => a.stream - b.stream);
    const first = events[0];
    const last = events[events.length - 1];
    if (!first || !last || events.length > input.filter.timelineLimit) continue;
    void sharedStateBefore(input, first.eventId).catch(() => undefined);
    const ids = events.map((e) => e.eventId);
    // Shared by the passes woken together, like the reads they will be taken for.
    const read = deps.shared.memo(relationsKey(last.stream, ids, 'ahead'), () =>
      input.ctx.store.rooms.relationSummaries(ids),
    );
    read.catch(() => undefined);
    ahead.push({ ids, upTo: last.stream, read });
  }
  return ahead;
}

export async function computePass(input: PassInput): Promise<PassResult> {
  const { ctx, deps, userId, since } = input;
  const { store } = ctx;
  // The first round of reads, issued together: the positions (with the events since `since`),
  // the user's memberships, counters and key counts, and — where the hint says the news is —
  // the state at `since` and the unread counts.
  const hinted = since ? [...(input.hint?.rooms ?? [])] : [];
  const unreadRooms = hinted.length <= UNREAD_AHEAD_MAX ? hinted : [];
  const relationsAhead = since ? readAhead(input, since, hinted) : [];
  const [{ now, recent }, snapshot, settings] = await Promise.all([
    startPass(input),
    store.syncSnapshot(userId, { deviceId: input.deviceId, unreadRooms }),
    // The ignore list as the push settings cache keeps it (write-through, shared with sends).
    store.userData.pushSettings([userId]),
  ]);

  // The relation summaries read ahead are the pass's own if its page is what the hint said.
  for (const ahead of relationsAhead)
    if (ahead.upTo === now.events) deps.shared?.memo(relationsKey(now.events, ahead.ids), () => ahead.read);
  const withEvents = since
    ? recent
      ? new Set(recent.events.map((e) => e.roomId))
      : await (deps.shared
          ? deps.shared.roomsWithEvents(since.events, now.events)
          : store.rooms.roomsWithEvents(since.events, now.events).then((ids) => new Set(ids)))
    : undefined;
  // A stream that has not moved since `since` has nothing new for anyone: not read. Awaited
  // where they are used, so that these reads go with the next round.
  const accountData =
    since && since.accountData >= now.accountData
      ? Promise.resolve([])
      : store.userData.accountDataSince(userId, since?.accountData ?? 0, now.accountData);
  const newReceipts = since ? newReceiptsOf(input, since.receipts, now.receipts) : Promise.resolve(undefined);
  accountData.catch(() => undefined);
  newReceipts.catch(() => undefined);
  const { memberships } = snapshot;
  const pass = createPass(input, now, ignoredUsersOf(settings.get(userId)?.ignoredUsers ?? null));

  const { plans, invites, knocks, wakeRooms } = planRooms(pass, memberships, withEvents);
  const sinceStates = await statesAtSince(pass, plans, withEvents);
  if (since && since.partialState < now.partialState) {
    // A room joined with partial state whose full state came since: sent whole again, so the
    // members the resident first omitted fill in (their events are no timeline news).
    const filled = new Set(await store.rooms.roomsFilledSince(since.partialState, now.partialState));
    for (const p of plans) {
      if (p.section !== 'join' || !filled.has(p.roomId)) continue;
      p.fullState = true;
      p.fetch = true;
    }
  }
  const timelines = await loadTimelines(pass, plans, withEvents, recent);
  // Each room's timeline is formatted (its relations and redactions read) while its state is
  // chosen and the ephemeral and account data read: reads that wait on no other overlap.
  const formatted = new Map(
    plans.map((p) => [p.roomId, pass.formatEvents(timelines.get(p.roomId)?.events ?? [], true)]),
  );
  // Awaited below, room by room; a failure elsewhere first must not leave them unhandled.
  for (const events of formatted.values()) events.catch(() => undefined);
  const [states, ephemeral, roomData] = await Promise.all([
    chooseState(pass, plans, timelines, sinceStates),
    newReceipts.then((receipts) => ephemeralParts(pass, plans, receipts)),
    accountData.then((data) => accountDataParts(pass, plans, data)),
  ]);

  // --- assemble rooms ------------------------------------------------------------------------
  const body: SyncResponse = {
    next_batch: '',
    rooms: { join: {}, invite: {}, leave: {}, knock: {} },
    presence: { events: [] },
    account_data: { events: limitList(roomData.global, input.filter.accountData.limit) },
    to_device: { events: [] },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: {},
    device_unused_fallback_key_types: [],
  };
  const stateName = input.stateField;
  const memberChanges: MemberChange[] = [];
  const joinedOut: RoomPlan[] = [];

  for (const p of plans) {
    const timeline = timelines.get(p.roomId) ?? { events: [], limited: false };
    const prevBatch = prevBatchFor(timeline.events[0], now, p.upper);
    const events = await (formatted.get(p.roomId) as Promise<JsonObject[]>);
    const state = await states.stateFor(p);
    const accountEvents = limitList(roomData.byRoom.get(p.roomId) ?? [], input.filter.room.accountData.limit);
    const timelineBatch = { events, limited: timeline.limited, prev_batch: prevBatch };
    const changes = [...timeline.events];
    if (!p.fullState)
      for (const id of states.chosen.get(p.roomId)?.values() ?? [])
        changes.push(states.events.get(id) as StoredEvent);
    for (const e of changes) {
      if (e?.event.type === MEMBER && typeof e.event.state_key === 'string' && e.event.state_key !== userId) {
        memberChanges.push({
          roomId: p.roomId,
          userId: e.event.state_key,
          membership: membershipOf(e.event) ?? 'leave',
        });
      }
    }
    if (p.section === 'leave') {
      const room: LeftRoom = { timeline: timelineBatch, account_data: { events: accountEvents } };
      room[stateName] = { events: state };
      body.rooms.leave[p.roomId] = room;
      continue;
    }
    const ephemeralEvents = ephemeral.ephemeralFor(p.roomId);
    const news =
      p.fullState ||
      timeline.limited ||
      events.length + state.length + ephemeralEvents.length + accountEvents.length > 0;
    if (!news) continue;
    const room: JoinedRoom = {
      timeline: timelineBatch,
      ephemeral: { events: ephemeralEvents },
      account_data: { events: accountEvents },
      unread_notifications: { notification_count: 0, highlight_count: 0 },
    };
    room[stateName] = { events: state };
    const summary = states.summaries.get(p.roomId);
    if (summary) room.summary = summary;
    body.rooms.join[p.roomId] = room;
    joinedOut.push(p);
  }
  await fillUnreadCounts(input, joinedOut, body, snapshot.unread);

  const strippedFor = async (m: Membership) => {
    const event = (await store.rooms.getEvent(m.eventId))?.event;
    if (!event) return null;
    // "Servers must not send room invites from ignored users to clients."
    if (m.membership === 'invite' && pass.ignored.has(event.sender)) return null;
    return strippedStateFor(store, event);
  };
  await Promise.all([
    ...invites.map(async (m) => {
      const events = await strippedFor(m);
      if (events) body.rooms.invite[m.roomId] = { invite_state: { events } };
    }),
    ...knocks.map(async (m) => {
      const events = await strippedFor(m);
      if (events) body.rooms.knock[m.roomId] = { knock_state: { events } };
    }),
  ]);

  const joinedRoomIds = new Set(memberships.filter((m) => m.membership === 'join').map((m) => m.roomId));
  const toDevicePosition = await fillUserSections(
    pass,
    body,
    joinedRoomIds,
    memberChanges,
    plans,
    snapshot.keys,
  );

  body.next_batch = formatSyncToken({ ...now, toDevice: toDevicePosition });
  const empty =
    Object.keys(body.rooms.join).length === 0 &&
    Object.keys(body.rooms.invite).length === 0 &&
    Object.keys(body.rooms.leave).length === 0 &&
    Object.keys(body.rooms.knock).length === 0 &&
    body.presence.events.length === 0 &&
    body.account_data.events.length === 0 &&
    body.to_device.events.length === 0 &&
    body.device_lists.changed.length === 0 &&
    body.device_lists.left.length === 0;
  return { body, empty, rooms: wakeRooms };
}

/** Receipts at positions in (from, to], for every room (the same for every user: shared). */
function newReceiptsOf(input: PassInput, from: number, to: number): Promise<readonly Receipt[]> {
  if (from >= to) return Promise.resolve([]);
  const read = () => input.ctx.store.receipts.receiptsSince(from, to);
  return input.deps.shared ? input.deps.shared.memo(`receipts ${from} ${to}`, read) : read();
}

/**
 * `unread_notifications` (and, when the filter asks, `unread_thread_notifications`): the
 * counters the store keeps at write time and read receipts reset — a few rows per room,
 * whatever the number of unread notifications. Without the thread filter every thread
 * counts in the room's figure (sync.yaml `unread_thread_notifications`).
 */
async function fillUnreadCounts(
  input: PassInput,
  rooms: readonly RoomPlan[],
  body: SyncResponse,
  known: ReadonlyMap<string, RoomUnreadCounts>,
): Promise<void> {
  const missing = rooms.map((p) => p.roomId).filter((roomId) => !known.has(roomId));
  const counts = new Map(known);
  if (missing.length > 0)
    for (const [roomId, count] of await input.ctx.store.receipts.unreadCounts(input.userId, missing))
      counts.set(roomId, count);
  const byThread = input.filter.room.timeline.unreadThreadNotifications;
  for (const p of rooms) {
    const room = body.rooms.join[p.roomId];
    const count = counts.get(p.roomId);
    if (!room || !count) continue;
    let { notifications, highlights } = count.main;
    const threads: NonNullable<JoinedRoom['unread_thread_notifications']> = {};
    for (const [threadId, thread] of count.threads) {
      if (byThread)
        threads[threadId] = { notification_count: thread.notifications, highlight_count: thread.highlights };
      else {
        notifications += thread.notifications;
        highlights += thread.highlights;
      }
    }
    room.unread_notifications = { notification_count: notifications, highlight_count: highlights };
    if (byThread) room.unread_thread_notifications = threads;
  }
}
