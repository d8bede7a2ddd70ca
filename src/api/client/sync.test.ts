import { afterEach, describe, expect, it } from 'vitest';
import { parseSyncToken } from '../../homeserver/tokens.ts';
import { bodies, type ClientEvent, SyncHarness, stateKeys, type User } from './testing-sync.ts';

let h: SyncHarness;
afterEach(async () => {
  await h?.close();
});

async function twoUsersInRoom(roomBody: Record<string, unknown> = { preset: 'public_chat', name: 'Room' }) {
  h = await SyncHarness.start();
  const alice = await h.user('alice');
  const bob = await h.user('bob');
  const roomId = await h.createRoom(alice, roomBody as never);
  await h.join(bob, roomId);
  return { alice, bob, roomId };
}

describe('initial sync', () => {
  it('splits state and timeline, limits the timeline and gives a prev_batch', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, { name: 'Limited', topic: 'gap' });
    for (let i = 0; i < 15; i++) await h.send(alice, roomId, `m${i}`);

    const body = await h.sync(alice);
    const room = body.rooms.join[roomId];
    expect(room).toBeDefined();
    if (!room?.state) throw new Error('no state');
    // Default limit: the 10 latest events, all messages here; older history is behind `limited`.
    expect(room.timeline.events).toHaveLength(10);
    expect(bodies(room.timeline.events)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 5}`));
    expect(room.timeline.limited).toBe(true);
    // The state before the timeline is the whole room state: create, member, power levels, name, topic…
    const keys = stateKeys(room.state.events);
    for (const key of [
      'm.room.create|',
      `m.room.member|${alice.userId}`,
      'm.room.power_levels|',
      'm.room.name|',
      'm.room.topic|',
      'm.room.join_rules|',
    ]) {
      expect(keys).toContain(key);
    }
    // No event is in both.
    const timelineIds = new Set(room.timeline.events.map((e) => e.event_id));
    expect(room.state.events.some((e) => timelineIds.has(e.event_id))).toBe(false);
    // Events have no room_id in /sync; the sender's device sees its transaction IDs.
    expect(room.timeline.events[0]?.room_id).toBeUndefined();
    expect(room.timeline.events[0]?.unsigned?.transaction_id).toMatch(/^txn/);

    // prev_batch names the point just before the first timeline event.
    const prev = parseSyncToken(room.timeline.prev_batch as string);
    expect(prev).not.toBeNull();
    const before = await h.hs.store.rooms.timeline(roomId, { dir: 'b', from: prev?.events, limit: 1 });
    expect(before.events[0]?.event.content.body).toBe('m4');

    // Sections the spec has are present even when empty.
    expect(body.rooms.invite).toEqual({});
    expect(body.rooms.leave).toEqual({});
    expect(body.rooms.knock).toEqual({});
    expect(body.to_device.events).toEqual([]);
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(body.device_unused_fallback_key_types).toEqual([]);
    expect(parseSyncToken(body.next_batch)).not.toBeNull();
  });

  it('with a short history, puts it all in the timeline with empty state', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    const body = await h.sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 50 } } }) });
    const room = body.rooms.join[roomId];
    expect(room?.timeline.limited).toBe(false);
    expect(room?.timeline.events[0]?.type).toBe('m.room.create');
    expect(room?.state?.events).toEqual([]);
  });

  it('carries global account data including m.push_rules, and room account data (tags)', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/org.example.x`, alice, {
      a: 1,
    });
    await h.ok(
      'PUT',
      `/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags/u.work`,
      alice,
      { order: 0.5 },
    );
    const body = await h.sync(alice);
    const types = body.account_data.events.map((e) => e.type);
    expect(types).toContain('org.example.x');
    expect(types).toContain('m.push_rules');
    const pushRules = body.account_data.events.find((e) => e.type === 'm.push_rules')?.content as {
      global?: { override?: unknown[] };
    };
    expect(Array.isArray(pushRules.global?.override)).toBe(true);
    const tag = body.rooms.join[roomId]?.account_data.events.find((e) => e.type === 'm.tag');
    expect(tag?.content).toEqual({ tags: { 'u.work': { order: 0.5 } } });
  });
});

