import { afterEach, describe, expect, it } from 'vitest';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

describe('account data and tags', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  const ROOM = '!room:test.localhost';

  it('round-trips global and room account data, moves the stream and wakes the user', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const { ctx } = hs.internals;
    const base = `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}`;

    const missing = await hs.call('GET', `${base}/account_data/org.example.settings`, {
      token: alice.accessToken,
    });
    expect([missing.status, missing.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    const before = (await ctx.store.positions()).accountData;
    const version = ctx.notifier.version;
    const waiting = ctx.notifier.wait(alice.userId, new Set(), version, 5_000);
    const put = await hs.call('PUT', `${base}/account_data/org.example.settings`, {
      token: alice.accessToken,
      body: { theme: 'dark', nested: { a: [1, 2] } },
    });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({});
    expect(await waiting).toBe(true);
    expect((await ctx.store.positions()).accountData).toBe(before + 1);

    const got = await hs.call(
      'GET',
      `/_matrix/client/r0/user/${alice.userId}/account_data/org.example.settings`,
      {
        token: alice.accessToken,
      },
    );
    expect(got.body).toEqual({ theme: 'dark', nested: { a: [1, 2] } });

    await hs.call('PUT', `${base}/rooms/${ROOM}/account_data/org.example.room`, {
      token: alice.accessToken,
      body: { x: 1 },
    });
    const roomData = await hs.call('GET', `${base}/rooms/${ROOM}/account_data/org.example.room`, {
      token: alice.accessToken,
    });
    expect(roomData.body).toEqual({ x: 1 });
    // Room and global account data of the same type are separate.
    const globalSame = await hs.call('GET', `${base}/account_data/org.example.room`, {
      token: alice.accessToken,
    });
    expect(globalSame.status).toBe(404);
    const otherRoom = await hs.call(
      'GET',
      `${base}/rooms/!other:test.localhost/account_data/org.example.room`,
      {
        token: alice.accessToken,
      },
    );
    expect([otherRoom.status, otherRoom.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it('refuses other users, server-managed types, bad room IDs and non-object bodies', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const base = `/_matrix/client/v3/user/${alice.userId}`;
    const before = await hs.internals.ctx.store.positions();

    const cases: [string, string, unknown, string | undefined, number, string][] = [
      ['PUT', `${base}/account_data/x.y`, { a: 1 }, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['GET', `${base}/account_data/x.y`, undefined, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['PUT', `${base}/rooms/${ROOM}/account_data/x.y`, { a: 1 }, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['GET', `${base}/rooms/${ROOM}/tags`, undefined, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['PUT', `${base}/rooms/${ROOM}/tags/u.work`, {}, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['DELETE', `${base}/rooms/${ROOM}/tags/u.work`, undefined, bob.accessToken, 403, 'M_FORBIDDEN'],
      ['PUT', `${base}/account_data/m.fully_read`, { event_id: '$x' }, alice.accessToken, 405, 'M_BAD_JSON'],
      ['PUT', `${base}/account_data/m.push_rules`, {}, alice.accessToken, 405, 'M_BAD_JSON'],
      [
        'PUT',
        `${base}/rooms/${ROOM}/account_data/m.fully_read`,
        { event_id: '$x' },
        alice.accessToken,
        405,
        'M_BAD_JSON',
      ],
      ['PUT', `${base}/rooms/not-a-room/account_data/x.y`, {}, alice.accessToken, 400, 'M_INVALID_PARAM'],
      [
        'GET',
        `${base}/rooms/not-a-room/account_data/x.y`,
        undefined,
        alice.accessToken,
        400,
        'M_INVALID_PARAM',
      ],
      ['PUT', `${base}/account_data/x.y`, '[1,2]', alice.accessToken, 400, 'M_BAD_JSON'],
      ['PUT', `${base}/account_data/x.y`, '{nope', alice.accessToken, 400, 'M_NOT_JSON'],
      ['PUT', `${base}/rooms/${ROOM}/tags/u.work`, { order: 'first' }, alice.accessToken, 400, 'M_BAD_JSON'],
      ['PUT', `${base}/rooms/${ROOM}/tags/${'t'.repeat(256)}`, {}, alice.accessToken, 400, 'M_INVALID_PARAM'],
      ['PUT', `${base}/account_data/x.y`, {}, undefined, 401, 'M_MISSING_TOKEN'],
    ];
    for (const [method, path, body, token, status, errcode] of cases) {
      const res = await hs.call(method, path, { token, body });
      expect([method, path, res.status, res.body.errcode]).toEqual([method, path, status, errcode]);
    }
    // Nothing was written by any of them.
    expect(await hs.internals.ctx.store.positions()).toEqual(before);
    // The server-managed m.push_rules can still be read, as the push rules themselves.
    const rules = await hs.call('GET', `${base}/account_data/m.push_rules`, { token: alice.accessToken });
    expect(rules.status).toBe(200);
    expect(Array.isArray((rules.body.global as { override?: unknown })?.override)).toBe(true);
  });

  it('adds, lists and removes tags as m.tag room account data', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const base = `/_matrix/client/v3/user/${alice.userId}/rooms/${ROOM}`;
    const token = alice.accessToken;

    expect((await hs.call('GET', `${base}/tags`, { token })).body).toEqual({ tags: {} });
    await hs.call('PUT', `${base}/tags/m.favourite`, { token, body: { order: 0.25 } });
    await hs.call('PUT', `${base}/tags/u.Work`, { token, body: {} });
    // Concurrent writes of different tags must not lose either.
    await Promise.all([
      hs.call('PUT', `${base}/tags/u.a`, { token, body: { order: 0.1 } }),
      hs.call('PUT', `${base}/tags/u.b`, { token, body: { order: 0.2 } }),
    ]);
    const listed = await hs.call('GET', `/_matrix/client/r0/user/${alice.userId}/rooms/${ROOM}/tags`, {
      token,
    });
    expect(listed.body).toEqual({
      tags: { 'm.favourite': { order: 0.25 }, 'u.Work': {}, 'u.a': { order: 0.1 }, 'u.b': { order: 0.2 } },
    });
    const asAccountData = await hs.call('GET', `${base}/account_data/m.tag`, { token });
    expect(asAccountData.body).toEqual(listed.body);

    expect((await hs.call('DELETE', `${base}/tags/u.Work`, { token })).status).toBe(200);
    // Deleting a tag that is not there is fine.
    expect((await hs.call('DELETE', `${base}/tags/u.nothing`, { token })).status).toBe(200);
    const after = await hs.call('GET', `${base}/tags`, { token });
    expect(Object.keys(after.body.tags as object).sort()).toEqual(['m.favourite', 'u.a', 'u.b']);

    // The changes reach /sync through the account-data stream.
    const entries = await hs.internals.ctx.store.userData.accountDataSince(alice.userId, 0);
    const last = entries.filter((e) => e.type === 'm.tag').at(-1);
    expect(last?.roomId).toBe(ROOM);
    expect(Object.keys((last?.content.tags ?? {}) as object).sort()).toEqual(['m.favourite', 'u.a', 'u.b']);
  });
});
