/**
 * The optimistic write path of `persistEvents` (rooms.ts): what each store remembers of its
 * own writes must never make it wrong when another store (another tab, another process)
 * writes the same database, and events that arrive after their children (the "awaited"
 * markers, schema v3) must still never become extremities. Run on fake-indexeddb and SQLite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, describe, expect, it } from 'vitest';
import { type IdentifiedPdu, stateKey } from '../../core/pdu.ts';
import { indexWords } from '../../core/search-text.ts';
import { ALICE, BOB, dump, LinearRoom, makeEvent, ROOM } from '../conformance/testing.ts';
import { createStore } from '../create-store.ts';
import type { Engine, Row } from '../engine.ts';
import { IndexedDbEngine } from '../indexeddb/engine.ts';
import { createIndexedDbAtVersion } from '../indexeddb/testing.ts';
import { createSqliteAtVersion, SqliteEngine } from '../sqlite/engine.ts';
import { nodeSqliteDriver, openSqliteEngine } from '../sqlite/index.ts';
import type { PersistEventInput, Store } from '../store.ts';
import { countingEngine } from '../testing-count.ts';

interface Backend {
  name: string;
  /** Opens (another connection to) database `id`. */
  open(id: string): Promise<Engine>;
  createAtVersion(id: string, version: number, rows: Record<string, Row[]>): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'hearth-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const indexedDB = new IDBFactory();

const backends: Backend[] = [
  {
    name: 'IndexedDB (fake-indexeddb)',
    open: (id) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: id }),
    createAtVersion: (id, version, rows) =>
      createIndexedDbAtVersion(indexedDB, IDBKeyRange, id, version, rows),
  },
  {
    name: 'SQLite',
    open: (id) => openSqliteEngine({ path: join(dir, `${id}.sqlite`) }),
    async createAtVersion(id, version, rows) {
      const driver = nodeSqliteDriver({ path: join(dir, `${id}.sqlite`) });
      try {
        await createSqliteAtVersion(driver, version, rows);
      } finally {
        driver.close();
      }
    },
  },
];

let counter = 0;

/** An `events` row as the store writes it for `pdu` at `stream` (state groups 1 → 1), for building older databases. */
function storedRow(pdu: IdentifiedPdu, stream: number | null, extra: Row = {}): Row {
  return {
    event_id: pdu.event_id,
    room_id: pdu.room_id,
    stream,
    depth: pdu.depth,
    type: pdu.type,
    state_key: null,
    sender: pdu.sender,
    pdu,
    outlier: false,
    rejected: null,
    soft_failed: false,
    redacted_by: null,
    state_before: 1,
    state_after: 1,
    txn: null,
    ...extra,
  };
}

describe('persistEvents while the previous write waits for its sync (SQLite)', () => {
  it('remembers a write at its COMMIT: the next event, persisted before that sync is done, reads no counter', async () => {
    const held: (() => void)[] = [];
    const engine = await SqliteEngine.open({
      ...nodeSqliteDriver({ path: join(dir, `held-sync-${++counter}.sqlite`) }),
      sync: () => new Promise<void>((resolve) => held.push(resolve)),
    });
    const counting = countingEngine(engine);
    const store = createStore(counting.engine);
    try {
      const room = new LinearRoom();
      const setUp = store.rooms.persistEvents([room.create(), room.member(ALICE, 'join')]);
      while (held.length < 1) await new Promise((resolve) => setTimeout(resolve, 1));
      held[0]?.();
      await setUp;
      // The first message: committed, its sync held, so not acknowledged yet.
      let committed = false;
      const first = store.rooms.persistEvents([room.message('one')], { committed: () => (committed = true) });
      while (!committed) await new Promise((resolve) => setTimeout(resolve, 1));
      counting.reset();
      const second = store.rooms.persistEvents([room.message('two')]);
      while (held.length < 3) await new Promise((resolve) => setTimeout(resolve, 1));
      const [write] = counting.calls.filter((call) => call.kind === 'write');
      // Its position and the room's extremities came from the first's commit, not from a read.
      expect(write?.requests.filter((request) => request.startsWith('events.query'))).toEqual([]);
      for (const release of held.slice(1)) release();
      const [[one], [two]] = await Promise.all([first, second]);
      expect(two?.stream).toBe((one?.stream as number) + 1);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual([room.head]);
    } finally {
      for (const release of held) release();
      await store.close();
    }
  });
});

