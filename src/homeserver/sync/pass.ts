/**
 * What every part of one /sync answer shares (compute.ts builds it once per answer): the
 * request, the store, the stream positions read at the start, the user's ignore list, and how
 * events are shown to the client.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { IdentifiedPdu, StateMap } from '../../core/pdu.ts';
import type { Membership, Store, StoredEvent } from '../../storage/store.ts';
import { loadClientEvents } from '../client-event.ts';
import type { HomeserverContext } from '../context.ts';
import type { RecentChanges } from '../notifier.ts';
import { formatSyncToken, formatTopoToken, type SyncPositions } from '../tokens.ts';
import type { SyncFilterView } from './filter-view.ts';
import type { StateField, SyncDeps } from './types.ts';

export const MEMBER = 'm.room.member';

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
  /**
   * The stream positions, when the request has just read them (its first pass): not read
   * again, so a pass reads them once whatever the time between.
   */
  positions?: SyncPositions;
  /**
   * Where the pass will likely find news (the rooms and events notified since the long-poll
   * began to wait): the reads it will make there that need no earlier answer are made with
   * its first reads. A hint only: what the pass shows it reads, whatever the hint says.
   */
  hint?: RecentChanges;
}

export interface Pass {
  readonly input: PassInput;
  readonly store: Store;
  readonly userId: string;
  readonly filter: SyncFilterView;
  readonly since: SyncPositions | undefined;
  /** Every stream is read up to these positions, so `next_batch` names what the answer covers. */
  readonly now: SyncPositions;
  /** Users the user ignores ("Ignoring Users"). */
  readonly ignored: ReadonlySet<string>;
  /**
   * Events as the client sees them (client-event.ts): without `room_id` (the section names the
   * room), `transaction_id` for the sending device only, then `event_fields`. `prev_content`
   * is looked up for the timeline only: state events are many and clients apply them as a set.
   * Shared with the other passes showing the same events the same way when nothing in them is
   * the viewer's own (read only, as every shared answer).
   */
  formatEvents(events: readonly StoredEvent[], prevContent: boolean): Promise<JsonObject[]>;
  /**
   * A read every pass asking the same would make alike, shared with them (shared.ts) — `key`
   * names all it depends on; without shared reads, just `read()`.
   */
  memo<T>(key: string, read: () => Promise<T>): Promise<T>;
  /**
   * `memo` for reads made in one batch (one transaction): the answers under `keys`, reading
   * those not shared yet through `readMissing` (given their indices in `keys`) all at once.
   */
  memoBatch<T>(keys: readonly string[], readMissing: (indices: number[]) => Promise<T[]>): Promise<T[]>;
  /** Stored events by ID, shared (as `store.rooms.getEvents`). Read only: copy to add to it. */
  sharedEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, StoredEvent>>;
  /** The room's state after the event at `position` (stream order), shared. Read only. */
  stateAtStream(roomId: string, position: number): Promise<StateMap>;
  /** The state before an event, shared; null when it has none stored. Read only. */
  stateBefore(eventId: string): Promise<StateMap | null>;
}

/** Lists longer than this are read alone: a key that long costs more than the read it saves. */
const SHARED_LIST_MAX = 64;

/**
 * The shared read of the relation summaries of `ids` (timeline order) by a pass at events
 * position `at` (`ahead`: read before the pass knew its position, compute.ts `readAhead`).
 */
export const relationsKey = (at: number, ids: readonly string[], ahead?: 'ahead') =>
  `relations${ahead ? ' ahead' : ''} ${at} ${ids.join(' ')}`;

/**
 * The store as `loadClientEvents` reads it for one pass: the reads that depend only on the
 * events asked for (replaced state, redactions, relations) go through `memo`, so passes that
 * format the same page read it once. Keys carry the events position the pass covers.
 */
function sharedFormatStore(store: Store, memo: Pass['memo'], at: number): Store {
  const short = (ids: readonly string[]) => ids.length <= SHARED_LIST_MAX;
  const rooms: Store['rooms'] = Object.create(store.rooms);
  rooms.stateAt = (eventId, when) =>
    memo(`stateAt ${when} ${eventId}`, () => store.rooms.stateAt(eventId, when));
  rooms.getEvents = (ids) =>
    short(ids)
      ? memo(`events ${at} ${ids.join(' ')}`, () => store.rooms.getEvents(ids))
      : store.rooms.getEvents(ids);
  rooms.relationSummaries = (ids) =>
    short(ids)
      ? memo(relationsKey(at, ids), () => store.rooms.relationSummaries(ids))
      : store.rooms.relationSummaries(ids);
  const view: Store = Object.create(store);
  Object.defineProperty(view, 'rooms', { value: rooms });
  return view;
}

