import { afterEach, describe, expect, it } from 'vitest';
import { CURRENTLY_ACTIVE_MS, OFFLINE_AFTER_MS } from '../../homeserver/ephemeral/presence.ts';
import { createTestHomeserver, manualClock, roomWith, type TestHomeserver } from './testing.ts';

describe('presence', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('sets and reads presence, for the user and for room-mates only', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const eve = await hs.createUser('eve');
    const roomId = await roomWith(hs, alice, [bob]);
    const { ctx } = hs.internals;
    const path = (u: string, v = 'v3') => `/_matrix/client/${v}/presence/${u}/status`;

    // Known user without recorded presence: offline.
    const none = await hs.call('GET', path(alice.userId), { token: alice.accessToken });
    expect([none.status, none.body]).toEqual([200, { presence: 'offline' }]);

    const version = ctx.notifier.version;
    const bobWakes = ctx.notifier.wait(bob.userId, new Set([roomId]), version, 5_000);
    const put = await hs.call('PUT', path(alice.userId), {
      token: alice.accessToken,
      body: { presence: 'online', status_msg: 'Here' },
    });
    expect([put.status, put.body]).toEqual([200, {}]);
    expect(await bobWakes).toBe(true);

    clock.advance(1_000);
    const seen = await hs.call('GET', path(alice.userId, 'r0'), { token: bob.accessToken });
    expect(seen.body).toEqual({
      presence: 'online',
      status_msg: 'Here',
      last_active_ago: 1_000,
      currently_active: true,
    });
    clock.advance(CURRENTLY_ACTIVE_MS);
    expect(
      (await hs.call('GET', path(alice.userId), { token: alice.accessToken })).body.currently_active,
    ).toBe(false);

    // Without status_msg the message stays; null clears it.
    await hs.call('PUT', path(alice.userId), { token: alice.accessToken, body: { presence: 'unavailable' } });
    expect((await hs.call('GET', path(alice.userId), { token: bob.accessToken })).body).toMatchObject({
      presence: 'unavailable',
      status_msg: 'Here',
    });
    await hs.call('PUT', path(alice.userId), {
      token: alice.accessToken,
      body: { presence: 'unavailable', status_msg: null },
    });
    const cleared = await hs.call('GET', path(alice.userId), { token: bob.accessToken });
    expect(cleared.body.status_msg).toBeUndefined();
    expect(cleared.body.currently_active).toBeUndefined();

    const hidden = await hs.call('GET', path(alice.userId), { token: eve.accessToken });
    expect([hidden.status, hidden.body.errcode]).toEqual([403, 'M_FORBIDDEN']);

    const cases: [string, string | undefined, unknown, number, string][] = [
      ['PUT', alice.accessToken, { presence: 'busy' }, 400, 'M_BAD_JSON'],
      ['PUT', alice.accessToken, {}, 400, 'M_MISSING_PARAM'],
      ['PUT', alice.accessToken, { presence: 'online', status_msg: 5 }, 400, 'M_BAD_JSON'],
      ['PUT', bob.accessToken, { presence: 'online' }, 403, 'M_FORBIDDEN'],
      ['PUT', undefined, { presence: 'online' }, 401, 'M_MISSING_TOKEN'],
    ];
    for (const [method, token, body, status, errcode] of cases) {
      const res = await hs.call(method, path(alice.userId), { token, body });
      expect([body, res.status, res.body.errcode]).toEqual([body, status, errcode]);
    }
    const ghost = await hs.call('GET', path('@ghost:test.localhost'), { token: alice.accessToken });
    expect([ghost.status, ghost.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });

  it('gives sync the changes since a position, only of users sharing a room', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const eve = await hs.createUser('eve');
    await roomWith(hs, alice, [bob]);
    await roomWith(hs, eve);
    const { presence } = hs.internals;
    await hs.call('PUT', `/_matrix/client/v3/presence/${bob.userId}/status`, {
      token: bob.accessToken,
      body: { presence: 'online', status_msg: 'hi' },
    });
    await presence.set(eve.userId, 'online');
    const mark = presence.position;

    const initial = await presence.changesSince(alice.userId, 0);
    expect(initial.map((e) => e.sender)).toEqual([bob.userId]);
    expect(initial[0]).toMatchObject({
      type: 'm.presence',
      sender: bob.userId,
      content: { presence: 'online', status_msg: 'hi', displayname: 'bob', currently_active: true },
    });
    expect(await presence.changesSince(alice.userId, mark)).toEqual([]);

    // The user's own presence comes back to them; a sync keeps an idle user idle.
    await presence.syncing(alice.userId);
    expect(presence.get(alice.userId)?.presence).toBe('online');
    const own = await presence.changesSince(alice.userId, mark);
    expect(own.map((e) => e.sender)).toEqual([alice.userId]);
    await presence.set(bob.userId, 'unavailable');
    await presence.syncing(bob.userId);
    expect(presence.get(bob.userId)?.presence).toBe('unavailable');
    await presence.syncing(bob.userId, 'offline');
    expect(presence.get(bob.userId)?.presence).toBe('unavailable');

    // Bumping activity while currently active is not news; after a quiet spell it is.
    const quiet = presence.position;
    await presence.syncing(alice.userId);
    expect(presence.position).toBe(quiet);
    clock.advance(CURRENTLY_ACTIVE_MS + 1);
    await presence.syncing(alice.userId);
    expect(presence.position).toBe(quiet + 1);
    // A position beyond ours (from before a restart) reads as "everything".
    expect((await presence.changesSince(eve.userId, presence.position + 50)).map((e) => e.sender)).toEqual([
      eve.userId,
    ]);
  });

  it('shows a user whose clients went quiet as offline, and wakes their room-mates', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    const { presence, ctx } = hs.internals;
    await presence.syncing(alice.userId);
    await presence.syncing(bob.userId);
    clock.advance(OFFLINE_AFTER_MS - 1_000);
    await presence.syncing(bob.userId);
    const mark = presence.position;
    expect(presence.get(alice.userId)?.presence).toBe('online');
    // The check runs at most every 30 s: past that, Alice has been quiet too long.
    clock.advance(31_000);
    const version = ctx.notifier.version;
    const changes = await presence.changesSince(bob.userId, mark);
    expect(changes.map((e) => [e.sender, (e.content as { presence: string }).presence])).toEqual([
      [alice.userId, 'offline'],
    ]);
    expect(await ctx.notifier.wait(bob.userId, new Set([roomId]), version, 10)).toBe(true);
    expect(presence.get(alice.userId)?.presence).toBe('offline');
    expect(presence.get(bob.userId)?.presence).toBe('online');
    // Coming back is news again.
    await presence.syncing(alice.userId);
    expect(presence.get(alice.userId)?.presence).toBe('online');
    expect(presence.position).toBeGreaterThan(mark + 1);
  });
});
