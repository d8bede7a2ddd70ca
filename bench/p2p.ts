/**
 * P2P benchmarks (issue 11), everything on loopback, each figure beside a raw libp2p echo on
 * the same kind of connection measured in the same run:
 *
 * - connection set-up to the first federation answer between two Node P2P homeservers that
 *   can reach each other only through a relay (a relayed circuit; WebRTC signalled over it),
 *   beside dialling the same peer the same way and echoing one byte; also in round trips
 *   (set-up time ÷ a ping round trip on the connection it made);
 * - a PDU-sized request's round trip over WebRTC (`/matrix/federation/1`, one stream each, a
 *   handler that answers at once) p50/p99, beside echoing the same bytes on a fresh stream;
 *   and a real `/send` of one PDU to a homeserver (accept included), for scale;
 * - `hearth relay` (its own process) with 200 connected peers holding reservations: its
 *   resident memory and CPU, beside the same relay with none.
 *
 *   node bench/p2p.ts          (or npm run bench p2p)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Stream } from '@libp2p/interface';
import { p2pSigningKey } from '../src/core/p2p-identity.ts';
import { buildFederationRequest } from '../src/federation/client.ts';
import { openP2pIdentity } from '../src/homeserver/start.ts';
import { openTestStore } from '../src/homeserver/testing.ts';
import { createHomeserver } from '../src/server.ts';
import { createLibp2pTransport, type Libp2pTransport } from '../src/transport/libp2p/index.ts';
import { createHearthNode, type HearthNode } from '../src/transport/libp2p/node.ts';
import { createRelay, type Relay } from '../src/transport/libp2p/relay.ts';
import { nodeTransports } from '../src/transport/libp2p/transports-node.ts';
import { type BenchRow, percentile, printTable } from './harness.ts';

const ECHO = '/hearth/bench-echo/1';
const now = () => performance.now();

/** Echoes every byte of a stream back, then closes it. */
function serveEcho(node: HearthNode): Promise<void> {
  return node.handle(
    ECHO,
    async (stream) => {
      for await (const chunk of stream) {
        if (!stream.send(chunk)) await stream.onDrain();
      }
      await stream.close();
    },
    { runOnLimitedConnection: true },
  );
}

/** Sends `bytes` on a fresh echo stream and resolves when all came back (first byte: when one did). */
async function echo(stream: Stream, bytes: Uint8Array, untilFirst = false): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    stream.addEventListener('message', (e) => {
      got += e.data.byteLength;
      if (untilFirst || got >= bytes.byteLength) resolve();
    });
    stream.addEventListener('close', (e) => (e.error ? reject(e.error) : resolve()));
    stream.send(bytes);
    stream.close().catch(reject);
  });
}

/** One round trip on the connection already open: a byte echoed on one stream, median of 9. */
async function roundTrip(transport: Libp2pTransport, serverName: string): Promise<number> {
  const stream = await transport.openStream(serverName, ECHO);
  const times: number[] = [];
  let resolveOne: (() => void) | undefined;
  stream.addEventListener('message', () => resolveOne?.());
  for (let i = 0; i < 9; i++) {
    const start = now();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      stream.send(new Uint8Array([i]));
    });
    times.push(now() - start);
  }
  await stream.close();
  return percentile(
    times.sort((x, y) => x - y),
    50,
  );
}

interface Peer {
  node: HearthNode;
  transport: Libp2pTransport;
  serverName: string;
  seed: Uint8Array;
  close(): Promise<void>;
}

/** A P2P homeserver reachable only through `relay` (no listener of its own). */
async function homeserverPeer(relay: string, webRTC: boolean): Promise<Peer> {
  const store = await openTestStore();
  const { seed, serverName } = await openP2pIdentity(store);
  const node = await createHearthNode({
    seed,
    transports: nodeTransports({ webRTC }),
    listen: [],
    relays: [relay],
    webRTC,
  });
  await serveEcho(node);
  let fetcher: ((r: Request) => Promise<Response>) | undefined;
  const transport = createLibp2pTransport({
    node,
    relays: [relay],
    handler: (request) => (fetcher ? fetcher(request) : Promise.resolve(new Response(null, { status: 503 }))),
  });
  const hs = createHomeserver({
    serverName,
    p2p: true,
    store,
    registration: 'open',
    federation: { transport },
    rateLimits: { default: { perSecond: 1e9, burst: 1e9 } },
  });
  await hs.ready;
  fetcher = (request) => hs.fetch(request);
  return {
    node,
    transport,
    serverName,
    seed,
    async close() {
      await transport.close();
      await node.stop();
      await hs.close();
    },
  };
}