describe('prev_batch with /messages', () => {
  it('paginates back from the start of a sync timeline, and fills a gap between since and prev_batch', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    for (let i = 0; i < 15; i++) await h.send(alice, roomId, `m${i}`);
    const initial = await h.sync(bob);
    const room = initial.rooms.join[roomId];
    const page = await h.ok(
      'GET',
      `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=3&from=${room?.timeline.prev_batch}`,
      bob,
    );
    expect(bodies(page.chunk as ClientEvent[])).toEqual(['m4', 'm3', 'm2']);

    // client-server-api "Syncing": the gap lies between `since` and the timeline's prev_batch.
    const since = initial.next_batch;
    for (let i = 0; i < 14; i++) await h.send(alice, roomId, `g${i}`);
    const gapped = (await h.sync(bob, { since })).rooms.join[roomId];
    expect(gapped?.timeline.limited).toBe(true);
    const gap = await h.ok(
      'GET',
      `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50&from=${gapped?.timeline.prev_batch}&to=${since}`,
      bob,
    );
    expect(bodies(gap.chunk as ClientEvent[])).toEqual(['g3', 'g2', 'g1', 'g0']);
  });
});

describe('incremental sync', () => {
  it('delivers each new message exactly once', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    let token = (await h.sync(bob)).next_batch;
    const seen: string[] = [];
    for (let round = 0; round < 3; round++) {
      await h.send(alice, roomId, `r${round}a`);
      await h.send(alice, roomId, `r${round}b`);
      const body = await h.sync(bob, { since: token });
      const room = body.rooms.join[roomId];
      expect(room?.timeline.limited).toBe(false);
      expect(room?.state?.events).toEqual([]);
      seen.push(...(bodies(room?.timeline.events ?? []) as string[]));
      token = body.next_batch;
    }
    expect(seen).toEqual(['r0a', 'r0b', 'r1a', 'r1b', 'r2a', 'r2b']);
    // Nothing new: the room is left out altogether.
    const quiet = await h.sync(bob, { since: token });
    expect(quiet.rooms.join).toEqual({});
    expect(quiet.next_batch).toBe(token);
  });

  it('across a gap: limited, with the state changes of the gap in state', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    const renameId = await h.setState(alice, roomId, 'm.room.name', { name: 'Renamed in the gap' });
    await h.setState(alice, roomId, 'm.room.topic', { topic: 'also in the gap' });
    for (let i = 0; i < 12; i++) await h.send(alice, roomId, `g${i}`);
    const body = await h.sync(bob, { since: token });
    const room = body.rooms.join[roomId];
    expect(room?.timeline.limited).toBe(true);
    expect(bodies(room?.timeline.events ?? [])).toEqual(Array.from({ length: 10 }, (_, i) => `g${i + 2}`));
    // The delta between `since` and the timeline start: exactly the two changed keys.
    expect(stateKeys(room?.state?.events ?? [])).toEqual(['m.room.name|', 'm.room.topic|']);
    expect(room?.state?.events.find((e) => e.type === 'm.room.name')?.event_id).toBe(renameId);
  });

  it('does not repeat state changes that are inside the timeline', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    for (let i = 0; i < 12; i++) await h.send(alice, roomId, `g${i}`);
    const renameId = await h.setState(alice, roomId, 'm.room.name', { name: 'In the timeline' });
    const body = await h.sync(bob, { since: token });
    const room = body.rooms.join[roomId];
    expect(room?.timeline.limited).toBe(true);
    expect(room?.timeline.events.at(-1)?.event_id).toBe(renameId);
    expect(room?.state?.events).toEqual([]);
  });

  it('full_state=true sends the whole state for rooms with no change', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    await h.send(alice, roomId, 'after');
    const body = await h.sync(bob, { since: token, full_state: true, timeout: 20_000 });
    const room = body.rooms.join[roomId];
    expect(bodies(room?.timeline.events ?? [])).toEqual(['after']);
    expect(stateKeys(room?.state?.events ?? [])).toEqual(
      expect.arrayContaining([
        'm.room.create|',
        `m.room.member|${alice.userId}`,
        `m.room.member|${bob.userId}`,
        'm.room.name|',
      ]),
    );
  });

  it('state_after on an initial sync is the whole state at the end of the timeline', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const renameId = await h.setState(alice, roomId, 'm.room.name', { name: 'Final' });
    const body = await h.sync(bob, { 'org.matrix.msc4222.use_state_after': true });
    const room = body.rooms.join[roomId];
    const after = room?.['org.matrix.msc4222.state_after']?.events ?? [];
    expect(after.find((e) => e.type === 'm.room.name')?.event_id).toBe(renameId);
    expect(stateKeys(after)).toEqual(
      expect.arrayContaining(['m.room.create|', `m.room.member|${bob.userId}`]),
    );
    expect(room?.timeline.events.at(-1)?.event_id).toBe(renameId);
  });

  it('state_after (stable and MSC4222 names) holds the state at the end of the timeline', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    const renameId = await h.setState(alice, roomId, 'm.room.name', { name: 'After' });
    const stable = await h.sync(bob, { since: token, use_state_after: true });
    const room = stable.rooms.join[roomId];
    expect(room?.state).toBeUndefined();
    expect(room?.state_after?.events.map((e) => e.event_id)).toEqual([renameId]);
    const unstable = await h.sync(bob, { since: token, 'org.matrix.msc4222.use_state_after': true });
    expect(
      unstable.rooms.join[roomId]?.['org.matrix.msc4222.state_after']?.events.map((e) => e.event_id),
    ).toEqual([renameId]);
    expect(unstable.rooms.join[roomId]?.state).toBeUndefined();
  });
});

