/**
 * Events, room state and membership — the read queries of `RoomStore`. Orders
 * (server-server-api.md "Room state", client-server-api "Syncing", "Pagination"):
 * - stream order: the order this server learned events (`events.stream`), which /sync
 *   follows; backfilled history takes negative positions so it never looks new;
 * - topological order: (depth, stream), which /messages and backfill follow.
 * The write path is in rooms-write.ts; rooms.ts joins both.
 */
import type { IdentifiedPdu, StateMap } from '../../core/pdu.ts';
import { stateKey } from '../../core/pdu.ts';
import type { Engine, KeyPart, Range, Row, Tx } from '../engine.ts';
import { type ExtremityEntry, extremitiesAfter, latestEvent } from '../schema.ts';
import type {
  EventPosition,
  Membership,
  Page,
  Relation,
  RoomAlias,
  RoomRecord,
  RoomStore,
  SendSnapshot,
  StoredEvent,
  StreamPage,
  TopoPage,
  TopoToken,
} from '../store.ts';
import { type CacheMarks, invalid, requirePosition, sinceRange } from './common.ts';
import type { EventIndexReads } from './event-index.ts';
import type { RoomWrites } from './rooms-write.ts';
import { loadState, StateCache } from './state-groups.ts';

export function toStoredEvent(row: Row): StoredEvent {
  return {
    event: row.pdu as IdentifiedPdu,
    roomId: row.room_id as string,
    stream: (row.stream as number | null) ?? null,
    depth: row.depth as number,
    outlier: row.outlier === true,
    rejected: (row.rejected as string | null) ?? null,
    softFailed: row.soft_failed === true,
    redactedBy: (row.redacted_by as string | null) ?? null,
    txn: (row.txn as StoredEvent['txn']) ?? null,
  };
}

function toMembership(row: Row): Membership {
  return {
    roomId: row.room_id as string,
    userId: row.user_id as string,
    membership: row.membership as string,
    eventId: row.event_id as string,
    stream: (row.stream as number | null) ?? null,
    forgotten: row.forgotten === true,
  };
}

function streamRange(roomId: string, page: StreamPage): Range {
  const from = page.from === undefined ? undefined : [requirePosition(page.from, 'from')];
  const to = page.to === undefined ? undefined : [requirePosition(page.to, 'to')];
  return pageRange('[room_id+stream]', roomId, page.dir, from, to);
}

function topoRange(roomId: string, page: TopoPage): Range {
  const key = (token: TopoToken | undefined, what: string) =>
    token === undefined
      ? undefined
      : [requirePosition(token.depth, `${what}.depth`), requirePosition(token.stream, `${what}.stream`)];
  return pageRange('[room_id+depth+stream]', roomId, page.dir, key(page.from, 'from'), key(page.to, 'to'));
}

/** A page's bounds on a room's `index` (store.ts `StreamPage`): 'f' takes from < key ≤ to
 * ascending, 'b' to < key ≤ from descending. */
function pageRange(
  index: string,
  roomId: string,
  dir: 'f' | 'b',
  from: KeyPart[] | undefined,
  to: KeyPart[] | undefined,
): Range {
  const forward = dir === 'f';
  return {
    index,
    prefix: [roomId],
    lower: forward ? from : to,
    lowerOpen: true,
    upper: forward ? to : from,
    upperOpen: false,
    reverse: !forward,
  };
}

async function pageOf<T>(
  tx: Tx,
  range: Range,
  page: { limit: number; dir: 'f' | 'b'; filter?: (event: StoredEvent) => boolean },
  token: (last: StoredEvent) => T,
): Promise<Page<T>> {
  if (!Number.isSafeInteger(page.limit) || page.limit < 0)
    throw invalid('limit must be a non-negative integer');
  if (page.dir !== 'f' && page.dir !== 'b') throw invalid("dir must be 'f' or 'b'");
  const { filter } = page;
  const rows = await tx.query('events', {
    ...range,
    limit: page.limit + 1,
    ...(filter ? { filter: (row: Row) => filter(toStoredEvent(row)) } : {}),
  });
  const events = rows.slice(0, page.limit).map(toStoredEvent);
  const last = events[events.length - 1];
  return { events, next: rows.length > page.limit && last ? token(last) : null };
}

const streamToken = (dir: 'f' | 'b') => (last: StoredEvent) =>
  dir === 'f' ? (last.stream as number) : (last.stream as number) - 1;
const topoToken =
  (dir: 'f' | 'b') =>
  (last: StoredEvent): TopoToken => ({
    depth: last.depth,
    stream: (last.stream as number) - (dir === 'f' ? 0 : 1),
  });

