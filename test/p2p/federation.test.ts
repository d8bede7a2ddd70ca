/**
 * P2P federation between Node homeservers over real libp2p connections on loopback: each
 * server named by its key, every request a `/matrix/federation/1` stream.
 */
import { describe, expect, it } from 'vitest';
import { isP2pServerName } from '../../src/core/p2p-identity.ts';
import { relayTcpAddress } from '../../src/transport/libp2p/testing.ts';
import { aliceAndBob, p2pTestNetwork, sendText, texts } from './testing-room.ts';

const net = p2pTestNetwork();

const enc = encodeURIComponent;

describe('P2P federation over TCP', () => {
  it('invites, joins, carries messages both ways and state changes', async () => {
    const { a, b } = await net.pair({ know: true });
    expect(isP2pServerName(a.serverName)).toBe(true);
    const { alice, bob, roomId } = await aliceAndBob(a, b);
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

describe('P2P federation over WebRTC (node-datachannel), signalled through a relay', () => {
  it('finds the peer in the relay directory, sets up WebRTC, and federates a room over it', async () => {
    const relay = await net.relay();
    const via = [relayTcpAddress(relay)];
    // No listener of their own: the relay is the only way in, WebRTC the way through.
    const { a, b } = await net.pair({
      relays: via,
      listen: [],
      webRTC: true,
      transports: { tcp: true, webSockets: false },
    });
    // Each holds a reservation and is listed in the relay's directory.
    await expect
      .poll(() => a.transport.relayClient?.directory().then((d) => d.map((e) => e.server_name).sort()), {
        timeout: 10_000,
      })
      .toEqual([a.serverName, b.serverName].sort());
    const { alice, bob, roomId } = await aliceAndBob(a, b);
    expect(a.transport.peer(b.serverName)).toMatchObject({ state: 'direct', via: 'webrtc' });
    await sendText(b.hs, bob, roomId, 'over webrtc from b', 't1');
    await expect.poll(() => texts(a.hs, alice, roomId), { timeout: 10_000 }).toEqual(['over webrtc from b']);
    await sendText(a.hs, alice, roomId, 'over webrtc from a', 't2');
    await expect
      .poll(() => texts(a.hs, alice, roomId), { timeout: 10_000 })
      .toEqual(['over webrtc from b', 'over webrtc from a']);
    await expect
      .poll(() => texts(b.hs, bob, roomId), { timeout: 10_000 })
      .toEqual(['over webrtc from b', 'over webrtc from a']);
    const rename = await b.hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, {
      token: bob.accessToken,
      body: { name: 'renamed by b' },
    });
    // The room is private_chat: bob (power 0) may not rename it, and says so; alice may.
    expect(rename.status).toBe(403);
    await a.hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, {
      token: alice.accessToken,
      body: { name: 'renamed by a' },
    });
    await expect
      .poll(
        async () =>
          (
            await b.hs.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, {
              token: bob.accessToken,
            })
          ).body,
        { timeout: 10_000 },
      )
      .toEqual({ name: 'renamed by a' });
    expect(b.transport.peer(a.serverName)).toMatchObject({ state: 'direct', via: 'webrtc' });
  });
});

describe('a peer coming back', () => {
  it('gets what waited for it at once, whatever the backoff said', async () => {
    const { a, b } = await net.pair({ know: true });
    const { alice, bob, roomId } = await aliceAndBob(a, b);
    await b.node.stop();
    await sendText(a.hs, alice, roomId, 'while you were away', 'away');
    // The send failed (no relay to hold it): A backs off — and here, for an hour.
    await expect
      .poll(async () => (await a.hs.store.federation.getDestination(b.serverName))?.retryInterval ?? 0, {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    await a.hs.store.federation.setDestination(b.serverName, {
      retryAt: Date.now() + 3_600_000,
      retryInterval: 3_600_000,
      lastSuccessAt: null,
    });
    await b.node.start();
    await b.node.dial(a.node.peerId);
    // Nothing asks A for anything (B reading /messages would backfill from A, which resets the
    // backoff too): only the connection says B is back.
    await expect.poll(() => a.hs.store.federation.outbox(b.serverName, 10), { timeout: 10_000 }).toEqual([]);
    expect(await texts(b.hs, bob, roomId)).toEqual(['while you were away']);
  });
});
