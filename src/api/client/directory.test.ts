import { afterEach, describe, expect, it } from 'vitest';
import { createRoomAs, roomsTestbed, stateContent, type TestHomeserver, type TestUser } from './testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

async function setup(...names: string[]) {
  const t = await roomsTestbed(...names);
  hs = t.hs;
  return { hs: t.hs, users: t.users as [TestUser, TestUser, TestUser, ...TestUser[]] };
}

const enc = encodeURIComponent;
const errorOf = (res: { status: number; body: Record<string, unknown> }) => [res.status, res.body.errcode];

describe('room aliases', () => {
  it('creates, resolves, lists and deletes aliases with the right permissions', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat', room_alias_name: 'main' });
    await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken });
    const alias = (name: string) => `/_matrix/client/v3/directory/room/${enc(name)}`;

    expect(
      (
        await hs.call('PUT', alias('#bobs:test.localhost'), {
          token: bob.accessToken,
          body: { room_id: roomId },
        })
      ).status,
    ).toBe(200);
    // Taken: 409 (directory.yaml); createRoom uses M_ROOM_IN_USE instead.
    expect(
      errorOf(
        await hs.call('PUT', alias('#bobs:test.localhost'), {
          token: alice.accessToken,
          body: { room_id: roomId },
        }),
      ),
    ).toEqual([409, 'M_UNKNOWN']);
    expect(
      errorOf(
        await hs.call('PUT', alias('#x:other.example'), {
          token: bob.accessToken,
          body: { room_id: roomId },
        }),
      ),
    ).toEqual([400, 'M_INVALID_PARAM']);
    expect(
      errorOf(await hs.call('PUT', alias('nohash'), { token: bob.accessToken, body: { room_id: roomId } })),
    ).toEqual([400, 'M_INVALID_PARAM']);
    expect(
      errorOf(
        await hs.call('PUT', alias('#c:test.localhost'), {
          token: carol.accessToken,
          body: { room_id: roomId },
        }),
      ),
    ).toEqual([403, 'M_FORBIDDEN']);
    expect(
      errorOf(
        await hs.call('PUT', alias('#c:test.localhost'), {
          token: carol.accessToken,
          body: { room_id: '!none:test.localhost' },
        }),
      ),
    ).toEqual([404, 'M_NOT_FOUND']);
    expect(
      errorOf(
        await hs.call('PUT', alias('#c:test.localhost'), { token: carol.accessToken, body: { room_id: 5 } }),
      ),
    ).toEqual([400, 'M_BAD_JSON']);

    // Resolving needs no token.
    const resolved = await hs.call('GET', alias('#bobs:test.localhost'));
    expect(resolved.body).toEqual({ room_id: roomId, servers: ['test.localhost'] });
    expect(errorOf(await hs.call('GET', alias('#nope:test.localhost')))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await hs.call('GET', alias('#far:other.example')))).toEqual([404, 'M_NOT_FOUND']);

    const list = await hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/aliases`, {
      token: bob.accessToken,
    });
    expect(list.body).toEqual({ aliases: ['#bobs:test.localhost', '#main:test.localhost'] });
    expect(
      errorOf(
        await hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/aliases`, { token: carol.accessToken }),
      ),
    ).toEqual([403, 'M_FORBIDDEN']);

    // Bob did not create #main and is no room admin; Carol is not even in the room.
    expect(
      errorOf(await hs.call('DELETE', alias('#main:test.localhost'), { token: bob.accessToken })),
    ).toEqual([403, 'M_FORBIDDEN']);
    expect(
      errorOf(await hs.call('DELETE', alias('#bobs:test.localhost'), { token: carol.accessToken })),
    ).toEqual([403, 'M_FORBIDDEN']);
    // The creator may delete theirs; a room admin may delete anyone's.
    expect((await hs.call('DELETE', alias('#bobs:test.localhost'), { token: bob.accessToken })).status).toBe(
      200,
    );
    expect(
      (await hs.call('DELETE', alias('#main:test.localhost'), { token: alice.accessToken })).status,
    ).toBe(200);
    expect(await hs.store.rooms.aliasesOf(roomId)).toEqual([]);
    // The deleted canonical alias is dropped from m.room.canonical_alias.
    expect(await stateContent(hs, roomId, 'm.room.canonical_alias')).toEqual({});
    expect(
      errorOf(await hs.call('DELETE', alias('#main:test.localhost'), { token: alice.accessToken })),
    ).toEqual([404, 'M_NOT_FOUND']);
  });

  it('shows the aliases of a world-readable room to non-members', async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice, {
      room_alias_name: 'open',
      initial_state: [
        { type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } },
      ],
    });
    const list = await hs.call('GET', `/_matrix/client/r0/rooms/${enc(roomId)}/aliases`, {
      token: bob.accessToken,
    });
    expect(list.body).toEqual({ aliases: ['#open:test.localhost'] });
  });
});