async function eventAtStream(tx: Tx, roomId: string, position: number): Promise<Row | undefined> {
  const [row] = await tx.query('events', {
    index: '[room_id+stream]',
    prefix: [roomId],
    upper: [requirePosition(position, 'position')],
    reverse: true,
    limit: 1,
  });
  return row;
}

const toPosition = (entry: ExtremityEntry): EventPosition => ({
  eventId: entry.event_id,
  depth: entry.depth,
  stream: entry.stream,
});

/** Rows of `current_state` as a state map. */
const stateMapOf = (rows: readonly Row[]): StateMap =>
  new Map(rows.map((row) => [stateKey(row.type as string, row.state_key as string), row.event_id as string]));

export function toRoom(row: Row): RoomRecord {
  return {
    roomId: row.room_id as string,
    roomVersion: row.room_version as string,
    creator: row.creator as string,
    published: row.published === 1,
  };
}

function toAlias(row: Row): RoomAlias {
  return {
    alias: row.alias as string,
    roomId: row.room_id as string,
    servers: row.servers as string[],
    creator: row.creator as string,
  };
}

/** Send snapshot hints kept (`roomReads`): a bound on memory, not a tuning knob. */
const STATE_HINTS_KEPT = 4096;
const stateHintKey = (roomId: string, type: string, key: string) => JSON.stringify([roomId, type, key]);

/** A user's memberships (of one kind, when given), within a transaction. */
export async function roomsOfUser(tx: Tx, userId: string, membership?: string): Promise<Membership[]> {
  const rows = await tx.query('room_members', {
    index: '[user_id+membership]',
    prefix: membership === undefined ? [userId] : [userId, membership],
  });
  return rows.map(toMembership);
}

