/**
 * Conformance: all-or-nothing writes (a failure injected at every write step of an
 * operation leaves no trace), reopening, closing, and schema versions (migration from every
 * earlier version with data intact; a newer version refused untouched).
 */
import { describe, expect, it } from 'vitest';
import { createStore } from '../create-store.ts';
import type { Row } from '../engine.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import type { Store } from '../store.ts';
import { StoreError } from '../store.ts';
import v1Fixture from './fixtures/v1.json' with { type: 'json' };
import {
  ALICE,
  BOB,
  type ConformanceTarget,
  dump,
  faultyEngine,
  InjectedFault,
  LinearRoom,
  type Opened,
  ROOM,
  seedRoom,
  useStores,
} from './testing.ts';

/**
 * Runs `operation` once per write step with a failure injected at that step, and checks
 * each failed attempt left every table exactly as it was; then runs it through.
 */
async function expectAllOrNothing(
  opened: Opened,
  operation: (store: Store) => Promise<unknown>,
): Promise<number> {
  const before = await dump(opened.engine);
  for (let failAt = 1; failAt <= 500; failAt++) {
    const error = await operation(createStore(faultyEngine(opened.engine, failAt))).then(
      () => null,
      (e: unknown) => e,
    );
    // It got through without reaching step `failAt`: it has `failAt - 1` steps, all now done.
    if (error === null) return failAt - 1;
    if (!(error instanceof InjectedFault))
      expect.unreachable(`expected the failure injected at write ${failAt}, got ${String(error)}`);
    expect(await dump(opened.engine)).toEqual(before);
  }
  throw new Error('the operation never completed');
}

