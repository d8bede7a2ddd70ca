/**
 * Events, room state and membership — the write path of `RoomStore`: `persistEvents` (one
 * transaction per batch: event rows, edges, extremities, state groups, current state,
 * membership, stream positions, outbox, txn IDs, push actions, relations, redactions) and
 * the small writes beside it. The read queries are in rooms-read.ts; rooms.ts joins both.
 *
 * Outliers, rejected and soft-failed events have no stream position: they are kept and
 * found by ID, but are in no timeline and never forward extremities.
 */
import type { IdentifiedPdu, StateMap } from '../../core/pdu.ts';
import { referencedIds, stateKey } from '../../core/pdu.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import {
  type ExtremityEntry,
  eventRowEntries,
  extremitiesAfter,
  latestEvent,
  relationRow,
  threadOfRow,
} from '../schema.ts';
import type { PersistEventInput, PersistedEvent, RoomStore } from '../store.ts';
import { StoreError } from '../store.ts';
import { currentPosition, invalid, nextPosition, requireString } from './common.ts';
import { EVENT_INDEX_TABLES, indexEvent } from './event-index.ts';
import { GroupWriter, loadState } from './state-groups.ts';

const PERSIST_TABLES = [
  'events',
  'pending_redactions',
  'state_groups',
  'current_state',
  'room_members',
  'rooms',
  'streams',
  'outbox',
  'txn_ids',
  'notifications',
  'notification_counts',
  'relations',
  'partial_state_rooms',
  ...EVENT_INDEX_TABLES,
] as const;

/**
 * The tables a batch's optimistic attempt may touch, judged from its inputs: in Chromium each
 * object store in a transaction's scope costs (the bench measured ~15% of a message's persist
 * between a scope of the 4 stores a message then needed and all 18; now it needs `events`
 * alone: edges, extremities and search words are on its row, schema v12). Anything that goes past it
 * (a store not in the scope) fails the attempt with INVALID, and the careful attempt, over
 * every table, decides — so a wrong guess costs time, never correctness.
 */
function persistScope(inputs: readonly PersistEventInput[]): readonly string[] {
  const tables = new Set<string>(['events']);
  const add = (...names: string[]) => {
    for (const name of names) tables.add(name);
  };
  for (const input of inputs) {
    const { event } = input;
    const content = event.content as Record<string, unknown> | undefined;
    if (typeof content === 'object' && content !== null && 'm.relates_to' in content)
      add('relations', 'threads', 'thread_participants');
    if (event.type === 'm.room.create') add('rooms');
    if (typeof event.state_key === 'string' || (input.stateBefore && 'state' in input.stateBefore))
      add('state_groups', 'current_state', 'room_members');
    if (input.currentState || input.outOfBandMembership) add('current_state', 'room_members');
    if (input.backfilled) add('streams');
    if (input.destinations?.length) add('outbox', 'streams');
    if (input.txn) add('txn_ids');
    if (input.notify?.length) add('notifications', 'notification_counts');
    if (input.redaction || input.redactsLater !== undefined || input.redactedBy !== undefined)
      add('pending_redactions', 'relations');
    if (input.partialState) add('partial_state_rooms');
  }
  return [...tables];
}

/** The room an event belongs to: a v12 create event has no room_id; its ID names the room (rooms/v12.md). */
export function roomIdOf(event: IdentifiedPdu): string {
  if (typeof event.room_id === 'string') return event.room_id;
  if (event.type === 'm.room.create' && typeof event.event_id === 'string')
    return `!${event.event_id.slice(1)}`;
  throw invalid(`event ${String(event.event_id)} has no room_id`);
}

function validate(input: PersistEventInput): void {
  const event = input?.event;
  if (typeof event !== 'object' || event === null) throw invalid('persistEvents: each input needs an event');
  requireString(event.event_id, 'event_id');
  requireString(event.type, `type of ${event.event_id}`);
  requireString(event.sender, `sender of ${event.event_id}`);
  roomIdOf(event);
  if (!Number.isSafeInteger(event.depth) || event.depth < 0)
    throw invalid(`depth of ${event.event_id} must be a non-negative integer`);
  if (!Array.isArray(event.prev_events)) throw invalid(`prev_events of ${event.event_id} must be an array`);
  if (event.state_key !== undefined && typeof event.state_key !== 'string')
    throw invalid(`state_key of ${event.event_id} must be a string`);
  const stateless = input.outlier || input.outOfBandMembership || input.rejected !== undefined;
  if (!stateless && !input.stateBefore)
    throw invalid(`event ${event.event_id} needs stateBefore (or outlier)`);
  if (input.outOfBandMembership && event.type !== 'm.room.member')
    throw invalid('outOfBandMembership is for m.room.member events');
}

