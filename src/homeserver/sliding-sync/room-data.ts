/**
 * The room results of one answer (MSC4186 "Room results"): for a room the client does not
 * have (`initial`), its latest `timeline_limit` events and the `required_state` of its
 * current state; for a room it has, the events since it last had it and the required state
 * that changed meanwhile. Timelines reuse /sync's reading (history visibility, ignored users,
 * the client event format), so both APIs show a room alike.
 */
import { type StateMap, stateKey } from '../../core/pdu.ts';
import type { RoomUnreadCounts, Store, StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { syncFilterView } from '../sync/filter-view.ts';
import { createPass, MEMBER, prevBatchFor, type RoomPlan } from '../sync/pass.ts';
import { loadTimelines } from '../sync/room-state.ts';
import { strippedStateFor } from '../sync/stripped.ts';
import { pickHeroes } from '../sync/summary.ts';
import type { SyncDeps } from '../sync/types.ts';
import type { SyncPositions } from '../tokens.ts';
import { type CombinedConfig, selectState } from './required-state.ts';
import type { ListedRoom } from './room-list.ts';
import type { Hero, RoomResult } from './types.ts';

/** One room to send and how. */
export interface RoomToSend {
  room: ListedRoom;
  config: CombinedConfig;
  /** Sent whole, replacing what the client has. */
  initial: boolean;
  /** For a room the client has: the events position it has the room up to. */
  since?: number;
  lists: string[];
  isDm: boolean;
  /**
   * For a room the client has, whose `required_state` changed: the config it was last sent
   * with. The state this config adds to it is sent beside what changed.
   */
  sentWith?: CombinedConfig | undefined;
  /** For a room the client has, asked for with a longer timeline: its latest events up to the new limit. */
  expandTimeline?: boolean | undefined;
}

export interface RoomDataInput {
  ctx: HomeserverContext;
  deps: SyncDeps;
  userId: string;
  deviceId: string | null;
  ignored: ReadonlySet<string>;
  now: SyncPositions;
  /** The `pos` events position: later events are `num_live`. Undefined on a first request. */
  posEvents: number | undefined;
}

export async function roomResults(
  input: RoomDataInput,
  sends: readonly RoomToSend[],
): Promise<{ rooms: Record<string, RoomResult>; timelines: Map<string, StoredEvent[]> }> {
  const { ctx, userId } = input;
  const { store } = ctx;
  const rooms: Record<string, RoomResult> = {};
  const timelinesOut = new Map<string, StoredEvent[]>();

  const common = (s: RoomToSend): RoomResult => {
    const out: RoomResult = { membership: s.room.membership.membership, bump_stamp: s.room.stamp };
    if (s.initial) out.initial = true;
    if (s.lists.length > 0) out.lists = s.lists;
    out.is_dm = s.isDm;
    return out;
  };

  // Invites and knocks: what the membership event tells of the room, nothing more.
  const stripped = sends.filter((s) => ['invite', 'knock'].includes(s.room.membership.membership));
  await Promise.all(
    stripped.map(async (s) => {
      const event = (await store.rooms.getEvent(s.room.membership.eventId))?.event;
      const out = common(s);
      if (event) {
        // "Servers must not send room invites from ignored users to clients."
        if (s.room.membership.membership === 'invite' && input.ignored.has(event.sender)) return;
        const state = await strippedStateFor(store, event);
        out.stripped_state = state;
        if (s.room.membership.membership === 'invite') out.invite_state = state;
        else out.knock_state = state;
      }
      rooms[s.room.roomId] = out;
    }),
  );

  const full = sends.filter((s) => !['invite', 'knock'].includes(s.room.membership.membership));
  const plans = new Map<string, RoomPlan>();
  for (const s of full) {
    const m = s.room.membership;
    const joined = m.membership === 'join';
    plans.set(m.roomId, {
      roomId: m.roomId,
      section: joined ? 'join' : 'leave',
      membership: m,
      fullState: s.initial,
      lower: s.initial || s.expandTimeline ? undefined : s.since,
      // Nothing after a leave or ban is the user's to see.
      upper: joined ? input.now.events : (m.stream ?? 0),
      fetch: true,
    });
  }

  // Timelines, one read per distinct limit (rules may ask for different lengths).
  const byLimit = new Map<number, RoomPlan[]>();
  for (const s of full) {
    const group = byLimit.get(s.config.timelineLimit) ?? [];
    group.push(plans.get(s.room.roomId) as RoomPlan);
    byLimit.set(s.config.timelineLimit, group);
  }
  const timelines = new Map<string, { events: StoredEvent[]; limited: boolean }>();
  let formatPass: ReturnType<typeof createPass> | undefined;
  for (const [limit, group] of byLimit) {
    const pass = createPass(
      {
        ctx,
        deps: input.deps,
        userId,
        deviceId: input.deviceId,
        filter: syncFilterView({ room: { timeline: { limit } } }),
        since: undefined,
        fullState: false,
        stateField: 'state_after',
      },
      input.now,
      input.ignored,
    );
    formatPass ??= pass;
    for (const [roomId, t] of await loadTimelines(pass, group, undefined)) timelines.set(roomId, t);
  }

  await Promise.all(
    full.map(async (s) => {
      const p = plans.get(s.room.roomId) as RoomPlan;
      const timeline = timelines.get(p.roomId) ?? { events: [], limited: false };
      timelinesOut.set(p.roomId, timeline.events);
      const [reference, base, members] = await Promise.all([
        store.rooms.stateAtStream(p.roomId, p.upper),
        s.initial ? undefined : store.rooms.stateAtStream(p.roomId, s.since ?? 0),
        store.rooms.members(p.roomId),
      ]);
      // Lazy members: the timeline's senders and the targets of its member events.
      const lazyUsers = new Set<string>();
      for (const e of timeline.events) {
        lazyUsers.add(e.event.sender);
        if (e.event.type === MEMBER && typeof e.event.state_key === 'string')
          lazyUsers.add(e.event.state_key);
      }
      let chosen: StateMap;
      if (base) {
        const changed: StateMap = new Map();
        for (const [key, id] of reference) if (base.get(key) !== id) changed.set(key, id);
        chosen = selectState(changed, s.config, new Set());
        if (s.sentWith) {
          // What the grown config asks for that the client's copy was not made with.
          const had = selectState(reference, s.sentWith, new Set());
          for (const [key, id] of selectState(reference, s.config, new Set()))
            if (!had.has(key)) chosen.set(key, id);
        }
        if (s.config.lazyMembers) {
          // Sent again even if the client has them: redundancy is allowed, and it keeps the
          // connection's memory to rooms, not members.
          for (const user of lazyUsers) {
            const id = reference.get(stateKey(MEMBER, user));
            if (id !== undefined) chosen.set(stateKey(MEMBER, user), id);
          }
        }
      } else chosen = selectState(reference, s.config, lazyUsers);

      const nameId = reference.get(stateKey('m.room.name', ''));
      const avatarId = reference.get(stateKey('m.room.avatar', ''));
      const named = await store.rooms.getEvents(
        [...chosen.values(), nameId, avatarId].filter((id): id is string => id !== undefined),
      );
      const stateEvents = [...chosen.values()]
        .map((id) => named.get(id))
        .filter((e): e is StoredEvent => e !== undefined)
        .sort((a, b) => (a.stream ?? 0) - (b.stream ?? 0));

      const out = common(s);
      const name = nameId === undefined ? undefined : named.get(nameId)?.event.content.name;
      if (typeof name === 'string' && name !== '') out.name = name;
      const avatar = avatarId === undefined ? undefined : named.get(avatarId)?.event.content.url;
      if (typeof avatar === 'string' && avatar !== '') out.avatar = avatar;
      out.joined_count = members.filter((m) => m.membership === 'join').length;
      out.invited_count = members.filter((m) => m.membership === 'invite').length;
      if (out.name === undefined) {
        const heroes = pickHeroes(members, userId);
        const heroEvents = await store.rooms.getEvents(
          heroes.map((h) => members.find((m) => m.userId === h)?.eventId).filter((id) => id !== undefined),
        );
        out.heroes = heroes.map((heroId): Hero => {
          const eventId = members.find((m) => m.userId === heroId)?.eventId;
          const content = eventId === undefined ? undefined : heroEvents.get(eventId)?.event.content;
          const hero: Hero = { user_id: heroId };
          if (typeof content?.displayname === 'string') hero.displayname = content.displayname;
          if (typeof content?.avatar_url === 'string') hero.avatar_url = content.avatar_url;
          return hero;
        });
      }
      const pass = formatPass as ReturnType<typeof createPass>;
      out.required_state = await pass.formatEvents(stateEvents, false);
      out.timeline = await pass.formatEvents(timeline.events, true);
      out.prev_batch = prevBatchFor(timeline.events[0], input.now, p.upper);
      out.limited = timeline.limited;
      if (s.expandTimeline) {
        // Synapse's flag for a timeline sent again longer, not as news. `limited` too: with it
        // matrix-js-sdk files events it lacks before ones it knows as scrollback and drops the
        // ones it has, instead of appending them all as live.
        out.unstable_expanded_timeline = true;
        out.limited = true;
      }
      out.num_live =
        input.posEvents === undefined
          ? 0
          : timeline.events.filter((e) => (e.stream ?? 0) > (input.posEvents as number)).length;
      if (p.section === 'join') Object.assign(out, await unreadCounts(store, userId, p.roomId));
      rooms[p.roomId] = out;
    }),
  );
  return { rooms, timelines: timelinesOut };
}

/** The room's unread counts, every thread included: the counters the store keeps at write time. */
export async function unreadCounts(
  store: Store,
  userId: string,
  roomId: string,
): Promise<{ notification_count: number; highlight_count: number }> {
  return totalUnread((await store.receipts.unreadCounts(userId, [roomId])).get(roomId));
}

/** One room's counters summed over its threads, the main timeline included. */
export function totalUnread(counts: RoomUnreadCounts | undefined): {
  notification_count: number;
  highlight_count: number;
} {
  let notifications = counts?.main.notifications ?? 0;
  let highlights = counts?.main.highlights ?? 0;
  for (const thread of counts?.threads.values() ?? []) {
    notifications += thread.notifications;
    highlights += thread.highlights;
  }
  return { notification_count: notifications, highlight_count: highlights };
}