export function lifecycleTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('all or nothing', () => {
    it('persisting a batch of events: a failure at any step leaves no event, state, position, extremity or outbox row', async () => {
      const opened = await stores.fresh();
      const room = await seedRoom(opened.store, 2);
      const target = room.message('to redact');
      await opened.store.rooms.persistEvents([target]);
      const batch = [
        { ...room.member(BOB, 'invite', ALICE), destinations: ['remote.test'] },
        {
          ...room.message(),
          txn: { userId: ALICE, deviceId: 'D', txnId: 't' },
          notify: [{ userId: BOB, highlight: true }],
        },
        room.next({ type: 'm.room.topic', stateKey: '', content: { topic: 'new' } }),
        {
          ...room.next({ type: 'm.room.redaction', content: { redacts: target.event.event_id } }),
          redaction: { eventId: target.event.event_id, redacted: { ...target.event, content: {} } },
        },
        room.next({
          content: {
            body: 'reply',
            'm.relates_to': { rel_type: 'm.thread', event_id: target.event.event_id },
          },
        }),
      ];
      const steps = await expectAllOrNothing(opened, (store) => store.rooms.persistEvents(batch));
      expect(steps).toBeGreaterThan(15);
      expect((await opened.store.rooms.getEvent(target.event.event_id))?.redactedBy).toBe(
        batch[3]?.event.event_id,
      );
      expect((await opened.store.positions()).events).toBe(10);
    });

    it('a batch that fails midway on its own (unknown state source) leaves nothing', async () => {
      const { store, engine } = await stores.fresh();
      const room = await seedRoom(store, 1);
      const before = await dump(engine);
      const ok1 = room.message();
      const ok2 = { ...room.member(BOB, 'join'), destinations: ['remote.test'] };
      const bad = { event: room.message().event, stateBefore: { afterEvent: '$never-stored' } };
      await expect(store.rooms.persistEvents([ok1, ok2, bad])).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await dump(engine)).toEqual(before);
      expect(await store.rooms.getEvent(ok1.event.event_id)).toBeNull();
      expect(await store.federation.destinationsWithOutbox()).toEqual([]);
    });

    it('registering, deleting devices, claiming keys and backing up keys are each all or nothing', async () => {
      const opened = await stores.fresh();
      const { store } = opened;
      const session = { userId: ALICE, deviceId: 'A', accessToken: 'ta', refreshToken: 'ra', now: 1 };
      await expectAllOrNothing(opened, (s) =>
        s.accounts.createUser(
          { userId: ALICE, passwordHash: 'h', createdAt: 1, isGuest: false, userType: null },
          { profile: { displayname: 'A' }, session },
        ),
      );
      await store.e2ee.putDeviceKeys(ALICE, 'A', { device_id: 'A' });
      await store.e2ee.addOneTimeKeys(ALICE, 'A', [
        { algorithm: 'signed_curve25519', keyId: '1', key: 'k1' },
        { algorithm: 'signed_curve25519', keyId: '2', key: 'k2' },
      ]);
      await store.e2ee.putFallbackKey(ALICE, 'A', { algorithm: 'signed_curve25519', keyId: 'f', key: 'kf' });
      const claim = { userId: ALICE, deviceId: 'A', algorithm: 'signed_curve25519' };
      await expectAllOrNothing(opened, (s) => s.e2ee.claimKeys([claim, claim, claim]));
      expect(await store.e2ee.unusedFallbackKeyTypes(ALICE, 'A')).toEqual([]);
      const version = await store.e2ee.createBackupVersion(ALICE, 'alg', {});
      await expectAllOrNothing(opened, (s) =>
        s.e2ee.putBackupSessions(ALICE, version, [
          { roomId: ROOM, sessionId: 'a', data: {} },
          { roomId: ROOM, sessionId: 'b', data: {} },
        ]),
      );
      await store.e2ee.sendToDevice([{ userId: ALICE, deviceId: 'A', sender: BOB, type: 'x', content: {} }]);
      await expectAllOrNothing(opened, (s) => s.accounts.deleteDevices(ALICE, ['A']));
      expect(await store.accounts.getAccessToken('ta')).toBeNull();
    });
  });

  describe('lifetime', () => {
    it('finds everything again after close and reopen', async () => {
      const first = await stores.fresh();
      const { store } = first;
      const room = await seedRoom(store, 5);
      await store.rooms.persistEvents([
        { ...room.member(BOB, 'invite', ALICE), destinations: ['remote.test'] },
      ]);
      await store.accounts.createUser(
        { userId: ALICE, passwordHash: 'h', createdAt: 1, isGuest: false, userType: null },
        { session: { userId: ALICE, deviceId: 'A', accessToken: 'token', now: 1 } },
      );
      await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: ALICE,
        eventId: room.head as string,
        data: {},
      });
      await store.userData.setAccountData(ALICE, 'm.direct', {});
      await store.media.putMedia(
        {
          origin: 'hearth.test',
          mediaId: 'm',
          contentType: 'text/plain',
          uploadName: null,
          userId: ALICE,
          createdAt: 1,
        },
        new TextEncoder().encode('hello'),
      );
      await store.federation.putSecretOnce('signing_seed', new Uint8Array(32).fill(1));
      const before = await dump(first.engine);
      const positions = await store.positions();
      await store.close();

      const again = await stores.reopen(first.id);
      expect(await dump(again.engine)).toEqual(before);
      expect(await again.store.positions()).toEqual(positions);
      expect((await again.store.accounts.getAccessToken('token'))?.deviceId).toBe('A');
      expect((await again.store.rooms.timeline(ROOM, { dir: 'b', limit: 1 })).events[0]?.event.event_id).toBe(
        room.head,
      );
      const media = await again.store.media.getMedia('hearth.test', 'm');
      expect(await media?.data.text()).toBe('hello');
      // And it goes on where it stopped.
      const [next] = await again.store.rooms.persistEvents([room.message()]);
      expect(next?.stream).toBe(positions.events + 1);
    });

    it('refuses calls once closed', async () => {
      const { store } = await stores.fresh();
      await store.close();
      await expect(store.rooms.getEvent('$x')).rejects.toMatchObject({ name: 'StoreError', code: 'CLOSED' });
      await expect(store.userData.setAccountData(ALICE, 't', {})).rejects.toMatchObject({ code: 'CLOSED' });
    });
  });

  describe('schema versions', () => {
    it(`migrates a version-1 database to version ${SCHEMA_VERSION} with every row intact`, async () => {
      const id = stores.newId();
      const fixture = v1Fixture as unknown as { version: number; tables: Record<string, Row[]> };
      expect(fixture.version).toBe(1);
      await target.createAtVersion(id, 1, fixture.tables);
      const { store, engine } = await stores.reopen(id);
      const tables = await dump(engine);
      const sorted = (rows: Row[]) => rows.map((row) => JSON.stringify(row, Object.keys(row).sort())).sort();
      // Version 12 moved the edges and extremities onto the event rows, beside their index entries.
      const moved = new Set(['event_edges', 'forward_extremities']);
      const v12Fields = new Set(['prevs', 'awaits', 'terms', 'extremities']);
      const withoutV12 = (row: Row) =>
        Object.fromEntries(Object.entries(row).filter(([f]) => !v12Fields.has(f)));
      for (const [table, rows] of Object.entries(fixture.tables)) {
        if (moved.has(table)) {
          expect(tables[table] ?? [], table).toEqual([]);
          continue;
        }
        const found = tables[table] ?? [];
        expect(sorted(table === 'events' ? found.map(withoutV12) : found), table).toEqual(sorted(rows));
      }
      for (const edge of fixture.tables.event_edges ?? [])
        expect(await store.rooms.childrenOf(edge.prev_id as string)).toContain(edge.event_id);
      for (const extremity of fixture.tables.forward_extremities ?? [])
        expect(await store.rooms.forwardExtremities(extremity.room_id as string)).toContainEqual({
          eventId: extremity.event_id,
          depth: extremity.depth,
          stream: extremity.stream,
        });
      // Version 2 indexed relations from the events already stored.
      const relatesTo = (row: Row) =>
        (row.pdu as { content: { 'm.relates_to'?: { event_id: string } } }).content['m.relates_to'];
      const threaded = (fixture.tables.events ?? []).find((row) => relatesTo(row) !== undefined);
      if (!threaded) throw new Error('the fixture has no related event');
      const root = relatesTo(threaded)?.event_id as string;
      expect((await store.rooms.relations(root, { dir: 'f', limit: 10 })).map((r) => r.eventId)).toEqual([
        threaded.event_id,
      ]);
      // Version 6 indexed their words and threads.
      const found = await store.rooms.searchEvents({
        terms: ['thread'],
        roomIds: new Set([threaded.room_id as string]),
        limit: 10,
      });
      expect(found.hits.map((h) => h.eventId)).toEqual([threaded.event_id]);
      const threads = await store.rooms.threads(threaded.room_id as string, { limit: 10 });
      expect(threads.threads.map((t) => [t.rootId, t.latestEventId])).toEqual([[root, threaded.event_id]]);
      // The migrated store reads and writes as a new one would.
      const head = (await store.rooms.forwardExtremities('!fixture:hearth.test'))[0];
      expect(head).toBeDefined();
      expect((await store.accounts.getAccessToken('fixture-token'))?.userId).toBe('@fixture:hearth.test');
      const positions = await store.positions();
      const builder = new LinearRoom('!fixture:hearth.test');
      const [written] = await store.rooms.persistEvents([
        {
          event: {
            ...builder.message().event,
            event_id: '$after-migration',
            prev_events: [head?.eventId as string],
            depth: (head?.depth as number) + 1,
          },
          stateBefore: { afterEvent: head?.eventId as string },
        },
      ]);
      expect(written?.stream).toBe(positions.events + 1);
      await store.close();
      // Opening again finds it current: nothing to migrate, nothing lost.
      const again = await stores.reopen(id);
      expect((await again.store.rooms.getEvent('$after-migration'))?.stream).toBe(positions.events + 1);
    });

    it('refuses a database written by a newer Hearth with a clear error, and leaves it untouched', async () => {
      const id = stores.newId();
      await target.createNewer(id);
      const error = await target.openEngine(id).then(
        (engine) => {
          stores.track(engine);
          return null;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('SCHEMA_TOO_NEW');
      expect((error as StoreError).message).toMatch(
        new RegExp(`schema version ${SCHEMA_VERSION + 1}.*newer.*untouched`),
      );
      expect(await target.newerIntact(id)).toBe(true);
    });
  });
}