const membershipOf = (pdu: IdentifiedPdu) => {
  const value = (pdu.content as { membership?: unknown }).membership;
  return typeof value === 'string' ? value : 'leave';
};

function setMembership(tx: Tx, roomId: string, eventRow: Row): Promise<void> {
  const pdu = eventRow.pdu as IdentifiedPdu;
  return tx.put('room_members', {
    room_id: roomId,
    user_id: pdu.state_key,
    membership: membershipOf(pdu),
    event_id: pdu.event_id,
    stream: eventRow.stream ?? null,
    forgotten: false,
  });
}

/** Makes the room's current state `state`, writing only what changed. */
async function replaceCurrentState(tx: Tx, roomId: string, state: StateMap): Promise<void> {
  const rows = await tx.query('current_state', { prefix: [roomId] });
  const had = new Map(
    rows.map((row) => [stateKey(row.type as string, row.state_key as string), row.event_id as string]),
  );
  for (const row of rows) {
    if (!state.has(stateKey(row.type as string, row.state_key as string))) {
      await tx.delete('current_state', [roomId, row.type as string, row.state_key as string]);
      if (row.type === 'm.room.member') await tx.delete('room_members', [roomId, row.state_key as string]);
    }
  }
  const changed = [...state].filter(([key, eventId]) => had.get(key) !== eventId);
  await putCurrentState(tx, roomId, changed, 'current state');
}

/** Current-state rows (and membership rows) for `entries`, whose events must be stored. */
async function putCurrentState(
  tx: Tx,
  roomId: string,
  entries: readonly [string, string][],
  what: string,
): Promise<void> {
  const events = await tx.getMany(
    'events',
    entries.map(([, eventId]) => eventId),
  );
  for (const [i, [key, eventId]] of entries.entries()) {
    const row = events[i];
    if (!row) throw new StoreError('NOT_FOUND', `${what} names ${eventId}, which is not stored`);
    const pdu = row.pdu as IdentifiedPdu;
    await tx.put('current_state', {
      room_id: roomId,
      type: pdu.type,
      state_key: pdu.state_key,
      event_id: eventId,
      stream: row.stream ?? null,
    });
    if (pdu.type === 'm.room.member' && key === stateKey(pdu.type, pdu.state_key ?? ''))
      await setMembership(tx, roomId, row);
  }
}

/**
 * Writes that nothing later in the transaction waits for are issued without awaiting each
 * (requests run in order within a transaction, so later reads still see them) and awaited
 * together at the end: an IndexedDB round trip per write would dominate the cost.
 */
class Pending {
  private readonly all: Promise<unknown>[] = [];
  add(promise: Promise<unknown>): void {
    // Handled at `settle`; the no-op catch keeps an early rejection from counting as unhandled.
    promise.catch(() => undefined);
    this.all.push(promise);
  }
  async settle(): Promise<void> {
    await Promise.all(this.all);
  }
}

const unreadKey = (userId: string, roomId: string, threadId: string) =>
  JSON.stringify([userId, roomId, threadId]);

/** Entries kept per cache map; the oldest go first (a linear room needs only the last few). */
const CACHE_LIMIT = 2048;

/**
 * What a store remembers of its own committed writes, so that the common write — the next
 * event in a room, after the event persisted just before — reads nothing back. Every entry
 * is a fact that no later write changes, or a lower bound guarded by a unique key:
 * - `position`: the events stream position last committed or read. Nothing deletes events,
 *   so it is ≤ the true one; if another writer (another tab, another store) moved past it,
 *   the position after it is taken and the optimistic `insert` of the event row fails.
 * - `groups`: the same for the last state group ID (group IDs 1…last all exist).
 * - `stateAfter`: an event's state group after it — fixed once the event has state.
 * - `chains`: a state group's ancestor chain — groups are never rewritten.
 * - `extremities`: a room's forward extremities after the latest of its events this store
 *   committed (or read). Only a timeline event changes them, and it takes the next events
 *   position: if another writer did, the optimistic insert at `position` + 1 fails, so
 *   they are trusted exactly when `position` is.
 * The counters are trusted only when no other write of this store is under way (a
 * concurrent one would take the same next position and have to run again).
 */
