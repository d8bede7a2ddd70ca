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

function room(server: TestHomeserver, roomId: string) {
  const post = (who: TestUser, action: string, body?: unknown) =>
    server.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, {
      token: who.accessToken,
      body,
    });
  return {
    join: (who: TestUser) => post(who, 'join', {}),
    leave: (who: TestUser, reason?: string) => post(who, 'leave', reason === undefined ? {} : { reason }),
    forget: (who: TestUser) => post(who, 'forget', {}),
    invite: (who: TestUser, target: string) => post(who, 'invite', { user_id: target }),
    kick: (who: TestUser, target: string, reason?: string) => post(who, 'kick', { user_id: target, reason }),
    ban: (who: TestUser, target: string, reason?: string) => post(who, 'ban', { user_id: target, reason }),
    unban: (who: TestUser, target: string) => post(who, 'unban', { user_id: target }),
    membership: async (userId: string) =>
      (await server.store.rooms.membership(roomId, userId))?.membership ?? null,
  };
}

const errorOf = (res: { status: number; body: Record<string, unknown> }) => [res.status, res.body.errcode];

describe('joining', () => {
  it('lets a second user join a public room, by ID and by alias, with their profile', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    await hs.store.userData.updateProfile(bob.userId, {
      displayname: 'Bob',
      avatar_url: 'mxc://test.localhost/b',
    });
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat', room_alias_name: 'lobby' });
    const r = room(hs, roomId);
    const joined = await r.join(bob);
    expect(joined.status).toBe(200);
    expect(joined.body.room_id).toBe(roomId);
    expect(await stateContent(hs, roomId, 'm.room.member', bob.userId)).toEqual({
      membership: 'join',
      displayname: 'Bob',
      avatar_url: 'mxc://test.localhost/b',
    });
    const byAlias = await hs.call(
      'POST',
      `/_matrix/client/v3/join/${enc('#lobby:test.localhost')}?server_name=x.example&via=y.example`,
      {
        token: carol.accessToken,
        body: { reason: 'hi' },
      },
    );
    expect(byAlias.body.room_id).toBe(roomId);
    expect(await stateContent(hs, roomId, 'm.room.member', carol.userId)).toEqual({
      membership: 'join',
      displayname: 'carol',
      reason: 'hi',
    });
    // r0 prefix, no body (older clients).
    const again = await hs.call('POST', `/_matrix/client/r0/join/${enc(roomId)}`, {
      token: carol.accessToken,
    });
    expect(again.status).toBe(200);
  });

  it('refuses an invite-only room to the uninvited, then admits the invited', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'private_chat' });
    const r = room(hs, roomId);
    expect(errorOf(await r.join(bob))).toEqual([403, 'M_FORBIDDEN']);
    expect(await r.membership(bob.userId)).toBeNull();
    expect((await r.invite(alice, bob.userId)).status).toBe(200);
    expect(await r.membership(bob.userId)).toBe('invite');
    // Private chats let members invite (invite level 0) — but not re-invite a joined user.
    expect((await r.join(bob)).status).toBe(200);
    expect(await r.membership(bob.userId)).toBe('join');
    expect(errorOf(await r.invite(carol, alice.userId))).toEqual([403, 'M_FORBIDDEN']);
    expect(errorOf(await r.invite(bob, alice.userId))).toEqual([403, 'M_FORBIDDEN']);
  });

  it('answers unknown and remote rooms and bad identifiers properly', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const call = (path: string) =>
      hs.call('POST', `/_matrix/client/v3${path}`, { token: alice.accessToken, body: {} });
    expect(errorOf(await call(`/join/${enc('!nothere:test.localhost')}`))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await call(`/join/${enc('!remote:other.example')}`))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await call(`/join/${enc('#nope:test.localhost')}`))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await call(`/join/${enc('#far:other.example')}`))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await call(`/join/${enc('room')}`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errorOf(await call(`/rooms/${enc('#alias:test.localhost')}/join`))).toEqual([
      400,
      'M_INVALID_PARAM',
    ]);
    expect(errorOf(await call(`/rooms/${enc('!nothere:test.localhost')}/join`))).toEqual([
      404,
      'M_NOT_FOUND',
    ]);
    expect(errorOf(await call(`/knock/${enc('!nothere:test.localhost')}`))).toEqual([404, 'M_NOT_FOUND']);
  });

  it('lets guests join only rooms that admit guests', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const open = await createRoomAs(hs, alice, { preset: 'public_chat' });
    const guestable = await createRoomAs(hs, alice, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'can_join' } }],
    });
    const guestId = '@guest1:test.localhost';
    await hs.store.accounts.createUser(
      { userId: guestId, passwordHash: null, createdAt: 0, isGuest: true, userType: null },
      { session: { userId: guestId, deviceId: 'G', accessToken: 'guest-token', now: 0 } },
    );
    const guest = { userId: guestId, deviceId: 'G', accessToken: 'guest-token' };
    expect(errorOf(await room(hs, open).join(guest))).toEqual([403, 'M_GUEST_ACCESS_FORBIDDEN']);
    expect((await room(hs, guestable).join(guest)).status).toBe(200);
  });
});

