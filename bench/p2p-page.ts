/**
 * The page side of bench/p2p-browser.ts: a Hearth libp2p node as the leader tab runs it
 * (browser transports, a reservation on the relay, WebRTC signalled through it), serving
 * `/matrix/federation/1` with a handler that answers at once, and a raw echo protocol to
 * measure beside it on the same connections.
 */
import { peerIdFromServerName } from '../src/transport/libp2p/identity.ts';
import { createLibp2pTransport, type Libp2pTransport } from '../src/transport/libp2p/index.ts';
import { createHearthNode, type HearthNode } from '../src/transport/libp2p/node.ts';
import { browserTransports } from '../src/transport/libp2p/transports-browser.ts';

const ECHO = '/hearth/bench-echo/1';
let node: HearthNode;
let transport: Libp2pTransport;
let relay = '';

/** Sends `bytes` on a fresh stream of `protocol`-echo and resolves when `want` bytes came back. */
async function echoOnce(
  stream: Awaited<ReturnType<Libp2pTransport['openStream']>>,
  bytes: Uint8Array,
  want: number,
) {
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    stream.addEventListener('message', (e) => {
      got += e.data.byteLength;
      if (got >= want) resolve();
    });
    stream.addEventListener('close', (e) => (e.error ? reject(e.error) : resolve()));
    stream.send(bytes);
    stream.close().catch(reject);
  });
}

const pdu = (size: number) =>
  new TextEncoder().encode(JSON.stringify({ pdus: [{ body: 'x'.repeat(size) }] }));

async function federationOnce(peer: string, body: Uint8Array<ArrayBuffer> | null): Promise<void> {
  const response = await transport.send(
    peer,
    new Request(`https://${peer}/_matrix/federation/v1/send/bench`, {
      method: body ? 'PUT' : 'GET',
      body,
    }),
  );
  await response.arrayBuffer();
}

Object.assign(globalThis, {
  p2pBench: {
    async start(relayAddress: string): Promise<string> {
      relay = relayAddress;
      node = await createHearthNode({
        seed: crypto.getRandomValues(new Uint8Array(32)),
        transports: browserTransports(),
        relays: [relay],
        webRTC: true,
      });
      await node.handle(
        ECHO,
        async (stream) => {
          for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain();
          await stream.close();
        },
        { runOnLimitedConnection: true },
      );
      transport = createLibp2pTransport({
        node,
        relays: [relay],
        storeAndForward: false,
        handler: async (request) => {
          await request.arrayBuffer();
          return new Response('{"pdus":{}}', { headers: { 'content-type': 'application/json' } });
        },
      });
      // Reachable once the reservation is held (a circuit address is announced).
      for (
        let i = 0;
        i < 300 && !node.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit'));
        i++
      )
        await new Promise((r) => setTimeout(r, 50));
      return transport.serverName;
    },
    /** From nothing open to the first answer: a federation request, or a one-byte echo on the same path. */
    async setUp(peer: string, kind: 'federation' | 'echo'): Promise<{ ms: number; via: string }> {
      const id = peerIdFromServerName(peer);
      await node.hangUp(id);
      const start = performance.now();
      if (kind === 'federation') await federationOnce(peer, null);
      else {
        // Dialled exactly as federation is (WebRTC through the relay first), then one byte.
        const stream = await transport.openStream(peer, ECHO);
        await echoOnce(stream, new Uint8Array([1]), 1);
      }
      const ms = performance.now() - start;
      return { ms, via: transport.peer(peer).via ?? 'none' };
    },
    /** `n` round trips of a PDU-sized body, federation and echo interleaved, on the open WebRTC connection. */
    async roundTrips(
      peer: string,
      n: number,
      size: number,
    ): Promise<{ federation: number[]; echo: number[] }> {
      const body = pdu(size);
      const out = { federation: [] as number[], echo: [] as number[] };
      for (let i = 0; i < n; i++) {
        let start = performance.now();
        await federationOnce(peer, body);
        out.federation.push(performance.now() - start);
        start = performance.now();
        const stream = await transport.openStream(peer, ECHO);
        await echoOnce(stream, body, body.byteLength);
        out.echo.push(performance.now() - start);
      }
      return out;
    },
    async stop() {
      await transport.close();
      await node.stop();
    },
  },
});