interface PersistCache {
  /** persistEvents calls of this store under way: with more than one, the counters are read. */
  writers: number;
  position: number | undefined;
  groups: number | undefined;
  stateAfter: Map<string, number>;
  chains: Map<number, readonly number[]>;
  extremities: Map<string, RoomExtremities>;
}

/** A room's forward extremities after its event at `stream`. */
interface RoomExtremities {
  stream: number;
  entries: readonly ExtremityEntry[];
}

function remember<K, V>(map: Map<K, V>, entries: Iterable<[K, V]>): void {
  for (const [key, value] of entries) {
    map.delete(key);
    map.set(key, value);
  }
  if (map.size > CACHE_LIMIT) {
    let excess = map.size - CACHE_LIMIT;
    for (const key of map.keys()) {
      if (excess-- <= 0) break;
      map.delete(key);
    }
  }
}

/**
 * One attempt at persisting a batch, in one write transaction.
 *
 * Optimistic (the first attempt): events are assumed new and the cache current, so the
 * event row and new state groups are `insert`ed and nothing is read to check them. An event
 * already stored, or a position or group ID another writer took, makes an insert fail with
 * CONFLICT, which fails the whole transaction (nothing is left of it); `persistEvents` then
 * runs the batch again carefully: reading whether each event exists (skipped, or an outlier
 * promoted) and every counter, exactly as a store without a cache would.
 */
class PersistRun {
  readonly tx: Tx;
  readonly optimistic: boolean;
  private readonly cache: PersistCache;
  private readonly pending = new Pending();
  readonly groups: GroupWriter;
  /** The last events stream position taken in this transaction; undefined until known. */
  private position: number | undefined;
  /** Whether an optimistic insert failed: the careful attempt will decide. */
  conflict = false;
  /** State after the events stored or read in this transaction, for later events of the batch and the cache. */
  readonly stateAfter = new Map<string, number>();
  private readonly stored = new Set<string>();
  /** Notifying events of this batch by (user, room, thread): added to the counters at the end. */
  private readonly unread = new Map<string, Row>();
  /** The stored counters read ahead by `readUnreadAhead`, by (user, room, thread). */
  private unreadAhead: Promise<Map<string, Row | undefined>> | undefined;
  /** Rooms' forward extremities after this transaction's latest event in each. */
  private readonly extremities = new Map<string, RoomExtremities>();
  /** Events claimed as awaited by an event of this transaction (`awaits`). */
  readonly claimed = new Set<string>();

  /** Whether the cached counters may be used: optimistic, and this store's only write under way. */
  private readonly trustCounters: boolean;

  constructor(tx: Tx, cache: PersistCache, optimistic: boolean) {
    this.tx = tx;
    this.cache = cache;
    this.optimistic = optimistic;
    this.trustCounters = optimistic && cache.writers === 1;
    this.groups = new GroupWriter(tx, {
      optimistic,
      cached: this.trustCounters ? cache.groups : undefined,
      chains: cache.chains,
      write: (promise) => this.write(promise),
    });
  }

  write(promise: Promise<unknown>): void {
    this.pending.add(promise);
  }

  /** `insert` when optimistic (a clash fails the transaction, see above), else `put`. */
  writeNew(table: string, row: Row): void {
    if (!this.optimistic) {
      this.write(this.tx.put(table, row));
      return;
    }
    const inserted = this.tx.insert(table, row);
    inserted.catch((error: unknown) => {
      if (error instanceof StoreError && error.code === 'CONFLICT') this.conflict = true;
    });
    this.write(inserted);
  }

  /** Whether the position must be read: not known in this transaction, nor trusted from the cache. */
  needsPosition(): boolean {
    return this.position === undefined && !(this.trustCounters && this.cache.position !== undefined);
  }

  /** The next events stream position, after `read` (when `needsPosition` asked for it). */
  nextPosition(read: number | undefined): number {
    this.position = (this.position ?? read ?? this.cache.position ?? 0) + 1;
    return this.position;
  }