describe('invites', () => {
  it('checks the target and refuses third-party invites properly', async () => {
    const { hs, users } = await setup('alice');
    const [alice] = users;
    const roomId = await createRoomAs(hs, alice);
    const post = (body: unknown) =>
      hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body });
    expect(errorOf(await post({ user_id: 'bob' }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errorOf(await post({ user_id: 42 }))).toEqual([400, 'M_BAD_JSON']);
    expect(errorOf(await post({}))).toEqual([400, 'M_MISSING_PARAM']);
    expect(errorOf(await post({ user_id: '@nobody:test.localhost' }))).toEqual([404, 'M_NOT_FOUND']);
    expect(errorOf(await post({ user_id: '@bob:other.example' }))).toEqual([403, 'M_FORBIDDEN']);
    expect(errorOf(await post({ medium: 'email', address: 'a@b.c' }))).toEqual([400, 'M_MISSING_PARAM']);
    expect(
      errorOf(await post({ id_server: 1, id_access_token: 't', medium: 'email', address: 'a@b.c' })),
    ).toEqual([400, 'M_BAD_JSON']);
    expect(
      errorOf(
        await post({ id_server: 'id.example', id_access_token: 't', medium: 'email', address: 'a@b.c' }),
      ),
    ).toEqual([404, 'M_UNRECOGNIZED']);
    expect(await hs.store.rooms.members(roomId)).toHaveLength(1);
  });
});

