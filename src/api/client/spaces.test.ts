import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { roomsTestbed, roomWith, type TestHomeserver, type TestUser } from './testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

async function addChild(owner: TestUser, space: string, child: string, content: JsonObject = {}) {
  await (hs as TestHomeserver).internals.rooms.setState(owner.userId, space, 'm.space.child', child, {
    via: ['test.localhost'],
    ...content,
  });
}

const get = (path: string, user?: TestUser) =>
  (hs as TestHomeserver).call('GET', path, user ? { token: user.accessToken } : {});
const roomIds = (body: Record<string, unknown>) =>
  (body.rooms as { room_id: string }[]).map((r) => r.room_id);

describe('spaces', () => {
  it('walks a space depth-first in the spec’s order, with suggested_only, max_depth, paging and access', async () => {
    const bed = await roomsTestbed('alice', 'bob');
    hs = bed.hs;
    const [alice, bob] = bed.users as [TestUser, TestUser];
    const space = await roomWith(hs, alice, [], {
      preset: 'public_chat',
      creation_content: { type: 'm.space' },
      name: 'Space',
    });
    const sub = await roomWith(hs, alice, [], {
      preset: 'public_chat',
      creation_content: { type: 'm.space' },
    });
    const first = await roomWith(hs, alice, [], { preset: 'public_chat', name: 'First' });
    const deep = await roomWith(hs, alice, [], { preset: 'public_chat' });
    const hidden = await roomWith(hs, alice, [], { preset: 'private_chat' });
    await addChild(alice, space, sub, { order: 'b' });
    await addChild(alice, space, first, { order: 'a', suggested: true });
    await addChild(alice, space, hidden);
    await addChild(alice, sub, deep);

    const all = await get(`/_matrix/client/v1/rooms/${space}/hierarchy`, bob);
    expect(all.status).toBe(200);
    expect(roomIds(all.body)).toEqual([space, first, sub, deep]); // hidden: Bob can neither peek nor join
    const root = (all.body.rooms as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(root).toMatchObject({
      name: 'Space',
      room_type: 'm.space',
      join_rule: 'public',
      num_joined_members: 1,
    });
    expect((root.children_state as { state_key: string }[]).map((c) => c.state_key)).toEqual([
      first,
      sub,
      hidden,
    ]);
    // Alice is in the private room: she sees it.
    expect(roomIds((await get(`/_matrix/client/v1/rooms/${space}/hierarchy`, alice)).body)).toContain(hidden);

    const suggested = await get(`/_matrix/client/v1/rooms/${space}/hierarchy?suggested_only=true`, bob);
    expect(roomIds(suggested.body)).toEqual([space, first]);
    const shallow = await get(`/_matrix/client/v1/rooms/${space}/hierarchy?max_depth=1`, bob);
    expect(roomIds(shallow.body)).toEqual([space, first, sub]);

    const page1 = await get(`/_matrix/client/v1/rooms/${space}/hierarchy?limit=2`, bob);
    expect(roomIds(page1.body)).toEqual([space, first]);
    const page2 = await get(
      `/_matrix/client/v1/rooms/${space}/hierarchy?limit=2&from=${page1.body.next_batch}`,
      bob,
    );
    expect(roomIds(page2.body)).toEqual([sub, deep]);
    expect(page2.body.next_batch).toBeUndefined();
    const changed = await get(
      `/_matrix/client/v1/rooms/${space}/hierarchy?limit=2&max_depth=1&from=${page1.body.next_batch}`,
      bob,
    );
    expect([changed.status, changed.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect((await get(`/_matrix/client/v1/rooms/${hidden}/hierarchy`, bob)).status).toBe(403);

    // Room summary: public rooms to anyone, private ones only to members; membership when signed in.
    const summary = await get(`/_matrix/client/v1/room_summary/${encodeURIComponent(first)}`);
    expect(summary.status).toBe(200);
    expect(summary.body).toMatchObject({ room_id: first, name: 'First', join_rule: 'public' });
    expect(summary.body.membership).toBeUndefined();
    expect(summary.body.children_state).toBeUndefined();
    const mine = await get(`/_matrix/client/v1/room_summary/${encodeURIComponent(hidden)}`, alice);
    expect(mine.body.membership).toBe('join');
    expect((await get(`/_matrix/client/v1/room_summary/${encodeURIComponent(hidden)}`, bob)).status).toBe(
      404,
    );
  });

  it('lists mutual rooms, paged, and refuses bad user IDs', async () => {
    const bed = await roomsTestbed('alice', 'bob');
    hs = bed.hs;
    const [alice, bob] = bed.users as [TestUser, TestUser];
    const shared = [await roomWith(hs, alice, [bob]), await roomWith(hs, alice, [bob])];
    await roomWith(hs, alice);
    const answer = await get(
      `/_matrix/client/v1/mutual_rooms?user_id=${encodeURIComponent(bob.userId)}`,
      alice,
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ joined: [...shared].sort(), count: 2 });
    const bad = await get('/_matrix/client/v1/mutual_rooms?user_id=nobody', alice);
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const self = await get(
      `/_matrix/client/v1/mutual_rooms?user_id=${encodeURIComponent(alice.userId)}`,
      alice,
    );
    expect(self.status).toBe(400);
  });
});