  /**
   * The room's forward extremities, if known without a read: from this transaction, or
   * remembered and trusted — and only when the event names every one of them among its prev
   * events (the next message of a linear room): a branch it leaves aside, or a room purged
   * since (`purgeRoom` forgets its events, not this memory), is read instead.
   */
  knownExtremities(roomId: string, prevIds: readonly string[]): readonly ExtremityEntry[] | undefined {
    const here = this.extremities.get(roomId);
    if (here) return here.entries;
    if (!this.trustCounters || this.cache.position === undefined) return undefined;
    const remembered = this.cache.extremities.get(roomId)?.entries;
    return remembered?.every((e) => prevIds.includes(e.event_id)) ? remembered : undefined;
  }

  setExtremities(roomId: string, stream: number, entries: readonly ExtremityEntry[]): void {
    this.extremities.set(roomId, { stream, entries });
  }

  knownStateAfter(eventId: string): number | undefined {
    return this.stateAfter.get(eventId) ?? this.cache.stateAfter.get(eventId);
  }

  /** Whether the event is known to be stored: written or read in this transaction, or remembered. */
  knownStored(eventId: string): boolean {
    return this.stored.has(eventId) || this.cache.stateAfter.has(eventId);
  }

  sawStored(eventId: string, row?: Row): void {
    this.stored.add(eventId);
    if (typeof row?.state_after === 'number') this.stateAfter.set(eventId, row.state_after);
  }

  /** One more unread notification for the user in the room's thread (see `finish`). */
  countUnread(userId: string, roomId: string, threadId: string, highlight: boolean): void {
    const key = unreadKey(userId, roomId, threadId);
    const counted = this.unread.get(key) ?? {
      user_id: userId,
      room_id: roomId,
      thread_id: threadId,
      notifications: 0,
      highlights: 0,
    };
    (counted.notifications as number)++;
    if (highlight) (counted.highlights as number)++;
    this.unread.set(key, counted);
  }

  /**
   * Asks for the counters the batch's notifications will move before its events are written
   * (nothing in the batch writes them before `addUnread`): their answer comes back while the
   * rest is issued, so adding to them costs the write no round trip of its own.
   */
  readUnreadAhead(inputs: readonly PersistEventInput[]): void {
    const keys = new Map<string, [string, string, string]>();
    for (const input of inputs) {
      if (!input.notify?.length) continue;
      const roomId = roomIdOf(input.event);
      const threadId = threadOfRow({ pdu: input.event });
      for (const { userId } of input.notify)
        keys.set(unreadKey(userId, roomId, threadId), [userId, roomId, threadId]);
    }
    if (keys.size === 0) return;
    const named = [...keys];
    const read = this.tx
      .getMany(
        'notification_counts',
        named.map(([, key]) => key),
      )
      .then((rows) => new Map(named.map(([key], i) => [key, rows[i]])));
    read.catch(() => undefined);
    this.unreadAhead = read;
  }

  /** Adds this batch's notifications to the stored counters: one read of them, then the writes. */
  private async addUnread(): Promise<void> {
    if (this.unread.size === 0) return;
    const ahead = this.unreadAhead ? await this.unreadAhead : new Map<string, Row | undefined>();
    const added = [...this.unread.entries()];
    const missing = added.filter(([key]) => !ahead.has(key)).map(([, c]) => c);
    const read =
      missing.length === 0
        ? []
        : await this.tx.getMany(
            'notification_counts',
            missing.map((c) => [c.user_id as string, c.room_id as string, c.thread_id as string]),
          );
    for (const [i, count] of missing.entries())
      ahead.set(
        unreadKey(count.user_id as string, count.room_id as string, count.thread_id as string),
        read[i],
      );
    for (const [key, count] of added) {
      const row = ahead.get(key);
      this.write(
        this.tx.put('notification_counts', {
          ...count,
          notifications: ((row?.notifications as number | undefined) ?? 0) + (count.notifications as number),
          highlights: ((row?.highlights as number | undefined) ?? 0) + (count.highlights as number),
          since: (row?.since as number | undefined) ?? 0,
        }),
      );
    }
  }

  async finish(): Promise<void> {
    await this.addUnread();
    await this.pending.settle();
  }

  /** After commit: what the transaction wrote or read is now a fact to remember. */
  committed(): void {
    const { cache } = this;
    if (this.position !== undefined) cache.position = Math.max(cache.position ?? 0, this.position);
    if (this.groups.last !== undefined) cache.groups = Math.max(cache.groups ?? 0, this.groups.last);
    remember(cache.stateAfter, this.stateAfter);
    remember(cache.chains, this.groups.made);
    remember(
      cache.extremities,
      [...this.extremities].filter(
        ([room, { stream }]) => (cache.extremities.get(room)?.stream ?? 0) <= stream,
      ),
    );
  }
}

