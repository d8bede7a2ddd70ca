/** Conformance: account data, filters, push rules, profiles, receipts, stream positions. */
import { describe, expect, it } from 'vitest';
import { ALICE, BOB, type ConformanceTarget, ROOM, useStores } from './testing.ts';

export function userDataTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('account data', () => {
    it('sets global and room data, and lists what changed after a position', async () => {
      const { store } = await stores.fresh();
      const p1 = await store.userData.setAccountData(ALICE, 'm.direct', { [BOB]: ['!dm:hearth.test'] });
      const p2 = await store.userData.setAccountData(ALICE, 'm.tag', { tags: { 'm.favourite': {} } }, ROOM);
      const p3 = await store.userData.setAccountData(BOB, 'm.direct', {});
      expect([p1, p2, p3]).toEqual([1, 2, 3]);
      expect(await store.userData.getAccountData(ALICE, 'm.direct')).toEqual({ [BOB]: ['!dm:hearth.test'] });
      expect(await store.userData.getAccountData(ALICE, 'm.tag', ROOM)).toEqual({
        tags: { 'm.favourite': {} },
      });
      expect(await store.userData.getAccountData(ALICE, 'm.tag')).toBeNull();
      const p4 = await store.userData.setAccountData(ALICE, 'm.direct', {});
      expect(await store.userData.accountDataSince(ALICE, 0)).toEqual([
        { roomId: ROOM, type: 'm.tag', content: { tags: { 'm.favourite': {} } }, stream: 2 },
        { roomId: null, type: 'm.direct', content: {}, stream: 4 },
      ]);
      expect((await store.userData.accountDataSince(ALICE, 2)).map((e) => e.stream)).toEqual([4]);
      expect(await store.userData.accountDataSince(ALICE, 0, 3)).toHaveLength(1);
      expect(await store.userData.accountDataSince(ALICE, p4)).toEqual([]);
      expect((await store.positions()).accountData).toBe(4);
    });

    it('stores filters under fresh IDs per user', async () => {
      const { store } = await stores.fresh();
      const a = await store.userData.createFilter(ALICE, { room: { timeline: { limit: 10 } } });
      const b = await store.userData.createFilter(ALICE, { presence: { not_types: ['*'] } });
      expect(a).not.toBe(b);
      expect(await store.userData.getFilter(ALICE, a)).toEqual({ room: { timeline: { limit: 10 } } });
      expect(await store.userData.getFilter(BOB, a)).toBeNull();
      expect(await store.userData.getFilter(ALICE, 'nope')).toBeNull();
    });
  });

  describe('sliding sync connections', () => {
    it('saves versions that only grow, reads each back, and drops those below the confirmed one', async () => {
      const { store } = await stores.fresh();
      const v1 = await store.userData.saveSlidingSyncConnection(ALICE, 'DEV', '', { rooms: { a: 1 } }, 0);
      const v2 = await store.userData.saveSlidingSyncConnection(ALICE, 'DEV', '', { rooms: { a: 2 } }, v1);
      // A retried request with the same confirmed version gets a version of its own.
      const v3 = await store.userData.saveSlidingSyncConnection(ALICE, 'DEV', '', { rooms: { a: 3 } }, v1);
      expect(v1).toBeGreaterThan(0);
      expect(v2).toBeGreaterThan(v1);
      expect(v3).toBeGreaterThan(v2);
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v1)).toEqual({ rooms: { a: 1 } });
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v2)).toEqual({ rooms: { a: 2 } });
      // Other connections, devices and users are apart.
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', 'other', v1)).toBeNull();
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV2', '', v1)).toBeNull();
      expect(await store.userData.slidingSyncConnection(BOB, 'DEV', '', v1)).toBeNull();
      const v4 = await store.userData.saveSlidingSyncConnection(ALICE, 'DEV', '', { rooms: {} }, v3);
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v1)).toBeNull();
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v2)).toBeNull();
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v3)).toEqual({ rooms: { a: 3 } });
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v4)).toEqual({ rooms: {} });
    });

    it('goes with the device', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(
        { userId: ALICE, passwordHash: null, createdAt: 1, isGuest: false, userType: null },
        {
          session: { userId: ALICE, deviceId: 'DEV', accessToken: 'tok', now: 1 },
        },
      );
      const v = await store.userData.saveSlidingSyncConnection(ALICE, 'DEV', '', { rooms: {} }, 0);
      await store.accounts.deleteDevices(ALICE, ['DEV']);
      expect(await store.userData.slidingSyncConnection(ALICE, 'DEV', '', v)).toBeNull();
    });
  });

  describe('push rules', () => {
    it('orders rules by kind then priority, and moves the account-data stream on change', async () => {
      const { store } = await stores.fresh();
      expect(await store.userData.pushRules(ALICE)).toEqual({ rules: [], stream: 0 });
      const rule = (kind: 'override' | 'room' | 'underride', ruleId: string, priority: number) => ({
        kind,
        ruleId,
        priority,
        rule: { conditions: [], pattern: null },
        enabled: true,
        actions: ['notify'],
      });
      await store.userData.putPushRule(ALICE, rule('underride', 'u1', 1));
      await store.userData.putPushRule(ALICE, rule('room', ROOM, 1));
      await store.userData.putPushRule(ALICE, rule('override', 'o-low', 1));
      const last = await store.userData.putPushRule(ALICE, rule('override', 'o-high', 5));
      await store.userData.putPushRule(ALICE, {
        kind: 'override',
        ruleId: '.m.rule.master',
        priority: 0,
        rule: null,
        enabled: true,
        actions: null,
      });
      const { rules, stream } = await store.userData.pushRules(ALICE);
      expect(rules.map((r) => r.ruleId)).toEqual(['o-high', 'o-low', '.m.rule.master', ROOM, 'u1']);
      expect(rules[2]).toEqual({
        kind: 'override',
        ruleId: '.m.rule.master',
        priority: 0,
        rule: null,
        enabled: true,
        actions: null,
      });
      expect(stream).toBe(last + 1);
      expect(await store.userData.deletePushRule(ALICE, 'room', ROOM)).toBe(stream + 1);
      expect(await store.userData.deletePushRule(ALICE, 'room', ROOM)).toBeNull();
      expect((await store.userData.pushRules(ALICE)).rules).toHaveLength(4);
      expect((await store.userData.pushRules(BOB)).rules).toEqual([]);
      await expect(
        store.userData.putPushRule(ALICE, { ...rule('room', 'x', 1), kind: 'bogus' as never }),
      ).rejects.toMatchObject({ code: 'INVALID' });
    });

    it('gives push settings (rules and ignore list) of many users, as the writes leave them', async () => {
      const { store } = await stores.fresh();
      const rule = {
        kind: 'room' as const,
        ruleId: ROOM,
        priority: 1,
        rule: { actions: [] },
        enabled: true,
        actions: [],
      };
      const empty = { rules: [], ignoredUsers: null };
      expect(await store.userData.pushSettings([ALICE, BOB])).toEqual(
        new Map([
          [ALICE, empty],
          [BOB, empty],
        ]),
      );
      // Each write is seen by the next read (the cache is write-through).
      await store.userData.putPushRule(ALICE, rule);
      await store.userData.setAccountData(BOB, 'm.ignored_user_list', { ignored_users: { [ALICE]: {} } });
      await store.userData.setAccountData(ALICE, 'm.ignored_user_list', { ignored_users: {} }, ROOM);
      let settings = await store.userData.pushSettings([ALICE, BOB]);
      expect(settings.get(ALICE)).toEqual({ rules: [rule], ignoredUsers: null });
      expect(settings.get(BOB)).toEqual({ rules: [], ignoredUsers: { ignored_users: { [ALICE]: {} } } });
      await store.userData.deletePushRule(ALICE, 'room', ROOM);
      await store.userData.setAccountData(BOB, 'm.ignored_user_list', { ignored_users: {} });
      settings = await store.userData.pushSettings([BOB, ALICE, BOB]);
      expect([...settings.keys()]).toEqual([BOB, ALICE]);
      expect(settings.get(ALICE)).toEqual(empty);
      expect(settings.get(BOB)).toEqual({ rules: [], ignoredUsers: { ignored_users: {} } });
    });
  });

  describe('profiles', () => {
    it('sets and removes fields atomically', async () => {
      const { store } = await stores.fresh();
      expect(await store.userData.getProfile(ALICE)).toBeNull();
      expect(
        await store.userData.updateProfile(ALICE, { displayname: 'Alice', avatar_url: 'mxc://a/b' }),
      ).toEqual({
        displayname: 'Alice',
        avatar_url: 'mxc://a/b',
      });
      await Promise.all([
        store.userData.updateProfile(ALICE, { 'm.tz': 'Europe/Paris' }),
        store.userData.updateProfile(ALICE, { avatar_url: null }),
      ]);
      expect(await store.userData.getProfile(ALICE)).toEqual({
        displayname: 'Alice',
        'm.tz': 'Europe/Paris',
      });
    });

    it('reads many profiles at once, leaving out users without one', async () => {
      const { store } = await stores.fresh();
      await store.userData.updateProfile(ALICE, { displayname: 'Alice' });
      await store.userData.updateProfile(BOB, { avatar_url: 'mxc://b/c' });
      const profiles = await store.userData.getProfiles([BOB, '@nobody:hearth.test', ALICE]);
      expect([...profiles]).toEqual([
        [BOB, { avatar_url: 'mxc://b/c' }],
        [ALICE, { displayname: 'Alice' }],
      ]);
      expect(await store.userData.getProfiles([])).toEqual(new Map());
    });
  });

  describe('receipts', () => {
    it('keeps one receipt per room, type, user and thread, and lists changes after a position', async () => {
      const { store } = await stores.fresh();
      const other = '!other:hearth.test';
      await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: ALICE,
        eventId: '$1',
        data: { ts: 1 },
      });
      await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: BOB,
        eventId: '$1',
        data: { ts: 2 },
      });
      await store.receipts.putReceipt({
        roomId: other,
        receiptType: 'm.read',
        userId: ALICE,
        eventId: '$9',
        data: {},
      });
      const p4 = await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: ALICE,
        eventId: '$2',
        data: { ts: 3 },
      });
      await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: ALICE,
        threadId: '$root',
        eventId: '$t1',
        data: {},
      });
      await store.receipts.putReceipt({
        roomId: ROOM,
        receiptType: 'm.read.private',
        userId: ALICE,
        eventId: '$2',
        data: {},
      });
      expect(p4).toBe(4);
      expect(await store.receipts.getReceipt(ROOM, 'm.read', ALICE)).toEqual({
        roomId: ROOM,
        receiptType: 'm.read',
        userId: ALICE,
        eventId: '$2',
        data: { ts: 3 },
        stream: 4,
      });
      expect((await store.receipts.getReceipt(ROOM, 'm.read', ALICE, '$root'))?.eventId).toBe('$t1');
      expect(await store.receipts.getReceipt(ROOM, 'm.read', '@none:x')).toBeNull();
      expect(
        (await store.receipts.roomReceipts(ROOM))
          .map((r) => [r.userId, r.receiptType, r.threadId ?? null, r.eventId])
          .sort(),
      ).toEqual(
        [
          [ALICE, 'm.read', null, '$2'],
          [ALICE, 'm.read', '$root', '$t1'],
          [ALICE, 'm.read.private', null, '$2'],
          [BOB, 'm.read', null, '$1'],
        ].sort(),
      );
      expect((await store.receipts.receiptsSince(0, 6)).map((r) => r.stream)).toEqual([2, 3, 4, 5, 6]);
      expect((await store.receipts.receiptsSince(2, 6, [other])).map((r) => r.eventId)).toEqual(['$9']);
      expect(await store.receipts.receiptsSince(3, 5, ['!none:x'])).toEqual([]);
      expect((await store.positions()).receipts).toBe(6);
    });
  });
}