async function waitFor(check: () => boolean, ms = 15_000): Promise<void> {
  const end = now() + ms;
  while (!check()) {
    if (now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reserved = (peer: Peer) => () =>
  peer.node.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit'));

/** Set-up to first federation answer vs set-up to first echoed byte, through the relay. */
async function setupBench(relay: Relay, webRTC: boolean, trials: number): Promise<BenchRow[]> {
  const relayAddr = relay.addresses().find((a) => !a.includes('/ws')) as string;
  const a = await homeserverPeer(relayAddr, webRTC);
  const b = await homeserverPeer(relayAddr, webRTC);
  try {
    await waitFor(reserved(a));
    await waitFor(reserved(b));
    const { signingKey } = await p2pSigningKey(a.seed);
    const kind = webRTC ? 'WebRTC via relay' : 'relayed circuit';
    const fed: number[] = [];
    const raw: number[] = [];
    const rtts: number[] = [];
    const hangUp = async () => {
      await a.node.hangUp(b.node.peerId);
      await waitFor(() => a.node.getConnections(b.node.peerId).length === 0);
      // Forget what identify taught: every trial dials through the relay as the first did.
      await a.node.peerStore.delete(b.node.peerId).catch(() => undefined);
    };
    for (let i = 0; i < trials; i++) {
      await hangUp();
      const request = await buildFederationRequest(a.serverName, signingKey, b.serverName, {
        method: 'GET',
        target: '/_matrix/federation/v1/version',
      });
      let start = now();
      const response = await a.transport.send(b.serverName, request);
      fed.push(now() - start);
      if (response.status !== 200) throw new Error(`federation answered ${response.status}`);
      rtts.push(await roundTrip(a.transport, b.serverName));
      await hangUp();
      start = now();
      const stream = await a.transport.openStream(b.serverName, ECHO);
      await echo(stream, new Uint8Array([1]), true);
      raw.push(now() - start);
    }
    const via = a.transport.peer(b.serverName).via;
    const med = (xs: number[]) =>
      percentile(
        [...xs].sort((x, y) => x - y),
        50,
      );
    const rtt = Math.max(med(rtts), 0.05);
    return [
      {
        name: `set-up to first federation answer, ${kind} (p50 of ${trials}; connection: ${via})`,
        value: med(fed),
        unit: 'ms',
        baselineName: 'dial + first echoed byte, same path',
        baselineValue: med(raw),
        ratio: med(raw) / med(fed),
      },
      {
        name: `  the same in round trips (÷ one round trip, ${rtt.toFixed(2)} ms, on that connection)`,
        value: med(fed) / rtt,
        unit: 'RTT',
        baselineName: 'dial + echo, in RTT',
        baselineValue: med(raw) / rtt,
        ratio: med(raw) / med(fed),
      },
    ];
  } finally {
    await a.close();
    await b.close();
  }
}

/** PDU-sized round trips over WebRTC: our protocol with an immediate handler vs a raw echo. */
async function roundTripBench(relay: Relay, count: number): Promise<BenchRow[]> {
  const relayAddr = relay.addresses().find((a) => !a.includes('/ws')) as string;
  const make = async (handler?: (r: Request) => Promise<Response>) => {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const node = await createHearthNode({
      seed,
      transports: nodeTransports({ webRTC: true }),
      listen: [],
      relays: [relayAddr],
      webRTC: true,
    });
    await serveEcho(node);
    const transport = createLibp2pTransport({ node, relays: [relayAddr], ...(handler ? { handler } : {}) });
    return { node, transport, seed };
  };
  // A transaction of one ~1.5 KiB PDU, as a message event travels.
  const txn = JSON.stringify({
    origin: 'x',
    origin_server_ts: 0,
    pdus: [{ content: { body: 'x'.repeat(1200), msgtype: 'm.text' }, type: 'm.room.message' }],
    edus: [],
  });
  const answer = '{"pdus":{"$event":{}}}';
  const b = await make(async (request) => {
    await request.arrayBuffer();
    return new Response(answer, { headers: { 'content-type': 'application/json' } });
  });
  const a = await make();
  try {
    await waitFor(() => b.node.getMultiaddrs().some((m) => m.toString().includes('/webrtc')));
    const bName = b.transport.serverName;
    // The first request sets WebRTC up; the rest ride it.
    await a.transport.send(bName, new Request(`https://${bName}/x`, { method: 'PUT', body: txn }));
    const via = a.transport.peer(bName).via;
    const bytes = new TextEncoder().encode(txn);
    const fed: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < count; i++) {
      let start = now();
      const response = await a.transport.send(
        bName,
        new Request(`https://${bName}/_matrix/federation/v1/send/t${i}`, { method: 'PUT', body: txn }),
      );
      await response.arrayBuffer();
      fed.push(now() - start);
      start = now();
      await echo(await a.transport.openStream(bName, ECHO), bytes);
      raw.push(now() - start);
    }
    fed.sort((x, y) => x - y);
    raw.sort((x, y) => x - y);
    const rows: BenchRow[] = [];
    for (const p of [50, 99]) {
      const value = percentile(fed, p);
      const base = percentile(raw, p);
      rows.push({
        name: `PDU request round trip over ${via}, p${p} (${count}, stream each, handler answers at once)`,
        value,
        unit: 'ms',
        baselineName: `raw echo of the same ${bytes.byteLength} B, stream each`,
        baselineValue: base,
        ratio: base / value,
      });
    }
    return rows;
  } finally {
    await a.transport.close();
    await b.transport.close();
    await a.node.stop();
    await b.node.stop();
  }
}

/** A real `/send` of one PDU to a P2P homeserver over WebRTC (signature checks, auth, store). */
async function homeserverRoundTrip(relay: Relay, count: number): Promise<BenchRow[]> {
  const relayAddr = relay.addresses().find((a) => !a.includes('/ws')) as string;
  const a = await homeserverPeer(relayAddr, true);
  const b = await homeserverPeer(relayAddr, true);
  try {
    await waitFor(() => b.node.getMultiaddrs().some((m) => m.toString().includes('/webrtc')));
    await waitFor(reserved(a));
    const { signingKey } = await p2pSigningKey(a.seed);
    // A room of A's that B will accept events of: created on B's side by A's events needs a
    // join; instead measure /send of a transaction with no PDUs plus one EDU (B checks the
    // X-Matrix signature, stages and applies the transaction durably).
    const samples: number[] = [];
    const raw: number[] = [];
    const bytes = new Uint8Array(1500);
    for (let i = 0; i < count + 1; i++) {
      const request = await buildFederationRequest(a.serverName, signingKey, b.serverName, {
        method: 'PUT',
        target: `/_matrix/federation/v1/send/bench${i}`,
        body: {
          origin: a.serverName,
          origin_server_ts: Date.now(),
          pdus: [],
          edus: [{ edu_type: 'm.presence', content: { push: [] } }],
        },
      });
      let start = now();
      const response = await a.transport.send(b.serverName, request);
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`/send answered ${response.status}`);
      if (i > 0) samples.push(now() - start);
      start = now();
      await echo(await a.transport.openStream(b.serverName, ECHO), bytes);
      if (i > 0) raw.push(now() - start);
    }
    samples.sort((x, y) => x - y);
    raw.sort((x, y) => x - y);
    return [50, 99].map((p) => ({
      name: `signed /send to a homeserver over ${a.transport.peer(b.serverName).via}, p${p} (X-Matrix check, durable txn)`,
      value: percentile(samples, p),
      unit: 'ms',
      baselineName: 'raw echo of 1500 B, stream each',
      baselineValue: percentile(raw, p),
      ratio: percentile(raw, p) / percentile(samples, p),
    }));
  } finally {
    await a.close();
    await b.close();
  }
}

/** Resident memory (KiB) and CPU time (ms) of a process, from /proc. */
function usage(pid: number): { rssKiB: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssKiB, cpuMs: (ticks * 1000) / 100 };
}

