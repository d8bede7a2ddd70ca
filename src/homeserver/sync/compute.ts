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
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type IdentifiedPdu, type StateKey, type StateMap, splitStateKey, stateKey } from '../../core/pdu.ts';
import type { Membership, Receipt, StoredEvent } from '../../storage/store.ts';
import { loadClientEvents } from '../client-event.ts';
import type { HomeserverContext } from '../context.ts';
import { receiptContent } from '../ephemeral/receipts.ts';
import { PUSHERS_ACCOUNT_DATA_TYPE } from '../push/service.ts';
import { formatSyncToken, formatTopoToken, type SyncPositions } from '../tokens.ts';
import type { SyncFilterView } from './filter-view.ts';
import { strippedStateFor } from './stripped.ts';
import { type RoomSummary, roomSummary, summaryFromState } from './summary.ts';
import type { JoinedRoom, LeftRoom, StateField, SyncDeps, SyncResponse } from './types.ts';

/** "100 messages is recommended as a reasonable limit" (send_to_device.md "Server behaviour"). */
export const TO_DEVICE_LIMIT = 100;

const MEMBER = 'm.room.member';
/** Account data the server keeps for itself (pushers, until they have a table): not the client's to sync. */
const HIDDEN_ACCOUNT_DATA: ReadonlySet<string> = new Set([PUSHERS_ACCOUNT_DATA_TYPE]);

export interface PassInput {
  ctx: HomeserverContext;
  deps: SyncDeps;
  userId: string;
  deviceId: string | null;
  filter: SyncFilterView;
  /** Positions of the `since` token, already clamped to `now`; undefined for an initial sync. */
  since: SyncPositions | undefined;
  fullState: boolean;
  /** Where room state goes; anything but `state` means "up to the end of the timeline". */
  stateField: StateField;
}

export interface PassResult {
  body: SyncResponse;
  /** Nothing for the client: a long-poll may wait. */
  empty: boolean;
  /** Rooms whose changes concern this user (for the notifier). */
  rooms: Set<string>;
}

/** The positions of every stream now, the in-memory ones included. */
export async function currentPositions(ctx: HomeserverContext, deps: SyncDeps): Promise<SyncPositions> {
  const stored = await ctx.store.positions();
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
  };
}

