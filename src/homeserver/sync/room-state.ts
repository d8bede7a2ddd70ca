/**
 * Each room's timeline and state in one /sync answer: the latest events within the plan's
 * bounds that the user may see, then the state at the start of that timeline (or at its end,
 * for `use_state_after`) — whole, or the change since `since` — with the room summary and
 * lazy-loaded members ("Lazy-loading room members").
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type StateKey, type StateMap, splitStateKey, stateKey } from '../../core/pdu.ts';
import type { StoredEvent } from '../../storage/store.ts';
import { MEMBER, type Pass, type RoomPlan } from './pass.ts';
import { type RoomSummary, roomSummary, summaryFromState } from './summary.ts';

export type Timelines = Map<string, { events: StoredEvent[]; limited: boolean }>;

/** Every timeline event at positions in (after, upTo], read with the pass's positions. */
export interface RecentEvents {
  after: number;
  upTo: number;
  events: readonly StoredEvent[];
}

type TimelinePage = { events: StoredEvent[]; next: number | null };

/**
 * A room's page as `store.rooms.timelines` reads it (dir 'b' from `upper` to `lower`, the
 * latest `limit` matching events, and whether more match), taken from `recent`.
 */
function pageFromRecent(
  recent: RecentEvents,
  p: RoomPlan,
  limit: number,
  matches: (e: StoredEvent) => boolean,
): TimelinePage {
  const found: StoredEvent[] = [];
  for (let i = recent.events.length - 1; i >= 0 && found.length <= limit; i--) {
    const e = recent.events[i] as StoredEvent;
    const stream = e.stream ?? 0;
    if (e.roomId !== p.roomId || stream > p.upper || stream <= (p.lower as number)) continue;
    if (matches(e)) found.push(e);
  }
  const events = found.slice(0, limit);
  const last = events[events.length - 1];
  return { events, next: found.length > limit && last ? (last.stream as number) - 1 : null };
}

