import { afterEach, describe, expect, it } from 'vitest';
import { getRoomVersion, verifyEvent } from '../../core/index.ts';
import type { TestServices } from '../testing.ts';
import { createKeyedLock } from './lock.ts';
import { createRoomsService } from './service.ts';
import { roomsTestbed, type TestUser } from './testing.ts';

let hs: TestServices | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

describe('createKeyedLock', () => {
  it('runs holders of one key one at a time, other keys alongside, and survives failures', async () => {
    const lock = createKeyedLock();
    const log: string[] = [];
    const step = (key: string, name: string, fail = false) =>
      lock.run(key, async () => {
        log.push(`start ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([step('a', 'a1', true), step('a', 'a2'), step('b', 'b1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    // a2 starts only after a1 ended; b1 does not wait for a.
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    expect(lock.size).toBe(0);
  });
});

describe('sendEvent', () => {
  it('signs with the server key, records push actions and wakes the affected users', async () => {
    const t = await roomsTestbed('alice', 'bob');
    hs = t.hs;
    const [alice, bob] = t.users as [TestUser, TestUser];
    const { ctx } = hs.internals;
    const pushed: string[] = [];
    const rooms = createRoomsService(ctx, {
      push: () => ({
        async notificationsFor(event) {
          pushed.push(event.type);
          return event.type === 'm.room.message' ? [{ userId: bob.userId, highlight: true }] : [];
        },
      }),
    });
    const { roomId } = await rooms.createRoom(alice.userId, { preset: 'public_chat' });
    await rooms.join(bob.userId, roomId);

    // Bob waits for news; Alice's message wakes him.
    const since = ctx.notifier.version;
    const woken = ctx.notifier.wait(bob.userId, new Set([roomId]), since, 2000);
    const { eventId } = await rooms.sendEvent({
      sender: alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'hi @bob' },
    });
    expect(await woken).toBe(true);
    expect(pushed).toContain('m.room.message');
    expect(await hs.store.receipts.notificationCounts(bob.userId, roomId, 0)).toEqual({
      notifications: 1,
      highlights: 1,
    });

    const stored = await hs.store.rooms.getEvent(eventId);
    const version = getRoomVersion('12');
    const keys = { [ctx.signingKey.keyId]: ctx.signingKey.publicKey };
    const verified = await verifyEvent(
      stored?.event as NonNullable<typeof stored>['event'],
      version,
      (server) => (server === ctx.config.serverName ? keys : undefined),
    );
    expect(verified.redacted).toBe(false);
    expect(stored?.event.sender).toBe(alice.userId);
    expect(stored?.event.room_id).toBe(roomId);

    // A membership event wakes its target even when the target's /sync does not watch the room.
    const carol = await hs.createUser('carol');
    const carolWoken = ctx.notifier.wait(carol.userId, new Set(), ctx.notifier.version, 2000);
    await rooms.invite(alice.userId, roomId, carol.userId);
    expect(await carolWoken).toBe(true);
  });

  it('answers unknown rooms and non-members alike, and keeps rejected events out of the store', async () => {
    const t = await roomsTestbed('alice', 'bob');
    hs = t.hs;
    const [alice, bob] = t.users as [TestUser, TestUser];
    const { rooms } = hs.internals;
    const { roomId } = await rooms.createRoom(alice.userId, {});
    const before = await hs.store.positions();
    for (const target of [roomId, '!unknown:test.localhost']) {
      await expect(
        rooms.sendEvent({ sender: bob.userId, roomId: target, type: 'm.room.message', content: {} }),
      ).rejects.toMatchObject({ errcode: 'M_FORBIDDEN', status: 403 });
    }
    expect((await hs.store.positions()).events).toBe(before.events);
  });
});
