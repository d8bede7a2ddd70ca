/** Conformance: application-service queue, stream cursors, reports, admin views of users and rooms. */
import { describe, expect, it } from 'vitest';
import { ALICE, BOB, type ConformanceTarget, useStores } from './testing.ts';

export function operatorTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('application-service queue', () => {
    it('queues per service in order, moves the cursor with the queue, acks up to a position', async () => {
      const { store } = await stores.fresh();
      expect(await store.operator.getCursor('appservices')).toBeNull();
      await store.operator.enqueueAppservice(
        [
          { asId: 'irc', kind: 'event', data: { n: 1 } },
          { asId: 'slack', kind: 'event', data: { n: 2 } },
          { asId: 'irc', kind: 'ephemeral', data: { n: 3 } },
        ],
        { name: 'appservices', position: 7 },
      );
      expect(await store.operator.getCursor('appservices')).toBe(7);
      const irc = await store.operator.appserviceQueue('irc', 10);
      expect(irc).toEqual([
        { seq: 1, kind: 'event', data: { n: 1 } },
        { seq: 2, kind: 'ephemeral', data: { n: 3 } },
      ]);
      expect(await store.operator.appserviceQueue('irc', 10, 1)).toHaveLength(1);
      await store.operator.setAppserviceTxn('irc', { txnId: 't1', upTo: 1, retryInterval: 500 });
      expect(await store.operator.getAppserviceTxn('irc')).toEqual({
        txnId: 't1',
        upTo: 1,
        retryInterval: 500,
      });
      await store.operator.ackAppservice('irc', 1);
      expect(await store.operator.getAppserviceTxn('irc')).toBeNull();
      expect((await store.operator.appserviceQueue('irc', 10)).map((i) => i.seq)).toEqual([2]);
      await store.operator.enqueueAppservice([{ asId: 'irc', kind: 'event', data: { n: 4 } }]);
      expect((await store.operator.appserviceQueue('irc', 10)).map((i) => i.seq)).toEqual([2, 3]);
      expect(await store.operator.appserviceQueue('slack', 10)).toHaveLength(1);
    });
  });

  describe('reports and admin views', () => {
    it('keeps reports newest first', async () => {
      const { store } = await stores.fresh();
      const base = {
        roomId: '!r:hearth.test',
        eventId: null,
        targetUserId: null,
        reason: 'spam',
        score: null,
      };
      await store.operator.addReport({ id: 'a', userId: ALICE, createdAt: 1, ...base });
      await store.operator.addReport({ id: 'b', userId: BOB, createdAt: 2, ...base });
      expect((await store.operator.reports(10)).map((r) => r.id)).toEqual(['b', 'a']);
    });

    it('lists users in ID order with a filter and a total, and keeps lock and suspension flags', async () => {
      const { store } = await stores.fresh();
      for (const userId of [BOB, ALICE, '@carol:hearth.test']) {
        await store.accounts.createUser({
          userId,
          passwordHash: null,
          createdAt: 1,
          isGuest: false,
          userType: null,
        });
      }
      await store.accounts.updateUser(BOB, { locked: true, suspended: true });
      const bob = await store.accounts.getUser(BOB);
      expect([bob?.locked, bob?.suspended]).toEqual([true, true]);
      const page = await store.operator.listUsers({ limit: 2 });
      expect(page.total).toBe(3);
      expect(page.users.map((u) => u.userId)).toEqual([ALICE, BOB]);
      const next = await store.operator.listUsers({ from: BOB, limit: 2 });
      expect(next.users.map((u) => u.userId)).toEqual(['@carol:hearth.test']);
      const locked = await store.operator.listUsers({ limit: 10, filter: (u) => u.locked });
      expect(locked).toMatchObject({ total: 1, users: [{ userId: BOB }] });
    });

    it('blocks and unblocks rooms', async () => {
      const { store } = await stores.fresh();
      await store.operator.setRoomBlocked('!r:hearth.test', { by: ALICE, at: 5 });
      expect(await store.operator.roomBlocked('!r:hearth.test')).toEqual({ by: ALICE, at: 5 });
      await store.operator.setRoomBlocked('!r:hearth.test', null);
      expect(await store.operator.roomBlocked('!r:hearth.test')).toBeNull();
    });
  });
}