async function persistOne(run: PersistRun, input: PersistEventInput): Promise<PersistedEvent> {
  const { tx } = run;
  const pdu = input.event;
  const eventId = pdu.event_id;
  const roomId = roomIdOf(pdu);
  const prevIds = referencedIds(pdu.prev_events);
  const isState = typeof pdu.state_key === 'string';
  const accepted = input.rejected === undefined && !input.softFailed;
  const live = accepted && !input.outlier && !input.outOfBandMembership;
  const inTimeline = live || input.outOfBandMembership === true;
  const outlier = !live && !input.rejected && !input.softFailed;
  // Backfilled history lies behind the extremities and current state: it moves neither.
  const advances = live && !input.backfilled;
  // A child that keeps its prev events from being extremities, even if they arrive later.
  const counts = inTimeline && !outlier;
  const stateBefore = input.outlier || input.outOfBandMembership ? undefined : input.stateBefore;
  const sourceId = stateBefore && ('afterEvent' in stateBefore ? stateBefore.afterEvent : prevIds[0]);
  const sourceState = sourceId === undefined ? undefined : run.knownStateAfter(sourceId);
  const isCreate = pdu.type === 'm.room.create' && pdu.state_key === '';
  const destinations = [...new Set(input.destinations ?? [])];
  // Prev events not known to be stored, when it matters (see `awaits`); the source is read anyway.
  const unknownPrevs = counts
    ? prevIds.filter((id) => !run.knownStored(id) && !(id === sourceId && sourceState === undefined))
    : [];
  // A timeline event (positive position) carries the room's extremities after it.
  const positioned = inTimeline && !input.backfilled;
  const knownExtremities = positioned ? run.knownExtremities(roomId, prevIds) : undefined;
  // Careful: whether another child already claims a prev event not known to be stored.
  const claimChecks = counts && !run.optimistic ? prevIds.filter((id) => !run.knownStored(id)) : [];

  // The reads this event needs, all at once. Optimistic: no existence read, no children read,
  // no read of who already claims an awaited prev event (a second claim fails the insert).
  const reads = [
    run.optimistic ? undefined : tx.get('events', eventId),
    positioned && run.needsPosition() ? currentPosition(tx, 'events') : undefined,
    sourceId === undefined || sourceState !== undefined ? undefined : tx.get('events', sourceId),
    advances && !run.optimistic ? tx.query('events', { index: 'prevs', prefix: [eventId] }) : undefined,
    isCreate ? tx.get('rooms', roomId) : undefined,
    destinations.length > 0 ? currentPosition(tx, 'outbox') : undefined,
    unknownPrevs.length > 0
      ? Promise.all(unknownPrevs.map((id) => tx.count('events', { prefix: [id] })))
      : undefined,
    claimChecks.length > 0
      ? Promise.all(claimChecks.map((id) => tx.count('events', { index: 'awaits', prefix: [id] })))
      : undefined,
    positioned && knownExtremities === undefined ? latestEvent(tx, roomId) : undefined,
  ] as const;
  const [existing, readPosition, source, children, room, outboxCounter, prevCounts, prevClaims, latest] =
    await Promise.all(reads);
  const promotes = existing?.outlier === true && !input.outlier && !input.outOfBandMembership;
  if (existing && !promotes) {
    run.sawStored(eventId, existing);
    return { eventId, stream: (existing.stream as number | null) ?? null, existed: true };
  }
  if (sourceId !== undefined && source) run.sawStored(sourceId, source);
  unknownPrevs.forEach((id, i) => {
    if ((prevCounts?.[i] ?? 0) > 0) run.sawStored(id);
  });
  // Careful: a prev event another child already claims is awaited; this one need not claim it.
  claimChecks.forEach((id, i) => {
    if ((prevClaims?.[i] ?? 0) > 0) run.claimed.add(id);
  });

  let stream: number | null = null;
  if (inTimeline)
    stream = input.backfilled ? -(await nextPosition(tx, 'backfill')) : run.nextPosition(readPosition);

  let before: number | null = null;
  let after: number | null = null;
  if (stateBefore) {
    const sourceAfter = sourceState ?? (source?.state_after as number | null | undefined) ?? null;
    if ('afterEvent' in stateBefore) {
      if (sourceAfter === null)
        throw new StoreError('NOT_FOUND', `the state after ${stateBefore.afterEvent} is not stored`);
      before = sourceAfter;
    } else {
      before = await run.groups.forState(roomId, stateBefore.state, sourceAfter);
    }
    after =
      isState && input.rejected === undefined
        ? await run.groups.add(roomId, before, [[stateKey(pdu.type, pdu.state_key as string), eventId]])
        : before;
  }

  // An event that arrives after one of its children (federation) is no extremity. Careful:
  // read its children. Optimistic: assume none — a child stored first claimed this event in
  // its `awaits`, and this row claims its own ID there too, so the insert fails (schema v12).
  let extremity = advances;
  if (children && children.length > 0)
    extremity = !children.some((child) => child.stream != null && child.outlier !== true);
  // Prev events this one awaits: not stored, and not claimed by another child already.
  const awaited = counts
    ? prevIds.filter((id) => !run.knownStored(id) && !run.claimed.has(id) && id !== eventId)
    : [];
  for (const id of awaited) run.claimed.add(id);
  // Its own claim, which an earlier child's claim refuses; careful, left out when it has children.
  const own = advances && (children === undefined || children.length === 0) ? eventId : undefined;

  const fields: Row = {
    event_id: eventId,
    room_id: roomId,
    stream,
    depth: pdu.depth,
    type: pdu.type,
    state_key: isState ? pdu.state_key : null,
    sender: pdu.sender,
    pdu,
    outlier,
    rejected: input.rejected ?? null,
    soft_failed: input.softFailed === true,
    redacted_by: input.redactedBy ?? null,
    state_before: before,
    state_after: after,
    txn:
      input.txn && input.txn.userId === pdu.sender
        ? { deviceId: input.txn.deviceId, txnId: input.txn.txnId }
        : null,
  };
  const row = eventRowEntries(fields, awaited, own);
  if (stream !== null && stream > 0) {
    // The room's extremities after it: its prev events are none any more; it is one unless a
    // child came first; `replacesExtremities` ends the older branches.
    let entries = knownExtremities ?? extremitiesAfter(latest);
    if (advances) {
      entries = input.replacesExtremities ? [] : entries.filter((e) => !prevIds.includes(e.event_id));
      if (extremity) entries = [...entries, { event_id: eventId, depth: pdu.depth, stream }];
    }
    row.extremities = entries;
    run.setExtremities(roomId, stream, entries);
  }
  // Careful: `put`, which also promotes a stored outlier. Optimistic: `insert`, which fails if it
  // exists, or if its own claim in `awaits` is taken (a child came first).
  run.writeNew('events', row);
  run.sawStored(eventId, row);

  if (isCreate && !room) {
    const content = pdu.content as { room_version?: unknown; creator?: unknown };
    run.write(
      tx.put('rooms', {
        room_id: roomId,
        room_version: typeof content.room_version === 'string' ? content.room_version : '1',
        creator: typeof content.creator === 'string' ? content.creator : pdu.sender,
        published: null,
      }),
    );
  }
  if (input.currentState) {
    await replaceCurrentState(tx, roomId, input.currentState);
  } else if (advances && isState) {
    run.write(
      tx.put('current_state', {
        room_id: roomId,
        type: pdu.type,
        state_key: pdu.state_key,
        event_id: eventId,
        stream,
      }),
    );
    if (pdu.type === 'm.room.member') run.write(setMembership(tx, roomId, row));
  }
  if (input.outOfBandMembership) run.write(setMembership(tx, roomId, row));
  if (input.partialState && live) {
    run.write(
      tx.put('partial_state_rooms', {
        room_id: roomId,
        join_event_id: eventId,
        servers: [...input.partialState.servers],
        filled: null,
      }),
    );
  }

  if (input.txn) {
    run.write(
      tx.put('txn_ids', {
        user_id: input.txn.userId,
        device_id: input.txn.deviceId,
        txn_id: input.txn.txnId,
        result: eventId,
      }),
    );
  }
  if (stream !== null && input.notify && input.notify.length > 0) {
    const threadId = threadOfRow(row);
    for (const { userId, highlight } of input.notify) {
      run.write(
        tx.put('notifications', {
          user_id: userId,
          room_id: roomId,
          stream,
          event_id: eventId,
          highlight: highlight === true,
          thread_id: threadId,
        }),
      );
      run.countUnread(userId, roomId, threadId, highlight === true);
    }
  }
  const relation = relationRow(row);
  if (relation) run.write(tx.put('relations', relation));
  // The thread list (event-index.ts), in this same transaction; the search words are on the row.
  const indexing = indexEvent(tx, row, relation, (promise) => run.write(promise));
  if (indexing) await indexing;
  if (input.redaction) await applyRedaction(tx, input.redaction.eventId, input.redaction.redacted, eventId);
  if (input.redactsLater !== undefined)
    run.write(tx.put('pending_redactions', { target_id: input.redactsLater, redaction_id: eventId }));
  if (input.redactedBy !== undefined) run.write(tx.delete('pending_redactions', [eventId, input.redactedBy]));
  if (outboxCounter !== undefined) {
    for (const [i, destination] of destinations.entries()) {
      run.write(
        tx.put('outbox', { destination, seq: outboxCounter + i + 1, kind: 'pdu', event_id: eventId }),
      );
    }
    run.write(tx.put('streams', { name: 'outbox', position: outboxCounter + destinations.length }));
  }
  return { eventId, stream, existed: false };
}

