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
