/**
 * Joining, leaving and inviting across homeservers in one process (src/federation/testing.ts):
 * the membership handshakes end to end through the real endpoints, the port and accept.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver } from '../../src/testing.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

/** A test homeserver of the network by name. */
function hs(network: FederatedNetwork, name: string): TestHomeserver {
  const server = network.servers[name];
  if (!server) throw new Error(`no server ${name}`);
  return server.hs;
}

describe('joining a room of another server', () => {
  it('joins through make_join/send_join, and the room is usable at once', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = hs(net, 'a.test');
    const b = hs(net, 'b.test');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const created = await a.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { preset: 'public_chat', name: 'Lounge' },
    });
    expect(created.status).toBe(200);
    const roomId = created.body.room_id as string;
    await a.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'hello' },
    });
    const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}?via=a.test`, {
      token: bob.accessToken,
      body: {},
    });
    expect(joined.body).toEqual({ room_id: roomId });
    expect(joined.status).toBe(200);
    // A saw the join through send_join; B has the room with its state.
    expect((await a.store.rooms.membership(roomId, bob.userId))?.membership).toBe('join');
    expect((await b.store.rooms.membership(roomId, bob.userId))?.membership).toBe('join');
    expect((await b.store.rooms.membership(roomId, alice.userId))?.membership).toBe('join');
    const sync = await b.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
    const room = (sync.body.rooms as { join: Record<string, { state: { events: { type: string }[] } }> })
      .join[roomId];
    expect(room).toBeDefined();
    const name = await b.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, {
      token: bob.accessToken,
    });
    expect(name.body).toEqual({ name: 'Lounge' });
  });
});

describe('a room shared by two servers', () => {
  it('carries messages both ways, typing and receipts, through the outbox and /send', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = hs(net, 'a.test');
    const b = hs(net, 'b.test');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const roomId = (
      await a.call('POST', '/_matrix/client/v3/createRoom', {
        token: alice.accessToken,
        body: { preset: 'public_chat' },
      })
    ).body.room_id as string;
    const invite = await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, {
      token: alice.accessToken,
      body: { user_id: bob.userId },
    });
    expect(invite.status).toBe(200);
    expect((await b.store.rooms.membership(roomId, bob.userId))?.membership).toBe('invite');
    const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {
      token: bob.accessToken,
      body: {},
    });
    expect(joined.status).toBe(200);

    const send = (server: TestHomeserver, token: string, body: string, txn: string) =>
      server.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, {
        token,
        body: { msgtype: 'm.text', body },
      });
    const bodies = async (server: TestHomeserver, token: string) => {
      const res = await server.call(
        'GET',
        `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`,
        {
          token,
        },
      );
      return (res.body.chunk as { type: string; content: { body?: string } }[])
        .filter((e) => e.type === 'm.room.message')
        .map((e) => e.content.body)
        .reverse();
    };
    const fromBob = await send(b, bob.accessToken, 'hi from b', 't1');
    expect(fromBob.status).toBe(200);
    await expect.poll(() => bodies(a, alice.accessToken)).toEqual(['hi from b']);
    await send(a, alice.accessToken, 'hi from a', 't2');
    await expect.poll(() => bodies(b, bob.accessToken)).toEqual(['hi from b', 'hi from a']);

    await b.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, {
      token: bob.accessToken,
      body: { typing: true, timeout: 20000 },
    });
    await expect.poll(() => a.internals.typing.typingIn(roomId)).toEqual([bob.userId]);
    const eventId = fromBob.body.event_id as string;
    await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {
      token: alice.accessToken,
      body: {},
    });
    await expect
      .poll(async () => (await b.store.receipts.getReceipt(roomId, 'm.read', alice.userId))?.eventId)
      .toBe(eventId);
  });
});