export async function loadTimelines(
  pass: Pass,
  plans: readonly RoomPlan[],
  withEvents: ReadonlySet<string> | undefined,
  recent?: RecentEvents,
): Promise<Timelines> {
  const { store, filter, ignored, userId } = pass;
  const { deps } = pass.input;
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
  // Pages within the events read with the positions are taken from them; every pass with the
  // same page to read (room, bounds, filter, ignored senders) shares it.
  const covered = (p: RoomPlan) =>
    recent !== undefined && p.lower !== undefined && p.lower >= recent.after && p.upper <= recent.upTo;
  const reading = fetching.filter((p) => !covered(p));
  const ignoredKey = [...ignored].sort().join(' ');
  const read =
    reading.length === 0
      ? []
      : await pass.memoBatch(
          reading.map(
            (p) =>
              `timeline ${p.roomId} ${p.upper} ${p.lower ?? '-'} ${limit} ${filter.timelineKey} ${ignoredKey}`,
          ),
          (missing) =>
            store.rooms.timelines(
              missing.map((i) => {
                const p = reading[i] as RoomPlan;
                return {
                  roomId: p.roomId,
                  dir: 'b' as const,
                  from: p.upper,
                  to: p.lower,
                  limit,
                  filter: matchesTimeline,
                };
              }),
            ),
        );
  const readPages = new Map(reading.map((p, i) => [p, read[i] as TimelinePage]));
  const timelines: Timelines = new Map();
  await Promise.all(
    fetching.map(async (p) => {
      const page =
        recent && covered(p)
          ? pageFromRecent(recent, p, limit, matchesTimeline)
          : (readPages.get(p) as TimelinePage);
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
  return timelines;
}

export interface RoomStates {
  /** Per room, the state events to send (by state key). */
  chosen: Map<string, StateMap>;
  /** Every state event any room's `chosen` names. */
  events: Map<string, StoredEvent>;
  summaries: Map<string, RoomSummary>;
  /** The room's `state` section, filtered and formatted, in stream order. */
  stateFor(p: RoomPlan): Promise<JsonObject[]>;
}

function stateDelta(reference: StateMap, base: StateMap): StateMap {
  const out: StateMap = new Map();
  for (const [key, id] of reference) if (base.get(key) !== id) out.set(key, id);
  return out;
}

export async function chooseState(
  pass: Pass,
  plans: readonly RoomPlan[],
  timelines: Timelines,
  sinceStates: ReadonlyMap<string, StateMap>,
): Promise<RoomStates> {
  const { store, filter, userId } = pass;
  const stateAfter = pass.input.stateField !== 'state';
  const chosen = new Map<string, StateMap>();
  /** The whole state the chosen state was taken from (lazy-loading picks members from it). */
  const referenceStates = new Map<string, StateMap>();
  await Promise.all(
    plans.map(async (p) => {
      if (!p.fullState && !p.fetch) return; // no event since `since`: no state change either
      const first = timelines.get(p.roomId)?.events[0];
      let reference: StateMap;
      let referenceKey: string;
      if (stateAfter || !first) {
        reference = await pass.stateAtStream(p.roomId, p.upper);
        referenceKey = `at ${p.upper}`;
      } else {
        reference =
          (await pass.stateBefore(first.event.event_id)) ??
          (await pass.stateAtStream(p.roomId, (first.stream ?? 1) - 1));
        referenceKey = `before ${first.event.event_id}`;
      }
      referenceStates.set(p.roomId, reference);
      if (p.fullState) chosen.set(p.roomId, reference);
      else {
        // The same two states for every pass from the same `since`: compared once.
        const since = sinceStates.get(p.roomId) ?? new Map<StateKey, string>();
        const sincePosition = pass.since?.events ?? '-';
        chosen.set(
          p.roomId,
          await pass.memo(`stateDelta ${p.roomId} ${referenceKey} ${sincePosition}`, async () =>
            stateDelta(reference, since),
          ),
        );
      }
    }),
  );

  // Every state event any section may show, in one read; for rooms sent whole (without
  // lazy-loading) that is all their members, from which their summary is taken too.
  const lazy = filter.room.state.lazyLoadMembers;
  const chosenIds = [...new Set([...chosen.values()].flatMap((state) => [...state.values()]))];
  const events = new Map(chosenIds.length > 0 ? await pass.sharedEvents(chosenIds) : []);

  // Summaries before lazy-loading: the heroes' member events must then be in `state`.
  const summaries = new Map<string, RoomSummary>();
  await Promise.all(
    plans
      .filter((p) => p.section === 'join')
      .map(async (p) => {
        const timeline = timelines.get(p.roomId)?.events ?? [];
        const state = chosen.get(p.roomId) ?? new Map<StateKey, string>();
        const membersMoved =
          timeline.some((e) => e.event.type === MEMBER) ||
          [...state.keys()].some((k) => splitStateKey(k)[0] === MEMBER);
        if (!p.fullState && !membersMoved) return;
        if (p.fullState && !lazy) {
          const end = new Map<StateKey, StoredEvent>();
          for (const [key, id] of state) {
            const stored = events.get(id);
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
      const state = chosen.get(p.roomId);
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
      chosen.set(p.roomId, kept);
    }
  }

  // Lazy-loading may have added unchanged members' events: read those too.
  const missing = [...new Set([...chosen.values()].flatMap((state) => [...state.values()]))].filter(
    (id) => !events.has(id),
  );
  if (missing.length > 0) for (const [id, stored] of await pass.sharedEvents(missing)) events.set(id, stored);
  const stateFilter = filter.room.state;
  const stateFor = async (p: RoomPlan): Promise<JsonObject[]> => {
    if (!stateFilter.includesRoom(p.roomId)) return [];
    // In stream order, so a client that applies them one by one ends at the right state.
    const ids = [...(chosen.get(p.roomId)?.values() ?? [])];
    const stored = ids
      .map((id) => events.get(id))
      .filter((e): e is StoredEvent => e !== undefined && stateFilter.matches(e.event, p.roomId));
    stored.sort((a, b) => (a.stream ?? 0) - (b.stream ?? 0));
    return pass.formatEvents(stored, false);
  };
  return { chosen, events, summaries, stateFor };
}
