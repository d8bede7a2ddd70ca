/**
 * Membership of rooms this server does not have goes to `ctx.federation`: with federation
 * off a client gets a clear error; with a port, the port is asked, through the servers the
 * room ID, the alias and the client's hints name.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cosignEvent, getRoomVersion, type Pdu } from '../../src/core/index.ts';
import { type FederationPort, federationOff, federationOffError } from '../../src/homeserver/ports.ts';
import { remoteServer } from '../../src/homeserver/rooms/testing-remote.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';

let hs: TestHomeserver | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

const enc = encodeURIComponent;

describe('membership through the federation port', () => {
  it('answers clearly while federation is off', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const post = (path: string, body: unknown = {}) =>
      hs?.call('POST', `/_matrix/client/v3${path}`, { token: alice.accessToken, body }) as ReturnType<
        TestHomeserver['call']
      >;
    for (const target of ['!room:other.example', '#lounge:other.example']) {
      const res = await post(`/join/${enc(target)}`);
      expect([res.status, res.body.errcode], target).toEqual([404, 'M_NOT_FOUND']);
      expect(res.body.error).toMatch(/needs federation, which is off/);
    }
    // A v12 room ID names no server: without hints there is nobody to ask.
    const bare = await post(`/join/${enc('!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ')}`);
    expect([bare.status, bare.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    expect(bare.body.error).toMatch(/no other server/);
    const hinted = await post(
      `/join/${enc('!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ')}?via=other.example`,
    );
    expect(hinted.body.error).toMatch(/needs federation, which is off/);
    const leave = await post(`/rooms/${enc('!room:other.example')}/leave`);
    expect([leave.status, leave.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    const roomId = (await post('/createRoom', { preset: 'public_chat' })).body.room_id as string;
    const invite = await post(`/rooms/${enc(roomId)}/invite`, { user_id: '@bob:other.example' });
    expect([invite.status, invite.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect(invite.body.error).toMatch(/needs federation, which is off/);
    // Nothing of the refused invite was kept.
    expect(await hs.store.rooms.membership(roomId, '@bob:other.example')).toBeNull();
  });

  it('asks the servers of the hints, the room ID and the alias, in that order', async () => {
    const asked: string[] = [];
    const federation: FederationPort = {
      ...federationOff,
      async queryDirectory(destination, alias) {
        asked.push(`directory ${destination} ${alias}`);
        return { roomId: '!found:third.example', servers: ['fourth.example'] };
      },
      async makeJoin(destination, roomId, userId, versions) {
        asked.push(`make_join ${destination} ${roomId} ${userId}`);
        expect(versions).toContain('12');
        throw federationOffError(`test: ${destination} is down`);
      },
    };
    hs = await createTestHomeserver({ federationPort: federation });
    const alice = await hs.createUser('alice');
    const res = await hs.call(
      'POST',
      `/_matrix/client/v3/join/${enc('!room:other.example')}?via=hint.example`,
      {
        token: alice.accessToken,
        body: {},
      },
    );
    expect(res.status).toBe(404);
    expect(res.body.error).toMatch(/other.example is down/);
    await hs.call('POST', `/_matrix/client/v3/join/${enc('#lounge:alias.example')}`, {
      token: alice.accessToken,
      body: {},
    });
    expect(asked).toEqual([
      `make_join hint.example !room:other.example ${alice.userId}`,
      `make_join other.example !room:other.example ${alice.userId}`,
      'directory alias.example #lounge:alias.example',
      `make_join fourth.example !found:third.example ${alice.userId}`,
      `make_join alias.example !found:third.example ${alice.userId}`,
      `make_join third.example !found:third.example ${alice.userId}`,
    ]);
  });

  it('invites a remote user through the port and accepts the invite the invitee’s server signed', async () => {
    const remote = await remoteServer('other.example');
    const bob = remote.user('bob');
    let sent: Pdu | undefined;
    const federation: FederationPort = {
      ...federationOff,
      async invite(destination, _roomId, _eventId, request) {
        expect(destination).toBe('other.example');
        sent = request.event;
        // The invitee's server adds its signature (server-server-api.md "Inviting to a room").
        return cosignEvent(request.event, remote.name, remote.key, getRoomVersion(request.roomVersion));
      },
    };
    hs = await createTestHomeserver({ federationPort: federation, keyStore: remote.keyStore });
    const { rooms } = hs.internals;
    const alice = await hs.createUser('alice');
    const { roomId } = await rooms.createRoom(alice.userId, { preset: 'private_chat' });
    const { eventId } = await rooms.invite(alice.userId, roomId, bob);
    expect(sent?.sender).toBe(alice.userId);
    const stored = await hs.store.rooms.getEvent(eventId);
    expect(Object.keys(stored?.event.signatures ?? {}).sort()).toEqual(['other.example', 'test.localhost']);
    expect((await hs.store.rooms.membership(roomId, bob))?.membership).toBe('invite');
    // The invite is queued for the invitee's server.
    expect(
      (await hs.store.federation.outbox('other.example', 10)).map((row) => row.kind === 'pdu' && row.eventId),
    ).toEqual([eventId]);
  });
});

describe('remote queries through the federation port', () => {
  it('asks the user’s or alias’s server for profiles and aliases; 404 while federation is off', async () => {
    const asked: string[] = [];
    const federation: FederationPort = {
      ...federationOff,
      async queryProfile(destination, userId, field) {
        asked.push(`profile ${destination} ${userId} ${field ?? '*'}`);
        return { displayname: 'Far Bob' };
      },
      async queryDirectory(destination, alias) {
        asked.push(`directory ${destination} ${alias}`);
        return { roomId: '!far:other.example', servers: ['other.example'] };
      },
    };
    hs = await createTestHomeserver({ federationPort: federation });
    const get = (path: string) =>
      hs?.call('GET', `/_matrix/client/v3${path}`) as ReturnType<TestHomeserver['call']>;
    expect((await get(`/profile/${enc('@bob:other.example')}`)).body).toEqual({ displayname: 'Far Bob' });
    expect((await get(`/profile/${enc('@bob:other.example')}/displayname`)).body).toEqual({
      displayname: 'Far Bob',
    });
    expect((await get(`/profile/${enc('@bob:other.example')}/avatar_url`)).status).toBe(404);
    expect((await get(`/directory/room/${enc('#far:other.example')}`)).body).toEqual({
      room_id: '!far:other.example',
      servers: ['other.example'],
    });
    expect(asked).toEqual([
      'profile other.example @bob:other.example *',
      'profile other.example @bob:other.example displayname',
      'profile other.example @bob:other.example avatar_url',
      'directory other.example #far:other.example',
    ]);
    await hs.close();

    hs = await createTestHomeserver();
    for (const path of [
      `/profile/${enc('@bob:other.example')}`,
      `/directory/room/${enc('#far:other.example')}`,
    ]) {
      const res = await get(path);
      expect([res.status, res.body.errcode], path).toEqual([404, 'M_NOT_FOUND']);
      expect(res.body.error).toMatch(/needs federation, which is off/);
    }
  });
});
