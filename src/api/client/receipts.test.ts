import { afterEach, describe, expect, it } from 'vitest';
import { createTestHomeserver, roomWith, sendText, type TestHomeserver } from './testing.ts';

describe('receipts and read markers', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('stores public receipts for everyone and private ones for their owner only', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    const first = await sendText(hs, alice, roomId, 'one');
    const second = await sendText(hs, alice, roomId, 'two');
    const { receipts, ctx } = hs.internals;

    const from = (await ctx.store.positions()).receipts;
    const version = ctx.notifier.version;
    const aliceWakes = ctx.notifier.wait(alice.userId, new Set([roomId]), version, 5_000);
    const pub = await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/${first}`, {
      token: bob.accessToken,
      body: {},
    });
    expect([pub.status, pub.body]).toEqual([200, {}]);
    expect(await aliceWakes).toBe(true);

    const privVersion = ctx.notifier.version;
    const private_ = await hs.call(
      'POST',
      `/_matrix/client/r0/rooms/${roomId}/receipt/m.read.private/${second}`,
      {
        token: bob.accessToken,
        body: {},
      },
    );
    expect(private_.status).toBe(200);
    // A private receipt wakes only its owner.
    expect(await ctx.notifier.wait(alice.userId, new Set([roomId]), privVersion, 20)).toBe(false);
    expect(await ctx.notifier.wait(bob.userId, new Set(), privVersion, 20)).toBe(true);

    const to = (await ctx.store.positions()).receipts;
    expect(to).toBe(from + 2);
    const forAlice = await receipts.receiptEvents(alice.userId, from, to, [roomId]);
    const aliceContent = forAlice.get(roomId)?.content as Record<
      string,
      Record<string, Record<string, { ts: number }>>
    >;
    expect(Object.keys(aliceContent)).toEqual([first]);
    expect(Object.keys(aliceContent[first]?.['m.read'] ?? {})).toEqual([bob.userId]);
    expect(typeof aliceContent[first]?.['m.read']?.[bob.userId]?.ts).toBe('number');

    const forBob = await receipts.receiptEvents(bob.userId, 0, to, [roomId]);
    const bobContent = forBob.get(roomId)?.content as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(bobContent[second] ?? {})).toEqual(['m.read.private']);
    expect(forBob.get(roomId)?.type).toBe('m.receipt');
    // Nothing for a range with no receipts, nor for rooms not asked about.
    expect((await receipts.receiptEvents(bob.userId, to, to, [roomId])).size).toBe(0);
    expect((await receipts.receiptEvents(bob.userId, 0, to, ['!other:x'])).size).toBe(0);
  });

  it('keeps threaded receipts apart, refuses bad thread IDs, never moves backwards', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const roomId = await roomWith(hs, alice);
    const { rooms, ctx } = hs.internals;
    const root = await sendText(hs, alice, roomId, 'root');
    const { eventId: inThread } = await rooms.sendEvent({
      sender: alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root } },
    });
    const later = await sendText(hs, alice, roomId, 'later');
    const post = (type: string, eventId: string, body: unknown) =>
      hs?.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/${type}/${eventId}`, {
        token: alice.accessToken,
        body,
      });

    expect((await post('m.read', inThread, { thread_id: root }))?.status).toBe(200);
    expect((await post('m.read', later, { thread_id: 'main' }))?.status).toBe(200);
    expect((await post('m.read', root, {}))?.status).toBe(200);
    const store = ctx.store.receipts;
    expect((await store.getReceipt(roomId, 'm.read', alice.userId, root))?.eventId).toBe(inThread);
    expect((await store.getReceipt(roomId, 'm.read', alice.userId, 'main'))?.eventId).toBe(later);
    expect((await store.getReceipt(roomId, 'm.read', alice.userId))?.eventId).toBe(root);
    // The m.receipt content names the thread.
    const content = (await hs.internals.receipts.receiptEvents(alice.userId, 0, 100, [roomId])).get(roomId)
      ?.content as Record<string, Record<string, Record<string, { thread_id?: string }>>>;
    expect(content[inThread]?.['m.read']?.[alice.userId]?.thread_id).toBe(root);
    expect(content[root]?.['m.read']?.[alice.userId]?.thread_id).toBeUndefined();

    // An older event than the current receipt is accepted and ignored.
    expect((await post('m.read', root, { thread_id: 'main' }))?.status).toBe(200);
    expect((await store.getReceipt(roomId, 'm.read', alice.userId, 'main'))?.eventId).toBe(later);

    const bad: [string, string, unknown, number, string][] = [
      ['m.read', later, { thread_id: '' }, 400, 'M_INVALID_PARAM'],
      ['m.read', later, { thread_id: 5 }, 400, 'M_INVALID_PARAM'],
      ['m.read', later, { thread_id: 'elsewhere' }, 400, 'M_INVALID_PARAM'],
      ['m.read', inThread, { thread_id: 'main' }, 400, 'M_INVALID_PARAM'],
      ['m.fully_read', later, { thread_id: 'main' }, 400, 'M_INVALID_PARAM'],
      ['m.unknown', later, {}, 400, 'M_INVALID_PARAM'],
      ['m.read', `$${'A'.repeat(43)}`, {}, 404, 'M_NOT_FOUND'],
      ['m.read', 'not-an-event', {}, 400, 'M_INVALID_PARAM'],
    ];
    for (const [type, eventId, body, status, errcode] of bad) {
      const res = await post(type, eventId, body);
      expect([type, body, res?.status, res?.body.errcode]).toEqual([type, body, status, errcode]);
    }
  });

  it('clears notification counts up to the read event', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    const services = hs.internals;
    // The push area decides who is notified; here every message notifies Bob, so the test
    // sees exactly the rows the pipeline stores for him.
    (services as unknown as { push: unknown }).push = {
      notificationsFor: async () => [{ userId: bob.userId, highlight: false }],
    };
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await sendText(hs, alice, roomId, `m${i}`));
    const counts = async () =>
      (await services.ctx.store.receipts.unreadCounts(bob.userId, [roomId])).get(roomId)?.main ?? {
        notifications: Number.NaN,
      };
    expect((await counts()).notifications).toBe(3);

    // A receipt in another thread does not clear the main timeline's counts.
    await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/${ids[2]}`, {
      token: bob.accessToken,
      body: { thread_id: '$someroot' },
    });
    expect((await counts()).notifications).toBe(3);
    await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read.private/${ids[1]}`, {
      token: bob.accessToken,
      body: {},
    });
    expect((await counts()).notifications).toBe(1);
    // An m.read behind the private receipt does not bring counts back.
    await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/${ids[0]}`, {
      token: bob.accessToken,
      body: {},
    });
    expect((await counts()).notifications).toBe(1);
    await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/${ids[2]}`, {
      token: bob.accessToken,
      body: { thread_id: 'main' },
    });
    expect((await counts()).notifications).toBe(0);
  });

  it('sets the fully read marker and receipts through /read_markers', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const eve = await hs.createUser('eve');
    const roomId = await roomWith(hs, alice, [bob]);
    const one = await sendText(hs, alice, roomId, 'one');
    const two = await sendText(hs, alice, roomId, 'two');
    const { ctx } = hs.internals;
    const path = `/_matrix/client/v3/rooms/${roomId}/read_markers`;

    const res = await hs.call('POST', path, {
      token: bob.accessToken,
      body: { 'm.fully_read': two, 'm.read': one, 'm.read.private': two },
    });
    expect([res.status, res.body]).toEqual([200, {}]);
    expect(await ctx.store.userData.getAccountData(bob.userId, 'm.fully_read', roomId)).toEqual({
      event_id: two,
    });
    expect((await ctx.store.receipts.getReceipt(roomId, 'm.read', bob.userId))?.eventId).toBe(one);
    expect((await ctx.store.receipts.getReceipt(roomId, 'm.read.private', bob.userId))?.eventId).toBe(two);
    const marker = await hs.call(
      'GET',
      `/_matrix/client/v3/user/${bob.userId}/rooms/${roomId}/account_data/m.fully_read`,
      {
        token: bob.accessToken,
      },
    );
    expect(marker.body).toEqual({ event_id: two });

    // The marker does not move backwards; m.fully_read through /receipt is the same thing.
    await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.fully_read/${one}`, {
      token: bob.accessToken,
      body: {},
    });
    expect(await ctx.store.userData.getAccountData(bob.userId, 'm.fully_read', roomId)).toEqual({
      event_id: two,
    });

    const before = await ctx.store.positions();
    const bad: [string | undefined, unknown, number, string][] = [
      [bob.accessToken, { 'm.fully_read': '$nope' }, 404, 'M_NOT_FOUND'],
      [bob.accessToken, { 'm.read': one, 'm.fully_read': '$nope' }, 404, 'M_NOT_FOUND'],
      [bob.accessToken, { 'm.fully_read': 7 }, 400, 'M_BAD_JSON'],
      [eve.accessToken, { 'm.fully_read': two }, 403, 'M_FORBIDDEN'],
      [undefined, { 'm.fully_read': two }, 401, 'M_MISSING_TOKEN'],
    ];
    for (const [token, body, status, errcode] of bad) {
      const r = await hs.call('POST', path, { token, body });
      expect([body, r.status, r.body.errcode]).toEqual([body, status, errcode]);
    }
    // A failed request leaves nothing half-written.
    expect(await ctx.store.positions()).toEqual(before);
    const eveReceipt = await hs.call('POST', `/_matrix/client/v3/rooms/${roomId}/receipt/m.read/${one}`, {
      token: eve.accessToken,
      body: {},
    });
    expect([eveReceipt.status, eveReceipt.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });
});
