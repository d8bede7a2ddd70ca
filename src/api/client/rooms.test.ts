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
  return { hs: t.hs, users: t.users as [TestUser, TestUser, ...TestUser[]] };
}

const send = (
  server: TestHomeserver,
  user: TestUser,
  roomId: string,
  txnId: string,
  body: unknown,
  type = 'm.room.message',
) =>
  server.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${type}/${txnId}`, {
    token: user.accessToken,
    body,
  });

describe('PUT /rooms/{roomId}/send/{eventType}/{txnId}', () => {
  it('is idempotent per device and transaction ID', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const roomId = await createRoomAs(hs, alice, { room_version: '11' });
    const first = await send(hs, alice, roomId, 't1', { msgtype: 'm.text', body: 'hello' });
    expect(first.status).toBe(200);
    const again = await send(hs, alice, roomId, 't1', { msgtype: 'm.text', body: 'hello' });
    expect(again.body.event_id).toBe(first.body.event_id);
    // The same transaction ID from another device of the same user is another message.
    const { ctx } = hs.internals;
    const otherToken = 'second-device-token';
    await ctx.store.accounts.createSession({
      userId: alice.userId,
      deviceId: 'OTHER',
      accessToken: otherToken,
      now: 0,
    });
    const other = await send(hs, { ...alice, accessToken: otherToken }, roomId, 't1', {
      msgtype: 'm.text',
      body: 'hello',
    });
    expect(other.status).toBe(200);
    expect(other.body.event_id).not.toBe(first.body.event_id);
    const stored = await hs.store.rooms.getEvent(first.body.event_id as string);
    expect(stored?.txn).toEqual({ deviceId: alice.deviceId, txnId: 't1' });
    expect(stored?.event.content).toEqual({ msgtype: 'm.text', body: 'hello' });
    const timeline = await hs.store.rooms.timeline(roomId, { dir: 'b', limit: 3 });
    expect(timeline.events.filter((e) => e.event.type === 'm.room.message')).toHaveLength(2);
  });

  it('serialises concurrent sends: a linear room with increasing depth', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const roomId = await createRoomAs(hs, alice);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        send(hs, alice, roomId, `c${i}`, { msgtype: 'm.text', body: `${i}` }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const extremities = await hs.store.rooms.forwardExtremities(roomId);
    expect(extremities).toHaveLength(1);
    const page = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 100 });
    const depths = page.events.map((e) => e.depth);
    expect(depths).toEqual([...depths].sort((a, b) => a - b));
    expect(new Set(depths).size).toBe(depths.length);
  });

  it('answers malformed and unauthorised sends with Matrix errors', async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice);
    const cases: [string, unknown, number, string, TestUser?][] = [
      ['/rooms/not-a-room/send/m.room.message/1', {}, 400, 'M_INVALID_PARAM'],
      ['/rooms/!unknown:test.localhost/send/m.room.message/1', {}, 403, 'M_FORBIDDEN'],
      [`/rooms/${roomId}/send/m.room.message/1`, [1, 2], 400, 'M_BAD_JSON'],
      [`/rooms/${roomId}/send/m.room.message/1`, '"text"', 400, 'M_BAD_JSON'],
      [`/rooms/${roomId}/send/m.room.message/1`, 'text', 400, 'M_NOT_JSON'],
      [`/rooms/${roomId}/send/m.room.message/2`, { body: 'x' }, 403, 'M_FORBIDDEN', bob],
      [`/rooms/${roomId}/send/${'t'.repeat(256)}/3`, {}, 413, 'M_TOO_LARGE'],
      // Fits the 64 KiB body limit, but not once it is an event with its envelope and signature.
      [`/rooms/${roomId}/send/m.room.message/4`, { body: 'x'.repeat(65_400) }, 413, 'M_TOO_LARGE'],
      [`/rooms/${roomId}/send/m.room.message/5`, { body: 'x'.repeat(70_000) }, 413, 'M_TOO_LARGE'],
      // A redaction that names no target cannot go through /send.
      [`/rooms/${roomId}/send/m.room.redaction/6`, { reason: 'x' }, 400, 'M_BAD_JSON'],
    ];
    for (const [path, body, status, errcode, who] of cases) {
      const res = await hs.call('PUT', `/_matrix/client/v3${path.replaceAll('!', '%21')}`, {
        token: (who ?? alice).accessToken,
        body,
      });
      expect([path.slice(0, 60), res.status, res.body.errcode]).toEqual([path.slice(0, 60), status, errcode]);
    }
    const stored = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 100 });
    expect(stored.events.filter((e) => e.event.type === 'm.room.message')).toHaveLength(0);
  });

  it('answers on the r0 prefix too', async () => {
    const { hs, users } = await setup('alice');
    const roomId = await createRoomAs(hs, users[0]);
    const res = await hs.call(
      'PUT',
      `/_matrix/client/r0/rooms/${encodeURIComponent(roomId)}/send/m.room.message/r0`,
      {
        token: users[0].accessToken,
        body: { msgtype: 'm.text', body: 'old client' },
      },
    );
    expect(res.status).toBe(200);
    expect(res.body.event_id).toMatch(/^\$/);
  });
});

describe('PUT /rooms/{roomId}/state/{eventType}/{stateKey}', () => {
  it('addresses the empty state key with and without the trailing slash', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const roomId = await createRoomAs(hs, alice);
    const base = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic`;
    const a = await hs.call('PUT', base, { token: alice.accessToken, body: { topic: 'one' } });
    expect(a.status).toBe(200);
    expect(await stateContent(hs, roomId, 'm.room.topic')).toEqual({ topic: 'one' });
    const b = await hs.call('PUT', `${base}/`, { token: alice.accessToken, body: { topic: 'two' } });
    expect(b.status).toBe(200);
    expect(b.body.event_id).not.toBe(a.body.event_id);
    expect(await stateContent(hs, roomId, 'm.room.topic')).toEqual({ topic: 'two' });
    // Setting the same content again changes nothing and answers with the event holding it.
    const c = await hs.call('PUT', `${base}/`, { token: alice.accessToken, body: { topic: 'two' } });
    expect(c.body.event_id).toBe(b.body.event_id);
    const custom = await hs.call(
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/org.example/k%2F1`,
      {
        token: alice.accessToken,
        body: { x: 1 },
      },
    );
    expect(custom.status).toBe(200);
    expect(await stateContent(hs, roomId, 'org.example', 'k/1')).toEqual({ x: 1 });
  });

  it('checks member state keys, canonical aliases and power', async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat', room_alias_name: 'here' });
    await hs.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {
      token: bob.accessToken,
      body: {},
    });
    const put = (who: TestUser, type: string, key: string, body: unknown) =>
      hs.call(
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${type}/${encodeURIComponent(key)}`,
        {
          token: who.accessToken,
          body,
        },
      );
    const other = await createRoomAs(hs, alice, { room_alias_name: 'there' });
    expect(other).not.toBe(roomId);
    const cases: [TestUser, string, string, unknown, number, string][] = [
      [alice, 'm.room.member', 'not-a-user', { membership: 'join' }, 400, 'M_INVALID_PARAM'],
      [alice, 'm.room.member', alice.userId, { displayname: 'no membership' }, 400, 'M_BAD_JSON'],
      [alice, 'm.room.canonical_alias', '', { alias: 'bad alias' }, 400, 'M_INVALID_PARAM'],
      [alice, 'm.room.canonical_alias', '', { alias: '#there:test.localhost' }, 400, 'M_BAD_ALIAS'],
      [alice, 'm.room.canonical_alias', '', { alias: '#nowhere:test.localhost' }, 400, 'M_BAD_ALIAS'],
      [bob, 'm.room.name', '', { name: 'bob was here' }, 403, 'M_FORBIDDEN'],
      [bob, 'm.room.member', alice.userId, { membership: 'leave' }, 403, 'M_FORBIDDEN'],
    ];
    for (const [who, type, key, body, status, errcode] of cases) {
      const res = await put(who, type, key, body);
      expect([type, key, res.status, res.body.errcode]).toEqual([type, key, status, errcode]);
    }
    // Already-listed aliases are not re-checked; a valid new one pointing here is accepted.
    await hs.store.rooms.createAlias({
      alias: '#alt:test.localhost',
      roomId,
      servers: [],
      creator: alice.userId,
    });
    const ok = await put(alice, 'm.room.canonical_alias', '', {
      alias: '#here:test.localhost',
      alt_aliases: ['#alt:test.localhost'],
    });
    expect(ok.status).toBe(200);
    // A member event through /state updates the profile in the room.
    const rename = await put(bob, 'm.room.member', bob.userId, { membership: 'join', displayname: 'Robert' });
    expect(rename.status).toBe(200);
    expect(await stateContent(hs, roomId, 'm.room.member', bob.userId)).toEqual({
      membership: 'join',
      displayname: 'Robert',
    });
    expect(await stateContent(hs, roomId, 'm.room.name')).toBeNull();
  });
});