/** Errors the careful attempt can answer differently: the event may exist (and be skipped). */
function optimismFailed(run: PersistRun, error: unknown): boolean {
  return (
    run.conflict ||
    (error instanceof StoreError &&
      (error.code === 'CONFLICT' || error.code === 'NOT_FOUND' || error.code === 'INVALID'))
  );
}

async function applyRedaction(
  tx: Tx,
  targetId: string,
  redacted: IdentifiedPdu,
  redactedBy: string,
): Promise<boolean> {
  const target = await tx.get('events', targetId);
  if (!target) return false;
  if (redacted?.event_id !== targetId)
    throw invalid(`the redacted form of ${targetId} carries another event_id`);
  // The original content is overwritten, not hidden: a redaction is real (its search words go too).
  await tx.put('events', { ...target, pdu: redacted, redacted_by: redactedBy, terms: [] });
  await tx.delete('relations', targetId);
  return true;
}

export type RoomWrites = Pick<
  RoomStore,
  | 'persistEvents'
  | 'fillPartialState'
  | 'forgetRoom'
  | 'redactEvent'
  | 'setPublished'
  | 'createAlias'
  | 'deleteAlias'
>;

const FILL_TABLES = [
  'partial_state_rooms',
  'events',
  'state_groups',
  'streams',
  'current_state',
  'room_members',
] as const;