describe('leaving and forgetting', () => {
  it('leaves (twice without error), forgets only after leaving, rejects invites', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat', invite: [carol.userId] });
    const r = room(hs, roomId);
    await r.join(bob);
    expect(errorOf(await r.forget(bob))).toEqual([400, 'M_UNKNOWN']);
    expect((await r.leave(bob, 'bye')).status).toBe(200);
    expect(await stateContent(hs, roomId, 'm.room.member', bob.userId)).toEqual({
      membership: 'leave',
      reason: 'bye',
    });
    expect((await r.leave(bob)).status).toBe(200);
    expect((await r.forget(bob)).status).toBe(200);
    expect((await hs.store.rooms.membership(roomId, bob.userId))?.forgotten).toBe(true);
    // Rejecting an invite is leaving.
    expect((await r.leave(carol)).status).toBe(200);
    expect(await r.membership(carol.userId)).toBe('leave');
    const stranger = (await hs.createUser('dave')) as TestUser;
    expect(errorOf(await r.leave(stranger))).toEqual([403, 'M_FORBIDDEN']);
    expect(errorOf(await room(hs, '!gone:test.localhost').leave(stranger))).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('kick, ban, unban', () => {
  it('needs the power for each, with the reason recorded', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const roomId = await createRoomAs(hs, alice, { preset: 'public_chat' });
    const r = room(hs, roomId);
    await r.join(bob);
    await r.join(carol);
    // Bob (level 0) may neither kick nor ban nor unban.
    expect(errorOf(await r.kick(bob, carol.userId))).toEqual([403, 'M_FORBIDDEN']);
    expect(errorOf(await r.ban(bob, carol.userId))).toEqual([403, 'M_FORBIDDEN']);
    expect(await r.membership(carol.userId)).toBe('join');
    // Alice (100) kicks Carol: Carol's membership is leave, with the reason.
    expect((await r.kick(alice, carol.userId, 'noise')).status).toBe(200);
    const kicked = (await hs.store.rooms.currentStateEvent(roomId, 'm.room.member', carol.userId))?.event;
    expect(kicked?.content).toEqual({ membership: 'leave', reason: 'noise' });
    expect(kicked?.sender).toBe(alice.userId);
    // Kicking someone who is not in the room is refused.
    expect(errorOf(await r.kick(alice, carol.userId))).toEqual([403, 'M_FORBIDDEN']);
    // Ban, then the banned user cannot join; unbanning by bob is refused; by alice it works.
    expect((await r.ban(alice, carol.userId, 'spam')).status).toBe(200);
    expect(await stateContent(hs, roomId, 'm.room.member', carol.userId)).toEqual({
      membership: 'ban',
      reason: 'spam',
    });
    expect(errorOf(await r.join(carol))).toEqual([403, 'M_FORBIDDEN']);
    expect(errorOf(await r.unban(bob, carol.userId))).toEqual([403, 'M_FORBIDDEN']);
    expect((await r.unban(alice, carol.userId)).status).toBe(200);
    expect(await r.membership(carol.userId)).toBe('leave');
    expect(errorOf(await r.unban(alice, carol.userId))).toEqual([403, 'M_FORBIDDEN']);
    expect((await r.join(carol)).status).toBe(200);
    // Nobody can kick a user of higher power.
    expect(errorOf(await r.kick(bob, alice.userId))).toEqual([403, 'M_FORBIDDEN']);
    // Banning a user who never joined is allowed (pre-emptive ban).
    const dave = (await hs.createUser('dave')) as TestUser;
    expect((await r.ban(alice, dave.userId)).status).toBe(200);
    expect(errorOf(await r.kick(alice, 'not-a-user'))).toEqual([400, 'M_INVALID_PARAM']);
    const missing = await hs.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/ban`, {
      token: alice.accessToken,
      body: { reason: 'x' },
    });
    expect(errorOf(missing)).toEqual([400, 'M_MISSING_PARAM']);
  });
});

describe('knocking', () => {
  it('knocks on a knock room of v7+, and is refused elsewhere', async () => {
    const { hs, users } = await setup('alice', 'bob');
    const [alice, bob] = users;
    const knockRoom = await createRoomAs(hs, alice, {
      room_version: '7',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
    });
    const res = await hs.call('POST', `/_matrix/client/v3/knock/${enc(knockRoom)}`, {
      token: bob.accessToken,
      body: { reason: 'let me in' },
    });
    expect(res.status).toBe(200);
    expect(res.body.room_id).toBe(knockRoom);
    expect(await stateContent(hs, knockRoom, 'm.room.member', bob.userId)).toEqual({
      membership: 'knock',
      displayname: 'bob',
      reason: 'let me in',
    });
    // The knock is accepted by inviting; withdrawing it is leaving.
    expect((await room(hs, knockRoom).invite(alice, bob.userId)).status).toBe(200);
    expect(await room(hs, knockRoom).membership(bob.userId)).toBe('invite');

    const v6 = await createRoomAs(hs, alice, {
      room_version: '6',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'invite' } }],
    });
    const old = await hs.call('POST', `/_matrix/client/v3/knock/${enc(v6)}`, {
      token: bob.accessToken,
      body: {},
    });
    expect(errorOf(old)).toEqual([403, 'M_FORBIDDEN']);
    const inviteOnly = await createRoomAs(hs, alice, { room_version: '12' });
    const refused = await hs.call('POST', `/_matrix/client/v3/knock/${enc(inviteOnly)}`, {
      token: bob.accessToken,
      body: {},
    });
    expect(errorOf(refused)).toEqual([403, 'M_FORBIDDEN']);
  });
});

describe('restricted rooms', () => {
  it('admits members of an allowed room, naming a local authoriser', async () => {
    const { hs, users } = await setup('alice', 'bob', 'carol');
    const [alice, bob, carol] = users;
    const space = await createRoomAs(hs, alice, { preset: 'public_chat' });
    await room(hs, space).join(bob);
    const restricted = await createRoomAs(hs, alice, {
      room_version: '10',
      initial_state: [
        {
          type: 'm.room.join_rules',
          content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] },
        },
      ],
    });
    expect((await room(hs, restricted).join(bob)).status).toBe(200);
    expect(await stateContent(hs, restricted, 'm.room.member', bob.userId)).toMatchObject({
      membership: 'join',
      join_authorised_via_users_server: alice.userId,
    });
    expect(errorOf(await room(hs, restricted).join(carol))).toEqual([403, 'M_FORBIDDEN']);
  });
});