describe('PUT /rooms/{roomId}/redact/{eventId}/{txnId}', () => {
  it.each(['3', '11'])('removes the content in the store (room version %s)', async (version) => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice, { room_version: version, preset: 'public_chat' });
    await hs.call('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {
      token: bob.accessToken,
    });
    const secret = await send(hs, bob, roomId, 's', { msgtype: 'm.text', body: 'secret' });
    const target = secret.body.event_id as string;
    const path = (txn: string, id = target) =>
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(id)}/${txn}`;
    const redaction = await hs.call('PUT', path('r1'), {
      token: alice.accessToken,
      body: { reason: 'spam' },
    });
    expect(redaction.status).toBe(200);
    const stored = await hs.store.rooms.getEvent(target);
    expect(stored?.event.content).toEqual({});
    expect(stored?.redactedBy).toBe(redaction.body.event_id);
    expect(stored?.event.event_id).toBe(target);
    const redactionEvent = (await hs.store.rooms.getEvent(redaction.body.event_id as string))?.event;
    if (version === '11') {
      expect(redactionEvent?.content).toEqual({ reason: 'spam', redacts: target });
      expect(redactionEvent?.redacts).toBeUndefined();
    } else {
      expect(redactionEvent?.content).toEqual({ reason: 'spam' });
      expect(redactionEvent?.redacts).toBe(target);
    }
    // Idempotent by transaction ID.
    const again = await hs.call('PUT', path('r1'), { token: alice.accessToken, body: { reason: 'spam' } });
    expect(again.body.event_id).toBe(redaction.body.event_id);
  });

  it("needs the redact level for another user's event, not for one's own", async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat' });
    await hs.call('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {
      token: bob.accessToken,
    });
    const mine = (await send(hs, alice, roomId, 'a', { body: 'alice' })).body.event_id as string;
    const his = (await send(hs, bob, roomId, 'b', { body: 'bob' })).body.event_id as string;
    const redact = (who: TestUser, id: string, txn: string) =>
      hs.call(
        'PUT',
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(id)}/${txn}`,
        {
          token: who.accessToken,
          body: {},
        },
      );
    const denied = await redact(bob, mine, 'x1');
    expect([denied.status, denied.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect((await hs.store.rooms.getEvent(mine))?.event.content).toEqual({ body: 'alice' });
    expect((await redact(bob, his, 'x2')).status).toBe(200);
    expect((await hs.store.rooms.getEvent(his))?.event.content).toEqual({});
    const unknown = await redact(alice, '$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA', 'x3');
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const badId = await redact(alice, 'nope', 'x4');
    expect([badId.status, badId.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });
});

