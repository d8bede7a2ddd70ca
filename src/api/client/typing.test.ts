import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TYPING_TIMEOUT_MS } from '../../homeserver/ephemeral/typing.ts';
import { createTestHomeserver, manualClock, roomWith, type TestHomeserver } from './testing.ts';

describe('typing', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('sets, lists, extends, stops and expires typing on the injected clock', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    const { typing, ctx } = hs.internals;
    const path = (u: string) => `/_matrix/client/v3/rooms/${roomId}/typing/${u}`;

    const start = typing.position;
    const version = ctx.notifier.version;
    const woken = ctx.notifier.wait('@someone:else', new Set([roomId]), version, 5_000);
    const res = await hs.call('PUT', path(alice.userId), {
      token: alice.accessToken,
      body: { typing: true, timeout: 10_000 },
    });
    expect([res.status, res.body]).toEqual([200, {}]);
    expect(await woken).toBe(true);
    expect(typing.typingIn(roomId)).toEqual([alice.userId]);
    expect(typing.position).toBe(start + 1);

    await hs.call('PUT', `/_matrix/client/r0/rooms/${roomId}/typing/${bob.userId}`, {
      token: bob.accessToken,
      body: { typing: true, timeout: 20_000 },
    });
    expect(typing.typingIn(roomId)).toEqual([alice.userId, bob.userId]);
    const afterBob = typing.position;

    // Re-sending "typing" only extends the timeout: nothing new for clients.
    clock.advance(5_000);
    await hs.call('PUT', path(alice.userId), {
      token: alice.accessToken,
      body: { typing: true, timeout: 10_000 },
    });
    expect(typing.position).toBe(afterBob);

    // Alice's extended timeout runs to 15 s; Bob's to 20 s.
    clock.advance(10_001);
    expect(typing.typingIn(roomId)).toEqual([bob.userId]);
    expect(typing.position).toBe(afterBob + 1);

    await hs.call('PUT', path(bob.userId), { token: bob.accessToken, body: { typing: false } });
    expect(typing.typingIn(roomId)).toEqual([]);
    // Stopping when not typing changes nothing.
    const stopped = typing.position;
    await hs.call('PUT', path(bob.userId), { token: bob.accessToken, body: { typing: false } });
    expect(typing.position).toBe(stopped);
  });

  it('caps the timeout and reports changes since a position for sync', async () => {
    const clock = manualClock();
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const roomA = await roomWith(hs, alice);
    const roomB = await roomWith(hs, alice);
    const { typing } = hs.internals;

    await hs.call('PUT', `/_matrix/client/v3/rooms/${roomA}/typing/${alice.userId}`, {
      token: alice.accessToken,
      body: { typing: true, timeout: 3_600_000 },
    });
    const mark = typing.position;
    // A room sent whole (since null) shows who types now.
    expect([...typing.changesSince(null, [roomA, roomB])]).toEqual([
      [roomA, { type: 'm.typing', content: { user_ids: [alice.userId] } }],
    ]);
    expect(typing.changesSince(mark, [roomA, roomB]).size).toBe(0);
    // A position from before a restart (beyond ours) is read as "from the beginning".
    expect(typing.changesSince(mark + 100, [roomA]).size).toBe(1);

    clock.advance(MAX_TYPING_TIMEOUT_MS + 1);
    const changes = typing.changesSince(mark, [roomA, roomB]);
    expect([...changes]).toEqual([[roomA, { type: 'm.typing', content: { user_ids: [] } }]]);
    expect(typing.changesSince(null, [roomA]).size).toBe(0);
    // Position 0 is "before any change": the stop is a change after it.
    expect([...typing.changesSince(0, [roomA, roomB])]).toEqual([
      [roomA, { type: 'm.typing', content: { user_ids: [] } }],
    ]);
  });

  it('a token whose typing position predates a typer it was shown still hears the stop', async () => {
    // A pass takes its positions, then reads typing: a typer who started in between is shown
    // under a token that still says 0. The next sync from that token must see the stop.
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    const { typing } = hs.internals;
    const first = await hs.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
    const token = first.body.next_batch as string;
    typing.set(roomId, alice.userId, true, 20_000);
    typing.set(roomId, alice.userId, false);
    const next = await hs.call(
      'GET',
      `/_matrix/client/v3/sync?since=${encodeURIComponent(token)}&timeout=0`,
      {
        token: bob.accessToken,
      },
    );
    const rooms = next.body.rooms as { join: Record<string, { ephemeral: { events: unknown[] } }> };
    const ephemeral = rooms.join[roomId]?.ephemeral.events ?? [];
    expect(ephemeral).toContainEqual({ type: 'm.typing', content: { user_ids: [] } });
  });

  it('wakes waiting syncs when typing expires by itself', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const roomId = await roomWith(hs, alice);
    const { typing, ctx } = hs.internals;
    typing.set(roomId, alice.userId, true, 30);
    const version = ctx.notifier.version;
    expect(await ctx.notifier.wait('@bob:x', new Set([roomId]), version, 2_000)).toBe(true);
    expect(typing.typingIn(roomId)).toEqual([]);
  });

  it('refuses other users, non-members and malformed bodies', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const eve = await hs.createUser('eve');
    const roomId = await roomWith(hs, alice);
    const { typing } = hs.internals;
    const cases: [string, string | undefined, unknown, number, string][] = [
      [`/rooms/${roomId}/typing/${alice.userId}`, eve.accessToken, { typing: true }, 403, 'M_FORBIDDEN'],
      [`/rooms/${roomId}/typing/${eve.userId}`, eve.accessToken, { typing: true }, 403, 'M_FORBIDDEN'],
      [
        `/rooms/!nowhere:test.localhost/typing/${alice.userId}`,
        alice.accessToken,
        { typing: true },
        403,
        'M_FORBIDDEN',
      ],
      [`/rooms/${roomId}/typing/${alice.userId}`, alice.accessToken, { typing: 'yes' }, 400, 'M_BAD_JSON'],
      [`/rooms/${roomId}/typing/${alice.userId}`, alice.accessToken, {}, 400, 'M_MISSING_PARAM'],
      [
        `/rooms/${roomId}/typing/${alice.userId}`,
        alice.accessToken,
        { typing: true, timeout: -5 },
        400,
        'M_BAD_JSON',
      ],
      [`/rooms/${roomId}/typing/${alice.userId}`, undefined, { typing: true }, 401, 'M_MISSING_TOKEN'],
      [
        `/rooms/not-a-room/typing/${alice.userId}`,
        alice.accessToken,
        { typing: true },
        400,
        'M_INVALID_PARAM',
      ],
    ];
    for (const [path, token, body, status, errcode] of cases) {
      const res = await hs.call('PUT', `/_matrix/client/v3${path}`, { token, body });
      expect([path, res.status, res.body.errcode]).toEqual([path, status, errcode]);
    }
    expect(typing.typingIn(roomId)).toEqual([]);
  });
});