/**
 * `fillPartialState` in the caller's transaction: the join's and every later timeline event's
 * state groups, and the current state, gain the keys of `full` they lack (the members the
 * resident omitted); what changed each event's own state stays. Each new group is a delta
 * from the one made before it, so a 10,000-member fill costs one snapshot, not one per event.
 */
async function fillState(
  tx: Tx,
  roomId: string,
  full: StateMap,
  groups: GroupWriter,
): Promise<{ position: number; stateAfter: [string, number][] } | null> {
  const marker = await tx.get('partial_state_rooms', roomId);
  if (!marker || marker.filled != null) return null;
  const join = await tx.get('events', marker.join_event_id as string);
  if (typeof join?.stream !== 'number')
    throw new StoreError('NOT_FOUND', `the partial-state join ${String(marker.join_event_id)} is not stored`);
  const made = new Map<number, number>();
  let last: number | null = null;
  const fill = async (group: unknown): Promise<unknown> => {
    if (typeof group !== 'number') return group;
    const known = made.get(group);
    if (known !== undefined) return known;
    const state = await loadState(tx, group);
    let added = false;
    for (const [key, eventId] of full) {
      if (state.has(key)) continue;
      state.set(key, eventId);
      added = true;
    }
    const id = added ? await groups.forState(roomId, state, last ?? group) : group;
    made.set(group, id);
    last = id;
    return id;
  };
  const stateAfter: [string, number][] = [];
  const rows = await tx.query('events', {
    index: '[room_id+stream]',
    prefix: [roomId],
    lower: [join.stream],
  });
  for (const row of rows) {
    const before = await fill(row.state_before);
    const after = await fill(row.state_after);
    if (before === row.state_before && after === row.state_after) continue;
    await tx.put('events', { ...row, state_before: before, state_after: after });
    if (typeof after === 'number') stateAfter.push([row.event_id as string, after]);
  }
  const current = await tx.query('current_state', { prefix: [roomId] });
  const held = new Set(current.map((row) => stateKey(row.type as string, row.state_key as string)));
  await putCurrentState(
    tx,
    roomId,
    [...full].filter(([key]) => !held.has(key)),
    'the full state',
  );
  const position = await nextPosition(tx, 'partial_state');
  await tx.put('partial_state_rooms', { ...marker, filled: position });
  return { position, stateAfter };
}

