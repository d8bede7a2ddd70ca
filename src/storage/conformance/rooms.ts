/** Conformance: events, orders, pagination, state, membership, rooms (QUERIES.md "Events, rooms, state"). */
import { describe, expect, it } from 'vitest';
import { type StateKey, stateKey } from '../../core/pdu.ts';
import type { Store, StoredEvent, TopoToken } from '../store.ts';
import { StoreError } from '../store.ts';
import {
  ALICE,
  BOB,
  type ConformanceTarget,
  LinearRoom,
  makeEvent,
  ROOM,
  random,
  seedRoom,
  shuffle,
  useStores,
} from './testing.ts';

const ids = (events: StoredEvent[]) => events.map((e) => e.event.event_id);

/** Follows `next` tokens until exhausted, collecting every page's events. */
async function walkStream(
  store: Store,
  room: string,
  dir: 'f' | 'b',
  limit: number,
  from?: number,
  to?: number,
) {
  const seen: string[] = [];
  let token = from;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await store.rooms.timeline(room, { dir, limit, from: token, to });
    seen.push(...ids(page.events));
    if (page.next === null) return seen;
    token = page.next;
  }
  throw new Error('pagination did not end');
}

async function walkTopo(store: Store, room: string, dir: 'f' | 'b', limit: number, from?: TopoToken) {
  const seen: string[] = [];
  let token = from;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await store.rooms.messages(room, { dir, limit, from: token });
    seen.push(...ids(page.events));
    if (page.next === null) return seen;
    token = page.next;
  }
  throw new Error('pagination did not end');
}

