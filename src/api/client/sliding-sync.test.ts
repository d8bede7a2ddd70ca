/**
 * Simplified sliding sync (MSC4186) through `hs.fetch`: lists, ranges and recency order,
 * filters, required_state and lazy members, subscriptions, `pos` (a retried request, an
 * unknown one, a restart of the services over the same store), long-poll, and what bad
 * input gets.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { SyncHarness, type User } from './testing-sync.ts';

const PATH = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';

type Room = {
  initial?: boolean;
  membership?: string;
  name?: string;
  bump_stamp?: number;
  timeline?: JsonObject[];
  required_state?: JsonObject[];
  invite_state?: JsonObject[];
  limited?: boolean;
  num_live?: number;
  joined_count?: number;
  lists?: string[];
  heroes?: { user_id: string }[];
};
type Answer = {
  pos: string;
  lists: Record<string, { count: number }>;
  rooms: Record<string, Room>;
  extensions: Record<string, JsonObject>;
};

let h: SyncHarness;
beforeEach(async () => {
  h = await SyncHarness.start();
});
afterEach(() => h.close());

async function slide(
  user: User,
  body: JsonObject,
  query: Record<string, string | number> = {},
): Promise<{ status: number; body: Answer & { errcode?: string } }> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, val]) => [k, String(val)]));
  const res = await h.hs.call('POST', `${PATH}?${qs}`, { token: user.accessToken, body });
  return res as unknown as { status: number; body: Answer & { errcode?: string } };
}

async function ok(
  user: User,
  body: JsonObject,
  query: Record<string, string | number> = {},
): Promise<Answer> {
  const res = await slide(user, body, query);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

const list = (ranges: number[][], extra: JsonObject = {}): JsonObject => ({
  ranges,
  timeline_limit: 1,
  required_state: [['m.room.name', '']],
  ...extra,
});

const bodiesOf = (room: Room | undefined) =>
  (room?.timeline ?? [])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => (e.content as JsonObject).body);

describe('sliding sync: lists', () => {
  it('is advertised in /versions', async () => {
    const res = await h.hs.call('GET', '/_matrix/client/versions');
    expect((res.body.unstable_features as JsonObject)['org.matrix.simplified_msc3575']).toBe(true);
  });

  it('sends the rooms in range, most recent first, and only what changed afterwards', async () => {
    const alice = await h.user('alice');
    const rooms: string[] = [];
    for (let i = 0; i < 5; i++) {
      const roomId = await h.createRoom(alice, { name: `room ${i}` });
      await h.send(alice, roomId, `hello ${i}`);
      rooms.push(roomId);
    }
    const first = await ok(alice, { lists: { all: list([[0, 1]]) } });
    expect(first.lists.all).toEqual({ count: 5 });
    // The two most recent: rooms 4 and 3.
    expect(Object.keys(first.rooms).sort()).toEqual([rooms[3], rooms[4]].sort());
    const top = first.rooms[rooms[4] as string] as Room;
    expect(top.initial).toBe(true);
    expect(top.name).toBe('room 4');
    expect(top.membership).toBe('join');
    expect(top.lists).toEqual(['all']);
    expect(bodiesOf(top)).toEqual(['hello 4']);
    expect(top.limited).toBe(true);
    expect(top.required_state?.map((e) => e.type)).toEqual(['m.room.name']);
    expect(top.bump_stamp).toBeGreaterThan((first.rooms[rooms[3] as string] as Room).bump_stamp as number);

    // Nothing new: nothing sent.
    const again = await ok(alice, { lists: { all: list([[0, 1]]) } }, { pos: first.pos });
    expect(again.rooms).toEqual({});

    // A message in room 0 moves it to the top: it enters the range, sent whole.
    await h.send(alice, rooms[0] as string, 'bump');
    const moved = await ok(alice, { lists: { all: list([[0, 1]]) } }, { pos: again.pos });
    expect(Object.keys(moved.rooms)).toEqual([rooms[0]]);
    expect(moved.rooms[rooms[0] as string]?.initial).toBe(true);
    expect(bodiesOf(moved.rooms[rooms[0] as string])).toEqual(['bump']);

    // A message in a room the client has: only the new event, not initial, live.
    await h.send(alice, rooms[0] as string, 'more');
    const inc = await ok(alice, { lists: { all: list([[0, 1]]) } }, { pos: moved.pos });
    const room0 = inc.rooms[rooms[0] as string] as Room;
    expect(room0.initial).toBeUndefined();
    expect(bodiesOf(room0)).toEqual(['more']);
    expect(room0.num_live).toBe(1);

    // Widening the range sends only the rooms the client lacks: room 3, which fell out of the
    // range unchanged, it still has.
    const wide = await ok(alice, { lists: { all: list([[0, 4]]) } }, { pos: inc.pos });
    expect(Object.keys(wide.rooms).sort()).toEqual([rooms[1], rooms[2]].sort());
    // Room 3 changed while out of range: back in range, it gets what it missed, not initial.
    await h.send(alice, rooms[3] as string, 'missed');
    const narrow = await ok(alice, { lists: { all: list([[0, 0]]) } }, { pos: wide.pos });
    expect(Object.keys(narrow.rooms)).toEqual([rooms[3]]);
    expect(narrow.rooms[rooms[3] as string]?.initial).toBeUndefined();
    expect(bodiesOf(narrow.rooms[rooms[3] as string])).toEqual(['missed']);
  });

  it('filters by DM, encryption, invites and room type', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const plain = await h.createRoom(alice, {});
    const encrypted = await h.createRoom(alice, {
      initial_state: [
        { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
      ],
    });
    const space = await h.createRoom(alice, { creation_content: { type: 'm.space' } });
    const dm = await h.createRoom(bob, { is_direct: true, invite: [alice.userId] });
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/m.direct`, alice, {
      [bob.userId]: [plain],
    });
    const count = async (filters: JsonObject) =>
      Object.keys((await ok(alice, { lists: { l: list([[0, 20]], { filters }) } })).rooms).sort();
    expect(await count({ is_encrypted: true })).toEqual([encrypted]);
    expect(await count({ is_invite: true })).toEqual([dm]);
    expect(await count({ is_dm: true })).toEqual([plain, dm].sort());
    expect(await count({ room_types: ['m.space'] })).toEqual([space]);
    expect(await count({ not_room_types: ['m.space'], is_invite: false })).toEqual([plain, encrypted].sort());
    const invite = (await ok(alice, { lists: { l: list([[0, 20]], { filters: { is_invite: true } }) } }))
      .rooms[dm] as Room;
    expect(invite.membership).toBe('invite');
    expect(invite.invite_state?.some((e) => e.type === 'm.room.member')).toBe(true);
  });

  it('filters by room_name_like on the name a client shows, and sorts by name or notification level', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const team = await h.createRoom(alice, { name: 'Alpha Team' });
    const aliased = await h.createRoom(alice, { room_alias_name: 'zeta-team' });
    const withBob = await h.createRoom(alice, { invite: [bob.userId] });
    await h.join(bob, withBob);
    await h.ok('PUT', `/profile/${encodeURIComponent(bob.userId)}/displayname`, bob, {
      displayname: 'Bobby Tables',
    });
    const quiet = await h.createRoom(alice, { name: 'beta' });
    const ids = async (extra: JsonObject) =>
      Object.keys((await ok(alice, { lists: { l: list([[0, 20]], extra) } })).rooms);
    expect(await ids({ filters: { room_name_like: 'TEAM' } })).toEqual(
      expect.arrayContaining([team, aliased]),
    );
    expect((await ids({ filters: { room_name_like: 'TEAM' } })).length).toBe(2);
    expect(await ids({ filters: { room_name_like: 'bobby' } })).toEqual([withBob]);
    expect(await ids({ filters: { room_name_like: 'nothing like it' } })).toEqual([]);

    // The order shows in which rooms a range picks: the first two by name, then by recency.
    const top2 = async (sort: string[]) =>
      Object.keys((await ok(alice, { lists: { l: list([[0, 1]], { sort }) } })).rooms).sort();
    // By name: "#zeta-team:…" sorts first ('#' < 'A'), then "Alpha Team".
    expect(await top2(['by_name'])).toEqual([aliased, team].sort());
    expect(await top2(['by_recency'])).toEqual([quiet, withBob].sort());
    // Bob writes in the team room: it notifies alice, so it leads by notification level.
    await h.invite(alice, team, bob);
    await h.join(bob, team);
    await h.send(bob, team, 'ping');
    await h.send(alice, quiet, 'alice is newest');
    expect(await top2(['by_notification_level', 'by_recency'])).toEqual([team, quiet].sort());
    const bad = await slide(alice, { lists: { l: list([[0, 1]], { sort: ['by_mood'] }) } });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_BAD_JSON']);
  });

  it('gives required_state with $ME, wildcards and lazy members', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const carol = await h.user('carol');
    const roomId = await h.createRoom(alice, { preset: 'public_chat', name: 'lazy' });
    await h.join(bob, roomId);
    await h.join(carol, roomId);
    await h.send(bob, roomId, 'from bob');
    const answer = await ok(alice, {
      lists: {
        l: {
          ranges: [[0, 0]],
          timeline_limit: 1,
          required_state: [
            ['m.room.create', ''],
            ['m.room.member', '$LAZY'],
            ['m.room.member', '$ME'],
          ],
        },
      },
    });
    const state = answer.rooms[roomId]?.required_state ?? [];
    const members = state.filter((e) => e.type === 'm.room.member').map((e) => e.state_key);
    // Bob sent the timeline's event; Alice asked for her own; Carol is left out.
    expect(members.sort()).toEqual([alice.userId, bob.userId].sort());
    expect(state.some((e) => e.type === 'm.room.create')).toBe(true);
    expect(answer.rooms[roomId]?.joined_count).toBe(3);

    // The MSC's later form: everything but the create event.
    const later = await ok(alice, {
      lists: {
        l: {
          range: [0, 0],
          timeline_limit: 0,
          required_state: { include: [{}], exclude: [{ type: 'm.room.create' }] },
        },
      },
    });
    const types = new Set(later.rooms[roomId]?.required_state?.map((e) => e.type));
    expect(types.has('m.room.create')).toBe(false);
    expect(types.has('m.room.name')).toBe(true);
    expect(later.rooms[roomId]?.required_state?.filter((e) => e.type === 'm.room.member')).toHaveLength(3);
  });

  it('sends a left room once to a connection that had it, then keeps it out of new connections', async () => {
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    const first = await ok(alice, { lists: { l: list([[0, 9]]) } });
    expect(first.rooms[roomId]).toBeDefined();
    await h.leave(alice, roomId);
    const after = await ok(alice, { lists: { l: list([[0, 9]]) } }, { pos: first.pos });
    expect(after.rooms[roomId]?.membership).toBe('leave');
    const fresh = await ok(alice, { lists: { l: list([[0, 9]]) } });
    expect(fresh.lists.l?.count).toBe(0);
  });
});

describe('sliding sync: subscriptions and pos', () => {
  it('keeps a subscription until unsubscribed', async () => {
    const alice = await h.user('alice');
    const a = await h.createRoom(alice, {});
    for (let i = 0; i < 5; i++) await h.send(alice, a, `m${i}`);
    const b = await h.createRoom(alice, {});
    await h.send(alice, b, 'newest');
    const first = await ok(alice, { lists: { l: list([[0, 0]]) } });
    expect(Object.keys(first.rooms)).toEqual([b]);
    const sub = await ok(
      alice,
      {
        lists: { l: list([[0, 0]]) },
        room_subscriptions: { [a]: { timeline_limit: 3, required_state: [['m.room.name', '']] } },
      },
      { pos: first.pos },
    );
    expect(bodiesOf(sub.rooms[a])).toEqual(['m2', 'm3', 'm4']);
    // The subscription is remembered: a new message there comes without naming it again.
    await h.send(alice, a, 'later');
    const kept = await ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: sub.pos });
    expect(bodiesOf(kept.rooms[a])).toEqual(['later']);
    // `a` now tops the list with limit 1, and stays subscribed with 3: the larger applies,
    // and the client's copy already has it.
    expect(kept.rooms[a]?.lists).toEqual(['l']);
    expect(kept.rooms[a]?.initial).toBeUndefined();
    // More state asked for than the room was sent with: only the state it lacks, not initial.
    const more = await ok(
      alice,
      { lists: { l: list([[0, 0]], { required_state: [['*', '*']] }) } },
      { pos: kept.pos },
    );
    expect(more.rooms[a]?.initial).toBeUndefined();
    expect(more.rooms[a]?.required_state?.some((e) => e.type === 'm.room.create')).toBe(true);
    const gone = await ok(alice, { lists: { l: list([[0, 0]]) }, unsubscribe_rooms: [a] }, { pos: more.pos });
    await h.send(alice, b, 'b again');
    const next = await ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: gone.pos });
    expect(Object.keys(next.rooms)).toEqual([b]);
  });

  it('sends only what a grown config adds: the longer timeline, the state not asked for before', async () => {
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, { name: 'grows', topic: 'the topic' });
    for (let i = 0; i < 6; i++) await h.send(alice, roomId, `m${i}`);
    const first = await ok(alice, { lists: { l: list([[0, 0]]) } });
    expect(bodiesOf(first.rooms[roomId])).toEqual(['m5']);
    expect(first.rooms[roomId]?.required_state?.map((e) => e.type)).toEqual(['m.room.name']);

    // A longer timeline: the latest four, flagged as expanded; no state again, not initial.
    const longer = await ok(
      alice,
      { lists: { l: list([[0, 0]], { timeline_limit: 4 }) } },
      { pos: first.pos },
    );
    const expanded = longer.rooms[roomId] as Room & { unstable_expanded_timeline?: boolean };
    expect(expanded.initial).toBeUndefined();
    expect(expanded.unstable_expanded_timeline).toBe(true);
    expect(bodiesOf(expanded)).toEqual(['m2', 'm3', 'm4', 'm5']);
    expect(expanded.required_state).toEqual([]);

    // More required_state: the topic it lacks, not the name it has; the timeline not again.
    const wider = await ok(
      alice,
      {
        lists: {
          l: list([[0, 0]], {
            timeline_limit: 4,
            required_state: [
              ['m.room.name', ''],
              ['m.room.topic', ''],
            ],
          }),
        },
      },
      { pos: longer.pos },
    );
    const added = wider.rooms[roomId] as Room;
    expect(added.initial).toBeUndefined();
    expect(added.required_state?.map((e) => e.type)).toEqual(['m.room.topic']);
    expect(added.timeline).toEqual([]);

    // Asking for less again needs nothing; the same config again sends nothing.
    const same = await ok(
      alice,
      {
        lists: {
          l: list([[0, 0]], {
            timeline_limit: 2,
            required_state: [
              ['m.room.name', ''],
              ['m.room.topic', ''],
            ],
          }),
        },
      },
      { pos: wider.pos },
    );
    expect(same.rooms).toEqual({});
  });

  it('ignores subscriptions to rooms the user cannot see', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const secret = await h.createRoom(bob, {});
    const answer = await ok(alice, {
      room_subscriptions: { [secret]: { timeline_limit: 5 }, '!nope:x': {} },
    });
    expect(answer.rooms).toEqual({});
  });

  it('answers a retried request the same way, and survives a restart of the services', async () => {
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    const first = await ok(alice, { lists: { l: list([[0, 0]]) } });
    await h.send(alice, roomId, 'one');
    const a = await ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: first.pos });
    const b = await ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: first.pos });
    expect(bodiesOf(a.rooms[roomId])).toEqual(['one']);
    expect(bodiesOf(b.rooms[roomId])).toEqual(['one']);

    // The connection's memory is in the store: a second homeserver over the same store
    // (a Service Worker started again) carries on from `pos` without losing the message.
    const { startHomeserver } = await import('../../server.ts');
    const { homeserver: again } = startHomeserver({
      serverName: h.hs.serverName,
      store: h.hs.store,
      registration: 'open',
      passwordIterations: 1000,
    });
    await h.send(alice, roomId, 'two');
    const res = await again.fetch(
      new Request(`http://x${PATH}?pos=${encodeURIComponent(b.pos)}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ lists: { l: list([[0, 0]]) } }),
      }),
    );
    const answer = (await res.json()) as Answer;
    expect(res.status).toBe(200);
    expect(answer.rooms[roomId]?.initial).toBeUndefined();
    expect(bodiesOf(answer.rooms[roomId])).toEqual(['two']);
  });

  it('answers an unknown pos with M_UNKNOWN_POS, and bad input with Matrix errors', async () => {
    const alice = await h.user('alice');
    expect((await slide(alice, {}, { pos: '99.s1_0_0_0_0_0_0' })).body.errcode).toBe('M_UNKNOWN_POS');
    expect((await slide(alice, {}, { pos: 'garbage' })).body.errcode).toBe('M_UNKNOWN_POS');
    for (const body of [
      { lists: { l: { ranges: [[5, 1]] } } },
      { lists: { l: { ranges: 'x' } } },
      { lists: { l: { required_state: [['a']] } } },
      { room_subscriptions: { '!r:x': { timeline_limit: -1 } } },
      { extensions: { to_device: { limit: 'x' } } },
    ]) {
      const res = await slide(alice, body as unknown as JsonObject);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errcode).toMatch(/^M_/);
    }
    const res = await h.hs.call('POST', PATH, { body: {} });
    expect(res.status).toBe(401);
  });
});

describe('sliding sync: long-poll', () => {
  it('waits for a new message, and returns empty at the timeout', async () => {
    const alice = await h.user('alice');
    const roomId = await h.createRoom(alice, {});
    const first = await ok(alice, { lists: { l: list([[0, 0]]) } });
    const started = Date.now();
    const empty = await ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: first.pos, timeout: 200 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(empty.rooms).toEqual({});
    const waiting = ok(alice, { lists: { l: list([[0, 0]]) } }, { pos: empty.pos, timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    await h.send(alice, roomId, 'wake');
    const woken = await waiting;
    expect(bodiesOf(woken.rooms[roomId])).toEqual(['wake']);
  });
});

describe('sliding sync: rooms the user is not joined to', () => {
  it('sends an invite or a left room again only when the membership changes, not for room events', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const roomId = await h.createRoom(bob, { preset: 'public_chat', invite: [alice.userId] });
    const first = await ok(alice, { lists: { l: list([[0, 9]]) } });
    expect(first.rooms[roomId]?.membership).toBe('invite');
    await h.send(bob, roomId, 'alice cannot see this yet');
    const quiet = await ok(alice, { lists: { l: list([[0, 9]]) } }, { pos: first.pos });
    expect(quiet.rooms).toEqual({});
    await h.join(alice, roomId);
    const joined = await ok(alice, { lists: { l: list([[0, 9]]) } }, { pos: quiet.pos });
    // Known only by its stripped state until now: sent whole.
    expect(joined.rooms[roomId]?.initial).toBe(true);
    expect(joined.rooms[roomId]?.membership).toBe('join');
    await h.leave(alice, roomId);
    const left = await ok(alice, { lists: { l: list([[0, 9]]) } }, { pos: joined.pos });
    expect(left.rooms[roomId]?.membership).toBe('leave');
    await h.send(bob, roomId, 'after alice left');
    const after = await ok(alice, { lists: { l: list([[0, 9]]) } }, { pos: left.pos });
    expect(after.rooms).toEqual({});
  });
});

describe('sliding sync: extensions', () => {
  it('gives account data, receipts and typing for the rooms of the answer', async () => {
    const alice = await h.user('alice');
    const bob = await h.user('bob');
    const roomId = await h.createRoom(alice, { preset: 'public_chat' });
    await h.join(bob, roomId);
    const eventId = await h.send(bob, roomId, 'read me');
    await h.ok('PUT', `/user/${encodeURIComponent(alice.userId)}/account_data/org.example.global`, alice, {
      a: 1,
    });
    await h.ok(
      'PUT',
      `/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags/u.work`,
      alice,
      { order: 0.5 },
    );
    await h.ok(
      'POST',
      `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`,
      bob,
      {},
    );
    const extensions = {
      account_data: { enabled: true },
      receipts: { enabled: true },
      typing: { enabled: true },
    };
    const first = await ok(alice, { lists: { l: list([[0, 0]]) }, extensions });
    const accountData = first.extensions.account_data as {
      global: JsonObject[];
      rooms: Record<string, JsonObject[]>;
    };
    expect(accountData.global.map((e) => e.type)).toContain('org.example.global');
    expect(accountData.global.map((e) => e.type)).toContain('m.push_rules');
    expect(accountData.rooms[roomId]?.map((e) => e.type)).toEqual(['m.tag']);
    const receipts = (first.extensions.receipts as { rooms: Record<string, JsonObject> }).rooms[roomId];
    expect(receipts?.type).toBe('m.receipt');
    expect(Object.keys(receipts?.content as JsonObject)).toEqual([eventId]);

    // Bob types: Alice's long-poll wakes with it, and with nothing else.
    const waiting = ok(
      alice,
      { lists: { l: list([[0, 0]]) }, extensions },
      { pos: first.pos, timeout: 10_000 },
    );
    await new Promise((r) => setTimeout(r, 50));
    await h.ok('PUT', `/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(bob.userId)}`, bob, {
      typing: true,
      timeout: 10_000,
    });
    const typed = await waiting;
    expect(typed.rooms).toEqual({});
    const typing = (typed.extensions.typing as { rooms: Record<string, JsonObject> }).rooms[roomId];
    expect(typing).toEqual({ type: 'm.typing', content: { user_ids: [bob.userId] } });
    expect((typed.extensions.account_data as { global: JsonObject[] }).global).toEqual([]);
  });
});