for (const backend of backends) {
  describe(`persistEvents beside other writers — ${backend.name}`, () => {
    async function twoStores(): Promise<[Store, Store, Engine]> {
      const id = `persist-${Date.now().toString(36)}-${++counter}`;
      const a = await backend.open(id);
      const b = await backend.open(id);
      return [createStore(a), createStore(b), a];
    }

    it('keeps positions, state groups and extremities exact when two stores take turns', async () => {
      const [a, b] = await twoStores();
      const room = new LinearRoom();
      const written: { id: string; stream: number | null }[] = [];
      const expected = new Map<string, string>();
      const states = new Map<string, Map<string, string>>();
      const persist = async (store: Store, next: ReturnType<LinearRoom['next']>) => {
        const [result] = await store.rooms.persistEvents([next]);
        written.push({ id: next.event.event_id, stream: result?.stream ?? null });
      };
      await persist(a, room.create());
      expected.set(stateKey('m.room.create', ''), room.head as string);
      states.set(room.head as string, new Map(expected));
      // Each store warms its cache, then the other moves the counters past it.
      for (let i = 0; i < 12; i++) {
        const store = i % 3 === 0 ? b : a;
        if (i % 2 === 0) {
          const user = `@u${i}:hearth.test`;
          await persist(store, room.member(user, 'join'));
          expected.set(stateKey('m.room.member', user), room.head as string);
        } else {
          await persist(store, room.message());
        }
        expect(await a.rooms.stateAt(room.head as string, 'after')).toEqual(expected);
        states.set(room.head as string, new Map(expected));
      }
      expect(written.map((w) => w.stream)).toEqual(written.map((_, i) => i + 1));
      // Backfilled history makes state groups without moving the events position.
      const create = written[0]?.id as string;
      const topic = makeEvent({ id: '$old-topic', type: 'm.room.topic', stateKey: '', depth: 1, prev: [] });
      const [old] = await b.rooms.persistEvents([
        { event: topic, stateBefore: { afterEvent: create }, backfilled: true },
      ]);
      expect(old?.stream).toBe(-1);
      const last = room.member('@late:hearth.test', 'join');
      await a.rooms.persistEvents([last]);
      expected.set(stateKey('m.room.member', '@late:hearth.test'), room.head as string);
      states.set(room.head as string, new Map(expected));
      states.set(
        '$old-topic',
        new Map([...(states.get(create) ?? []), [stateKey('m.room.topic', ''), '$old-topic']]),
      );
      // No store's write replaced a state group the other made.
      for (const [eventId, state] of states) expect(await b.rooms.stateAt(eventId, 'after')).toEqual(state);
      for (const store of [a, b]) {
        expect(await store.rooms.forwardExtremities(ROOM)).toEqual([
          { eventId: room.head, depth: 14, stream: 14 },
        ]);
        expect((await store.positions()).events).toBe(14);
        expect(await store.rooms.currentState(ROOM)).toEqual(expected);
      }
      await a.close();
      await b.close();
    });

    it('reports an event already stored (by either store) as existing and writes nothing', async () => {
      const [a, b, engine] = await twoStores();
      const room = new LinearRoom();
      const create = room.create();
      const join = room.member(ALICE, 'join');
      const message = room.message();
      await a.rooms.persistEvents([create, join]);
      await b.rooms.persistEvents([message]);
      const before = await dump(engine);
      for (const store of [a, b]) {
        expect(await store.rooms.persistEvents([join, message])).toEqual([
          { eventId: join.event.event_id, stream: 2, existed: true },
          { eventId: message.event.event_id, stream: 3, existed: true },
        ]);
      }
      expect(await dump(engine)).toEqual(before);
      // A batch with an event twice stores it once.
      const next = room.message();
      expect((await a.rooms.persistEvents([next, next])).map((r) => [r.stream, r.existed])).toEqual([
        [4, false],
        [4, true],
      ]);
      await a.close();
      await b.close();
    });

    it('never makes an event that arrives after its child an extremity, nor shows the marker', async () => {
      const [a, b] = await twoStores();
      const room = new LinearRoom();
      await a.rooms.persistEvents([room.create(), room.member(ALICE, 'join')]);
      const head = room.head as string;
      const parent = makeEvent({ id: '$parent', depth: 3, prev: [head] });
      const child = makeEvent({ id: '$child', depth: 4, prev: ['$parent'] });
      // The child first (its state after the head), through one store; the parent through the other.
      await a.rooms.persistEvents([{ event: child, stateBefore: { afterEvent: head } }]);
      expect((await b.rooms.forwardExtremities(ROOM)).map((e) => e.eventId).sort()).toEqual(
        ['$child', head].sort(),
      );
      const [late] = await b.rooms.persistEvents([{ event: parent, stateBefore: { afterEvent: head } }]);
      expect(late?.existed).toBe(false);
      for (const store of [a, b]) {
        expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$child']);
        expect(await store.rooms.childrenOf('$parent')).toEqual(['$child']);
      }
      // A backfilled child keeps a later parent from being an extremity too (as before).
      const old = makeEvent({ id: '$old', depth: 1, prev: ['$older'] });
      const older = makeEvent({ id: '$older', depth: 0 });
      await a.rooms.persistEvents([{ event: old, stateBefore: { afterEvent: head }, backfilled: true }]);
      await b.rooms.persistEvents([{ event: older, stateBefore: { afterEvent: head } }]);
      expect((await a.rooms.forwardExtremities(ROOM)).map((e) => e.eventId).sort()).toEqual(['$child']);
      await a.close();
      await b.close();
    });

    it('forgets a purged room: a new join there is its only extremity, whatever the store remembered', async () => {
      const [a] = await twoStores();
      const room = new LinearRoom();
      await a.rooms.persistEvents([room.create(), room.member(ALICE, 'join'), room.message()]);
      await a.operator.purgeRoom(ROOM);
      // Joined again through a remote server: its prev event is one this store never had.
      const join = makeEvent({
        id: '$rejoin',
        type: 'm.room.member',
        stateKey: ALICE,
        depth: 9,
        prev: ['$remote'],
      });
      await a.rooms.persistEvents([{ event: join, stateBefore: { state: new Map() } }]);
      expect((await a.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$rejoin']);
      await a.close();
    });

    it('persists each kind of event in one write transaction, touching only the tables it named', async () => {
      const id = `persist-scope-${Date.now().toString(36)}-${++counter}`;
      const counting = countingEngine(await backend.open(id));
      const store = createStore(counting.engine);
      const room = new LinearRoom();
      const inputs: PersistEventInput[] = [room.create(), room.member(ALICE, 'join')];
      const root = room.message('thread root');
      inputs.push(root, {
        ...room.message('notified, sent with a txn ID, to another server'),
        notify: [{ userId: BOB, highlight: false }],
        txn: { userId: ALICE, deviceId: 'D', txnId: 't1' },
        destinations: ['remote.test'],
      });
      inputs.push(
        room.next({
          content: { body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root.event.event_id } },
        }),
      );
      const secret = room.message('to be redacted');
      inputs.push(secret, {
        ...room.next({ type: 'm.room.redaction', content: { redacts: secret.event.event_id } }),
        redaction: { eventId: secret.event.event_id, redacted: { ...secret.event, content: {} } },
      });
      inputs.push({
        ...room.next({ type: 'm.room.redaction', content: { redacts: '$later' } }),
        redactsLater: '$later',
      });
      for (const input of inputs) {
        counting.reset();
        await store.rooms.persistEvents([input]);
        const writes = counting.calls.filter((call) => call.kind === 'write');
        expect(writes, input.event.event_id).toHaveLength(1);
        for (const request of writes[0]?.requests ?? [])
          expect(writes[0]?.tables, request).toContain(request.split('.')[0]);
      }
      expect(
        (await store.rooms.searchEvents({ terms: ['redacted'], roomIds: new Set([ROOM]), limit: 5 })).hits,
      ).toEqual([]);
      // On IndexedDB a table outside a transaction's tables is refused as the caller's mistake
      // (INVALID), which makes persistEvents run its careful attempt over every table.
      if (backend.name !== 'SQLite')
        await expect(
          counting.engine.write(['events'], (tx) => tx.put('rooms', { room_id: '!x', published: null })),
        ).rejects.toMatchObject({ code: 'INVALID' });
      await store.close();
    });

    it('migrates a version-10 database: its word rows become search entries of each event, found as before', async () => {
      const id = `persist-v10-${Date.now().toString(36)}-${++counter}`;
      const message = (eventId: string, body: string) =>
        makeEvent({ id: eventId, depth: 1, content: { msgtype: 'm.text', body } });
      const row = (pdu: IdentifiedPdu, stream: number | null, extra: Row = {}): Row =>
        storedRow(pdu, stream, { outlier: stream === null, ...extra });
      const a = message('$a', 'The quick brown fox');
      const b = message('$b', 'a lazy dog, quick!');
      const redacted = { ...message('$gone', 'quick secret'), content: {} };
      const outlier = message('$outlier', 'quick outlier');
      // Version 10's word index: one row per distinct word of each indexed event.
      const words = (pdu: IdentifiedPdu, stream: number) =>
        indexWords((pdu.content as { body: string }).body).map((term) => ({
          term,
          stream,
          room_id: ROOM,
          event_id: pdu.event_id,
        }));
      await backend.createAtVersion(id, 10, {
        events: [row(a, 1), row(b, 2), row(redacted, 3, { redacted_by: '$redaction' }), row(outlier, null)],
        search_terms: [...words(a, 1), ...words(b, 2)],
      });
      const engine = await backend.open(id);
      const store = createStore(engine);
      const search = async (text: string) =>
        (
          await store.rooms.searchEvents({ terms: indexWords(text), roomIds: new Set([ROOM]), limit: 10 })
        ).hits.map((hit) => [hit.eventId, hit.stream]);
      // Since v12 the words are entries of the event rows' own index (v11's search rows are gone).
      const rows = await engine.read(['events', 'search_docs'], async (tx) => ({
        events: await tx.query('events'),
        docs: await tx.query('search_docs'),
      }));
      expect(rows.docs).toEqual([]);
      expect(rows.events.map((row) => [row.event_id, row.terms])).toEqual([
        ['$a', indexWords('the quick brown fox').map((t) => [t, 1])],
        ['$b', indexWords('a lazy dog quick').map((t) => [t, 2])],
        ['$gone', []],
        ['$outlier', []],
      ]);
      expect(await search('quick')).toEqual([
        ['$b', 2],
        ['$a', 1],
      ]);
      expect(await search('QUICK dog')).toEqual([['$b', 2]]);
      expect(await search('secret')).toEqual([]);
      expect(await search('outlier')).toEqual([]);
      // The old table is gone, and the new index goes on being written and redacted.
      await expect(engine.read(['search_terms'], (tx) => tx.query('search_terms'))).rejects.toThrow();
      await store.rooms.redactEvent('$a', { ...a, content: {} }, '$redacts-a');
      expect(await search('quick')).toEqual([['$b', 2]]);
      await store.close();
    });

    it('migrates a version-11 database: edges, extremities, awaited markers and search rows move onto the event rows', async () => {
      const id = `persist-v11-${Date.now().toString(36)}-${++counter}`;
      const OTHER = '!other:hearth.test';
      const event = (eventId: string, depth: number, prev: string[], roomId = ROOM, body?: string) => ({
        ...makeEvent({ id: eventId, depth, prev, ...(body ? { content: { msgtype: 'm.text', body } } : {}) }),
        room_id: roomId,
      });
      // ROOM: $1 ← $2 ← $3, and $c, stored before its prev $p (a marker). OTHER: $o1 forked into $o2 and $o3.
      const pdus = [
        event('$1', 1, []),
        event('$2', 2, ['$1'], ROOM, 'hello world'),
        event('$3', 3, ['$2'], ROOM, 'goodbye world'),
        event('$c', 5, ['$p']),
        event('$o1', 1, [], OTHER),
        event('$o2', 2, ['$o1'], OTHER),
        event('$o3', 2, ['$o1'], OTHER, 'a fork'),
      ];
      const streams = [1, 2, 3, 4, 5, 6, 7];
      const rows = pdus.map((pdu, i) => storedRow(pdu, streams[i] as number));
      const edges = pdus.flatMap((pdu) =>
        (pdu.prev_events as string[]).map((prev) => ({ prev_id: prev, event_id: pdu.event_id })),
      );
      const extremity = (roomId: string, eventId: string, depth: number, stream: number) => ({
        room_id: roomId,
        event_id: eventId,
        depth,
        stream,
      });
      await backend.createAtVersion(id, 11, {
        events: rows,
        event_edges: edges,
        forward_extremities: [
          extremity(ROOM, '$3', 3, 3),
          extremity(ROOM, '$c', 5, 4),
          { room_id: ROOM, event_id: '$p', awaited_by: '$c' },
          extremity(OTHER, '$o2', 2, 6),
          extremity(OTHER, '$o3', 2, 7),
        ],
        search_docs: rows.flatMap((row) => {
          const body = ((row.pdu as IdentifiedPdu).content as { body?: string }).body;
          return body
            ? [
                {
                  event_id: row.event_id,
                  room_id: row.room_id,
                  stream: row.stream,
                  terms: indexWords(body).map((t) => [t, row.stream]),
                },
              ]
            : [];
        }),
        state_groups: [{ id: 1, room_id: ROOM, prev: null, chain: [], delta: [] }],
        streams: [{ name: 'state_groups', position: 1 }],
      });
      const engine = await backend.open(id);
      const store = createStore(engine);
      const b = createStore(await backend.open(id));
      const extremities = async (roomId: string) =>
        (await store.rooms.forwardExtremities(roomId)).map((e) => [e.eventId, e.depth, e.stream]);
      expect(await extremities(ROOM)).toEqual([
        ['$3', 3, 3],
        ['$c', 5, 4],
      ]);
      expect(await extremities(OTHER)).toEqual([
        ['$o2', 2, 6],
        ['$o3', 2, 7],
      ]);
      expect(await store.rooms.childrenOf('$o1')).toEqual(['$o2', '$o3']);
      expect(await store.rooms.childrenOf('$p')).toEqual(['$c']);
      const search = async (text: string) =>
        (
          await store.rooms.searchEvents({
            terms: indexWords(text),
            roomIds: new Set([ROOM, OTHER]),
            limit: 10,
          })
        ).hits.map((hit) => hit.eventId);
      expect(await search('world')).toEqual(['$3', '$2']);
      expect(await search('fork')).toEqual(['$o3']);
      const old = await engine.read(['event_edges', 'forward_extremities', 'search_docs'], async (tx) => [
        ...(await tx.query('event_edges')),
        ...(await tx.query('forward_extremities')),
        ...(await tx.query('search_docs')),
      ]);
      expect(old).toEqual([]);
      // The migrated marker still works: a second child of $p first (through the other store),
      // then $p itself, which is no extremity; a merge of the fork ends both branches.
      await b.rooms.persistEvents([{ event: event('$c2', 5, ['$p']), stateBefore: { afterEvent: '$3' } }]);
      const [late] = await store.rooms.persistEvents([
        { event: event('$p', 4, ['$3']), stateBefore: { afterEvent: '$3' } },
      ]);
      expect(late?.existed).toBe(false);
      expect(await extremities(ROOM)).toEqual([
        ['$c', 5, 4],
        ['$c2', 5, 8],
      ]);
      expect(await store.rooms.childrenOf('$p')).toEqual(['$c', '$c2']);
      await store.rooms.persistEvents([
        {
          event: event('$merge', 3, ['$o2', '$o3'], OTHER, 'merged world'),
          stateBefore: { afterEvent: '$o3' },
        },
      ]);
      expect(await extremities(OTHER)).toEqual([['$merge', 3, 10]]);
      expect(await search('world')).toEqual(['$merge', '$3', '$2']);
      await store.close();
      await b.close();
    });

    it('migrates a version-2 database: an event awaited by a stored child is marked', async () => {
      const id = `persist-v2-${Date.now().toString(36)}-${++counter}`;
      const child = makeEvent({ id: '$child', depth: 2, prev: ['$missing'], sender: BOB });
      const childRow = storedRow(child, 1);
      await backend.createAtVersion(id, 2, {
        events: [childRow],
        event_edges: [{ prev_id: '$missing', event_id: '$child' }],
        forward_extremities: [{ room_id: ROOM, event_id: '$child', depth: 2, stream: 1 }],
        state_groups: [{ id: 1, room_id: ROOM, prev: null, chain: [], delta: [] }],
        streams: [{ name: 'state_groups', position: 1 }],
      });
      const store = createStore(await backend.open(id));
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$child']);
      await store.rooms.persistEvents([
        { event: makeEvent({ id: '$missing', depth: 1 }), stateBefore: { state: new Map() } },
      ]);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$child']);
      expect((await store.rooms.getEvent('$missing'))?.stream).toBe(2);
      await store.close();
    });
  });
}