interface RoomPlan {
  roomId: string;
  section: 'join' | 'leave';
  membership: Membership;
  /** Send the whole state at the timeline start, not a change since `since`. */
  fullState: boolean;
  /** Timeline bounds in stream positions: (lower, upper]; lower undefined = from the beginning. */
  lower: number | undefined;
  upper: number;
  /** Whether the room can have timeline events in the range (else nothing but ephemeral news). */
  fetch: boolean;
  /** Joined since `since`: its members' devices are new to the client. */
  newlyJoined?: boolean;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function ignoredUsersOf(content: JsonObject | null): Set<string> {
  const ignored = content?.ignored_users;
  return new Set(isObject(ignored) ? Object.keys(ignored) : []);
}

/** The membership recorded in a member event's content (client-server-api `m.room.member`). */
const membershipOf = (event: IdentifiedPdu | undefined) =>
  typeof event?.content.membership === 'string' ? event.content.membership : undefined;

function stateDelta(reference: StateMap, base: StateMap): StateMap {
  const out: StateMap = new Map();
  for (const [key, id] of reference) if (base.get(key) !== id) out.set(key, id);
  return out;
}

/** The `m.receipt` content of a room's receipts, without other users' private ones (receipts.md). */
function visibleReceipts(receipts: readonly Receipt[], userId: string): JsonObject | null {
  const shown = receipts.filter((r) => r.receiptType !== 'm.read.private' || r.userId === userId);
  return shown.length > 0 ? receiptContent(shown) : null;
}

export async function computePass(input: PassInput): Promise<PassResult> {
  const { ctx, deps, userId, deviceId, filter, since } = input;
  const stateAfter = input.stateField !== 'state';
  const { store } = ctx;
  const now = await currentPositions(ctx, deps);
  const clock = ctx.clock.now();

  const [memberships, ignoredContent, accountData, withEvents, newReceipts] = await Promise.all([
    store.rooms.roomsForUser(userId),
    store.userData.getAccountData(userId, 'm.ignored_user_list'),
    store.userData.accountDataSince(userId, since?.accountData ?? 0, now.accountData),
    since ? store.rooms.roomsWithEvents(since.events, now.events).then((ids) => new Set(ids)) : undefined,
    since ? store.receipts.receiptsSince(since.receipts, now.receipts) : undefined,
  ]);
  const ignored = ignoredUsersOf(ignoredContent);

  /**
   * Events as the client sees them (client-event.ts): without `room_id` (the section names the
   * room), `transaction_id` for the sending device only, then `event_fields`. `prev_content`
   * is looked up for the timeline only: state events are many and clients apply them as a set.
   */
  const formatEvents = async (
    events: readonly StoredEvent[],
    prevContent: boolean,
  ): Promise<JsonObject[]> => {
    const formatted = await loadClientEvents(store, events, { userId, deviceId }, clock, {
      withRoomId: false,
      format: filter.eventFormat,
      prevContent,
    });
    return formatted.map((event) => filter.fields(event));
  };

  // --- which rooms, in which section, with which bounds --------------------------------
  const plans: RoomPlan[] = [];
  const invites: Membership[] = [];
  const knocks: Membership[] = [];
  const wakeRooms = new Set<string>();
  for (const m of memberships) {
    if (m.membership !== 'leave' && m.membership !== 'ban') wakeRooms.add(m.roomId);
    if (m.forgotten || !filter.room.includesRoom(m.roomId)) continue;
    const changed = since === undefined || (m.stream ?? 0) > since.events;
    const at = m.stream ?? 0;
    switch (m.membership) {
      case 'join':
        plans.push({
          roomId: m.roomId,
          section: 'join',
          membership: m,
          fullState: since === undefined || input.fullState || changed,
          lower: since?.events,
          upper: now.events,
          fetch: since === undefined || changed || input.fullState || (withEvents?.has(m.roomId) ?? true),
        });
        break;
      case 'invite':
        if (changed) invites.push(m);
        break;
      case 'knock':
        if (changed) knocks.push(m);
        break;
      case 'leave':
      case 'ban':
        // Rooms left before `since` were reported then; older ones only when asked for.
        if (since === undefined ? filter.room.includeLeave : changed) {
          plans.push({
            roomId: m.roomId,
            section: 'leave',
            membership: m,
            fullState: since === undefined,
            lower: since?.events,
            upper: at,
            fetch: true,
          });
        }
        break;
    }
  }

  // The state at `since` of rooms the client already knows: the base of each state change, and
  // how a rejoin (or a profile change) is told from a room joined for the first time.
  const sinceStates = new Map<string, StateMap>();
  if (since) {
    const needing = plans.filter((p) => p.fetch);
    const loaded = await Promise.all(needing.map((p) => store.rooms.stateAtStream(p.roomId, since.events)));
    needing.forEach((p, i) => {
      sinceStates.set(p.roomId, loaded[i] as StateMap);
    });
    const ownKey = stateKey(MEMBER, userId);
    const ownAtSince = await store.rooms.getEvents(
      needing
        .map((p) => sinceStates.get(p.roomId)?.get(ownKey))
        .filter((id): id is string => id !== undefined),
    );
    for (const p of needing) {
      const id = sinceStates.get(p.roomId)?.get(ownKey);
      const wasJoined = id !== undefined && membershipOf(ownAtSince.get(id)?.event) === 'join';
      if (p.section === 'join' && (p.membership.stream ?? 0) > since.events) {
        if (wasJoined) {
          // A member event since `since` while joined then (a profile change) is no new join.
          p.fullState = input.fullState;
          p.fetch = input.fullState || (withEvents?.has(p.roomId) ?? true);
        } else {
          // Newly joined: the whole room as an initial sync would show it.
          p.newlyJoined = true;
          p.lower = undefined;
        }
      }
      // A room left without having been joined at `since` (an invite rejected, a join and a
      // leave in between) is new to the client: all of it up to the leave.
      if (p.section === 'leave' && !wasJoined) {
        p.fullState = true;
        p.lower = undefined;
      }
    }
  }

  // --- timelines -------------------------------------------------------------------------
  const limit = filter.timelineLimit;
  const timelineFilter = filter.room.timeline;
  const matchesTimeline = (e: StoredEvent) =>
    timelineFilter.matches(e.event, e.roomId) &&
    // "Servers must still send state events sent by ignored users" ("Ignoring Users").
    (!ignored.has(e.event.sender) || typeof e.event.state_key === 'string');
  const fetching = plans.filter(
    (p) =>
      p.fetch &&
      timelineFilter.includesRoom(p.roomId) &&
      (p.lower === undefined || p.lower < p.upper) &&
      limit > 0,
  );
  const pages = await store.rooms.timelines(
    fetching.map((p) => ({
      roomId: p.roomId,
      dir: 'b' as const,
      from: p.upper,
      to: p.lower,
      limit,
      filter: matchesTimeline,
    })),
  );
  const timelines = new Map<string, { events: StoredEvent[]; limited: boolean }>();
  await Promise.all(
    fetching.map(async (p, i) => {
      const page = pages[i] as { events: StoredEvent[]; next: number | null };
      const ordered = [...page.events].reverse();
      // After the user's latest member event (while joined) everything is theirs to see; before
      // it, history visibility decides.
      const seenAfter = p.section === 'join' ? (p.membership.stream ?? 0) : Number.POSITIVE_INFINITY;
      const older = ordered.filter((e) => (e.stream ?? 0) <= seenAfter);
      const shown =
        older.length > 0 && deps.rooms
          ? new Set(await deps.rooms.filterVisible(userId, p.roomId, older))
          : new Set(older);
      timelines.set(p.roomId, {
        events: ordered.filter((e) => (e.stream ?? 0) > seenAfter || shown.has(e)),
        limited: page.next !== null,
      });
    }),
  );

  // `timeline.limit: 0` asks for state without history: every room with events is limited.
  if (limit === 0) {
    for (const p of plans) {
      if (p.fetch && (p.lower === undefined || withEvents?.has(p.roomId)))
        timelines.set(p.roomId, { events: [], limited: true });
    }
  }

  // --- state -------------------------------------------------------------------------------
  const chosenState = new Map<string, StateMap>();
  /** The whole state the chosen state was taken from (lazy-loading picks members from it). */
  const referenceStates = new Map<string, StateMap>();
  await Promise.all(
    plans.map(async (p) => {
      if (!p.fullState && !p.fetch) return; // no event since `since`: no state change either
      const first = timelines.get(p.roomId)?.events[0];
      let reference: StateMap;
      if (stateAfter || !first) reference = await store.rooms.stateAtStream(p.roomId, p.upper);
      else {
        reference =
          (await store.rooms.stateAt(first.event.event_id, 'before')) ??
          (await store.rooms.stateAtStream(p.roomId, (first.stream ?? 1) - 1));
      }
      referenceStates.set(p.roomId, reference);
      chosenState.set(
        p.roomId,
        p.fullState ? reference : stateDelta(reference, sinceStates.get(p.roomId) ?? new Map()),
      );
    }),
  );

  // Every state event any section may show, in one read; for rooms sent whole (without
  // lazy-loading) that is all their members, from which their summary is taken too.
  const lazy = filter.room.state.lazyLoadMembers;
  const stateEvents = await store.rooms.getEvents([
    ...new Set([...chosenState.values()].flatMap((state) => [...state.values()])),
  ]);

  // Summaries before lazy-loading: the heroes' member events must then be in `state`.
  const summaries = new Map<string, RoomSummary>();
  await Promise.all(
    plans
      .filter((p) => p.section === 'join')
      .map(async (p) => {
        const timeline = timelines.get(p.roomId)?.events ?? [];
        const state = chosenState.get(p.roomId) ?? new Map<StateKey, string>();
        const membersMoved =
          timeline.some((e) => e.event.type === MEMBER) ||
          [...state.keys()].some((k) => splitStateKey(k)[0] === MEMBER);
        if (!p.fullState && !membersMoved) return;
        if (p.fullState && !lazy) {
          const end = new Map<StateKey, StoredEvent>();
          for (const [key, id] of state) {
            const stored = stateEvents.get(id);
            if (stored) end.set(key, stored);
          }
          for (const e of timeline) {
            if (typeof e.event.state_key === 'string') end.set(stateKey(e.event.type, e.event.state_key), e);
          }
          summaries.set(p.roomId, summaryFromState(end, userId));
        } else summaries.set(p.roomId, await roomSummary(store, p.roomId, userId));
      }),
  );

  // Lazy-loading: of the member events, only the timeline's senders', the user's own when the
  // state is whole, and the heroes' — but every member change within a gap (sync.yaml). Member
  // events are sent again even if the client has them: the spec allows redundancy, and it
  // keeps sync free of per-device memory.
  if (lazy) {
    for (const p of plans) {
      const state = chosenState.get(p.roomId);
      const reference = referenceStates.get(p.roomId);
      if (!state || !reference) continue;
      const wanted = new Set((timelines.get(p.roomId)?.events ?? []).map((e) => e.event.sender));
      if (p.fullState) wanted.add(userId);
      for (const hero of summaries.get(p.roomId)?.['m.heroes'] ?? []) wanted.add(hero);
      const kept: StateMap = new Map();
      for (const [key, id] of state) {
        const [type, member] = splitStateKey(key);
        if (type !== MEMBER || !p.fullState || wanted.has(member)) kept.set(key, id);
      }
      for (const member of wanted) {
        const key = stateKey(MEMBER, member);
        const id = reference.get(key);
        if (id !== undefined) kept.set(key, id);
      }
      chosenState.set(p.roomId, kept);
    }
  }

  // Lazy-loading may have added unchanged members' events: read those too.
  const missing = [...new Set([...chosenState.values()].flatMap((state) => [...state.values()]))].filter(
    (id) => !stateEvents.has(id),
  );
  if (missing.length > 0)
    for (const [id, stored] of await store.rooms.getEvents(missing)) stateEvents.set(id, stored);
  const stateFilter = filter.room.state;
  const stateFor = async (p: RoomPlan): Promise<JsonObject[]> => {
    if (!stateFilter.includesRoom(p.roomId)) return [];
    // In stream order, so a client that applies them one by one ends at the right state.
    const ids = [...(chosenState.get(p.roomId)?.values() ?? [])];
    const stored = ids
      .map((id) => stateEvents.get(id))
      .filter((e): e is StoredEvent => e !== undefined && stateFilter.matches(e.event, p.roomId));
    stored.sort((a, b) => (a.stream ?? 0) - (b.stream ?? 0));
    return formatEvents(stored, false);
  };

  // --- ephemeral: typing and receipts -------------------------------------------------
  const joinPlans = plans.filter((p) => p.section === 'join');
  const fullRooms = joinPlans.filter((p) => p.fullState).map((p) => p.roomId);
  const deltaRooms = joinPlans.filter((p) => !p.fullState).map((p) => p.roomId);
  const typing = new Map<string, JsonObject>([
    ...(deps.typing?.changesSince(0, fullRooms) ?? []),
    ...(deps.typing?.changesSince(since?.typing ?? 0, deltaRooms) ?? []),
  ]);
  const receiptsByRoom = new Map<string, Receipt[]>();
  // All receipts of the rooms sent whole: one read of the receipt stream rather than one per room.
  if (fullRooms.length > 0) {
    for (const roomId of fullRooms) receiptsByRoom.set(roomId, []);
    for (const r of await store.receipts.receiptsSince(0, now.receipts, fullRooms))
      receiptsByRoom.get(r.roomId)?.push(r);
  }
  const deltaSet = new Set(deltaRooms);
  for (const r of newReceipts ?? []) {
    if (!deltaSet.has(r.roomId)) continue;
    const list = receiptsByRoom.get(r.roomId) ?? [];
    list.push(r);
    receiptsByRoom.set(r.roomId, list);
  }
  const ephemeralFilter = filter.room.ephemeral;
  const ephemeralFor = (roomId: string): JsonObject[] => {
    if (!ephemeralFilter.includesRoom(roomId)) return [];
    const out: JsonObject[] = [];
    const typingEvent = typing.get(roomId);
    if (typingEvent) {
      const typers = (typingEvent.content as { user_ids?: unknown }).user_ids;
      const shown = Array.isArray(typers)
        ? typers.filter((u) => typeof u === 'string' && !ignored.has(u))
        : [];
      out.push({ type: 'm.typing', content: { user_ids: shown } });
    }
    const receipts = visibleReceipts(receiptsByRoom.get(roomId) ?? [], userId);
    if (receipts) out.push({ type: 'm.receipt', content: receipts });
    return limitList(
      out.filter((e) => ephemeralFilter.matches({ type: e.type as string })),
      ephemeralFilter.limit,
    );
  };

  // --- account data ------------------------------------------------------------------------
  const roomAccountData = new Map<string, JsonObject[]>();
  const globalAccountData: JsonObject[] = [];
  const roomDataFilter = filter.room.accountData;
  const addRoomData = (roomId: string, event: JsonObject & { type: string }) => {
    if (!roomDataFilter.includesRoom(roomId) || !roomDataFilter.matches(event)) return;
    const list = roomAccountData.get(roomId) ?? [];
    list.push(event);
    roomAccountData.set(roomId, list);
  };
  for (const entry of accountData) {
    if (HIDDEN_ACCOUNT_DATA.has(entry.type)) continue;
    const event = { type: entry.type, content: entry.content };
    if (entry.roomId === null) {
      if (filter.accountData.matches(event)) globalAccountData.push(event);
    } else addRoomData(entry.roomId, event);
  }
  // A room new to the client gets all its account data, not only what changed since `since`.
  const newRooms = new Set(plans.filter((p) => since && p.lower === undefined).map((p) => p.roomId));
  if (newRooms.size > 0) {
    for (const roomId of newRooms) roomAccountData.delete(roomId);
    for (const entry of await store.userData.accountDataSince(userId, 0, now.accountData)) {
      if (entry.roomId !== null && newRooms.has(entry.roomId))
        addRoomData(entry.roomId, { type: entry.type, content: entry.content });
    }
  }
  if (deps.pushRules && filter.accountData.matches({ type: 'm.push_rules' })) {
    const changed =
      since === undefined || (await store.userData.pushRules(userId)).stream > since.accountData;
    if (changed) globalAccountData.push({ type: 'm.push_rules', content: await deps.pushRules(userId) });
  }

  // --- assemble rooms ------------------------------------------------------------------------
  const body: SyncResponse = {
    next_batch: '',
    rooms: { join: {}, invite: {}, leave: {}, knock: {} },
    presence: { events: [] },
    account_data: { events: limitList(globalAccountData, filter.accountData.limit) },
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
    const first = timeline.events[0];
    const prevBatch =
      first === undefined
        ? formatSyncToken({ ...now, events: p.upper })
        : (first.stream ?? 0) >= 1
          ? formatSyncToken({ ...now, events: (first.stream as number) - 1 })
          : // Backfilled history has negative stream positions: a topological token names it.
            formatTopoToken({ depth: first.depth, stream: (first.stream ?? 0) - 1 });
    const events = await formatEvents(timeline.events, true);
    const state = await stateFor(p);
    const accountEvents = limitList(roomAccountData.get(p.roomId) ?? [], roomDataFilter.limit);
    const timelineBatch = { events, limited: timeline.limited, prev_batch: prevBatch };
    const changes = [...timeline.events];
    if (!p.fullState)
      for (const id of chosenState.get(p.roomId)?.values() ?? [])
        changes.push(stateEvents.get(id) as StoredEvent);
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
    const ephemeral = ephemeralFor(p.roomId);
    const news =
      p.fullState ||
      timeline.limited ||
      events.length + state.length + ephemeral.length + accountEvents.length > 0;
    if (!news) continue;
    const room: JoinedRoom = {
      timeline: timelineBatch,
      ephemeral: { events: ephemeral },
      account_data: { events: accountEvents },
      unread_notifications: { notification_count: 0, highlight_count: 0 },
    };
    room[stateName] = { events: state };
    const summary = summaries.get(p.roomId);
    if (summary) room.summary = summary;
    // Notifications are not kept per thread yet: every count is the room's (see report).
    if (filter.room.timeline.unreadThreadNotifications) room.unread_thread_notifications = {};
    body.rooms.join[p.roomId] = room;
    joinedOut.push(p);
  }
  await fillUnreadCounts(input, joinedOut, receiptsByRoom, body);

  const strippedFor = async (m: Membership) => {
    const event = (await store.rooms.getEvent(m.eventId))?.event;
    if (!event) return null;
    // "Servers must not send room invites from ignored users to clients."
    if (m.membership === 'invite' && ignored.has(event.sender)) return null;
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

  // --- presence, to-device, device lists, keys ---------------------------------------------
  const joinedRoomIds = new Set(memberships.filter((m) => m.membership === 'join').map((m) => m.roomId));
  const sharesRoom = sharedRoomCheck(input, joinedRoomIds);
  if (deps.presence) {
    // The presence service shows the user only those who share a room with them.
    const events = (await deps.presence.changesSince(userId, since?.presence ?? 0)).filter((event) => {
      const sender = event.sender as string;
      return !ignored.has(sender) && filter.presence.matches(event as { type: string; sender: string });
    });
    body.presence.events = limitList(events, filter.presence.limit);
  }

  let toDevicePosition = now.toDevice;
  if (deviceId !== null) {
    const toDevice = await store.e2ee.toDeviceMessages(
      userId,
      deviceId,
      since?.toDevice ?? 0,
      TO_DEVICE_LIMIT,
    );
    body.to_device.events = toDevice.messages.map((m) => ({
      sender: m.sender,
      type: m.type,
      content: m.content,
    }));
    const lastToDevice = toDevice.messages[toDevice.messages.length - 1]?.stream ?? 0;
    // With more messages waiting, the token stops after the last one sent; the rest come next.
    toDevicePosition = toDevice.next !== null ? toDevice.next : Math.max(now.toDevice, lastToDevice);
    const [keyCounts, fallbackTypes] = await Promise.all([
      store.e2ee.countOneTimeKeys(userId, deviceId),
      store.e2ee.unusedFallbackKeyTypes(userId, deviceId),
    ]);
    // Some clients read a missing count as "unknown" and upload again: say 0, as Synapse does.
    body.device_one_time_keys_count = { signed_curve25519: 0, ...keyCounts };
    body.device_unused_fallback_key_types = fallbackTypes;
  }
  if (since) body.device_lists = await deviceListChanges(input, since, now, sharesRoom, memberChanges, plans);

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

const limitList = <T>(list: T[], max: number | undefined): T[] =>
  max === undefined ? list : list.slice(0, max);

interface MemberChange {
  roomId: string;
  userId: string;
  membership: string;
}

/** Receipt types that mark the user's place in the main timeline (push.md "Marking notifications as read"). */
const READ_TYPES = ['m.read', 'm.read.private'];

/**
 * `unread_notifications`: notifying events after the user's read receipt — the later of
 * `m.read` and `m.read.private`, unthreaded or on the main timeline.
 */
async function fillUnreadCounts(
  input: PassInput,
  rooms: readonly RoomPlan[],
  known: ReadonlyMap<string, Receipt[]>,
  body: SyncResponse,
): Promise<void> {
  const { store } = input.ctx;
  const { userId } = input;
  const own = await Promise.all(
    rooms.map(async (p) => {
      const all = known.get(p.roomId);
      if (all && p.fullState) {
        return all.filter(
          (r) =>
            r.userId === userId && READ_TYPES.includes(r.receiptType) && (r.threadId ?? 'main') === 'main',
        );
      }
      const found = await Promise.all(
        READ_TYPES.flatMap((type) => [
          store.receipts.getReceipt(p.roomId, type, userId),
          store.receipts.getReceipt(p.roomId, type, userId, 'main'),
        ]),
      );
      return found.filter((r): r is Receipt => r !== null);
    }),
  );
  const events = await store.rooms.getEvents([...new Set(own.flat().map((r) => r.eventId))]);
  await Promise.all(
    rooms.map(async (p, i) => {
      const after = Math.max(0, ...(own[i] ?? []).map((r) => events.get(r.eventId)?.stream ?? 0));
      const counts = await store.receipts.notificationCounts(userId, p.roomId, after);
      const room = body.rooms.join[p.roomId];
      if (room)
        room.unread_notifications = {
          notification_count: counts.notifications,
          highlight_count: counts.highlights,
        };
    }),
  );
}

/** Whether another user is joined to one of the user's joined rooms (cached per answer). */
function sharedRoomCheck(input: PassInput, joined: ReadonlySet<string>): (other: string) => Promise<boolean> {
  const cache = new Map<string, Promise<boolean>>();
  return (other) => {
    let known = cache.get(other);
    if (!known) {
      known = input.ctx.store.rooms
        .roomsForUser(other, 'join')
        .then((rooms) => rooms.some((r) => joined.has(r.roomId)));
      cache.set(other, known);
    }
    return known;
  };
}

/**
 * `device_lists` (end_to_end_encryption.md "Extensions to /sync"): users whose devices or
 * cross-signing keys changed and who share a room with the user, plus users who now share an
 * encrypted room; `left`: users with whom the user no longer shares any room after a leave
 * in an encrypted room.
 */
async function deviceListChanges(
  input: PassInput,
  since: SyncPositions,
  now: SyncPositions,
  sharesRoom: (other: string) => Promise<boolean>,
  memberChanges: readonly MemberChange[],
  plans: readonly RoomPlan[],
): Promise<{ changed: string[]; left: string[] }> {
  const { store } = input.ctx;
  const { userId } = input;
  const changed = new Set<string>();
  const left = new Set<string>();
  for (const other of await store.e2ee.deviceListChanges(since.deviceLists, now.deviceLists)) {
    if (other === userId || (await sharesRoom(other))) changed.add(other);
  }
  const encrypted = new Map<string, Promise<boolean>>();
  const isEncrypted = (roomId: string) => {
    let known = encrypted.get(roomId);
    if (!known) {
      known = store.rooms.currentState(roomId, 'm.room.encryption').then((state) => state.size > 0);
      encrypted.set(roomId, known);
    }
    return known;
  };
  for (const change of memberChanges) {
    if (!(await isEncrypted(change.roomId))) continue;
    if (change.membership === 'join') changed.add(change.userId);
    else if (change.membership === 'leave' || change.membership === 'ban') {
      if (!(await sharesRoom(change.userId))) left.add(change.userId);
    }
  }
  for (const p of plans) {
    if (!(p.newlyJoined || p.section === 'leave') || !(await isEncrypted(p.roomId))) continue;
    for (const member of await store.rooms.members(p.roomId, 'join')) {
      if (member.userId === userId) continue;
      if (p.section === 'join') changed.add(member.userId);
      else if (!(await sharesRoom(member.userId))) left.add(member.userId);
    }
  }
  for (const other of left) changed.delete(other);
  return { changed: [...changed].sort(), left: [...left].sort() };
}