/** `hearth relay` in its own process, 200 peers connected with reservations. */
async function relayLoadBench(peers: number): Promise<BenchRow[]> {
  const cli = join(import.meta.dirname, '..', 'src', 'hosts', 'cli.ts');
  const child = spawn(
    process.execPath,
    [
      cli,
      'relay',
      '--port',
      '0',
      '--ws-port',
      '0',
      '--stats-seconds',
      '1',
      '--connections-per-second',
      '1000',
      '--max-connections',
      String(peers + 50),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const nodes: HearthNode[] = [];
  try {
    await waitFor(() => /relay listening: (\S+)/.test(output), 30_000);
    const addr = (/relay listening: (\S+)/.exec(output) as RegExpExecArray)[1] as string;
    const pid = child.pid as number;
    await new Promise((r) => setTimeout(r, 2000));
    const idleBefore = usage(pid);
    await new Promise((r) => setTimeout(r, 5000));
    const idleAfter = usage(pid);
    const emptyCpu = (idleAfter.cpuMs - idleBefore.cpuMs) / 5000;
    const emptyRss = idleAfter.rssKiB;
    for (let i = 0; i < peers; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, peers - i) }, () =>
          createHearthNode({
            seed: crypto.getRandomValues(new Uint8Array(32)),
            transports: nodeTransports({ webRTC: false, webSockets: false }),
            listen: [],
            relays: [addr],
          }),
        ),
      );
      nodes.push(...batch);
    }
    const lastStats = () => [...output.matchAll(/relay: (\d+) peers connected, (\d+) reservations/g)].at(-1);
    // On a loaded machine some reservations take long: after two minutes, measure with what
    // there is (the row names the counts).
    await waitFor(() => Number(lastStats()?.[2] ?? 0) >= peers, 120_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000));
    const loadBefore = usage(pid);
    await new Promise((r) => setTimeout(r, 10_000));
    const loadAfter = usage(pid);
    const loadCpu = (loadAfter.cpuMs - loadBefore.cpuMs) / 10_000;
    const stats = lastStats();
    return [
      {
        name: `relay RSS with ${stats?.[1]} peers, ${stats?.[2]} reservations`,
        value: loadAfter.rssKiB / 1024,
        unit: 'MiB',
        baselineName: 'the same relay with no peers',
        baselineValue: emptyRss / 1024,
        ratio: emptyRss / loadAfter.rssKiB,
        note: `${((loadAfter.rssKiB - emptyRss) / peers).toFixed(0)} KiB a peer`,
      },
      {
        name: `relay CPU with ${stats?.[1]} peers connected (${stats?.[2]} reservations), idle, over 10 s`,
        value: loadCpu * 100,
        unit: '% of a core',
        baselineName: 'with no peers (5 s)',
        baselineValue: emptyCpu * 100,
      },
    ];
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    child.kill('SIGTERM');
  }
}

export async function p2pBench(): Promise<BenchRow[]> {
  const relay = await createRelay({
    transports: nodeTransports({ webRTC: false }),
    limits: { inboundConnectionsPerSecond: 1000 },
  });
  const rows: BenchRow[] = [];
  try {
    rows.push(...(await setupBench(relay, false, 7)));
    rows.push(...(await setupBench(relay, true, 7)));
    rows.push(...(await roundTripBench(relay, 300)));
    rows.push(...(await homeserverRoundTrip(relay, 100)));
  } finally {
    await relay.close();
  }
  rows.push(...(await relayLoadBench(200)));
  return rows;
}

if (import.meta.main) {
  printTable('p2p: libp2p federation beside raw libp2p echoes on the same connections', await p2pBench());
}