describe('the published room directory', () => {
  it('publishes and unpublishes rooms; only room admins may', async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat' });
    await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken });
    const path = `/_matrix/client/v3/directory/list/room/${enc(roomId)}`;
    expect((await hs.call('GET', path)).body).toEqual({ visibility: 'private' });
    expect(
      errorOf(await hs.call('PUT', path, { token: bob.accessToken, body: { visibility: 'public' } })),
    ).toEqual([403, 'M_FORBIDDEN']);
    expect((await hs.call('PUT', path, { token: alice.accessToken, body: {} })).status).toBe(200);
    expect((await hs.call('GET', path)).body).toEqual({ visibility: 'public' });
    expect(
      (await hs.call('PUT', path, { token: alice.accessToken, body: { visibility: 'private' } })).status,
    ).toBe(200);
    expect((await hs.call('GET', path)).body).toEqual({ visibility: 'private' });
    expect(
      errorOf(await hs.call('PUT', path, { token: alice.accessToken, body: { visibility: 'secret' } })),
    ).toEqual([400, 'M_BAD_JSON']);
    expect(
      errorOf(await hs.call('GET', `/_matrix/client/v3/directory/list/room/${enc('!none:test.localhost')}`)),
    ).toEqual([404, 'M_NOT_FOUND']);
  });

  it('lists, searches and pages through public rooms', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        await createRoomAs(hs, alice, {
          visibility: 'public',
          name: `Room ${i}`,
          topic: i === 3 ? 'All about Gardening' : 'chat',
          ...(i === 4 ? { room_alias_name: 'garden-club' } : {}),
          ...(i === 2 ? { creation_content: { type: 'm.space' } } : {}),
        }),
      );
    }
    const hidden = await createRoomAs(hs, alice, { preset: 'public_chat', name: 'Unlisted garden' });
    // Room 1 is the biggest: it lists first.
    for (const who of [bob, carol])
      await hs.call('POST', `/_matrix/client/v3/rooms/${enc(ids[1] as string)}/join`, {
        token: who.accessToken,
      });

    const all = await hs.call('GET', '/_matrix/client/v3/publicRooms');
    expect(all.status).toBe(200);
    const chunk = all.body.chunk as Record<string, unknown>[];
    expect(chunk.map((c) => c.room_id)).not.toContain(hidden);
    expect(chunk).toHaveLength(5);
    expect(all.body.total_room_count_estimate).toBe(5);
    expect(chunk[0]).toEqual({
      room_id: ids[1],
      num_joined_members: 3,
      world_readable: false,
      guest_can_join: false,
      name: 'Room 1',
      topic: 'chat',
      join_rule: 'public',
    });
    expect(chunk.find((c) => c.room_id === ids[2])?.room_type).toBe('m.space');

    // Pagination: 2 per page, forward with next_batch and back with prev_batch.
    const seen: unknown[] = [];
    let since: string | undefined;
    let pages = 0;
    do {
      const page = await hs.call(
        'GET',
        `/_matrix/client/v3/publicRooms?limit=2${since ? `&since=${since}` : ''}`,
      );
      const rooms = page.body.chunk as { room_id: string }[];
      expect(rooms.length).toBeLessThanOrEqual(2);
      seen.push(...rooms.map((r) => r.room_id));
      if (pages > 0) expect(typeof page.body.prev_batch).toBe('string');
      since = page.body.next_batch as string | undefined;
      pages++;
    } while (since);
    expect(pages).toBe(3);
    expect(seen).toEqual(chunk.map((c) => c.room_id));
    const second = await hs.call('GET', '/_matrix/client/v3/publicRooms?limit=2&since=p2');
    const back = await hs.call(
      'GET',
      `/_matrix/client/v3/publicRooms?limit=2&since=${second.body.prev_batch}`,
    );
    expect((back.body.chunk as { room_id: string }[]).map((r) => r.room_id)).toEqual(seen.slice(0, 2));

    // Search over name, topic and canonical alias; room types.
    const search = async (filter: unknown) => {
      const res = await hs.call('POST', '/_matrix/client/v3/publicRooms', {
        token: bob.accessToken,
        body: { filter },
      });
      expect(res.status).toBe(200);
      return (res.body.chunk as { room_id: string }[]).map((r) => r.room_id).sort();
    };
    expect(await search({ generic_search_term: 'garden' })).toEqual([ids[3], ids[4]].sort());
    expect(await search({ generic_search_term: 'ROOM 0' })).toEqual([ids[0]]);
    expect(await search({ room_types: ['m.space'] })).toEqual([ids[2]]);
    expect(await search({ room_types: [null] })).toHaveLength(4);
    const irc = await hs.call('POST', '/_matrix/client/v3/publicRooms', {
      token: bob.accessToken,
      body: { third_party_instance_id: 'irc' },
    });
    expect(irc.body.chunk).toEqual([]);

    expect(errorOf(await hs.call('GET', '/_matrix/client/v3/publicRooms?since=garbage'))).toEqual([
      400,
      'M_INVALID_PARAM',
    ]);
    expect(errorOf(await hs.call('GET', '/_matrix/client/v3/publicRooms?limit=-1'))).toEqual([
      400,
      'M_INVALID_PARAM',
    ]);
    expect(errorOf(await hs.call('GET', '/_matrix/client/v3/publicRooms?server=other.example'))).toEqual([
      404,
      'M_UNRECOGNIZED',
    ]);
    expect((await hs.call('GET', '/_matrix/client/v3/publicRooms?server=test.localhost')).status).toBe(200);
    expect(errorOf(await hs.call('POST', '/_matrix/client/v3/publicRooms', { body: {} }))).toEqual([
      401,
      'M_MISSING_TOKEN',
    ]);
  });
});