export function roomTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('events by ID', () => {
    it('returns stored events with their positions and flags, and nothing for unknown IDs', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 2);
      const last = room.message('the last one');
      await store.rooms.persistEvents([last]);
      const head = room.head as string;
      const event = await store.rooms.getEvent(head);
      expect(event?.event).toEqual(last.event);
      expect(event?.event.content).toEqual({ msgtype: 'm.text', body: 'the last one' });
      expect(event).toMatchObject({
        roomId: ROOM,
        stream: 5,
        depth: 5,
        outlier: false,
        rejected: null,
        softFailed: false,
        redactedBy: null,
      });
      expect(await store.rooms.getEvent('$missing')).toBeNull();
      const many = await store.rooms.getEvents([head, '$missing', '$room-1']);
      expect([...many.keys()].sort()).toEqual([head, '$room-1'].sort());
    });

    it('keeps the event exactly as given, nested content included', async () => {
      const { store } = await stores.fresh();
      const room = new LinearRoom();
      const content = {
        body: 'ünïcødé 🎉',
        nested: { list: [1, 'two', null, { deep: true }], n: -42 },
        empty: {},
      };
      const create = room.create();
      const message = room.next({ content });
      await store.rooms.persistEvents([create, message]);
      expect((await store.rooms.getEvent(message.event.event_id))?.event).toEqual(message.event);
    });

    it('rejects malformed input with INVALID and stores nothing', async () => {
      const { store } = await stores.fresh();
      const good = makeEvent({ id: '$ok', type: 'm.room.create', stateKey: '', depth: 1 });
      const cases = [
        [{ event: good }], // no stateBefore
        [{ event: { ...good, depth: -1 }, stateBefore: { state: new Map() } }],
        [{ event: { ...good, event_id: 7 }, stateBefore: { state: new Map() } }],
        [{ event: { ...good, prev_events: 'x' }, stateBefore: { state: new Map() } }],
      ];
      for (const batch of cases) {
        await expect(store.rooms.persistEvents(batch as never)).rejects.toMatchObject({
          name: 'StoreError',
          code: 'INVALID',
        });
      }
      expect(await store.rooms.getEvent('$ok')).toBeNull();
      expect((await store.positions()).events).toBe(0);
    });
  });

  describe('stream order', () => {
    it('paginates from every token in both directions, with and without an end bound', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 18); // 20 events, stream 1..20
      const all = ids((await store.rooms.timeline(ROOM, { dir: 'f', limit: 100 })).events);
      expect(all).toHaveLength(20);
      const streamOf = (id: string) => all.indexOf(id) + 1;
      expect(all.map(streamOf)).toEqual([...Array(20).keys()].map((i) => i + 1));
      for (let from = 0; from <= 20; from++) {
        for (const limit of [1, 3, 7, 25]) {
          const forward = await store.rooms.timeline(ROOM, { dir: 'f', from, limit });
          expect(ids(forward.events)).toEqual(all.slice(from, from + limit));
          expect(forward.next).toBe(from + limit < 20 ? from + limit : null);
          const backward = await store.rooms.timeline(ROOM, { dir: 'b', from, limit });
          expect(ids(backward.events)).toEqual(all.slice(Math.max(0, from - limit), from).reverse());
          expect(backward.next).toBe(from - limit > 0 ? from - limit : null);
        }
        // Walking the tokens covers the range exactly once, in order.
        expect(await walkStream(store, ROOM, 'f', 4, from)).toEqual(all.slice(from));
        expect(await walkStream(store, ROOM, 'b', 4, from)).toEqual(all.slice(0, from).reverse());
        expect(await walkStream(store, ROOM, 'f', 3, from, 15)).toEqual(all.slice(from, Math.max(from, 15)));
        expect(await walkStream(store, ROOM, 'b', 3, 15, from)).toEqual(
          all.slice(from, Math.max(from, 15)).reverse(),
        );
      }
      expect(room.head).toBe(all[19]);
    });

    it('applies a filter before the limit, and its next token resumes after the last match', async () => {
      const { store } = await stores.fresh();
      const room = new LinearRoom();
      await store.rooms.persistEvents([room.create(), room.member(ALICE, 'join')]);
      for (let i = 0; i < 30; i++) {
        await store.rooms.persistEvents([
          i % 3 === 0 ? room.next({ type: 'm.reaction', content: { n: i } }) : room.message(),
        ]);
      }
      const onlyReactions = (e: StoredEvent) => e.event.type === 'm.reaction';
      const reactions = (dir: 'f' | 'b', limit: number, from?: number | null) =>
        store.rooms.timeline(ROOM, { dir, limit, ...(from ? { from } : {}), filter: onlyReactions });
      const numbers = (page: { events: StoredEvent[] }) => page.events.map((e) => e.event.content.n);
      const first = await reactions('b', 4);
      expect(numbers(first)).toEqual([27, 24, 21, 18]);
      const second = await reactions('b', 10, first.next);
      expect(numbers(second)).toEqual([15, 12, 9, 6, 3, 0]);
      expect(second.next).toBeNull();
      // Forwards: a first page the filter thins (the rest is walked after it), one it leaves
      // whole, and a range that ends within the first page.
      const forward = await reactions('f', 4);
      expect(numbers(forward)).toEqual([0, 3, 6, 9]);
      const rest = await reactions('f', 10, forward.next);
      expect(numbers(rest)).toEqual([12, 15, 18, 21, 24, 27]);
      expect(rest.next).toBeNull();
      const anything = () => true;
      const whole = await store.rooms.timeline(ROOM, { dir: 'f', limit: 3, filter: anything });
      expect(whole.events).toEqual((await store.rooms.timeline(ROOM, { dir: 'f', limit: 3 })).events);
      const tail = await reactions('b', 50);
      expect(numbers(tail)).toEqual([27, 24, 21, 18, 15, 12, 9, 6, 3, 0]);
      expect(tail.next).toBeNull();
    });

    it('reads several rooms in one call, each as if read alone', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 5, '!a:hearth.test');
      await seedRoom(store, 2, '!b:hearth.test');
      const requests = [
        { roomId: '!a:hearth.test', dir: 'b' as const, limit: 3 },
        { roomId: '!b:hearth.test', dir: 'b' as const, limit: 3 },
        { roomId: '!none:hearth.test', dir: 'b' as const, limit: 3 },
      ];
      const pages = await store.rooms.timelines(requests);
      for (const [i, request] of requests.entries()) {
        expect(pages[i]).toEqual(await store.rooms.timeline(request.roomId, request));
      }
      expect(pages[0]?.events).toHaveLength(3);
      expect(pages[1]?.events).toHaveLength(3);
      expect(pages[2]).toEqual({ events: [], next: null });
    });

    it('lists the rooms with events in a range, and the event at a position', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 1, '!a:hearth.test'); // streams 1..3
      await seedRoom(store, 1, '!b:hearth.test'); // streams 4..6
      expect((await store.rooms.roomsWithEvents(0, 6)).sort()).toEqual(['!a:hearth.test', '!b:hearth.test']);
      expect(await store.rooms.roomsWithEvents(3, 6)).toEqual(['!b:hearth.test']);
      expect(await store.rooms.roomsWithEvents(6, 6)).toEqual([]);
      expect((await store.rooms.eventAtStream('!a:hearth.test', 5))?.stream).toBe(3);
      expect((await store.rooms.eventAtStream('!b:hearth.test', 5))?.stream).toBe(5);
      expect(await store.rooms.eventAtStream('!b:hearth.test', 3)).toBeNull();
    });

    it("a send's snapshot has the state current now, when it changed since the last snapshot", async () => {
      const { store } = await stores.fresh();
      const room = new LinearRoom();
      await store.rooms.persistEvents([room.create(), room.member(ALICE, 'join')]);
      const power = (id: string, level: number) =>
        room.next({ id, type: 'm.room.power_levels', stateKey: '', content: { users: { [ALICE]: level } } });
      await store.rooms.persistEvents([power('$pl1', 100)]);
      const keys = [
        ['m.room.create', ''],
        ['m.room.power_levels', ''],
        ['m.room.member', ALICE],
      ] as const;
      const snapshotIds = async () =>
        (await store.rooms.sendSnapshot(ROOM, { keys })).state.map((e) => e.event.event_id).sort();
      expect(await snapshotIds()).toEqual(['$pl1', '$room-1', '$room-2']);
      await store.rooms.persistEvents([power('$pl2', 50)]);
      await store.rooms.persistEvents([room.member(ALICE, 'leave')]);
      // The events the last snapshot found are not those the current state names now.
      expect(await snapshotIds()).toEqual(['$pl2', '$room-1', '$room-3']);
      const again = await store.rooms.sendSnapshot(ROOM, { keys });
      expect(again.state.find((e) => e.event.type === 'm.room.power_levels')?.event.content).toEqual({
        users: { [ALICE]: 50 },
      });
    });

    it('reads the positions with the events after one, all of them or a first page', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 1, '!a:hearth.test'); // streams 1..3
      await seedRoom(store, 1, '!b:hearth.test'); // streams 4..6
      const all = await store.positionsWithEvents(2, 10);
      expect(all.positions).toEqual(await store.positions());
      expect(all.events.map((e) => [e.stream, e.roomId])).toEqual([
        [3, '!a:hearth.test'],
        [4, '!b:hearth.test'],
        [5, '!b:hearth.test'],
        [6, '!b:hearth.test'],
      ]);
      expect(all.events[0]).toEqual(await store.rooms.eventAtStream('!a:hearth.test', 3));
      expect(all.complete).toBe(true);
      // Exactly `limit` after it: complete; one more than the limit: the first page only.
      expect((await store.positionsWithEvents(2, 4)).complete).toBe(true);
      const page = await store.positionsWithEvents(2, 3);
      expect(page.events.map((e) => e.stream)).toEqual([3, 4, 5]);
      expect(page.complete).toBe(false);
      expect(await store.positionsWithEvents(6, 10)).toEqual({
        positions: all.positions,
        events: [],
        complete: true,
      });
      await expect(store.positionsWithEvents(0, -1)).rejects.toMatchObject({ code: 'INVALID' });
    });
  });

  describe('topological order', () => {
    it('orders by (depth, stream) and paginates from every token in both directions', async () => {
      const { store } = await stores.fresh();
      // A room whose stream order differs from its topology: a fork, a late-arriving
      // branch, and backfilled history below the create event's successors.
      const create = makeEvent({ id: '$c', type: 'm.room.create', stateKey: '', depth: 1 });
      const join = makeEvent({
        id: '$j',
        type: 'm.room.member',
        stateKey: ALICE,
        content: { membership: 'join' },
        prev: ['$c'],
        depth: 2,
      });
      await store.rooms.persistEvents([
        { event: create, stateBefore: { state: new Map() } },
        { event: join, stateBefore: { afterEvent: '$c' } },
      ]);
      const order: [string, number, string[]][] = [
        ['$a5', 5, ['$j']],
        ['$a3', 3, ['$j']],
        ['$b4', 4, ['$a3']],
        ['$a4', 4, ['$a3']],
        ['$a6', 6, ['$a5', '$a4']],
        ['$b3', 3, ['$j']],
      ];
      for (const [id, depth, prev] of order) {
        await store.rooms.persistEvents([
          { event: makeEvent({ id, depth, prev }), stateBefore: { afterEvent: '$j' } },
        ]);
      }
      const backfilled = makeEvent({ id: '$old', depth: 2, prev: ['$c'] });
      await store.rooms.persistEvents([
        { event: backfilled, stateBefore: { afterEvent: '$c' }, backfilled: true },
      ]);

      const everything = await store.rooms.timeline(ROOM, { dir: 'f', limit: 100 });
      const reference = [...everything.events]
        .sort((x, y) => x.depth - y.depth || (x.stream as number) - (y.stream as number))
        .map((e) => e.event.event_id);
      expect(reference).toEqual(['$c', '$old', '$j', '$a3', '$b3', '$b4', '$a4', '$a5', '$a6']);
      const positions = everything.events
        .map((e) => ({ id: e.event.event_id, token: { depth: e.depth, stream: e.stream as number } }))
        .sort((x, y) => reference.indexOf(x.id) - reference.indexOf(y.id));

      expect(await walkTopo(store, ROOM, 'f', 100)).toEqual(reference);
      expect(await walkTopo(store, ROOM, 'b', 100)).toEqual([...reference].reverse());
      for (const [i, { token }] of positions.entries()) {
        // A token is the place after its event.
        expect(await walkTopo(store, ROOM, 'f', 2, token)).toEqual(reference.slice(i + 1));
        expect(await walkTopo(store, ROOM, 'b', 2, token)).toEqual(reference.slice(0, i + 1).reverse());
        const page = await store.rooms.messages(ROOM, { dir: 'b', from: token, limit: 3 });
        expect(ids(page.events)).toEqual(reference.slice(Math.max(0, i - 2), i + 1).reverse());
      }
      const bounded = await store.rooms.messages(ROOM, {
        dir: 'f',
        from: positions[1]?.token,
        to: positions[5]?.token,
        limit: 100,
      });
      expect(ids(bounded.events)).toEqual(reference.slice(2, 6));
    });

    it('gives backfilled events negative positions that /sync never sees as new', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 2);
      const before = await store.positions();
      const old = makeEvent({ id: '$older', depth: 1, prev: [] });
      const [result] = await store.rooms.persistEvents([
        { event: old, stateBefore: { state: new Map() }, backfilled: true },
      ]);
      expect(result?.stream).toBe(-1);
      expect(await store.positions()).toEqual(before);
      expect(await store.rooms.roomsWithEvents(0, before.events)).toEqual([ROOM]);
      expect(ids((await store.rooms.timeline(ROOM, { dir: 'f', from: 0, limit: 10 })).events)).not.toContain(
        '$older',
      );
      expect(ids((await store.rooms.messages(ROOM, { dir: 'f', limit: 10 })).events)[0]).toBe('$older');
      // Backfill never moves the room's extremities or current state.
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).not.toContain('$older');
    });
  });

  describe('forward extremities and the DAG', () => {
    it('follows a linear room, a fork and a merge', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const head = room.head as string;
      expect(await store.rooms.forwardExtremities(ROOM)).toEqual([{ eventId: head, depth: 3, stream: 3 }]);
      await store.rooms.persistEvents([
        { event: makeEvent({ id: '$x', depth: 4, prev: [head] }), stateBefore: { afterEvent: head } },
        { event: makeEvent({ id: '$y', depth: 4, prev: [head] }), stateBefore: { afterEvent: head } },
      ]);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId).sort()).toEqual(['$x', '$y']);
      expect((await store.rooms.childrenOf(head)).sort()).toEqual(['$x', '$y']);
      await store.rooms.persistEvents([
        { event: makeEvent({ id: '$z', depth: 5, prev: ['$x', '$y'] }), stateBefore: { afterEvent: '$x' } },
      ]);
      expect(await store.rooms.forwardExtremities(ROOM)).toEqual([{ eventId: '$z', depth: 5, stream: 6 }]);
    });

    it('a rejoin through another server ends the branches this server had: it alone is the extremity', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const head = room.head as string;
      // The room went on elsewhere ($elsewhere is not here); the rejoin names it, with the
      // state the resident server gave, and replaces the extremities.
      const state = await store.rooms.currentState(ROOM);
      await store.rooms.persistEvents([
        {
          event: makeEvent({
            id: '$rejoin',
            depth: 9,
            prev: ['$elsewhere'],
            type: 'm.room.member',
            stateKey: BOB,
            sender: BOB,
            content: { membership: 'join' },
          }),
          stateBefore: { state },
          replacesExtremities: true,
        },
      ]);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$rejoin']);
      expect((await store.rooms.childrenOf(head)).length).toBe(0);
      // The event the rejoin names is still awaited: when it comes it is no extremity.
      await store.rooms.persistEvents([
        { event: makeEvent({ id: '$elsewhere', depth: 8, prev: [head] }), stateBefore: { afterEvent: head } },
      ]);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$rejoin']);
    });

    it('keeps a partial-state join partial until its full state is merged into the join, later events and the current state', async () => {
      const { store } = await stores.fresh();
      // The resident's room: create, Alice's join, Carol's join (omitted from partial state).
      const room = new LinearRoom();
      const create = room.create();
      const aliceJoin = room.member(ALICE, 'join');
      const carol = '@carol:hearth.test';
      const carolJoin = room.member(carol, 'join');
      const createKey = stateKey('m.room.create', '');
      const aliceKey = stateKey('m.room.member', ALICE);
      const carolKey = stateKey('m.room.member', carol);
      // Known here as outliers; the partial state before Bob's join lacks Carol.
      await store.rooms.persistEvents(
        [create, aliceJoin, carolJoin].map(({ event }) => ({ event, outlier: true })),
      );
      const partial = new Map<StateKey, string>([
        [createKey, create.event.event_id],
        [aliceKey, aliceJoin.event.event_id],
      ]);
      const join = room.member(BOB, 'join');
      await store.rooms.persistEvents([
        {
          event: join.event,
          stateBefore: { state: partial },
          currentState: new Map([...partial, [stateKey('m.room.member', BOB), join.event.event_id]]),
          replacesExtremities: true,
          partialState: { servers: ['remote.test', 'other.test'] },
        },
      ]);
      const message = room.message('while partial');
      await store.rooms.persistEvents([message]);
      expect(await store.rooms.partialStateRooms()).toEqual([
        { roomId: ROOM, joinEventId: join.event.event_id, servers: ['remote.test', 'other.test'] },
      ]);
      expect(await store.rooms.membership(ROOM, carol)).toBeNull();
      const before = (await store.positions()).partialState;

      const full = new Map([...partial, [carolKey, carolJoin.event.event_id]]);
      const position = await store.rooms.fillPartialState(ROOM, full);
      expect(position).toBe(before + 1);
      expect((await store.positions()).partialState).toBe(position);
      expect(await store.rooms.partialStateRooms()).toEqual([]);
      expect(await store.rooms.roomsFilledSince(before, position as number)).toEqual([ROOM]);
      expect(await store.rooms.roomsFilledSince(position as number, position as number)).toEqual([]);
      // Carol is in the state before the join, after it, after the message and now.
      expect((await store.rooms.stateAt(join.event.event_id, 'before'))?.get(carolKey)).toBe(
        carolJoin.event.event_id,
      );
      expect((await store.rooms.stateAt(message.event.event_id, 'after'))?.get(carolKey)).toBe(
        carolJoin.event.event_id,
      );
      expect((await store.rooms.currentState(ROOM)).get(carolKey)).toBe(carolJoin.event.event_id);
      expect((await store.rooms.membership(ROOM, carol))?.membership).toBe('join');
      // What the join itself changed stays; an event after the fill builds on the full state.
      expect(
        (await store.rooms.stateAt(join.event.event_id, 'after'))?.get(stateKey('m.room.member', BOB)),
      ).toBe(join.event.event_id);
      const after = room.message('after the fill');
      await store.rooms.persistEvents([after]);
      expect((await store.rooms.stateAt(after.event.event_id, 'after'))?.get(carolKey)).toBe(
        carolJoin.event.event_id,
      );
      // A room filled, or never partial, is not filled again.
      expect(await store.rooms.fillPartialState(ROOM, full)).toBeNull();
      expect(await store.rooms.fillPartialState('!other:hearth.test', full)).toBeNull();
    });

    it('does not make an extremity of an event whose child arrived first', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const head = room.head as string;
      await store.rooms.persistEvents([
        {
          event: makeEvent({ id: '$child', depth: 4, prev: ['$parent'] }),
          stateBefore: { afterEvent: head },
        },
      ]);
      await store.rooms.persistEvents([
        { event: makeEvent({ id: '$parent', depth: 3, prev: [head] }), stateBefore: { afterEvent: head } },
      ]);
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$child']);
    });

    it('keeps rejected, soft-failed and outlier events by ID only: no timeline place, no extremity', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const head = room.head as string;
      const results = await store.rooms.persistEvents([
        { event: makeEvent({ id: '$rejected', depth: 4, prev: [head] }), rejected: 'auth: not allowed' },
        {
          event: makeEvent({ id: '$soft', depth: 4, prev: [head] }),
          stateBefore: { afterEvent: head },
          softFailed: true,
        },
        { event: makeEvent({ id: '$outlier', depth: 2, prev: [] }), outlier: true },
      ]);
      expect(results.map((r) => r.stream)).toEqual([null, null, null]);
      expect(await store.rooms.getEvent('$rejected')).toMatchObject({
        rejected: 'auth: not allowed',
        stream: null,
        outlier: false,
      });
      expect(await store.rooms.getEvent('$soft')).toMatchObject({ softFailed: true, stream: null });
      expect(await store.rooms.getEvent('$outlier')).toMatchObject({ outlier: true, stream: null });
      expect(await store.rooms.stateAt('$outlier', 'after')).toBeNull();
      expect(await store.rooms.forwardExtremities(ROOM)).toEqual([{ eventId: head, depth: 3, stream: 3 }]);
      const timeline = ids((await store.rooms.timeline(ROOM, { dir: 'f', limit: 100 })).events);
      const topo = ids((await store.rooms.messages(ROOM, { dir: 'f', limit: 100 })).events);
      for (const id of ['$rejected', '$soft', '$outlier']) {
        expect(timeline).not.toContain(id);
        expect(topo).not.toContain(id);
      }
      expect((await store.positions()).events).toBe(3);
    });

    it('skips events already stored and promotes an outlier into the timeline', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const head = room.head as string;
      const again = await store.rooms.persistEvents([
        { event: makeEvent({ id: head, depth: 3, prev: [] }), stateBefore: { afterEvent: head } },
      ]);
      expect(again).toEqual([{ eventId: head, stream: 3, existed: true }]);
      const late = makeEvent({ id: '$late', depth: 4, prev: [head] });
      await store.rooms.persistEvents([{ event: late, outlier: true }]);
      const [promoted] = await store.rooms.persistEvents([
        { event: late, stateBefore: { afterEvent: head } },
      ]);
      expect(promoted).toEqual({ eventId: '$late', stream: 4, existed: false });
      expect(await store.rooms.getEvent('$late')).toMatchObject({ outlier: false, stream: 4 });
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId)).toEqual(['$late']);
      expect((await store.positions()).events).toBe(4);
    });
  });

  describe('state', () => {
    it('gives the state before and after every event, across many state changes', async () => {
      const { store } = await stores.fresh();
      const room = new LinearRoom();
      const expected = new Map<string, { before: Map<StateKey, string>; after: Map<StateKey, string> }>();
      let state = new Map<StateKey, string>();
      const batch = [room.create(), room.member(ALICE, 'join')];
      for (let i = 0; i < 150; i++) {
        batch.push(
          i % 5 === 4
            ? room.message()
            : room.next({ type: 'm.room.topic', stateKey: `k${i % 7}`, content: { topic: `t${i}` } }),
        );
      }
      for (const input of batch) {
        const before = new Map(state);
        if (input.event.state_key !== undefined)
          state.set(stateKey(input.event.type, input.event.state_key), input.event.event_id);
        expected.set(input.event.event_id, { before, after: new Map(state) });
      }
      // In several transactions, so later events take their state from earlier commits.
      for (let i = 0; i < batch.length; i += 40) await store.rooms.persistEvents(batch.slice(i, i + 40));
      for (const [eventId, { before, after }] of expected) {
        expect(await store.rooms.stateAt(eventId, 'before')).toEqual(before);
        expect(await store.rooms.stateAt(eventId, 'after')).toEqual(after);
      }
      expect(await store.rooms.currentState(ROOM)).toEqual(state);
      state = await store.rooms.stateAtStream(ROOM, 10);
      expect(state).toEqual(expected.get([...expected.keys()][9] as string)?.after);
      expect(await store.rooms.stateAtStream(ROOM, 0)).toEqual(new Map());
      expect(await store.rooms.stateAt('$unknown', 'after')).toBeNull();
    });

    it('stores a resolved state given as a map, removals included', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const head = room.head as string;
      const resolved = new Map<StateKey, string>([
        [stateKey('m.room.create', ''), '$room-1'],
        [stateKey('m.room.power_levels', ''), '$pl'],
      ]);
      await store.rooms.persistEvents([
        {
          event: makeEvent({ id: '$pl', type: 'm.room.power_levels', stateKey: '', depth: 3, prev: [head] }),
          stateBefore: { afterEvent: head },
        },
        {
          event: makeEvent({ id: '$merge', depth: 4, prev: ['$pl'] }),
          stateBefore: { state: resolved },
          currentState: resolved,
        },
      ]);
      expect(await store.rooms.stateAt('$merge', 'before')).toEqual(resolved);
      expect(await store.rooms.stateAt('$merge', 'after')).toEqual(resolved);
      // The explicit current state replaced the old one: the join is gone, the membership row says so too.
      expect(await store.rooms.currentState(ROOM)).toEqual(resolved);
      expect(await store.rooms.currentStateEvent(ROOM, 'm.room.member', ALICE)).toBeNull();
      expect(await store.rooms.membership(ROOM, ALICE)).toBeNull();
    });

    it('fails with NOT_FOUND when the state is taken after an unknown event', async () => {
      const { store } = await stores.fresh();
      await expect(
        store.rooms.persistEvents([
          { event: makeEvent({ id: '$e', depth: 1 }), stateBefore: { afterEvent: '$nowhere' } },
        ]),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('reads current state all, by type, one key, and as events', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      await store.rooms.persistEvents([
        room.next({ type: 'm.room.name', stateKey: '', content: { name: 'Hearth' } }),
        room.member(BOB, 'invite', ALICE),
      ]);
      const all = await store.rooms.currentState(ROOM);
      expect([...all.keys()].sort()).toEqual(
        [
          stateKey('m.room.create', ''),
          stateKey('m.room.member', ALICE),
          stateKey('m.room.member', BOB),
          stateKey('m.room.name', ''),
        ].sort(),
      );
      expect([...(await store.rooms.currentState(ROOM, 'm.room.member')).keys()].sort()).toEqual(
        [stateKey('m.room.member', ALICE), stateKey('m.room.member', BOB)].sort(),
      );
      expect((await store.rooms.currentStateEvent(ROOM, 'm.room.name', ''))?.event.content).toEqual({
        name: 'Hearth',
      });
      expect(await store.rooms.currentStateEvent(ROOM, 'm.room.topic', '')).toBeNull();
      const events = await store.rooms.currentStateEvents(ROOM);
      expect(events.map((e) => e.event.event_id).sort()).toEqual([...all.values()].sort());
      const members = await store.rooms.currentStateEvents(ROOM, ['m.room.member', 'm.room.name']);
      expect(members).toHaveLength(3);
      const some = await store.rooms.currentStateEventsAt(ROOM, [
        ['m.room.name', ''],
        ['m.room.topic', ''],
        ['m.room.member', BOB],
      ]);
      expect(some.map((e) => [e.event.type, e.event.state_key]).sort()).toEqual([
        ['m.room.member', BOB],
        ['m.room.name', ''],
      ]);
      expect(await store.rooms.currentStateEventsAt(ROOM, [])).toEqual([]);
      expect(await store.rooms.currentStateEventsAt('!elsewhere:hearth.test', [['m.room.name', '']])).toEqual(
        [],
      );
    });
  });

  describe('membership', () => {
    it('tracks each user through join, invite, leave and ban, with counts and forget', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const carol = '@carol:hearth.test';
      // /sync's snapshot may keep a user's memberships between snapshots: after every change
      // it still says what the store holds.
      const snapshotsAgree = async () => {
        for (const user of [ALICE, BOB, carol])
          expect((await store.syncSnapshot(user, { deviceId: null, unreadRooms: [] })).memberships).toEqual(
            await store.rooms.roomsForUser(user),
          );
      };
      await snapshotsAgree();
      await store.rooms.persistEvents([room.member(BOB, 'invite', ALICE), room.member(carol, 'join')]);
      await snapshotsAgree();
      expect(await store.rooms.membership(ROOM, BOB)).toMatchObject({
        membership: 'invite',
        stream: 3,
        forgotten: false,
      });
      expect(await store.rooms.countMembers(ROOM, 'join')).toBe(2);
      expect(await store.rooms.countMembers(ROOM, 'invite')).toBe(1);
      await store.rooms.persistEvents([room.member(BOB, 'join'), room.member(carol, 'leave')]);
      await snapshotsAgree();
      expect((await store.rooms.members(ROOM, 'join')).map((m) => m.userId).sort()).toEqual(
        [ALICE, BOB].sort(),
      );
      expect((await store.rooms.members(ROOM)).map((m) => [m.userId, m.membership])).toEqual(
        [
          [ALICE, 'join'],
          [BOB, 'join'],
          [carol, 'leave'],
        ].sort(),
      );
      expect(await store.rooms.roomsForUser(carol)).toMatchObject([
        { roomId: ROOM, membership: 'leave', stream: 6 },
      ]);
      expect(await store.rooms.roomsForUser(carol, 'join')).toEqual([]);
      await store.rooms.forgetRoom(ROOM, carol);
      await snapshotsAgree();
      expect((await store.rooms.membership(ROOM, carol))?.forgotten).toBe(true);
      await store.rooms.persistEvents([room.member(carol, 'ban', ALICE)]);
      await snapshotsAgree();
      expect(await store.rooms.membership(ROOM, carol)).toMatchObject({
        membership: 'ban',
        forgotten: false,
      });
      expect(await store.rooms.membership(ROOM, '@nobody:hearth.test')).toBeNull();
    });

    it('lists a user’s rooms across rooms, and out-of-band invites to rooms the server is not in', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 0, '!one:hearth.test');
      await seedRoom(store, 0, '!two:hearth.test');
      const invite = makeEvent({
        id: '$invite',
        room: '!remote:remote.test',
        type: 'm.room.member',
        stateKey: ALICE,
        sender: BOB,
        content: { membership: 'invite' },
        depth: 9,
        prev: ['$unknown'],
      });
      const [stored] = await store.rooms.persistEvents([{ event: invite, outOfBandMembership: true }]);
      expect(stored?.stream).toBe(5);
      const rooms = await store.rooms.roomsForUser(ALICE);
      expect(rooms.map((r) => [r.roomId, r.membership]).sort()).toEqual([
        ['!one:hearth.test', 'join'],
        ['!remote:remote.test', 'invite'],
        ['!two:hearth.test', 'join'],
      ]);
      expect((await store.rooms.roomsForUser(ALICE, 'invite')).map((r) => r.eventId)).toEqual(['$invite']);
      expect(await store.rooms.getEvent('$invite')).toMatchObject({ outlier: true, stream: 5 });
      expect(await store.rooms.forwardExtremities('!remote:remote.test')).toEqual([]);
    });
  });

  describe('redaction, transactions, relations', () => {
    it('replaces the redacted event’s content for good, in the same transaction as the redaction', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const secret = room.message('a secret');
      const reaction = room.next({
        type: 'm.reaction',
        content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$x', key: '👍' } },
      });
      await store.rooms.persistEvents([secret, reaction]);
      expect(await store.rooms.relations('$x', { dir: 'f', limit: 10 })).toHaveLength(1);
      const redactedForm = { ...secret.event, content: {} };
      const redaction = room.next({ type: 'm.room.redaction', content: { redacts: secret.event.event_id } });
      const redactReaction = room.next({
        type: 'm.room.redaction',
        content: { redacts: reaction.event.event_id },
      });
      await store.rooms.persistEvents([
        { ...redaction, redaction: { eventId: secret.event.event_id, redacted: redactedForm } },
        {
          ...redactReaction,
          redaction: { eventId: reaction.event.event_id, redacted: { ...reaction.event, content: {} } },
        },
      ]);
      const after = await store.rooms.getEvent(secret.event.event_id);
      expect(after?.event.content).toEqual({});
      expect(after?.redactedBy).toBe(redaction.event.event_id);
      expect(JSON.stringify(await store.rooms.timeline(ROOM, { dir: 'f', limit: 100 }))).not.toContain(
        'a secret',
      );
      expect(await store.rooms.relations('$x', { dir: 'f', limit: 10 })).toEqual([]);
      // Standalone, for a redaction that arrived before its target.
      const late = room.message('late secret');
      await store.rooms.persistEvents([late]);
      expect(await store.rooms.redactEvent(late.event.event_id, { ...late.event, content: {} }, '$r2')).toBe(
        true,
      );
      expect((await store.rooms.getEvent(late.event.event_id))?.event.content).toEqual({});
      expect(await store.rooms.redactEvent('$absent', { ...late.event, event_id: '$absent' }, '$r3')).toBe(
        false,
      );
    });

    it('keeps a redaction that came before its target, and stores the target redacted when it comes', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const target = room.message('said and taken back');
      const redaction = room.next({ type: 'm.room.redaction', content: { redacts: target.event.event_id } });
      // Placed after what the store has (the target is what it lacks).
      await store.rooms.persistEvents([
        { ...redaction, stateBefore: target.stateBefore, redactsLater: target.event.event_id },
      ]);
      expect(await store.rooms.pendingRedactions(target.event.event_id)).toEqual([redaction.event.event_id]);
      expect(await store.rooms.pendingRedactions('$other')).toEqual([]);
      // Read with events, for a batch: the awaited target's redaction, none for the others.
      const together = await store.rooms.getEventsAndPendingRedactions(
        [redaction.event.event_id, target.event.event_id, '$other'],
        [target.event.event_id, '$other', redaction.event.event_id],
      );
      expect([...together.events.keys()]).toEqual([redaction.event.event_id]);
      expect(together.events.get(redaction.event.event_id)?.event).toEqual(redaction.event);
      expect(together.pendingRedactions).toEqual(
        new Map([[target.event.event_id, [redaction.event.event_id]]]),
      );
      await store.rooms.persistEvents([
        { ...target, event: { ...target.event, content: {} }, redactedBy: redaction.event.event_id },
      ]);
      const stored = await store.rooms.getEvent(target.event.event_id);
      expect(stored?.event.content).toEqual({});
      expect(stored?.redactedBy).toBe(redaction.event.event_id);
      expect(await store.rooms.pendingRedactions(target.event.event_id)).toEqual([]);
    });

    it('finds the event sent under a client transaction ID, and tags it for the sending device', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const sent = room.message();
      await store.rooms.persistEvents([{ ...sent, txn: { userId: ALICE, deviceId: 'PHONE', txnId: 't1' } }]);
      expect(await store.rooms.eventForTransaction(ALICE, 'PHONE', 't1')).toBe(sent.event.event_id);
      expect(await store.rooms.eventForTransaction(ALICE, 'LAPTOP', 't1')).toBeNull();
      expect((await store.rooms.getEvent(sent.event.event_id))?.txn).toEqual({
        deviceId: 'PHONE',
        txnId: 't1',
      });
    });

    it('lists relations by type, paginated in stream order', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const root = room.head as string;
      const batch = [];
      for (let i = 0; i < 6; i++) {
        const relType = i % 2 === 0 ? 'm.thread' : 'm.annotation';
        batch.push(
          room.next({ content: { body: `r${i}`, 'm.relates_to': { rel_type: relType, event_id: root } } }),
        );
      }
      await store.rooms.persistEvents(batch);
      const all = await store.rooms.relations(root, { dir: 'f', limit: 10 });
      expect(all.map((r) => r.relType)).toEqual([
        'm.thread',
        'm.annotation',
        'm.thread',
        'm.annotation',
        'm.thread',
        'm.annotation',
      ]);
      const threads = await store.rooms.relations(root, { relType: 'm.thread', dir: 'b', limit: 2 });
      expect(threads.map((r) => r.eventId)).toEqual([batch[4]?.event.event_id, batch[2]?.event.event_id]);
      const rest = await store.rooms.relations(root, {
        relType: 'm.thread',
        dir: 'b',
        limit: 2,
        from: (threads[1]?.stream as number) - 1,
      });
      expect(rest.map((r) => r.eventId)).toEqual([batch[0]?.event.event_id]);
    });
  });

  describe('rooms, directory, aliases', () => {
    it('records the room version from the create event, v12 room IDs included', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 0);
      expect(await store.rooms.getRoom(ROOM)).toEqual({
        roomId: ROOM,
        roomVersion: '11',
        creator: ALICE,
        published: false,
      });
      const v12 = makeEvent({
        id: '$abc123',
        type: 'm.room.create',
        stateKey: '',
        content: { room_version: '12' },
        depth: 1,
      });
      delete v12.room_id;
      await store.rooms.persistEvents([{ event: v12, stateBefore: { state: new Map() } }]);
      expect(await store.rooms.getRoom('!abc123')).toMatchObject({ roomVersion: '12' });
      expect((await store.rooms.getEvent('$abc123'))?.roomId).toBe('!abc123');
      expect(await store.rooms.getRoom('!nope:hearth.test')).toBeNull();
    });

    it('publishes rooms to the directory and unpublishes them', async () => {
      const { store } = await stores.fresh();
      await seedRoom(store, 0, '!a:hearth.test');
      await seedRoom(store, 0, '!b:hearth.test');
      await store.rooms.setPublished('!a:hearth.test', true);
      await store.rooms.setPublished('!b:hearth.test', true);
      expect((await store.rooms.publishedRooms()).sort()).toEqual(['!a:hearth.test', '!b:hearth.test']);
      await store.rooms.setPublished('!a:hearth.test', false);
      expect(await store.rooms.publishedRooms()).toEqual(['!b:hearth.test']);
      await expect(store.rooms.setPublished('!none:hearth.test', true)).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it('creates, resolves, lists and deletes aliases; a taken alias is a CONFLICT', async () => {
      const { store } = await stores.fresh();
      const alias = { alias: '#hearth:hearth.test', roomId: ROOM, servers: ['hearth.test'], creator: ALICE };
      await store.rooms.createAlias(alias);
      await store.rooms.createAlias({ ...alias, alias: '#home:hearth.test' });
      expect(await store.rooms.getAlias('#hearth:hearth.test')).toEqual(alias);
      const error = await store.rooms.createAlias({ ...alias, roomId: '!other:hearth.test' }).catch((e) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error.code).toBe('CONFLICT');
      expect((await store.rooms.getAlias('#hearth:hearth.test'))?.roomId).toBe(ROOM);
      expect((await store.rooms.aliasesOf(ROOM)).map((a) => a.alias).sort()).toEqual([
        '#hearth:hearth.test',
        '#home:hearth.test',
      ]);
      expect(await store.rooms.deleteAlias('#hearth:hearth.test')).toBe(true);
      expect(await store.rooms.deleteAlias('#hearth:hearth.test')).toBe(false);
      expect(await store.rooms.getAlias('#hearth:hearth.test')).toBeNull();
    });
  });

  describe('outbox and push actions written with the event', () => {
    it('queues one outbox row per destination in order, and acknowledges by sequence', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const one = room.message();
      const two = room.message();
      await store.rooms.persistEvents([
        { ...one, destinations: ['remote.test', 'other.test', 'remote.test'] },
      ]);
      await store.federation.enqueueEdu(['remote.test'], { edu_type: 'm.typing', content: { typing: true } });
      await store.rooms.persistEvents([{ ...two, destinations: ['remote.test'] }]);
      const queue = await store.federation.outbox('remote.test', 10);
      expect(queue.map((item) => item.kind)).toEqual(['pdu', 'edu', 'pdu']);
      expect(queue[0]).toMatchObject({ kind: 'pdu', eventId: one.event.event_id });
      expect(queue[1]).toMatchObject({ kind: 'edu', edu: { edu_type: 'm.typing' } });
      expect((await store.federation.destinationsWithOutbox()).sort()).toEqual(['other.test', 'remote.test']);
      await store.federation.ackOutbox('remote.test', queue[1]?.seq as number);
      expect(
        (await store.federation.outbox('remote.test', 10)).map((i) => (i.kind === 'pdu' ? i.eventId : 'edu')),
      ).toEqual([two.event.event_id]);
      await store.federation.ackOutbox('other.test', Number.MAX_SAFE_INTEGER);
      expect(await store.federation.destinationsWithOutbox()).toEqual(['remote.test']);
    });

    it('counts notifications and highlights after a position, and clears them', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      for (let i = 0; i < 5; i++) {
        await store.rooms.persistEvents([
          { ...room.message(), notify: [{ userId: BOB, highlight: i === 3 }] },
        ]);
      }
      expect(await store.receipts.notificationCounts(BOB, ROOM, 0)).toEqual({
        notifications: 5,
        highlights: 1,
      });
      expect(await store.receipts.notificationCounts(BOB, ROOM, 5)).toEqual({
        notifications: 2,
        highlights: 1,
      });
      expect(await store.receipts.notificationCounts(ALICE, ROOM, 0)).toEqual({
        notifications: 0,
        highlights: 0,
      });
      // The counters say the same without reading the rows; a receipt at 6 restarts them.
      const counts = async (user = BOB) => (await store.receipts.unreadCounts(user, [ROOM])).get(ROOM);
      expect(await counts()).toEqual({ main: { notifications: 5, highlights: 1 }, threads: new Map() });
      expect(await counts(ALICE)).toEqual({ main: { notifications: 0, highlights: 0 }, threads: new Map() });
      await store.receipts.markRead(BOB, ROOM, 6);
      expect(await counts()).toEqual({ main: { notifications: 1, highlights: 0 }, threads: new Map() });
      // Rows stay (the /notifications list shows read ones too); an older receipt moves nothing.
      expect(await store.receipts.notificationCounts(BOB, ROOM, 0)).toMatchObject({ notifications: 5 });
      await store.receipts.markRead(BOB, ROOM, 4);
      expect(await counts()).toEqual({ main: { notifications: 1, highlights: 0 }, threads: new Map() });
      // /sync's snapshot reads the same counters with the memberships, in one transaction.
      for (const user of [ALICE, BOB]) {
        const snapshot = await store.syncSnapshot(user, { deviceId: null, unreadRooms: [ROOM] });
        expect(snapshot).toEqual({
          memberships: await store.rooms.roomsForUser(user),
          unread: await store.receipts.unreadCounts(user, [ROOM]),
        });
      }
      expect((await store.syncSnapshot(ALICE, { deviceId: null, unreadRooms: [] })).memberships).toEqual(
        await store.rooms.roomsForUser(ALICE),
      );
    });

    it('keeps counts per thread: a threaded receipt restarts its thread, an unthreaded one all', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const root = room.head as string;
      const inThread = () => ({
        ...room.next({
          content: {
            msgtype: 'm.text',
            body: 'reply',
            'm.relates_to': { rel_type: 'm.thread', event_id: root },
          },
        }),
        notify: [{ userId: BOB, highlight: false }],
      });
      const persisted = await store.rooms.persistEvents([
        { ...room.message(), notify: [{ userId: BOB, highlight: true }] },
        inThread(),
        inThread(),
      ]);
      const counts = async () => (await store.receipts.unreadCounts(BOB, [ROOM])).get(ROOM);
      expect(await counts()).toEqual({
        main: { notifications: 1, highlights: 1 },
        threads: new Map([[root, { notifications: 2, highlights: 0 }]]),
      });
      // A receipt in the thread at its first reply leaves the second; the main timeline keeps its own.
      await store.receipts.markRead(BOB, ROOM, persisted[1]?.stream as number, root);
      expect(await counts()).toEqual({
        main: { notifications: 1, highlights: 1 },
        threads: new Map([[root, { notifications: 1, highlights: 0 }]]),
      });
      await store.receipts.markRead(BOB, ROOM, persisted[2]?.stream as number);
      expect(await counts()).toEqual({ main: { notifications: 0, highlights: 0 }, threads: new Map() });
    });
  });

  describe('concurrent writers to one room', () => {
    it('serialises them: positions unique and gapless, every fork an extremity', async () => {
      const { store } = await stores.fresh();
      const room = await seedRoom(store, 0);
      const head = room.head as string;
      const writers = [...Array(40).keys()].map((i) =>
        store.rooms.persistEvents([
          {
            event: makeEvent({
              id: `$fork${i}`,
              depth: 3,
              prev: [head],
              ...(i % 4 === 0 ? { type: 'm.room.topic', stateKey: '', content: { topic: `${i}` } } : {}),
            }),
            stateBefore: { afterEvent: head },
          },
        ]),
      );
      const receipts = [...Array(10).keys()].map((i) =>
        store.receipts.putReceipt({
          roomId: ROOM,
          receiptType: 'm.read',
          userId: `@u${i}:hearth.test`,
          eventId: head,
          data: {},
        }),
      );
      const results = (await Promise.all(writers)).flat();
      const streams = results.map((r) => r.stream as number).sort((a, b) => a - b);
      expect(streams).toEqual([...Array(40).keys()].map((i) => i + 3));
      expect((await Promise.all(receipts)).sort((a, b) => a - b)).toEqual(
        [...Array(10).keys()].map((i) => i + 1),
      );
      expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId).sort()).toEqual(
        results.map((r) => r.eventId).sort(),
      );
      // The current topic is the one written last in stream order.
      const topics = results
        .filter((r) => Number(r.eventId.slice(5)) % 4 === 0)
        .sort((a, b) => (a.stream as number) - (b.stream as number));
      expect((await store.rooms.currentStateEvent(ROOM, 'm.room.topic', ''))?.event.event_id).toBe(
        topics[topics.length - 1]?.eventId,
      );
    });

    it('ends with the DAG’s leaves as extremities whatever the arrival order', async () => {
      const next = random(7);
      for (let round = 0; round < 3; round++) {
        const { store } = await stores.fresh();
        const room = await seedRoom(store, 0);
        const head = room.head as string;
        const nodes: { id: string; prev: string[]; depth: number }[] = [];
        for (let i = 0; i < 30; i++) {
          const pool = [head, ...nodes.map((n) => n.id)];
          const prev = [
            ...new Set([
              pool[Math.floor(next() * pool.length)] as string,
              pool[Math.floor(next() * pool.length)] as string,
            ]),
          ];
          const depth = Math.max(...prev.map((p) => nodes.find((n) => n.id === p)?.depth ?? 2)) + 1;
          nodes.push({ id: `$n${round}-${i}`, prev, depth });
        }
        const referenced = new Set(nodes.flatMap((n) => n.prev));
        const leaves = nodes.filter((n) => !referenced.has(n.id)).map((n) => n.id);
        await Promise.all(
          shuffle(nodes, next).map((n) =>
            store.rooms.persistEvents([
              {
                event: makeEvent({ id: n.id, depth: n.depth, prev: n.prev }),
                stateBefore: { afterEvent: head },
              },
            ]),
          ),
        );
        expect((await store.rooms.forwardExtremities(ROOM)).map((e) => e.eventId).sort()).toEqual(
          leaves.sort(),
        );
        const streams = (await store.rooms.timeline(ROOM, { dir: 'f', limit: 100 })).events.map(
          (e) => e.stream,
        );
        expect(streams).toEqual([...Array(32).keys()].map((i) => i + 1));
      }
    });
  });
}
