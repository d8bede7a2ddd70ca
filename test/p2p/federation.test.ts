/**
 * P2P federation between Node homeservers over real libp2p connections on loopback: each
 * server named by its key, every request a `/matrix/federation/1` stream.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isP2pServerName } from '../../src/core/p2p-identity.ts';
import { startTestP2pPeer, type TestP2pPeer } from '../../src/transport/libp2p/testing.ts';
import { sendText, sharedRoom, texts } from './testing-room.ts';

const peers: TestP2pPeer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

const enc = encodeURIComponent;

describe('P2P federation over TCP', () => {
  it('invites, joins, carries messages both ways and state changes', async () => {
    const a = await startTestP2pPeer();
    const b = await startTestP2pPeer();
    peers.push(a, b);
    expect(isP2pServerName(a.serverName)).toBe(true);
    await a.know(b);
    await b.know(a);
    const alice = await a.hs.createUser('alice');
    const bob = await b.hs.createUser('bob');
    const roomId = await sharedRoom(a.hs, alice, b.hs, bob);
    await sendText(b.hs, bob, roomId, 'hi from b', 't1');
    await expect.poll(() => texts(a.hs, alice, roomId), { timeout: 10_000 }).toEqual(['hi from b']);
    await sendText(a.hs, alice, roomId, 'hi from a', 't2');
    await expect
      .poll(() => texts(b.hs, bob, roomId), { timeout: 10_000 })
      .toEqual(['hi from b', 'hi from a']);
    const topic = await a.hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, {
      token: alice.accessToken,
      body: { topic: 'over libp2p' },
    });
    expect(topic.status).toBe(200);
    await expect
      .poll(
        async () =>
          (
            await b.hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, {
              token: bob.accessToken,
            })
          ).body,
        { timeout: 10_000 },
      )
      .toEqual({ topic: 'over libp2p' });
    expect(a.transport.peer(b.serverName)).toMatchObject({
      state: 'direct',
      via: 'tcp',
      serverName: b.serverName,
    });
  });
});