describe('long-poll', () => {
  it('wakes when another user sends, well before the timeout', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    const started = Date.now();
    const waiting = h.sync(bob, { since: token, timeout: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await h.send(alice, roomId, 'wake up');
    const body = await waiting;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(bodies(body.rooms.join[roomId]?.timeline.events ?? [])).toEqual(['wake up']);
  });

  it('does not wake for rooms the user is not in', async () => {
    h = await SyncHarness.start({ maxSyncTimeoutMs: 300 });
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const roomId = await h.createRoom(alice, {});
    const token = (await h.sync(bob)).next_batch;
    const waiting = h.sync(bob, { since: token, timeout: 10_000 });
    await h.send(alice, roomId, 'not for bob');
    const body = await waiting;
    expect(body.rooms.join).toEqual({});
  });

  it('timeout=0 answers at once, empty', async () => {
    const { bob } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    const body = await h.sync(bob, { since: token, timeout: 0 });
    expect(body.rooms.join).toEqual({});
    expect(body.next_batch).toBe(token);
  });

  it('is capped by maxSyncTimeoutMs whatever the client asks', async () => {
    h = await SyncHarness.start({ maxSyncTimeoutMs: 200 });
    const alice = await h.user('alice');
    await h.createRoom(alice, {});
    const token = (await h.sync(alice)).next_batch;
    const started = Date.now();
    const body = await h.sync(alice, { since: token, timeout: 600_000 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(body.rooms.join).toEqual({});
  });

  it('stops waiting when the request is aborted', async () => {
    const { bob } = await twoUsersInRoom();
    const services = h.hs.internals;
    const token = (await h.sync(bob)).next_batch;
    const controller = new AbortController();
    const started = Date.now();
    const waiting = services.sync.sync({
      userId: bob.userId,
      deviceId: bob.deviceId,
      since: token,
      timeoutMs: 20_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    const body = await waiting;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(body.rooms.join).toEqual({});
  });

  it("wakes for the user's own account data", async () => {
    const { bob } = await twoUsersInRoom();
    const token = (await h.sync(bob)).next_batch;
    const waiting = h.sync(bob, { since: token, timeout: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    await h.ok('PUT', `/user/${encodeURIComponent(bob.userId)}/account_data/org.example.wake`, bob, {
      x: true,
    });
    const body = await waiting;
    expect(body.account_data.events.map((e) => e.type)).toEqual(['org.example.wake']);
  });
});

describe('membership sections', () => {
  it('moves a room from invite to join to leave', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const roomId = await h.createRoom(alice, { name: 'Invite only' });
    for (let i = 0; i < 3; i++) await h.send(alice, roomId, `before${i}`);
    let token = (await h.sync(bob)).next_batch;

    await h.invite(alice, roomId, bob);
    let body = await h.sync(bob, { since: token });
    const invite = body.rooms.invite[roomId];
    expect(body.rooms.join[roomId]).toBeUndefined();
    const inviteState = invite?.invite_state.events ?? [];
    const types = inviteState.map((e) => e.type);
    for (const type of ['m.room.create', 'm.room.join_rules', 'm.room.name']) expect(types).toContain(type);
    const own = inviteState.find((e) => e.type === 'm.room.member' && e.state_key === bob.userId);
    expect(own?.sender).toBe(alice.userId);
    expect((own?.content as { membership?: string } | undefined)?.membership).toBe('invite');
    // The inviter's member event is there for their display name; stripped events keep four keys.
    expect(inviteState.some((e) => e.type === 'm.room.member' && e.state_key === alice.userId)).toBe(true);
    for (const e of inviteState)
      expect(Object.keys(e).sort()).toEqual(['content', 'sender', 'state_key', 'type']);
    token = body.next_batch;

    await h.join(bob, roomId);
    body = await h.sync(bob, { since: token });
    expect(body.rooms.invite[roomId]).toBeUndefined();
    const joined = body.rooms.join[roomId];
    // Newly joined: the whole room as an initial sync would show it (history included: shared).
    const seen = [...(joined?.state?.events ?? []), ...(joined?.timeline.events ?? [])];
    expect(seen.some((e) => e.type === 'm.room.create')).toBe(true);
    expect(bodies(joined?.timeline.events ?? [])).toEqual(['before0', 'before1', 'before2']);
    expect(joined?.timeline.events.at(-1)?.state_key).toBe(bob.userId);
    token = body.next_batch;

    await h.send(alice, roomId, 'while bob is here');
    await h.leave(bob, roomId);
    await h.send(alice, roomId, 'after bob left');
    body = await h.sync(bob, { since: token });
    expect(body.rooms.join[roomId]).toBeUndefined();
    const left = body.rooms.leave[roomId];
    expect(bodies(left?.timeline.events ?? [])).toEqual(['while bob is here']);
    const last = left?.timeline.events.at(-1);
    expect([last?.type, last?.state_key, last?.content.membership]).toEqual([
      'm.room.member',
      bob.userId,
      'leave',
    ]);
    token = body.next_batch;

    // Later syncs leave the room out; an initial sync shows it only with include_leave.
    await h.send(alice, roomId, 'later');
    expect((await h.sync(bob, { since: token })).rooms.leave).toEqual({});
    expect((await h.sync(bob)).rooms.leave).toEqual({});
    const archived = await h.sync(bob, { filter: JSON.stringify({ room: { include_leave: true } }) });
    expect(bodies(archived.rooms.leave[roomId]?.timeline.events ?? [])).not.toContain('later');
    expect(archived.rooms.leave[roomId]?.timeline.events.at(-1)?.content.membership).toBe('leave');
  });

  it('a profile change is not a new join: no full state, no repeated history', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    await h.send(alice, roomId, 'old');
    const token = (await h.sync(bob)).next_batch;
    await h.ok('PUT', `/profile/${encodeURIComponent(bob.userId)}/displayname`, bob, {
      displayname: 'Robert',
    });
    const body = await h.sync(bob, { since: token });
    const room = body.rooms.join[roomId];
    expect(bodies(room?.timeline.events ?? [])).toEqual([]);
    expect(room?.timeline.events.map((e) => e.type)).toEqual(['m.room.member']);
    expect(room?.state?.events).toEqual([]);
  });

  it('shows a knock in knock_state, and to the room as a member event', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const carol = await h.user('carol');
    const roomId = await h.createRoom(alice, {
      name: 'Knock here',
      initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
    });
    const aliceToken = (await h.sync(alice)).next_batch;
    const carolToken = (await h.sync(carol)).next_batch;
    await h.ok('POST', `/knock/${encodeURIComponent(roomId)}`, carol, {});
    const body = await h.sync(carol, { since: carolToken });
    const knockState = body.rooms.knock[roomId]?.knock_state.events ?? [];
    expect(knockState.map((e) => e.type)).toEqual(
      expect.arrayContaining(['m.room.create', 'm.room.join_rules', 'm.room.name']),
    );
    const own = knockState.find((e) => e.type === 'm.room.member' && e.state_key === carol.userId);
    expect((own?.content as { membership?: string } | undefined)?.membership).toBe('knock');
    const seenByAlice = await h.sync(alice, { since: aliceToken });
    const knock = seenByAlice.rooms.join[roomId]?.timeline.events.find((e) => e.state_key === carol.userId);
    expect(knock?.content.membership).toBe('knock');
  });
});

describe('filters', () => {
  it('applies an inline timeline filter (limit, types, senders, not_types)', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    await h.send(alice, roomId, 'a1');
    await h.send(bob, roomId, 'b1');
    await h.send(alice, roomId, 'a2');
    await h.send(bob, roomId, 'b2');
    const onlyBob = await h.sync(alice, {
      filter: JSON.stringify({
        room: { timeline: { limit: 5, senders: [bob.userId], types: ['m.room.message'] } },
      }),
    });
    expect(bodies(onlyBob.rooms.join[roomId]?.timeline.events ?? [])).toEqual(['b1', 'b2']);
    const noMessages = await h.sync(alice, {
      filter: JSON.stringify({ room: { timeline: { not_types: ['m.room.*'] } } }),
    });
    expect(noMessages.rooms.join[roomId]?.timeline.events).toEqual([]);
    const two = await h.sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 2 } } }) });
    expect(bodies(two.rooms.join[roomId]?.timeline.events ?? [])).toEqual(['a2', 'b2']);
    expect(two.rooms.join[roomId]?.timeline.limited).toBe(true);
  });

  it('loads a stored filter by ID', async () => {
    const { alice, roomId } = await twoUsersInRoom();
    for (let i = 0; i < 4; i++) await h.send(alice, roomId, `s${i}`);
    const created = await h.ok('POST', `/user/${encodeURIComponent(alice.userId)}/filter`, alice, {
      room: { timeline: { limit: 3 } },
    });
    const body = await h.sync(alice, { filter: created.filter_id as string });
    expect(bodies(body.rooms.join[roomId]?.timeline.events ?? [])).toEqual(['s1', 's2', 's3']);
  });

  it('rooms / not_rooms choose the rooms', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const one = await h.createRoom(alice, {});
    const two = await h.createRoom(alice, {});
    const only = await h.sync(alice, { filter: JSON.stringify({ room: { rooms: [one] } }) });
    expect(Object.keys(only.rooms.join)).toEqual([one]);
    const without = await h.sync(alice, { filter: JSON.stringify({ room: { not_rooms: [one] } }) });
    expect(Object.keys(without.rooms.join)).toEqual([two]);
  });

  it('lazy_load_members sends only the members of timeline senders and the user', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const carol = await h.user('carol');
    const dave = await h.user('dave');
    const roomId = await h.createRoom(alice, { preset: 'public_chat', name: 'Lazy' });
    for (const u of [bob, carol, dave]) await h.join(u, roomId);
    await h.send(carol, roomId, 'c1');
    for (let i = 0; i < 3; i++) await h.send(bob, roomId, `b${i}`);
    const filter = JSON.stringify({ room: { timeline: { limit: 3 }, state: { lazy_load_members: true } } });
    const body = await h.sync(alice, { filter });
    const room = body.rooms.join[roomId];
    const members = (room?.state?.events ?? [])
      .filter((e) => e.type === 'm.room.member')
      .map((e) => e.state_key);
    expect(members.sort()).toEqual([alice.userId, bob.userId].sort());
    expect(stateKeys(room?.state?.events ?? [])).toContain('m.room.name|');
    // Without lazy-loading every member is there.
    const full = await h.sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 3 } } }) });
    const all = (full.rooms.join[roomId]?.state?.events ?? []).filter((e) => e.type === 'm.room.member');
    expect(all).toHaveLength(4);
    // Incremental: a sender the client has not heard of brings their member event along.
    const token = body.next_batch;
    await h.send(dave, roomId, 'd1');
    const next = await h.sync(alice, { since: token, filter });
    const nextMembers = (next.rooms.join[roomId]?.state?.events ?? []).map((e) => e.state_key);
    expect(nextMembers).toEqual([dave.userId]);
    // include_redundant_members keeps them too (they are always sent again here).
    const redundant = await h.sync(alice, {
      since: token,
      filter: JSON.stringify({
        room: { timeline: { limit: 3 }, state: { lazy_load_members: true, include_redundant_members: true } },
      }),
    });
    expect((redundant.rooms.join[roomId]?.state?.events ?? []).map((e) => e.state_key)).toEqual([
      dave.userId,
    ]);
  });

  it('event_fields keeps only the listed fields', async () => {
    const { alice, roomId } = await twoUsersInRoom();
    await h.send(alice, roomId, 'fields');
    const body = await h.sync(alice, {
      filter: JSON.stringify({ event_fields: ['type', 'content.body'], room: { timeline: { limit: 1 } } }),
    });
    expect(body.rooms.join[roomId]?.timeline.events).toEqual([
      { type: 'm.room.message', content: { body: 'fields' } },
    ]);
  });

  it('event_format federation gives the stored PDU', async () => {
    const { alice, roomId } = await twoUsersInRoom();
    await h.send(alice, roomId, 'pdu');
    const body = await h.sync(alice, {
      filter: JSON.stringify({ event_format: 'federation', room: { timeline: { limit: 1 } } }),
    });
    const event = body.rooms.join[roomId]?.timeline.events[0] as unknown as Record<string, unknown>;
    expect(event.hashes).toBeDefined();
    expect(event.signatures).toBeDefined();
    expect(event.depth).toBeTypeOf('number');
  });

  it('account_data and presence filters apply', async () => {
    const { alice } = await twoUsersInRoom();
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/org.example.keep`, alice, {});
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/org.example.drop`, alice, {});
    const body = await h.sync(alice, {
      filter: JSON.stringify({
        account_data: { types: ['org.example.keep'] },
        presence: { not_types: ['*'] },
      }),
    });
    expect(body.account_data.events.map((e) => e.type)).toEqual(['org.example.keep']);
    expect(body.presence.events).toEqual([]);
  });
});

