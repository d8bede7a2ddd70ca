import { afterEach, describe, expect, it } from 'vitest';
import { createTestHomeserver, type TestHomeserver } from './testing.ts';

describe('send-to-device', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('delivers once per transaction, to one device or all (`*`), until the next sync acknowledges it', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    // Bob's second device.
    await hs.store.accounts.createSession({
      userId: bob.userId,
      deviceId: 'BOBSECOND',
      accessToken: 'bob-second-token',
      now: Date.now(),
    });
    const send = (txnId: string, messages: Record<string, Record<string, unknown>>) =>
      (hs as TestHomeserver).call('PUT', `/_matrix/client/v3/sendToDevice/m.test/${txnId}`, {
        token: alice.accessToken,
        body: { messages },
      });
    const sync = (token: string, since?: string) =>
      (hs as TestHomeserver).call('GET', `/_matrix/client/v3/sync${since ? `?since=${since}` : ''}`, {
        token,
      });

    const first = await sync(bob.accessToken);
    expect((first.body.to_device as { events: unknown[] }).events).toEqual([]);
    expect((await send('t1', { [bob.userId]: { [bob.deviceId]: { n: 1 } } }))?.status).toBe(200);
    // A retried request is the same transaction: nothing is queued twice.
    expect((await send('t1', { [bob.userId]: { [bob.deviceId]: { n: 1 } } }))?.status).toBe(200);
    await send('t2', { [bob.userId]: { '*': { n: 2 } }, '@nobody:test.localhost': { X: { n: 3 } } });
    // To a device that does not exist: dropped, nothing waits forever.
    await send('t3', { [bob.userId]: { NOSUCHDEVICE: { n: 4 } } });

    const got = await sync(bob.accessToken, first?.body.next_batch as string);
    const events = (got.body.to_device as { events: unknown[] }).events;
    expect(events).toEqual([
      { sender: alice.userId, type: 'm.test', content: { n: 1 } },
      { sender: alice.userId, type: 'm.test', content: { n: 2 } },
    ]);
    const secondDevice = await sync('bob-second-token');
    expect((secondDevice.body.to_device as { events: unknown[] }).events).toEqual([
      { sender: alice.userId, type: 'm.test', content: { n: 2 } },
    ]);
    // The same since again (the answer was lost): the messages come again.
    const retried = await sync(bob.accessToken, first?.body.next_batch as string);
    expect((retried.body.to_device as { events: unknown[] }).events).toHaveLength(2);
    // Syncing from the later token acknowledges them: they are deleted.
    const after = await sync(bob.accessToken, got?.body.next_batch as string);
    expect((after.body.to_device as { events: unknown[] }).events).toEqual([]);
    expect((await hs.store.e2ee.toDeviceMessages(bob.userId, bob.deviceId, 0, 10)).messages).toEqual([]);
  });

  it('pages 100 messages per sync and hands out the rest next', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    for (let i = 0; i < 150; i++)
      await hs.internals.e2ee.sendToDevice({ ...alice, isGuest: false }, 'm.test', `t${i}`, {
        [bob.userId]: { [bob.deviceId]: { i } },
      });
    const first = await hs.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
    const firstEvents = (first.body.to_device as { events: { content: { i: number } }[] }).events;
    expect(firstEvents.map((e) => e.content.i)).toEqual([...Array(100).keys()]);
    const next = await hs.call('GET', `/_matrix/client/v3/sync?since=${first.body.next_batch}`, {
      token: bob.accessToken,
    });
    const nextEvents = (next.body.to_device as { events: { content: { i: number } }[] }).events;
    expect(nextEvents.map((e) => e.content.i)).toEqual([...Array(50).keys()].map((i) => i + 100));
  });
});
