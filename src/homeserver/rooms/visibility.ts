/**
 * History visibility — client-server-api modules/history_visibility.md "Server behaviour":
 * whether a user may see an event depends on the room state *at that event*:
 * 1. `world_readable` → allow;
 * 2. the user's membership was `join` → allow;
 * 3. `shared` and the user joined at some point after the event → allow;
 * 4. `invited` and the user's membership was `invite` → allow;
 * 5. otherwise deny.
 * Unknown or absent visibility counts as `shared`. For `m.room.history_visibility` events and
 * the user's own `m.room.member` events, the state before *or* after the event may allow.
 *
 * Rule 3 is answered from the user's own membership history in the room (their member
 * events, followed back through the state before each), so a user who joined and left still
 * sees the `shared` history from before their join, as the spec says.
 */
import type { IdentifiedPdu, StateMap } from '../../core/index.ts';
import { stateKey } from '../../core/index.ts';
import type { StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { MEMBER_TYPE } from './build.ts';

const HISTORY_TYPE = 'm.room.history_visibility';
const KNOWN = new Set(['world_readable', 'shared', 'invited', 'joined']);

interface Situation {
  visibility: string;
  membership: string | null;
}

export interface Visibility {
  /**
   * Whether the user may see the event under the room's history visibility at that event
   * (client-server-api "Room History Visibility").
   */
  visibleToUser(userId: string, roomId: string, event: IdentifiedPdu | StoredEvent): Promise<boolean>;
  /** The events among `events` the user may see, in the same order. */
  filterVisible<T extends IdentifiedPdu | StoredEvent>(
    userId: string,
    roomId: string,
    events: readonly T[],
  ): Promise<T[]>;
}

/** How far back a user's membership history is followed (each step is one state lookup). */
const MAX_MEMBERSHIP_HISTORY = 64;

const isStored = (event: IdentifiedPdu | StoredEvent): event is StoredEvent =>
  'event' in event && 'roomId' in event && typeof (event as StoredEvent).roomId === 'string';

function allows(s: Situation, joinedLater: boolean): boolean {
  if (s.visibility === 'world_readable') return true;
  if (s.membership === 'join') return true;
  if (s.visibility === 'shared' && joinedLater) return true;
  return s.visibility === 'invited' && s.membership === 'invite';
}

export function createVisibility(ctx: Pick<HomeserverContext, 'store'>): Visibility {
  const { store } = ctx;

  /** History visibility and the user's membership in a state; contents are read once per event ID. */
  async function situation(
    state: StateMap,
    userId: string,
    contents: Map<string, IdentifiedPdu>,
  ): Promise<Situation> {
    const ids = [state.get(stateKey(HISTORY_TYPE, '')), state.get(stateKey(MEMBER_TYPE, userId))];
    const missing = ids.filter((id): id is string => id !== undefined && !contents.has(id));
    if (missing.length > 0) {
      for (const [id, stored] of await store.rooms.getEvents(missing)) contents.set(id, stored.event);
    }
    const [historyId, memberId] = ids;
    const history = historyId === undefined ? undefined : contents.get(historyId)?.content.history_visibility;
    const membership = memberId === undefined ? undefined : contents.get(memberId)?.content.membership;
    return {
      visibility: typeof history === 'string' && KNOWN.has(history) ? history : 'shared',
      membership: typeof membership === 'string' ? membership : null,
    };
  }

  /**
   * Stream positions of the user's joins in the room, newest first: their current member
   * event, then the member event in the state before it, and so on.
   */
  async function joinPositions(roomId: string, userId: string): Promise<number[]> {
    const positions: number[] = [];
    let eventId = (await store.rooms.membership(roomId, userId))?.eventId;
    const seen = new Set<string>();
    for (let step = 0; eventId !== undefined && step < MAX_MEMBERSHIP_HISTORY && !seen.has(eventId); step++) {
      seen.add(eventId);
      const stored = await store.rooms.getEvent(eventId);
      if (!stored) break;
      if (stored.event.content.membership === 'join' && stored.stream !== null) positions.push(stored.stream);
      eventId = (await store.rooms.stateAt(eventId, 'before'))?.get(stateKey(MEMBER_TYPE, userId));
    }
    return positions;
  }

  async function filterVisible<T extends IdentifiedPdu | StoredEvent>(
    userId: string,
    roomId: string,
    events: readonly T[],
  ): Promise<T[]> {
    if (events.length === 0) return [];
    const current = await store.rooms.membership(roomId, userId);
    // Events given bare are looked up for their stream position (what "after" means here).
    const bare = events.filter((e) => !isStored(e)).map((e) => (e as IdentifiedPdu).event_id);
    const looked = bare.length > 0 ? await store.rooms.getEvents(bare) : new Map<string, StoredEvent>();
    const contents = new Map<string, IdentifiedPdu>();
    let joins: number[] | undefined;
    const joinedAfter = async (stream: number | null) => {
      if (stream === null) return false;
      joins ??= await joinPositions(roomId, userId);
      return joins.some((position) => position > stream);
    };

    const out: T[] = [];
    for (const item of events) {
      const stored = isStored(item) ? item : looked.get((item as IdentifiedPdu).event_id);
      if (!stored || stored.roomId !== roomId) continue;
      const event = stored.event;
      // Fast path: everything after the user's current join was sent while they were joined.
      if (
        current?.membership === 'join' &&
        current.stream !== null &&
        stored.stream !== null &&
        stored.stream > current.stream
      ) {
        out.push(item);
        continue;
      }
      const before = await store.rooms.stateAt(event.event_id, 'before');
      if (!before) continue;
      const later = await joinedAfter(stored.stream);
      if (allows(await situation(before, userId, contents), later)) {
        out.push(item);
        continue;
      }
      const dual = event.type === HISTORY_TYPE || (event.type === MEMBER_TYPE && event.state_key === userId);
      if (dual) {
        const after = await store.rooms.stateAt(event.event_id, 'after');
        if (after && allows(await situation(after, userId, contents), later)) out.push(item);
      }
    }
    return out;
  }

  return {
    filterVisible,
    async visibleToUser(userId, roomId, event) {
      return (await filterVisible(userId, roomId, [event])).length === 1;
    },
  };
}