describe('ephemeral, account data, notifications', () => {
  it('shows typing and receipts as ephemeral events', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const eventId = await h.send(alice, roomId, 'read me');
    const token = (await h.sync(alice)).next_batch;
    await h.ok('PUT', `/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(bob.userId)}`, bob, {
      typing: true,
      timeout: 10_000,
    });
    await h.ok(
      'POST',
      `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`,
      bob,
      {},
    );
    const body = await h.sync(alice, { since: token });
    const ephemeral = body.rooms.join[roomId]?.ephemeral?.events ?? [];
    expect(ephemeral.find((e) => e.type === 'm.typing')?.content).toEqual({ user_ids: [bob.userId] });
    const receipt = ephemeral.find((e) => e.type === 'm.receipt')?.content as Record<
      string,
      Record<string, Record<string, { ts?: number }>>
    >;
    expect(receipt[eventId]?.['m.read']?.[bob.userId]?.ts).toBeTypeOf('number');
    // The next sync has no repeat; stopping typing is news again.
    const next = body.next_batch;
    expect((await h.sync(alice, { since: next })).rooms.join).toEqual({});
    await h.ok('PUT', `/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(bob.userId)}`, bob, {
      typing: false,
    });
    const stopped = await h.sync(alice, { since: next });
    expect(stopped.rooms.join[roomId]?.ephemeral?.events).toEqual([
      { type: 'm.typing', content: { user_ids: [] } },
    ]);
  });

  it('keeps private read receipts to their owner', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const eventId = await h.send(alice, roomId, 'secret read');
    await h.ok(
      'POST',
      `/rooms/${encodeURIComponent(roomId)}/receipt/m.read.private/${encodeURIComponent(eventId)}`,
      bob,
      {},
    );
    const forAlice = await h.sync(alice);
    expect(JSON.stringify(forAlice.rooms.join[roomId]?.ephemeral)).not.toContain('m.read.private');
    const forBob = await h.sync(bob);
    const receipt = forBob.rooms.join[roomId]?.ephemeral?.events.find((e) => e.type === 'm.receipt')
      ?.content as Record<string, Record<string, unknown>>;
    expect(Object.keys(receipt[eventId]?.['m.read.private'] ?? {})).toEqual([bob.userId]);
  });

  it('delivers account data changes once', async () => {
    const { alice, roomId } = await twoUsersInRoom();
    let token = (await h.sync(alice)).next_batch;
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/org.example.once`, alice, {
      n: 1,
    });
    await h.ok(
      'PUT',
      `/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/org.example.room`,
      alice,
      { r: 1 },
    );
    let body = await h.sync(alice, { since: token });
    expect(body.account_data.events).toEqual([{ type: 'org.example.once', content: { n: 1 } }]);
    expect(body.rooms.join[roomId]?.account_data.events).toEqual([
      { type: 'org.example.room', content: { r: 1 } },
    ]);
    token = body.next_batch;
    body = await h.sync(alice, { since: token });
    expect(body.account_data.events).toEqual([]);
    expect(body.rooms.join).toEqual({});
  });

  it('counts unread notifications and highlights, cleared by a read receipt', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    await h.send(bob, roomId, 'one');
    await h.send(bob, roomId, 'two');
    const last = await h.send(bob, roomId, 'hey alice', { 'm.mentions': { user_ids: [alice.userId] } });
    const body = await h.sync(alice);
    expect(body.rooms.join[roomId]?.unread_notifications).toEqual({
      notification_count: 3,
      highlight_count: 1,
    });
    // The sender's own messages do not count for them.
    expect((await h.sync(bob)).rooms.join[roomId]?.unread_notifications).toEqual({
      notification_count: 0,
      highlight_count: 0,
    });
    await h.ok(
      'POST',
      `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(last)}`,
      alice,
      {},
    );
    const after = await h.sync(alice, { since: body.next_batch });
    expect(after.rooms.join[roomId]?.unread_notifications).toEqual({
      notification_count: 0,
      highlight_count: 0,
    });
  });

  it('counts unread notifications per thread only as the main count (thread counts are empty)', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    await h.send(bob, roomId, 'x');
    const body = await h.sync(alice, {
      filter: JSON.stringify({ room: { timeline: { unread_thread_notifications: true } } }),
    });
    expect(body.rooms.join[roomId]?.unread_thread_notifications).toEqual({});
    expect(body.rooms.join[roomId]?.unread_notifications?.notification_count).toBe(1);
  });
});

describe('presence', () => {
  it('marks a syncing user online unless set_presence says otherwise, and shows room-mates only', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    const carol = await h.user('carol');
    await h.join(carol, roomId);
    const stranger = await h.user('stranger');
    await h.sync(bob);
    await h.sync(carol, { set_presence: 'offline' });
    await h.sync(stranger, { set_presence: 'unavailable' });
    const body = await h.sync(alice, { set_presence: 'unavailable' });
    const byUser = new Map(
      body.presence.events.map((e) => [e.sender, (e.content as { presence: string }).presence]),
    );
    expect(byUser.get(bob.userId)).toBe('online');
    expect(byUser.get(alice.userId)).toBe('unavailable');
    expect(byUser.has(carol.userId)).toBe(false);
    expect(byUser.has(stranger.userId)).toBe(false);
    // Only changes come again.
    expect(
      (await h.sync(alice, { since: body.next_batch, set_presence: 'unavailable' })).presence.events,
    ).toEqual([]);
  });
});

describe('summary', () => {
  it('gives heroes in join order and member counts for a room without a name', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const carol = await h.user('carol');
    const dave = await h.user('dave');
    const roomId = await h.createRoom(alice, { preset: 'public_chat' });
    await h.join(carol, roomId);
    await h.join(bob, roomId);
    await h.invite(alice, roomId, dave);
    const body = await h.sync(alice);
    expect(body.rooms.join[roomId]?.summary).toEqual({
      'm.heroes': [carol.userId, bob.userId, dave.userId],
      'm.joined_member_count': 3,
      'm.invited_member_count': 1,
    });
    // A member change in an incremental sync brings a fresh summary.
    const erin = await h.user('erin');
    await h.join(erin, roomId);
    const joinedLater = await h.sync(alice, { since: body.next_batch });
    expect(joinedLater.rooms.join[roomId]?.summary).toEqual({
      'm.heroes': [carol.userId, bob.userId, dave.userId, erin.userId],
      'm.joined_member_count': 4,
      'm.invited_member_count': 1,
    });
    // A named room needs no heroes.
    await h.setState(alice, roomId, 'm.room.name', { name: 'Named' });
    const named = await h.sync(alice, { since: joinedLater.next_batch });
    expect(named.rooms.join[roomId]?.timeline.events.map((e) => e.type)).toEqual(['m.room.name']);
    expect(named.rooms.join[roomId]?.summary).toBeUndefined();
    const fresh = await h.sync(alice);
    expect(fresh.rooms.join[roomId]?.summary).toEqual({
      'm.joined_member_count': 4,
      'm.invited_member_count': 1,
    });
  });

  it('falls back to left members when nobody else is joined or invited', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const roomId = await h.createRoom(alice, { preset: 'public_chat' });
    await h.join(bob, roomId);
    await h.leave(bob, roomId);
    const body = await h.sync(alice);
    expect(body.rooms.join[roomId]?.summary?.['m.heroes']).toEqual([bob.userId]);
  });
});

describe('ignored users', () => {
  it('hides their messages but not their state events, and drops their invites', async () => {
    const { alice, bob, roomId } = await twoUsersInRoom();
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/m.ignored_user_list`, alice, {
      ignored_users: { [bob.userId]: {} },
    });
    await h.send(bob, roomId, 'ignored');
    await h.send(alice, roomId, 'mine');
    // A state event from bob (his own member event, by a profile change) is still shown.
    await h.ok('PUT', `/profile/${encodeURIComponent(bob.userId)}/displayname`, bob, {
      displayname: 'Still seen',
    });
    const body = await h.sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 20 } } }) });
    const events = body.rooms.join[roomId]?.timeline.events ?? [];
    expect(bodies(events)).toEqual(['mine']);
    const renamed = events.find(
      (e: ClientEvent) => e.type === 'm.room.member' && e.content.displayname === 'Still seen',
    );
    expect(renamed?.sender).toBe(bob.userId);

    const bobsRoom = await h.createRoom(bob, { name: 'From bob' });
    await h.invite(bob, bobsRoom, alice);
    const after = await h.sync(alice);
    expect(after.rooms.invite[bobsRoom]).toBeUndefined();
  });
});

