/**
 * P2P peers that lie, and peers that flood: each refused without disturbing the others.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { p2pSigningKey } from '../../src/core/p2p-identity.ts';
import { buildFederationRequest } from '../../src/federation/client.ts';
import { FEDERATION_PROTOCOL } from '../../src/transport/libp2p/index.ts';
import { DEFAULT_MAX_PENDING_INBOUND } from '../../src/transport/libp2p/node.ts';
import { startTestP2pPeer, type TestP2pPeer } from '../../src/transport/libp2p/testing.ts';
import { sendText, sharedRoom, texts } from './testing-room.ts';

const peers: TestP2pPeer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

describe('a peer whose transport key is not its claimed server name', () => {
  it('is refused (401) even with a valid X-Matrix signature by the name it claims', async () => {
    const honest = await startTestP2pPeer();
    const liar = await startTestP2pPeer();
    peers.push(honest, liar);
    await liar.know(honest);
    // The liar holds the key of a third server (say it was stolen, or replayed): the request is
    // validly signed by that server, but the connection proves the liar's own key.
    const victim = await p2pSigningKey(crypto.getRandomValues(new Uint8Array(32)));
    const forged = await buildFederationRequest(victim.serverName, victim.signingKey, honest.serverName, {
      method: 'GET',
      target: `/_matrix/federation/v1/query/profile?user_id=${encodeURIComponent(`@x:${honest.serverName}`)}`,
    });
    const refused = await liar.transport.send(honest.serverName, forged);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({
      errcode: 'M_UNAUTHORIZED',
      error: expect.stringContaining('is not the server whose key this connection proved'),
    });

    // The same request signed by the liar's own name passes the transport (and the homeserver).
    const { signingKey } = await p2pSigningKey(liar.seed);
    const own = await buildFederationRequest(liar.serverName, signingKey, honest.serverName, {
      method: 'GET',
      target: '/_matrix/federation/v1/version',
    });
    expect((await liar.transport.send(honest.serverName, own)).status).toBe(200);
  });

  it('a malformed frame is answered 400 and the connection keeps serving', async () => {
    const server = await startTestP2pPeer();
    const client = await startTestP2pPeer();
    peers.push(server, client);
    await client.know(server);
    const stream = await client.transport.openStream(server.serverName, FEDERATION_PROTOCOL);
    const answer = new Promise<string>((resolve) => {
      const chunks: Uint8Array[] = [];
      stream.addEventListener('message', (e) => chunks.push(e.data.subarray()));
      stream.addEventListener('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    stream.send(new Uint8Array([0, 0, 0, 5, 0x6e, 0x6f, 0x70, 0x65, 0x21]));
    await stream.close();
    expect(await answer).toMatch(/"status":400/);
    const version = await buildFederationRequest(
      client.serverName,
      (await p2pSigningKey(client.seed)).signingKey,
      server.serverName,
      {
        method: 'GET',
        target: '/_matrix/federation/v1/version',
      },
    );
    expect((await client.transport.send(server.serverName, version)).status).toBe(200);
  });
});

describe('a flood of connection attempts', () => {
  it('is refused at the door while the peers already federating go on', async () => {
    const server = await startTestP2pPeer();
    const friend = await startTestP2pPeer();
    peers.push(server, friend);
    await friend.know(server);
    await server.know(friend);
    const alice = await server.hs.createUser('alice');
    const bob = await friend.hs.createUser('bob');
    const roomId = await sharedRoom(server.hs, alice, friend.hs, bob);
    const connectionsBefore = server.node.getConnections().length;

    // 200 TCP connections at once to the server's libp2p port, none of which will ever finish
    // a handshake.
    const port = Number(/\/tcp\/(\d+)/.exec(server.addresses()[0] as string)?.[1]);
    const sockets: Socket[] = [];
    const closedByServer = await new Promise<number>((resolve) => {
      let closed = 0;
      // Refused sockets close within milliseconds; on a loaded machine allow 5 s, still well
      // before a socket let in would be dropped for not finishing its handshake.
      const timer = setTimeout(() => resolve(closed), 5_000);
      for (let i = 0; i < 200; i++) {
        const socket = connect({ host: '127.0.0.1', port });
        socket.on('error', () => undefined);
        socket.on('close', () => {
          closed++;
          if (closed >= 200 - DEFAULT_MAX_PENDING_INBOUND) {
            clearTimeout(timer);
            resolve(closed);
          }
        });
        sockets.push(socket);
      }
    });
    try {
      // Past the per-address rate (5 a second) and the handshakes allowed at once, each is
      // closed at once; only a handful are even let in.
      expect(closedByServer).toBeGreaterThanOrEqual(200 - DEFAULT_MAX_PENDING_INBOUND);
      // Meanwhile the room goes on both ways over the connection already open.
      await sendText(friend.hs, bob, roomId, 'during the flood', 'f1');
      await expect
        .poll(() => texts(server.hs, alice, roomId), { timeout: 10_000 })
        .toEqual(['during the flood']);
      await sendText(server.hs, alice, roomId, 'still here', 'f2');
      await expect
        .poll(() => texts(friend.hs, bob, roomId), { timeout: 30_000 })
        .toEqual(['during the flood', 'still here']);
      expect(server.node.getConnections().length).toBeLessThanOrEqual(connectionsBefore);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }, 60_000);
});
