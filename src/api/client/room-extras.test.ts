import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestHomeserver,
  manualClock,
  roomsTestbed,
  roomWith,
  sendText,
  type TestHomeserver,
  type TestUser,
} from './testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

const call = (method: string, path: string, user: TestUser, body?: unknown) =>
  (hs as TestHomeserver).call(method, path, {
    token: user.accessToken,
    ...(body !== undefined ? { body } : {}),
  });
const state = (roomId: string, type: string, user: TestUser) =>
  call('GET', `/_matrix/client/v3/rooms/${roomId}/state/${type}/`, user);

describe('POST /rooms/{roomId}/upgrade', () => {
  it('tombstones the old room, copies state and power levels, moves aliases, links both ways', async () => {
    const bed = await roomsTestbed('alice', 'bob');
    hs = bed.hs;
    const [alice, bob] = bed.users as [TestUser, TestUser];
    const roomId = await roomWith(hs, alice, [bob], {
      preset: 'public_chat',
      name: 'Old name',
      topic: 'Old topic',
      room_alias_name: 'lounge',
      room_version: '10',
      visibility: 'public',
      power_level_content_override: {
        users: { [alice.userId]: 100, [bob.userId]: 50 },
        events: { 'm.room.name': 50, 'm.room.tombstone': 100 },
      },
    });
    expect(
      (await call('POST', `/_matrix/client/v3/rooms/${roomId}/upgrade`, bob, { new_version: '11' })).status,
    ).toBe(403);
    const bad = await call('POST', `/_matrix/client/v3/rooms/${roomId}/upgrade`, alice, {
      new_version: '999',
    });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_UNSUPPORTED_ROOM_VERSION']);

    const res = await call('POST', `/_matrix/client/v3/rooms/${roomId}/upgrade`, alice, {
      new_version: '11',
    });
    expect(res.status).toBe(200);
    const newRoom = res.body.replacement_room as string;
    expect(newRoom).toMatch(/^!/);

    expect((await state(roomId, 'm.room.tombstone', alice)).body).toMatchObject({
      replacement_room: newRoom,
    });
    const create = await state(newRoom, 'm.room.create', alice);
    expect(create.body).toMatchObject({ room_version: '11', predecessor: { room_id: roomId } });
    expect((await state(newRoom, 'm.room.name', alice)).body).toEqual({ name: 'Old name' });
    expect((await state(newRoom, 'm.room.join_rules', alice)).body).toEqual({ join_rule: 'public' });
    const pl = (await state(newRoom, 'm.room.power_levels', alice)).body as {
      users: Record<string, number>;
      events: Record<string, number>;
    };
    expect(pl.users).toEqual({ [alice.userId]: 100, [bob.userId]: 50 });
    expect(pl.events).toEqual({ 'm.room.name': 50, 'm.room.tombstone': 100 });
    const alias = await call(
      'GET',
      `/_matrix/client/v3/directory/room/${encodeURIComponent('#lounge:test.localhost')}`,
      alice,
    );
    expect(alias.body.room_id).toBe(newRoom);
    expect((await state(newRoom, 'm.room.canonical_alias', alice)).body).toMatchObject({
      alias: '#lounge:test.localhost',
    });
    const oldPl = (await state(roomId, 'm.room.power_levels', alice)).body as {
      events_default: number;
      invite: number;
    };
    expect(oldPl.events_default).toBeGreaterThanOrEqual(50);
    expect(oldPl.invite).toBeGreaterThanOrEqual(50);
    const visibility = await call('GET', `/_matrix/client/v3/directory/list/room/${newRoom}`, alice);
    expect(visibility.body.visibility).toBe('public');

    // To v12: the upgrader is a creator, not listed in the power levels.
    const v12 = await call('POST', `/_matrix/client/v3/rooms/${newRoom}/upgrade`, alice, {
      new_version: '12',
    });
    expect(v12.status).toBe(200);
    const pl12 = (await state(v12.body.replacement_room as string, 'm.room.power_levels', alice)).body as {
      users: Record<string, number>;
    };
    expect(pl12.users).toEqual({ [bob.userId]: 50 });
  });
});

describe('GET /rooms/{roomId}/timestamp_to_event', () => {
  it('finds the closest visible event in either direction', async () => {
    const clock = manualClock(1_000_000);
    hs = await createTestHomeserver({ clock });
    const alice = await hs.createUser('alice');
    const roomId = await roomWith(hs, alice);
    clock.advance(10_000);
    const first = await sendText(hs, alice, roomId, 'first');
    clock.advance(10_000);
    const second = await sendText(hs, alice, roomId, 'second');
    const at = (ts: number, dir: string) =>
      call('GET', `/_matrix/client/v1/rooms/${roomId}/timestamp_to_event?ts=${ts}&dir=${dir}`, alice);
    expect((await at(1_015_000, 'b')).body.event_id).toBe(first);
    expect((await at(1_015_000, 'f')).body.event_id).toBe(second);
    expect((await at(1_020_000, 'b')).body).toEqual({ event_id: second, origin_server_ts: 1_020_000 });
    expect((await at(2_000_000, 'f')).status).toBe(404);
    expect((await at(5, 'x')).status).toBe(400);
  });
});

describe('GET /notifications', () => {
  it('lists what notified the user, newest first, highlights only when asked, paged', async () => {
    const bed = await roomsTestbed('alice', 'bob');
    hs = bed.hs;
    const [alice, bob] = bed.users as [TestUser, TestUser];
    const roomId = await roomWith(hs, alice, [bob]);
    // A two-member room notifies for every message (push rules' .m.rule.room_one_to_one).
    const plain = await sendText(hs, alice, roomId, 'hello');
    const { eventId: mention } = await hs.internals.rooms.sendEvent({
      sender: alice.userId,
      roomId,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'hey, look', 'm.mentions': { user_ids: [bob.userId] } },
    });
    const list = await call('GET', '/_matrix/client/v3/notifications', bob);
    expect(list.status).toBe(200);
    const ids = (body: Record<string, unknown>) =>
      (body.notifications as { event: { event_id: string } }[]).map((n) => n.event.event_id);
    expect(ids(list.body)).toEqual([mention, plain]);
    const first = (list.body.notifications as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(first).toMatchObject({ room_id: roomId, read: false });
    expect(first.actions).toContainEqual({ set_tweak: 'highlight' });
    const highlights = await call('GET', '/_matrix/client/v3/notifications?only=highlight', bob);
    expect(ids(highlights.body)).toEqual([mention]);
    const page = await call('GET', '/_matrix/client/v3/notifications?limit=1', bob);
    expect(ids(page.body)).toEqual([mention]);
    const next = await call(
      'GET',
      `/_matrix/client/v3/notifications?limit=1&from=${page.body.next_token}`,
      bob,
    );
    expect(ids(next.body)).toEqual([plain]);
    expect(next.body.next_token).toBeUndefined();
    expect((await call('GET', '/_matrix/client/v3/notifications?from=zzz', bob)).status).toBe(400);
    expect(ids((await call('GET', '/_matrix/client/v3/notifications', alice)).body)).toEqual([]);
  });
});