describe('devices', () => {
  it('gives transaction_id only to the sending device', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    await h.send(alice, roomId, 'from device one');
    const other: User = { ...alice, deviceId: 'OTHERDEVICE', accessToken: 'second-device-token-0123456789' };
    await h.hs.store.accounts.createSession({
      userId: alice.userId,
      deviceId: other.deviceId,
      accessToken: other.accessToken,
      now: Date.now(),
    });
    const mine = (await h.sync(alice)).rooms.join[roomId]?.timeline.events.find(
      (e) => e.content.body === 'from device one',
    );
    const theirs = (await h.sync(other)).rooms.join[roomId]?.timeline.events.find(
      (e) => e.content.body === 'from device one',
    );
    expect(mine?.unsigned?.transaction_id).toBeTypeOf('string');
    expect(theirs?.unsigned?.transaction_id).toBeUndefined();
  });

  it('delivers to-device messages in chunks and deletes the acknowledged ones', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const messages = Array.from({ length: 130 }, (_, i) => ({
      userId: alice.userId,
      deviceId: alice.deviceId,
      sender: '@bob:test.localhost',
      type: 'org.example.ping',
      content: { i },
    }));
    await h.hs.store.e2ee.sendToDevice(messages);
    const first = await h.sync(alice);
    expect(first.to_device.events).toHaveLength(100);
    expect(first.to_device.events[0]).toEqual({
      sender: '@bob:test.localhost',
      type: 'org.example.ping',
      content: { i: 0 },
    });
    // A second sync from the same (unacknowledged) point gets the same messages again.
    expect((await h.sync(alice)).to_device.events).toHaveLength(100);
    const second = await h.sync(alice, { since: first.next_batch });
    expect(second.to_device.events.map((e) => (e.content as { i: number }).i)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 100),
    );
    const third = await h.sync(alice, { since: second.next_batch });
    expect(third.to_device.events).toEqual([]);
    // Acknowledged messages are gone from the store.
    const left = await h.hs.store.e2ee.toDeviceMessages(alice.userId, alice.deviceId, 0, 500);
    expect(left.messages).toEqual([]);
  });

  it('reports one-time key counts and device list changes of room-mates', async () => {
    const { alice, bob } = await twoUsersInRoom();
    await h.hs.store.e2ee.addOneTimeKeys(alice.userId, alice.deviceId, [
      { algorithm: 'signed_curve25519', keyId: 'AAAA', key: { key: 'k' } },
    ]);
    const token = (await h.sync(alice)).next_batch;
    await h.hs.store.e2ee.putDeviceKeys(bob.userId, bob.deviceId, {
      user_id: bob.userId,
      device_id: bob.deviceId,
    });
    await h.hs.store.e2ee.markDeviceListChanged('@stranger:test.localhost');
    // Written straight to the store: tell the notifier, as every service write does (woken
    // /sync passes share positions read since the notifier last moved).
    h.hs.internals.ctx.notifier.notify({ users: [alice.userId] });
    const body = await h.sync(alice, { since: token });
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    expect(body.device_lists).toEqual({ changed: [bob.userId], left: [] });
  });
});

