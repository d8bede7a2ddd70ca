/**
 * Events, room state and membership: `RoomStore` over the engine.
 *
 * Orders (server-server-api.md "Room state", client-server-api "Syncing", "Pagination"):
 * - stream order: the order this server learned events (`events.stream`), which /sync
 *   follows; backfilled history takes negative positions so it never looks new;
 * - topological order: (depth, stream), which /messages and backfill follow.
 * Outliers, rejected and soft-failed events have no stream position: they are kept and
 * found by ID, but are in no timeline and never forward extremities.
 */
import type { IdentifiedPdu, StateMap } from '../../core/pdu.ts';
import { referencedIds, stateKey } from '../../core/pdu.ts';
import type { Engine, Range, Row, Tx } from '../engine.ts';
import { relationRow } from '../schema.ts';
import type {
  EventPosition,
  Membership,
  Page,
  PersistEventInput,
  PersistedEvent,
  Relation,
  RoomAlias,
  RoomRecord,
  RoomStore,
  StoredEvent,
  StreamPage,
  TopoPage,
  TopoToken,
} from '../store.ts';
import { StoreError } from '../store.ts';
import { currentPosition, invalid, nextPosition, requirePosition, requireString } from './common.ts';
import { addGroup, groupForState, loadState } from './state-groups.ts';

