/**
 * The E2EE data of sync answers, as `/sync` and sliding sync read it (sync-data.ts): device
 * lists between two positions as one user sees them, to-device pages and their
 * acknowledgement, key counts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRoomAs, roomsTestbed, type TestServices } from '../rooms/testing.ts';

describe('e2ee sync data', () => {
  let hs: TestServices | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('shows device-list changes of users sharing a room, `left` for those who no longer do', async () => {
    const bed = await roomsTestbed('alice', 'bob', 'carol');
    hs = bed.hs;
    const [alice, bob, carol] = bed.users as [
      (typeof bed.users)[0],
      (typeof bed.users)[0],
      (typeof bed.users)[0],
    ];
    const { e2ee, rooms } = hs.internals;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat' });
    await rooms.join(bob.userId, roomId);
    const start = (await hs.store.positions()).deviceLists;
    await hs.store.e2ee.putDeviceKeys(bob.userId, bob.deviceId, { device_id: bob.deviceId });
    await hs.store.e2ee.putDeviceKeys(carol.userId, carol.deviceId, { device_id: carol.deviceId });
    await hs.store.e2ee.putDeviceKeys(alice.userId, alice.deviceId, { device_id: alice.deviceId });
    const mid = (await hs.store.positions()).deviceLists;
    // Carol shares no room with Alice: a stranger's change is not shown.
    expect(await e2ee.deviceListChanges(alice.userId, start, mid)).toEqual({
      changed: [alice.userId, bob.userId].sort(),
      left: [],
    });
    expect(await e2ee.deviceListChanges(alice.userId, mid, mid)).toEqual({ changed: [], left: [] });
    await rooms.leave(bob.userId, roomId);
    await hs.store.e2ee.putDeviceKeys(bob.userId, bob.deviceId, { device_id: bob.deviceId, n: 2 });
    const end = (await hs.store.positions()).deviceLists;
    expect(await e2ee.deviceListChanges(alice.userId, mid, end)).toEqual({ changed: [], left: [bob.userId] });
    expect(await e2ee.deviceListChanges(carol.userId, mid, end)).toEqual({ changed: [], left: [] });
  });

  it('pages to-device messages after a position and deletes them once acknowledged; counts keys', async () => {
    const bed = await roomsTestbed('alice', 'bob');
    hs = bed.hs;
    const [alice, bob] = bed.users as [(typeof bed.users)[0], (typeof bed.users)[0]];
    const { e2ee } = hs.internals;
    for (let i = 0; i < 5; i++)
      await e2ee.sendToDevice({ ...alice, isGuest: false }, 'm.x', `t${i}`, {
        [bob.userId]: { [bob.deviceId]: { i } },
      });
    const first = await e2ee.toDeviceMessages(bob.userId, bob.deviceId, 0, 3);
    expect(first.events.map((e) => (e.content as { i: number }).i)).toEqual([0, 1, 2]);
    expect(first.events[0]).toEqual({ sender: alice.userId, type: 'm.x', content: { i: 0 } });
    const rest = await e2ee.toDeviceMessages(bob.userId, bob.deviceId, first.position, 10);
    expect(rest.events.map((e) => (e.content as { i: number }).i)).toEqual([3, 4]);
    const none = await e2ee.toDeviceMessages(bob.userId, bob.deviceId, rest.position, 10);
    expect(none).toEqual({ events: [], position: rest.position });
    await e2ee.acknowledgeToDevice(bob.userId, bob.deviceId, first.position);
    expect((await e2ee.toDeviceMessages(bob.userId, bob.deviceId, 0, 10)).events).toHaveLength(2);

    expect(await e2ee.keyCounts(bob.userId, bob.deviceId)).toEqual({
      oneTimeKeyCounts: { signed_curve25519: 0 },
      unusedFallbackKeyTypes: [],
    });
    await hs.store.e2ee.addOneTimeKeys(bob.userId, bob.deviceId, [
      { algorithm: 'signed_curve25519', keyId: 'A', key: { key: 'a' } },
    ]);
    await hs.store.e2ee.putFallbackKey(bob.userId, bob.deviceId, {
      algorithm: 'signed_curve25519',
      keyId: 'F',
      key: { key: 'f' },
    });
    expect(await e2ee.keyCounts(bob.userId, bob.deviceId)).toEqual({
      oneTimeKeyCounts: { signed_curve25519: 1 },
      unusedFallbackKeyTypes: ['signed_curve25519'],
    });
  });
});