describe('errors', () => {
  it('answers bad parameters with Matrix errors', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const cases: [Record<string, string>, string][] = [
      [{ since: 'garbage' }, 'M_INVALID_PARAM'],
      [{ since: 's1_2' }, 'M_INVALID_PARAM'],
      [{ filter: '{not json' }, 'M_INVALID_PARAM'],
      [{ filter: 'no-such-filter' }, 'M_INVALID_PARAM'],
      [{ filter: JSON.stringify({ room: { timeline: { limit: 'ten' } } }) }, 'M_INVALID_PARAM'],
      [{ timeout: '-1' }, 'M_INVALID_PARAM'],
      [{ timeout: 'soon' }, 'M_INVALID_PARAM'],
      [{ full_state: 'yes' }, 'M_INVALID_PARAM'],
      [{ set_presence: 'busy' }, 'M_INVALID_PARAM'],
    ];
    for (const [params, errcode] of cases) {
      const res = await h.rawSync(alice, params);
      expect(res.status, JSON.stringify(params)).toBe(400);
      expect(res.body.errcode, JSON.stringify(params)).toBe(errcode);
    }
    const anonymous = await h.hs.call('GET', '/_matrix/client/v3/sync');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errcode).toBe('M_MISSING_TOKEN');
    // The r0 prefix answers too.
    const r0 = await h.hs.call('GET', '/_matrix/client/r0/sync', { token: alice.accessToken });
    expect(r0.status).toBe(200);
  });

  it('reads a token from the future as now, not as an error', async () => {
    h = await SyncHarness.start();
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    const body = await h.sync(alice, { since: 's999999_999_999_999_999_999_999' });
    expect(body.rooms.join[roomId]).toBeUndefined();
    await h.send(alice, roomId, 'next');
    const next = await h.sync(alice, { since: body.next_batch });
    expect(bodies(next.rooms.join[roomId]?.timeline.events ?? [])).toEqual(['next']);
  });
});