// POST /createRoom's refusals: the body's shape is checked by the endpoint, the rest by the
// room service (src/homeserver/rooms/create-room.ts); both answer before anything is written.
describe('createRoom refusals', () => {
  it('refuses what it cannot do, writing nothing', async () => {
    const t = await roomsTestbed('alice');
    hs = t.hs;
    const alice = t.users[0] as (typeof t.users)[0];
    const call = (body: unknown) =>
      (hs as TestHomeserver).call('POST', '/_matrix/client/v3/createRoom', {
        token: alice.accessToken,
        body,
      });
    const cases: [unknown, number, string][] = [
      [{ room_version: '99' }, 400, 'M_UNSUPPORTED_ROOM_VERSION'],
      [{ preset: 'party' }, 400, 'M_BAD_JSON'],
      [{ invite: ['not-a-user'] }, 400, 'M_BAD_JSON'],
      [{ invite: ['@bob:elsewhere.example'] }, 403, 'M_FORBIDDEN'],
      [{ invite: ['@nobody:test.localhost'] }, 404, 'M_NOT_FOUND'],
      [{ room_alias_name: 'has:colon' }, 400, 'M_INVALID_PARAM'],
      [{ initial_state: [{ type: 'm.room.create', content: {} }] }, 400, 'M_BAD_JSON'],
      [{ initial_state: [{ type: 'x', content: 'text' }] }, 400, 'M_BAD_JSON'],
      [
        { invite_3pid: [{ id_server: 'id.example', medium: 'email', address: 'a@b.c' }] },
        404,
        'M_UNRECOGNIZED',
      ],
      // The creator demoted below the name level cannot then name the room (create_room.yaml 400).
      [
        { name: 'x', power_level_content_override: { users: { [alice.userId]: 10 } } },
        400,
        'M_INVALID_ROOM_STATE',
      ],
      [
        { room_version: '12', power_level_content_override: { users: { [alice.userId]: 100 } } },
        400,
        'M_INVALID_ROOM_STATE',
      ],
      [{ creation_content: { 'm.federate': 1.5 }, room_version: '11' }, 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const res = await call(body);
      expect([JSON.stringify(body), res.status, res.body.errcode]).toEqual([
        JSON.stringify(body),
        status,
        errcode,
      ]);
    }
    expect(await hs.store.rooms.roomsForUser(alice.userId)).toEqual([]);
  });

  it('refuses an alias in use with M_ROOM_IN_USE and keeps the first room', async () => {
    const t = await roomsTestbed('alice');
    hs = t.hs;
    const alice = t.users[0] as (typeof t.users)[0];
    const first = await createRoomAs(hs, alice, { room_alias_name: 'taken' });
    const res = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { room_alias_name: 'taken' },
    });
    expect([res.status, res.body.errcode]).toEqual([400, 'M_ROOM_IN_USE']);
    expect((await hs.store.rooms.getAlias('#taken:test.localhost'))?.roomId).toBe(first);
    expect(await hs.store.rooms.roomsForUser(alice.userId)).toHaveLength(1);
  });
});