/** The writing half of `RoomStore`. */
export function roomWrites(engine: Engine): RoomWrites {
  const cache: PersistCache = {
    writers: 0,
    position: undefined,
    groups: undefined,
    stateAfter: new Map(),
    chains: new Map(),
    extremities: new Map(),
  };
  return {
    async persistEvents(inputs, options) {
      if (!Array.isArray(inputs)) throw invalid('persistEvents takes an array');
      for (const input of inputs) validate(input);
      // This call counts among the writers under way until its transaction is committed.
      let underWay = true;
      const leave = () => {
        if (underWay) cache.writers -= 1;
        underWay = false;
      };
      const attempt = async (optimistic: boolean) => {
        let run: PersistRun | undefined;
        let learned = false;
        // What the transaction wrote is remembered as soon as it is committed — on SQLite at its
        // COMMIT, before the sync that acknowledges it — so the room's next send, built then,
        // finds the counters trusted instead of reading them again.
        const learn = () => {
          if (learned) return;
          learned = true;
          run?.committed();
          leave();
        };
        const results: PersistedEvent[] = [];
        const committing = options?.committing;
        try {
          await engine.write(
            optimistic ? persistScope(inputs) : PERSIST_TABLES,
            async (tx) => {
              run = new PersistRun(tx, cache, optimistic);
              run.readUnreadAhead(inputs);
              for (const input of inputs) results.push(await persistOne(run, input));
              await run.finish();
            },
            {
              committed: () => {
                learn();
                options?.committed?.();
              },
              ...(committing ? { committing: () => committing(results) } : {}),
            },
          );
          learn();
          return results;
        } catch (error) {
          if (optimistic && run && optimismFailed(run, error)) return undefined;
          throw error;
        }
      };
      cache.writers += 1;
      try {
        const results = await attempt(true);
        if (results) return results;
        // Another writer may have moved the counters: forget them, read them again.
        cache.position = undefined;
        cache.groups = undefined;
        cache.extremities.clear();
        return (await attempt(false)) as PersistedEvent[];
      } finally {
        leave();
      }
    },

    async fillPartialState(roomId, stateBeforeJoin) {
      const writes: Promise<unknown>[] = [];
      let groups: GroupWriter | undefined;
      const done = await engine.write(FILL_TABLES, async (tx) => {
        groups = new GroupWriter(tx, {
          optimistic: false,
          cached: undefined,
          chains: cache.chains,
          write: (promise) => writes.push(promise),
        });
        const filled = await fillState(tx, roomId, stateBeforeJoin, groups);
        await Promise.all(writes);
        return filled;
      });
      // Events' state groups moved and the group counter too: the persist cache learns both.
      cache.groups = undefined;
      if (groups) remember(cache.chains, groups.made);
      if (done) remember(cache.stateAfter, done.stateAfter);
      return done?.position ?? null;
    },

    async forgetRoom(roomId, userId) {
      await engine.write(['room_members'], async (tx) => {
        const row = await tx.get('room_members', [roomId, userId]);
        if (row) await tx.put('room_members', { ...row, forgotten: true });
      });
    },

    redactEvent(eventId, redacted, redactedBy) {
      return engine.write(['events', 'relations'], (tx) => applyRedaction(tx, eventId, redacted, redactedBy));
    },

    async setPublished(roomId, published) {
      await engine.write(['rooms'], async (tx) => {
        const row = await tx.get('rooms', roomId);
        if (!row) throw new StoreError('NOT_FOUND', `room ${roomId} is not stored`);
        await tx.put('rooms', { ...row, published: published ? 1 : null });
      });
    },

    async createAlias(alias) {
      requireString(alias?.alias, 'alias');
      await engine.write(['room_aliases'], (tx) =>
        tx.insert('room_aliases', {
          alias: alias.alias,
          room_id: alias.roomId,
          servers: [...alias.servers],
          creator: alias.creator,
        }),
      );
    },

    deleteAlias(alias) {
      return engine.write(['room_aliases'], async (tx) => {
        if (!(await tx.get('room_aliases', alias))) return false;
        await tx.delete('room_aliases', alias);
        return true;
      });
    },
  };
}