/** The room's state after the event at `position` (stream order), shared as `Pass.stateAtStream`. */
export function sharedStateAtStream(input: PassInput, roomId: string, position: number): Promise<StateMap> {
  const read = () => input.ctx.store.rooms.stateAtStream(roomId, position);
  return input.deps.shared ? input.deps.shared.memo(`stateAtStream ${roomId} ${position}`, read) : read();
}

/** The state before an event, shared as `Pass.stateBefore`. */
export function sharedStateBefore(input: PassInput, eventId: string): Promise<StateMap | null> {
  const read = () => input.ctx.store.rooms.stateAt(eventId, 'before');
  return input.deps.shared ? input.deps.shared.memo(`stateAt before ${eventId}`, read) : read();
}

export function createPass(input: PassInput, now: SyncPositions, ignored: ReadonlySet<string>): Pass {
  const { store } = input.ctx;
  const clock = input.ctx.clock.now();
  const shared = input.deps.shared;
  const memo = <T>(key: string, read: () => Promise<T>): Promise<T> =>
    shared ? shared.memo(key, read) : read();
  const formatStore = shared ? sharedFormatStore(store, memo, now.events) : store;
  return {
    input,
    store,
    userId: input.userId,
    filter: input.filter,
    since: input.since,
    now,
    ignored,
    async formatEvents(events, prevContent) {
      const viewer = { userId: input.userId, deviceId: input.deviceId };
      const format = async () => {
        const formatted = await loadClientEvents(formatStore, events, viewer, clock, {
          withRoomId: false,
          format: input.filter.eventFormat,
          prevContent,
          relations: prevContent,
        });
        return formatted.map((event) => input.filter.fields(event));
      };
      if (!shared || events.length === 0 || events.length > SHARED_LIST_MAX) return format();
      // What only this viewer sees: `transaction_id` on their own events, and the aggregations
      // (edits, threads) as they may see them. Without either, every pass shows the events
      // alike and formats them once (`age` then counts from that moment, at most FRESH_MS
      // earlier: shared.ts).
      if (events.some((e) => e.event.sender === input.userId)) return format();
      if (prevContent) {
        // The summaries loadClientEvents reads (the same shared read): any relation, not shared.
        const related = events.filter((e) => e.rejected === null && !e.outlier).map((e) => e.event.event_id);
        if (related.length > 0 && (await formatStore.rooms.relationSummaries(related)).size > 0)
          return format();
      }
      const ids = events.map((e) => e.event.event_id).join(' ');
      return memo(`format ${now.events} ${prevContent} ${input.filter.formatKey} ${ids}`, format);
    },
    memo,
    async memoBatch<T>(keys: readonly string[], readMissing: (indices: number[]) => Promise<T[]>) {
      const missing: number[] = [];
      let settle: { resolve(found: T[]): void; reject(error: unknown): void } | undefined;
      const batch = new Promise<T[]>((resolve, reject) => {
        settle = { resolve, reject };
      });
      const answers = keys.map((key, i) =>
        memo(key, () => {
          const slot = missing.length;
          missing.push(i);
          return batch.then((found) => found[slot] as T);
        }),
      );
      if (missing.length > 0) readMissing(missing).then(settle?.resolve, settle?.reject);
      return Promise.all(answers);
    },
    sharedEvents: (eventIds) => formatStore.rooms.getEvents(eventIds),
    stateAtStream: (roomId, position) => sharedStateAtStream(input, roomId, position),
    stateBefore: (eventId) => sharedStateBefore(input, eventId),
  };
}

/** One joined or left room of the answer, and the bounds of what it shows. */
export interface RoomPlan {
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

/** The membership recorded in a member event's content (client-server-api `m.room.member`). */
export const membershipOf = (event: IdentifiedPdu | undefined) =>
  typeof event?.content.membership === 'string' ? event.content.membership : undefined;

export const limitList = <T>(list: T[], max: number | undefined): T[] =>
  max === undefined ? list : list.slice(0, max);

/**
 * The `prev_batch` of a timeline starting at `first` (a token /messages reads): just before
 * it, or at `upper` when the timeline is empty.
 */
export function prevBatchFor(first: StoredEvent | undefined, now: SyncPositions, upper: number): string {
  if (first === undefined) return formatSyncToken({ ...now, events: upper });
  if ((first.stream ?? 0) >= 1) return formatSyncToken({ ...now, events: (first.stream as number) - 1 });
  // Backfilled history has negative stream positions: a topological token names it.
  return formatTopoToken({ depth: first.depth, stream: (first.stream ?? 0) - 1 });
}