const PERSIST_TABLES = [
  'events',
  'event_edges',
  'forward_extremities',
  'state_groups',
  'current_state',
  'room_members',
  'rooms',
  'streams',
  'outbox',
  'txn_ids',
  'notifications',
  'relations',
] as const;

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
  const events = await tx.getMany(
    'events',
    changed.map(([, eventId]) => eventId),
  );
  for (const [i, [key, eventId]] of changed.entries()) {
    const row = events[i];
    if (!row) throw new StoreError('NOT_FOUND', `current state names ${eventId}, which is not stored`);
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

async function persistOne(tx: Tx, input: PersistEventInput, pending: Pending): Promise<PersistedEvent> {
  const pdu = input.event;
  const eventId = pdu.event_id;
  const roomId = roomIdOf(pdu);
  const prevIds = referencedIds(pdu.prev_events);
  const isState = typeof pdu.state_key === 'string';
  const accepted = input.rejected === undefined && !input.softFailed;
  const live = accepted && !input.outlier && !input.outOfBandMembership;
  const inTimeline = live || input.outOfBandMembership === true;
  // Backfilled history lies behind the extremities and current state: it moves neither.
  const advances = live && !input.backfilled;
  const stateBefore = input.outlier || input.outOfBandMembership ? undefined : input.stateBefore;
  const sourceId = stateBefore && ('afterEvent' in stateBefore ? stateBefore.afterEvent : prevIds[0]);
  const isCreate = pdu.type === 'm.room.create' && pdu.state_key === '';
  const destinations = [...new Set(input.destinations ?? [])];

  // The reads this event needs, all at once.
  const [existing, lastPosition, source, children, room, outboxCounter] = await Promise.all([
    tx.get('events', eventId),
    inTimeline && !input.backfilled ? currentPosition(tx, 'events') : undefined,
    sourceId === undefined ? undefined : tx.get('events', sourceId),
    advances ? tx.query('event_edges', { prefix: [eventId] }) : undefined,
    isCreate ? tx.get('rooms', roomId) : undefined,
    destinations.length > 0 ? currentPosition(tx, 'outbox') : undefined,
  ]);
  const promotes = existing?.outlier === true && !input.outlier && !input.outOfBandMembership;
  if (existing && !promotes)
    return { eventId, stream: (existing.stream as number | null) ?? null, existed: true };

  let stream: number | null = null;
  if (inTimeline)
    stream = input.backfilled ? -(await nextPosition(tx, 'backfill')) : (lastPosition as number) + 1;

  let before: number | null = null;
  let after: number | null = null;
  if (stateBefore) {
    if ('afterEvent' in stateBefore) {
      if (source?.state_after == null)
        throw new StoreError('NOT_FOUND', `the state after ${stateBefore.afterEvent} is not stored`);
      before = source.state_after as number;
    } else {
      before = await groupForState(
        tx,
        roomId,
        stateBefore.state,
        (source?.state_after as number | null) ?? null,
      );
    }
    after =
      isState && input.rejected === undefined
        ? await addGroup(tx, roomId, before, [[stateKey(pdu.type, pdu.state_key as string), eventId]])
        : before;
  }

  // An event that arrives after one of its children (federation) is no extremity.
  let extremity = advances;
  if (advances && children && children.length > 0) {
    const childRows = await tx.getMany(
      'events',
      children.map((edge) => edge.event_id as string),
    );
    extremity = !childRows.some((child) => child && child.stream != null && child.outlier !== true);
  }

  const row: Row = {
    event_id: eventId,
    room_id: roomId,
    stream,
    depth: pdu.depth,
    type: pdu.type,
    state_key: isState ? pdu.state_key : null,
    sender: pdu.sender,
    pdu,
    outlier: !live && !input.rejected && !input.softFailed,
    rejected: input.rejected ?? null,
    soft_failed: input.softFailed === true,
    redacted_by: null,
    state_before: before,
    state_after: after,
    txn:
      input.txn && input.txn.userId === pdu.sender
        ? { deviceId: input.txn.deviceId, txnId: input.txn.txnId }
        : null,
  };
  pending.add(tx.put('events', row));
  for (const prevId of prevIds) pending.add(tx.put('event_edges', { prev_id: prevId, event_id: eventId }));

  if (isCreate && !room) {
    const content = pdu.content as { room_version?: unknown; creator?: unknown };
    pending.add(
      tx.put('rooms', {
        room_id: roomId,
        room_version: typeof content.room_version === 'string' ? content.room_version : '1',
        creator: typeof content.creator === 'string' ? content.creator : pdu.sender,
        published: null,
      }),
    );
  }
  if (advances) {
    for (const prevId of prevIds) pending.add(tx.delete('forward_extremities', [roomId, prevId]));
    if (extremity)
      pending.add(
        tx.put('forward_extremities', { room_id: roomId, event_id: eventId, depth: pdu.depth, stream }),
      );
  }

  if (input.currentState) {
    await replaceCurrentState(tx, roomId, input.currentState);
  } else if (advances && isState) {
    pending.add(
      tx.put('current_state', {
        room_id: roomId,
        type: pdu.type,
        state_key: pdu.state_key,
        event_id: eventId,
        stream,
      }),
    );
    if (pdu.type === 'm.room.member') pending.add(setMembership(tx, roomId, row));
  }
  if (input.outOfBandMembership) pending.add(setMembership(tx, roomId, row));

  if (input.txn) {
    pending.add(
      tx.put('txn_ids', {
        user_id: input.txn.userId,
        device_id: input.txn.deviceId,
        txn_id: input.txn.txnId,
        result: eventId,
      }),
    );
  }
  if (stream !== null) {
    for (const { userId, highlight } of input.notify ?? []) {
      pending.add(
        tx.put('notifications', {
          user_id: userId,
          room_id: roomId,
          stream,
          event_id: eventId,
          highlight: highlight === true,
        }),
      );
    }
  }
  const relation = relationRow(row);
  if (relation) pending.add(tx.put('relations', relation));
  if (input.redaction) await applyRedaction(tx, input.redaction.eventId, input.redaction.redacted, eventId);
  if (outboxCounter !== undefined) {
    for (const [i, destination] of destinations.entries()) {
      pending.add(
        tx.put('outbox', { destination, seq: outboxCounter + i + 1, kind: 'pdu', event_id: eventId }),
      );
    }
    pending.add(tx.put('streams', { name: 'outbox', position: outboxCounter + destinations.length }));
  }
  return { eventId, stream, existed: false };
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
  // The original content is overwritten, not hidden: a redaction is real.
  await tx.put('events', { ...target, pdu: redacted, redacted_by: redactedBy });
  await tx.delete('relations', targetId);
  return true;
}

function streamRange(roomId: string, page: StreamPage): Range {
  const from = page.from === undefined ? undefined : [requirePosition(page.from, 'from')];
  const to = page.to === undefined ? undefined : [requirePosition(page.to, 'to')];
  const forward = page.dir === 'f';
  return {
    index: '[room_id+stream]',
    prefix: [roomId],
    lower: forward ? from : to,
    lowerOpen: true,
    upper: forward ? to : from,
    upperOpen: false,
    reverse: !forward,
  };
}

function topoRange(roomId: string, page: TopoPage): Range {
  const key = (token: TopoToken | undefined, what: string) =>
    token === undefined
      ? undefined
      : [requirePosition(token.depth, `${what}.depth`), requirePosition(token.stream, `${what}.stream`)];
  const from = key(page.from, 'from');
  const to = key(page.to, 'to');
  const forward = page.dir === 'f';
  return {
    index: '[room_id+depth+stream]',
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

function toRoom(row: Row): RoomRecord {
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

export function roomStore(engine: Engine): RoomStore {
  return {
    async persistEvents(inputs) {
      if (!Array.isArray(inputs)) throw invalid('persistEvents takes an array');
      for (const input of inputs) validate(input);
      return engine.write(PERSIST_TABLES, async (tx) => {
        const pending = new Pending();
        const results: PersistedEvent[] = [];
        for (const input of inputs) results.push(await persistOne(tx, input, pending));
        await pending.settle();
        return results;
      });
    },

    async getEvent(eventId) {
      const row = await engine.read(['events'], (tx) => tx.get('events', eventId));
      return row ? toStoredEvent(row) : null;
    },

    async getEvents(eventIds) {
      const rows = await engine.read(['events'], (tx) => tx.getMany('events', [...eventIds]));
      const found = new Map<string, StoredEvent>();
      for (const row of rows) if (row) found.set(row.event_id as string, toStoredEvent(row));
      return found;
    },

    timeline(roomId, page) {
      return engine.read(['events'], (tx) =>
        pageOf(tx, streamRange(roomId, page), page, streamToken(page.dir)),
      );
    },

    timelines(requests) {
      return engine.read(['events'], async (tx) => {
        const pages: Page<number>[] = [];
        for (const request of requests) {
          pages.push(
            await pageOf(tx, streamRange(request.roomId, request), request, streamToken(request.dir)),
          );
        }
        return pages;
      });
    },

    messages(roomId, page) {
      return engine.read(['events'], (tx) => pageOf(tx, topoRange(roomId, page), page, topoToken(page.dir)));
    },

    async roomsWithEvents(from, to) {
      const rows = await engine.read(['events'], (tx) =>
        tx.query('events', {
          index: 'stream',
          lower: [requirePosition(from, 'from')],
          lowerOpen: true,
          upper: [requirePosition(to, 'to')],
        }),
      );
      return [...new Set(rows.map((row) => row.room_id as string))];
    },

    async eventAtStream(roomId, position) {
      const row = await engine.read(['events'], (tx) => eventAtStream(tx, roomId, position));
      return row ? toStoredEvent(row) : null;
    },

    async forwardExtremities(roomId) {
      const rows = await engine.read(['forward_extremities'], (tx) =>
        tx.query('forward_extremities', { prefix: [roomId] }),
      );
      return rows.map(
        (row): EventPosition => ({
          eventId: row.event_id as string,
          depth: row.depth as number,
          stream: row.stream as number,
        }),
      );
    },

    async childrenOf(eventId) {
      const rows = await engine.read(['event_edges'], (tx) => tx.query('event_edges', { prefix: [eventId] }));
      return rows.map((row) => row.event_id as string);
    },

    stateAt(eventId, when) {
      return engine.read(['events', 'state_groups'], async (tx) => {
        const row = await tx.get('events', eventId);
        const group = row?.[when === 'before' ? 'state_before' : 'state_after'];
        return typeof group === 'number' ? loadState(tx, group) : null;
      });
    },

    stateAtStream(roomId, position) {
      return engine.read(['events', 'state_groups'], async (tx) => {
        const row = await eventAtStream(tx, roomId, position);
        return typeof row?.state_after === 'number' ? loadState(tx, row.state_after) : new Map();
      });
    },

    async currentState(roomId, type) {
      const rows = await engine.read(['current_state'], (tx) =>
        tx.query('current_state', { prefix: type === undefined ? [roomId] : [roomId, type] }),
      );
      return new Map(
        rows.map((row) => [stateKey(row.type as string, row.state_key as string), row.event_id as string]),
      );
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

    async membership(roomId, userId) {
      const row = await engine.read(['room_members'], (tx) => tx.get('room_members', [roomId, userId]));
      return row ? toMembership(row) : null;
    },

    async roomsForUser(userId, membership) {
      const rows = await engine.read(['room_members'], (tx) =>
        tx.query('room_members', {
          index: '[user_id+membership]',
          prefix: membership === undefined ? [userId] : [userId, membership],
        }),
      );
      return rows.map(toMembership);
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

    async forgetRoom(roomId, userId) {
      await engine.write(['room_members'], async (tx) => {
        const row = await tx.get('room_members', [roomId, userId]);
        if (row) await tx.put('room_members', { ...row, forgotten: true });
      });
    },

    redactEvent(eventId, redacted, redactedBy) {
      return engine.write(['events', 'relations'], (tx) => applyRedaction(tx, eventId, redacted, redactedBy));
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

    async setPublished(roomId, published) {
      await engine.write(['rooms'], async (tx) => {
        const row = await tx.get('rooms', roomId);
        if (!row) throw new StoreError('NOT_FOUND', `room ${roomId} is not stored`);
        await tx.put('rooms', { ...row, published: published ? 1 : null });
      });
    },

    async publishedRooms() {
      const rows = await engine.read(['rooms'], (tx) => tx.query('rooms', { index: 'published' }));
      return rows.map((row) => row.room_id as string);
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

    deleteAlias(alias) {
      return engine.write(['room_aliases'], async (tx) => {
        if (!(await tx.get('room_aliases', alias))) return false;
        await tx.delete('room_aliases', alias);
        return true;
      });
    },
  };
}