/** The reading half of `RoomStore`. */
export function roomReads(
  engine: Engine,
  marks?: CacheMarks,
): Omit<RoomStore, keyof RoomWrites | keyof EventIndexReads> {
  const states = new StateCache();
  /**
   * The event each (room, type, state key) of a send's snapshot last named: a hint of which
   * events its next snapshot needs, so that they are read beside the state that names them.
   * Only a hint: the snapshot takes an event only if the current state it reads names it.
   */
  const stateHints = new Map<string, string>();
  const rememberHint = (key: string, eventId: string) => {
    stateHints.delete(key);
    stateHints.set(key, eventId);
    if (stateHints.size > STATE_HINTS_KEPT) stateHints.delete(stateHints.keys().next().value as string);
  };
  return {
    async getEvent(eventId) {
      const row = await engine.read(['events'], (tx) => tx.get('events', eventId));
      return row ? toStoredEvent(row) : null;
    },

    async pendingRedactions(eventId) {
      const rows = await engine.read(['pending_redactions'], (tx) =>
        tx.query('pending_redactions', { prefix: [eventId] }),
      );
      return rows.map((row) => row.redaction_id as string);
    },

    async getEvents(eventIds) {
      const rows = await engine.read(['events'], (tx) => tx.getMany('events', [...eventIds]));
      const found = new Map<string, StoredEvent>();
      for (const row of rows) if (row) found.set(row.event_id as string, toStoredEvent(row));
      return found;
    },

    getEventsAndPendingRedactions(eventIds, targets) {
      return engine.read(['events', 'pending_redactions'], async (tx) => {
        const events = new Map<string, StoredEvent>();
        for (const row of await tx.getMany('events', [...eventIds]))
          if (row) events.set(row.event_id as string, toStoredEvent(row));
        const pendingRedactions = new Map<string, string[]>();
        for (const target of new Set(targets)) {
          const rows = await tx.query('pending_redactions', { prefix: [target] });
          if (rows.length > 0)
            pendingRedactions.set(
              target,
              rows.map((row) => row.redaction_id as string),
            );
        }
        return { events, pendingRedactions };
      });
    },

    timeline(roomId, page) {
      return engine.read(['events'], (tx) =>
        pageOf(tx, streamRange(roomId, page), page, streamToken(page.dir)),
      );
    },

    timelines(requests) {
      // Every room's page asked at once: the requests of one transaction run in order, and
      // their round trips to the backend overlap.
      return engine.read(['events'], (tx) =>
        Promise.all(
          requests.map(
            (request): Promise<Page<number>> =>
              pageOf(tx, streamRange(request.roomId, request), request, streamToken(request.dir)),
          ),
        ),
      );
    },

    messages(roomId, page) {
      return engine.read(['events'], (tx) => pageOf(tx, topoRange(roomId, page), page, topoToken(page.dir)));
    },

    async partialStateRooms() {
      const rows = await engine.read(['partial_state_rooms'], (tx) => tx.query('partial_state_rooms'));
      return rows
        .filter((row) => row.filled == null)
        .map((row) => ({
          roomId: row.room_id as string,
          joinEventId: row.join_event_id as string,
          servers: [...(row.servers as string[])],
        }));
    },

    async roomsFilledSince(from, to) {
      const rows = await engine.read(['partial_state_rooms'], (tx) =>
        tx.query('partial_state_rooms', sinceRange('filled', from, to)),
      );
      return rows.map((row) => row.room_id as string);
    },

    async roomsWithEvents(from, to) {
      const rows = await engine.read(['events'], (tx) => tx.query('events', sinceRange('stream', from, to)));
      return [...new Set(rows.map((row) => row.room_id as string))];
    },

    async eventAtStream(roomId, position) {
      const row = await engine.read(['events'], (tx) => eventAtStream(tx, roomId, position));
      return row ? toStoredEvent(row) : null;
    },

    async forwardExtremities(roomId) {
      // Those the room's latest event carries (schema v12). The cache marks beside: received
      // events are accepted on this snapshot, their push with the kept members and settings.
      const [, latest] = await engine.read(['events', 'streams'], (tx) =>
        Promise.all([marks?.readIn(tx), latestEvent(tx, roomId)]),
      );
      return extremitiesAfter(latest).map(toPosition);
    },

    async childrenOf(eventId) {
      const rows = await engine.read(['events'], (tx) =>
        tx.query('events', { index: 'prevs', prefix: [eventId] }),
      );
      return rows.map((row) => row.event_id as string);
    },

    stateAt(eventId, when) {
      return engine.read(['events', 'state_groups'], async (tx) => {
        const row = await tx.get('events', eventId);
        const group = row?.[when === 'before' ? 'state_before' : 'state_after'];
        return typeof group === 'number' ? loadState(tx, group, states) : null;
      });
    },

    stateAtStream(roomId, position) {
      return engine.read(['events', 'state_groups'], async (tx) => {
        const row = await eventAtStream(tx, roomId, position);
        return typeof row?.state_after === 'number' ? loadState(tx, row.state_after, states) : new Map();
      });
    },

    async currentState(roomId, type) {
      const rows = await engine.read(['current_state'], (tx) =>
        tx.query('current_state', { prefix: type === undefined ? [roomId] : [roomId, type] }),
      );
      return stateMapOf(rows);
    },

    currentStateEvents(roomId, types) {
      return engine.read(['current_state', 'events'], async (tx) => {
        const rows: Row[] = [];
        if (types === undefined) rows.push(...(await tx.query('current_state', { prefix: [roomId] })));
        else
          for (const type of types)
            rows.push(...(await tx.query('current_state', { prefix: [roomId, type] })));
        const events = await tx.getMany(
          'events',
          rows.map((row) => row.event_id as string),
        );
        return events.filter((row): row is Row => row !== undefined).map(toStoredEvent);
      });
    },

    currentStateEvent(roomId, type, key) {
      return engine.read(['current_state', 'events'], async (tx) => {
        const row = await tx.get('current_state', [roomId, type, key]);
        const event = row && (await tx.get('events', row.event_id as string));
        return event ? toStoredEvent(event) : null;
      });
    },

    currentStateEventsAt(roomId, keys) {
      return engine.read(['current_state', 'events', 'streams'], async (tx) => {
        // Requests run in order within the transaction: issue them all, then wait. The cache
        // marks first: a caller's kept members and push settings are checked in this snapshot.
        const [, rows] = await Promise.all([
          marks?.readIn(tx),
          Promise.all(keys.map(([type, key]) => tx.get('current_state', [roomId, type, key]))),
        ]);
        const ids = rows.filter((row): row is Row => row !== undefined).map((row) => row.event_id as string);
        const events = ids.length > 0 ? await tx.getMany('events', ids) : [];
        return events.filter((row): row is Row => row !== undefined).map(toStoredEvent);
      });
    },

    async membership(roomId, userId) {
      const row = await engine.read(['room_members'], (tx) => tx.get('room_members', [roomId, userId]));
      return row ? toMembership(row) : null;
    },

    roomsForUser(userId, membership) {
      return engine.read(['room_members'], (tx) => roomsOfUser(tx, userId, membership));
    },

    async members(roomId, membership) {
      const rows = await engine.read(['room_members'], (tx) =>
        membership === undefined
          ? tx.query('room_members', { prefix: [roomId] })
          : tx.query('room_members', { index: '[room_id+membership]', prefix: [roomId, membership] }),
      );
      return rows.map(toMembership);
    },

    countMembers(roomId, membership) {
      return engine.read(['room_members'], (tx) =>
        tx.count('room_members', { index: '[room_id+membership]', prefix: [roomId, membership] }),
      );
    },

    sendSnapshot(roomId, request) {
      const tables = ['txn_ids', 'current_state', 'events', 'streams'];
      if (request.joined) tables.push('room_members');
      // The send writes next: the engine need not keep its read open for more reads.
      const beforeWrite = { beforeWrite: true };
      return engine.read(
        tables,
        async (tx): Promise<SendSnapshot> => {
          const { txn } = request;
          // Requests run in order within the transaction: issue them all, then wait. The
          // transaction ID is looked up beside the state (a repeat is rare; its reads are wasted).
          // The state events the room's current state named at its last snapshot are read with
          // the current state: those it still names are taken, the others read after it.
          const hinted = [
            ...new Set(
              request.keys
                .map(([type, key]) => stateHints.get(stateHintKey(roomId, type, key)))
                .filter((id) => id !== undefined),
            ),
          ];
          // The cache marks first: the send's kept members and push settings are checked in
          // this snapshot (a change by another store on the database drops them).
          const [, earlier, stateRows, latest, memberRows, hintedRows] = await Promise.all([
            marks?.readIn(tx),
            txn ? tx.get('txn_ids', [txn.userId, txn.deviceId, txn.txnId]) : undefined,
            Promise.all(request.keys.map(([type, key]) => tx.get('current_state', [roomId, type, key]))),
            latestEvent(tx, roomId),
            request.joined
              ? tx.query('room_members', { index: '[room_id+membership]', prefix: [roomId, 'join'] })
              : undefined,
            hinted.length > 0 ? tx.getMany('events', hinted) : [],
          ]);
          if (earlier) return { earlier: earlier.result as string, state: [], extremities: [] };
          const extremities = extremitiesAfter(latest).map(toPosition);
          const stateIds = stateRows.filter((row) => row !== undefined).map((row) => row.event_id as string);
          for (const row of stateRows)
            if (row)
              rememberHint(
                stateHintKey(roomId, row.type as string, row.state_key as string),
                row.event_id as string,
              );
          const prevIds = request.prevEvents ? extremities.map((e) => e.eventId) : [];
          const rows = new Map<string, Row>();
          for (const row of hintedRows) if (row) rows.set(row.event_id as string, row);
          // The latest event is usually the one extremity: it is read already.
          if (latest) rows.set(latest.event_id as string, latest);
          const unread = [...stateIds, ...prevIds].filter((id) => !rows.has(id));
          const [read, current] = await Promise.all([
            unread.length > 0 ? tx.getMany('events', unread) : [],
            extremities.length > 1 ? tx.query('current_state', { prefix: [roomId] }) : undefined,
          ]);
          for (const row of read) if (row) rows.set(row.event_id as string, row);
          const stored = (ids: readonly string[]) =>
            ids.flatMap((id) => {
              const row = rows.get(id);
              return row ? [toStoredEvent(row)] : [];
            });
          const snapshot: SendSnapshot = { earlier: null, state: stored(stateIds), extremities };
          if (current) snapshot.currentState = stateMapOf(current);
          if (request.prevEvents) snapshot.prevEvents = stored(prevIds);
          if (memberRows) snapshot.joined = memberRows.map((row) => row.user_id as string);
          return snapshot;
        },
        beforeWrite,
      );
    },

    async eventForTransaction(userId, deviceId, txnId) {
      const row = await engine.read(['txn_ids'], (tx) => tx.get('txn_ids', [userId, deviceId, txnId]));
      return (row?.result as string | undefined) ?? null;
    },

    async relations(eventId, options) {
      const from = options.from === undefined ? undefined : [requirePosition(options.from, 'from')];
      const forward = options.dir === 'f';
      const rows = await engine.read(['relations'], (tx) =>
        tx.query('relations', {
          index: options.relType === undefined ? '[relates_to+stream]' : '[relates_to+rel_type+stream]',
          prefix: options.relType === undefined ? [eventId] : [eventId, options.relType],
          ...(forward ? { lower: from, lowerOpen: true } : { upper: from }),
          reverse: !forward,
          limit: options.limit,
        }),
      );
      return rows.map(
        (row): Relation => ({
          eventId: row.event_id as string,
          relType: row.rel_type as string,
          type: row.type as string,
          stream: row.stream as number,
        }),
      );
    },

    async getRoom(roomId) {
      const row = await engine.read(['rooms'], (tx) => tx.get('rooms', roomId));
      return row ? toRoom(row) : null;
    },

    async publishedRooms() {
      const rows = await engine.read(['rooms'], (tx) => tx.query('rooms', { index: 'published' }));
      return rows.map((row) => row.room_id as string);
    },

    async getAlias(alias) {
      const row = await engine.read(['room_aliases'], (tx) => tx.get('room_aliases', alias));
      return row ? toAlias(row) : null;
    },

    async aliasesOf(roomId) {
      const rows = await engine.read(['room_aliases'], (tx) =>
        tx.query('room_aliases', { index: 'room_id', prefix: [roomId] }),
      );
      return rows.map(toAlias);
    },
  };
}
