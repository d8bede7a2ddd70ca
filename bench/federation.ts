/**
 * Federation benchmarks (issue 10), each beside the raw primitive it rests on, in one run:
 *
 * - inbound PDUs accepted per second with every check (signature, hash, auth against its
 *   auth events and the state before it, soft-fail, push, persist) through the real inbound
 *   path — X-Matrix signed `PUT /send` transactions of 50 PDUs from a server in the room whose
 *   keys are known — beside bare ed25519 verifies per second of the same event's signed
 *   bytes, one after another (the aim: ≥ 0.8×);
 * - a join of a room with `STATE_EVENTS` state events from another in-process server (the
 *   in-memory network; make_join, send_join, every returned event checked and stored) —
 *   beside verifying that many signatures bare (the aim: ≤ 10 s for 10,000);
 * - the outbox: a message for 20 remote servers sent as 20 signed transactions; our CPU per
 *   destination (`process.cpuUsage`, the transport answers at once) — beside one bare ed25519
 *   sign (the aim: ≤ 2 ms a destination).
 *
 * The accept rate is measured on the in-memory store (fake-indexeddb) and on SQLite; the join
 * and the outbox run on the in-memory store, as the federation tests do.
 *
 *   node bench/federation.ts [state-events]
 *   node bench/federation.ts accept [memory|SQLite]   (the accept rates alone)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBase64 } from '../src/core/base64.ts';
import { defaultEd25519 } from '../src/core/crypto.ts';
import {
  canonicalOptions,
  getRoomVersion,
  type IdentifiedPdu,
  type JsonObject,
  type Pdu,
  redact,
  signedBytes,
  toWirePdu,
} from '../src/core/index.ts';
import { parseJson } from '../src/core/json.ts';
import { buildFederationRequest, createFederationClient } from '../src/federation/client.ts';
import { createSender } from '../src/federation/sender.ts';
import { createFederatedServers, type FederatedNetwork } from '../src/federation/testing.ts';
import { silentLogger, webRandom } from '../src/homeserver/context.ts';
import { buildEvent } from '../src/homeserver/rooms/build.ts';
import { currentAuthState, extremityEvents } from '../src/homeserver/rooms/testing-remote.ts';
import { seedRoom } from '../src/storage/conformance/testing.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import { createTestHomeserver } from '../src/testing.ts';
import { type BenchRow, printTable, profiled } from './harness.ts';

const now = () => performance.now();
const DEFAULT_STATE_EVENTS = 10_000;
const ACCEPTED_PDUS = 1000;
/** Sent (and accepted) before the timing starts: the code is warm, as a running server's is. */
const WARMUP_PDUS = 100;
const PDUS_PER_TXN = 50;
/** Bare verifies after each measured transaction, for this long. */
const VERIFY_MS_PER_TXN = 50;
const DESTINATIONS = 20;
const OUTBOX_MESSAGES = 25;

/**
 * Bare ed25519 verifies of `pdu`'s signed bytes under `publicKey`, one after another, for
 * `ms`: per second, how many in how long, and the process's CPU per verify (ms; WebCrypto's
 * thread pool included).
 */
async function bareVerify(
  pdu: Pdu,
  server: string,
  publicKey: Uint8Array,
  ms = 1000,
): Promise<{ rate: number; cpuMs: number; count: number; ms: number }> {
  const backend = await defaultEd25519();
  const version = getRoomVersion('10');
  const bytes = signedBytes(
    redact(toWirePdu(pdu as IdentifiedPdu, version), version),
    canonicalOptions(version),
  );
  const [, sig] = Object.entries(pdu.signatures?.[server] ?? {})[0] ?? [];
  if (!sig) throw new Error('unsigned');
  const signature = decodeBase64(sig);
  if (!(await backend.verify(publicKey, bytes, signature))) throw new Error('the signature does not verify');
  let count = 0;
  const end = now() + ms;
  const cpu = process.cpuUsage();
  const start = now();
  while (now() < end) {
    await backend.verify(publicKey, bytes, signature);
    count++;
  }
  const elapsed = now() - start;
  return { rate: (count * 1000) / elapsed, cpuMs: cpuMsSince(cpu) / count, count, ms: elapsed };
}

const bareVerifyRate = async (pdu: Pdu, server: string, publicKey: Uint8Array, ms = 1000) =>
  (await bareVerify(pdu, server, publicKey, ms)).rate;

/** The process's CPU time since `before`, in ms. */
function cpuMsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/** The public key `server` signs with, from its own homeserver. */
function publicKeyOf(net: FederatedNetwork, server: string): Uint8Array {
  const ctx = net.servers[server]?.services.ctx;
  if (!ctx) throw new Error(`no ${server}`);
  return ctx.signingKey.publicKey;
}

/**
 * The accept rate, through the real inbound path: a room on a.bench that bob of
 * b.bench joined (a real make_join/send_join), then chains of bob's messages made and signed
 * by b.bench, each on the one before, sent to a.bench as `PUT /send/{txnId}` transactions of
 * 50 PDUs (X-Matrix signed, over the in-memory network): every PDU's signature, content hash,
 * event ID, auth against its auth events and against the state before it, soft-fail check,
 * push evaluation for alice, and the persist. Beside it, bare ed25519 verifies of the same
 * event's signed bytes in the same run.
 */
async function acceptRate(backend: 'memory' | 'SQLite'): Promise<BenchRow> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-federation-bench-'));
  let opened = 0;
  const net = await createFederatedServers(['a.bench', 'b.bench'], {
    ...(backend === 'SQLite'
      ? { homeserver: { store: () => openSqliteStore({ path: join(dir, `hs${opened++}.sqlite`) }) } }
      : {}),
  });
  try {
    const a = net.servers['a.bench']?.hs;
    const b = net.servers['b.bench']?.hs;
    const bCtx = net.servers['b.bench']?.services.ctx;
    if (!a || !b || !bCtx) throw new Error('no servers');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const version = getRoomVersion('10');
    const { roomId } = await a.internals.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_version: '10',
    });
    await b.internals.rooms.join(bob.userId, roomId, { servers: ['a.bench'] });
    // What b.bench would send: a chain of bob's messages on a.bench's forward extremity.
    const state = await currentAuthState(a.store, roomId);
    let prev = (await extremityEvents(a.store, roomId))[0] as IdentifiedPdu;
    const chain: IdentifiedPdu[] = [];
    for (let i = 0; i < WARMUP_PDUS + ACCEPTED_PDUS; i++) {
      prev = await buildEvent(
        { sender: bob.userId, type: 'm.room.message', content: { msgtype: 'm.text', body: `message ${i}` } },
        { version, roomId, prevEvents: [prev], state },
        { serverName: 'b.bench', signingKey: bCtx.signingKey, now: net.clock.now() + i, random: bCtx.random },
      );
      chain.push(prev);
    }
    // The transactions as b.bench sends them, X-Matrix signed before the clock starts: only
    // a.bench's work (and the in-memory network's copy of the bytes) is measured.
    const transport = net.network.transport('b.bench');
    let txn = 0;
    const request = (events: readonly IdentifiedPdu[]) =>
      buildFederationRequest('b.bench', bCtx.signingKey, 'a.bench', {
        method: 'PUT',
        target: `/_matrix/federation/v1/send/bench-${txn++}`,
        body: {
          origin: 'b.bench',
          origin_server_ts: net.clock.now(),
          pdus: events.map((event) => toWirePdu(event, version) as JsonObject),
        },
      });
    const send = async (events: readonly IdentifiedPdu[], signed: Request) => {
      const response = await transport.send('a.bench', signed);
      const answer = parseJson(await response.text()) as { pdus?: Record<string, { error?: string }> };
      const results = answer.pdus ?? {};
      for (const event of events)
        if (!results[event.event_id] || results[event.event_id]?.error !== undefined)
          throw new Error(`${event.event_id} was not accepted: ${JSON.stringify(results[event.event_id])}`);
    };
    const transactions: { events: IdentifiedPdu[]; signed: Request }[] = [];
    for (let i = 0; i < chain.length; i += PDUS_PER_TXN) {
      const events = chain.slice(i, i + PDUS_PER_TXN);
      transactions.push({ events, signed: await request(events) });
    }
    const warmup = transactions.slice(0, WARMUP_PDUS / PDUS_PER_TXN);
    const measured = transactions.slice(WARMUP_PDUS / PDUS_PER_TXN);
    for (const { events, signed } of warmup) await send(events, signed);
    // Each transaction is followed by bare verifies of the same event's signed bytes, so both
    // figures are measured under the same load however the machine's changes meanwhile.
    const sample = toWirePdu(chain[0] as IdentifiedPdu, version);
    let acceptMs = 0;
    let acceptCpu = 0;
    let verifyMs = 0;
    let verifyCpu = 0;
    let verifies = 0;
    await profiled(`accept-${backend}`, async () => {
      for (const { events, signed } of measured) {
        const cpu = process.cpuUsage();
        const start = now();
        await send(events, signed);
        acceptMs += now() - start;
        acceptCpu += cpuMsSince(cpu);
        const bare = await bareVerify(sample, 'b.bench', publicKeyOf(net, 'b.bench'), VERIFY_MS_PER_TXN);
        verifies += bare.count;
        verifyMs += bare.ms;
        verifyCpu += bare.cpuMs * bare.count;
      }
    });
    const accepted = (ACCEPTED_PDUS * 1000) / acceptMs;
    const verify = (verifies * 1000) / verifyMs;
    const cpuPerPdu = acceptCpu / ACCEPTED_PDUS;
    const cpuPerVerify = verifyCpu / verifies;
    const last = await a.store.rooms.getEvent((chain.at(-1) as IdentifiedPdu).event_id);
    if (!last || last.stream === null) throw new Error('the last PDU is not in the timeline');
    return {
      name: `inbound PDUs accepted with every check (${ACCEPTED_PDUS} through PUT /send, ${PDUS_PER_TXN} a transaction, ${backend})`,
      value: accepted,
      unit: 'PDUs/s',
      baselineName: 'bare ed25519 verify of one PDU',
      baselineValue: verify,
      ratio: accepted / verify,
      // CPU per PDU (a.bench's, and the in-memory network's copy) beside CPU per bare
      // verify: steadier than wall-clock rates on a loaded machine.
      note: `aim ≥ 0.8; CPU ${cpuPerPdu.toFixed(3)} ms a PDU, ${cpuPerVerify.toFixed(3)} ms a verify: ${(cpuPerVerify / cpuPerPdu).toFixed(2)}`,
    };
  } finally {
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function joinLargeRoom(stateEvents: number): Promise<BenchRow> {
  const net = await createFederatedServers(['a.bench', 'b.bench']);
  try {
    const a = net.servers['a.bench']?.hs;
    const b = net.servers['b.bench']?.hs;
    if (!a || !b) throw new Error('no servers');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const { roomId } = await a.internals.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_version: '10',
    });
    for (let i = 0; i < stateEvents; i++)
      await a.internals.rooms.sendEvent({
        sender: alice.userId,
        roomId,
        type: 'org.example.bench',
        stateKey: `key ${i}`,
        content: { i },
      });
    const some = (await a.store.rooms.currentStateEvents(roomId)).at(-1)?.event as Pdu;
    const verify = await bareVerifyRate(some, 'a.bench', publicKeyOf(net, 'a.bench'));
    const start = now();
    await b.internals.rooms.join(bob.userId, roomId, { servers: ['a.bench'] });
    const seconds = (now() - start) / 1000;
    const held = (await b.store.rooms.currentStateEvents(roomId)).length;
    if (held < stateEvents) throw new Error(`b.bench holds ${held} state events, not ${stateEvents}`);
    const bare = stateEvents / verify;
    return {
      name: `join of a room with ${stateEvents} state events over the in-memory network, every event checked`,
      value: seconds,
      unit: 's',
      baselineName: `bare ed25519 verify of ${stateEvents} events`,
      baselineValue: bare,
      ratio: bare / seconds,
      note: 'aim ≤ 10 s for 10,000',
    };
  } finally {
    await net.close();
  }
}

async function outboxCpu(): Promise<BenchRow> {
  const hs = await createTestHomeserver({ serverName: 'bench.localhost' });
  try {
    const { store } = hs;
    const room = await seedRoom(store, 0);
    const destinations = Array.from({ length: DESTINATIONS }, (_, i) => `remote${i}.bench`);
    const client = createFederationClient({
      serverName: 'bench.localhost',
      signingKey: hs.internals.ctx.signingKey,
      // The other servers answer at once: only our own work is measured.
      transport: { send: async () => Response.json({ pdus: {} }) },
    });
    const sender = createSender({
      serverName: 'bench.localhost',
      store,
      client,
      clock: { now: () => Date.now() },
      random: webRandom,
      logger: silentLogger,
    });
    sender.start();
    await sender.idle();
    const events = Array.from({ length: OUTBOX_MESSAGES }, () => room.message());
    const cpuBefore = process.cpuUsage();
    for (const event of events) {
      await store.rooms.persistEvents([{ ...event, destinations }]);
      sender.wake(destinations);
      await sender.idle();
    }
    const cpu = process.cpuUsage(cpuBefore);
    sender.stop();
    for (const destination of destinations)
      if ((await store.federation.outbox(destination, 1)).length > 0) throw new Error('outbox not drained');
    const msPerDestination = (cpu.user + cpu.system) / 1000 / (OUTBOX_MESSAGES * DESTINATIONS);
    const key = hs.internals.ctx.signingKey;
    const bytes = new TextEncoder().encode('{"method":"PUT","uri":"/_matrix/federation/v1/send/1-1"}');
    let n = 0;
    const start = now();
    while (now() - start < 500) {
      await key.sign(bytes);
      n++;
    }
    const signMs = (now() - start) / n;
    return {
      name: `outbox: a message for ${DESTINATIONS} servers, our CPU per destination (persist, transaction, X-Matrix, ack)`,
      value: msPerDestination,
      unit: 'ms',
      baselineName: 'bare ed25519 sign',
      baselineValue: signMs,
      ratio: signMs / msPerDestination,
      note: 'aim ≤ 2 ms',
    };
  } finally {
    await hs.close();
  }
}

export async function federationBench(stateEvents = DEFAULT_STATE_EVENTS): Promise<BenchRow[]> {
  return [
    await acceptRate('memory'),
    await acceptRate('SQLite'),
    await outboxCpu(),
    await joinLargeRoom(stateEvents),
  ];
}

if (import.meta.main && process.argv[2] === 'accept') {
  const only = process.argv[3];
  const backends = (['memory', 'SQLite'] as const).filter((backend) => !only || only === backend);
  const rows: BenchRow[] = [];
  for (const backend of backends) rows.push(await acceptRate(backend));
  printTable('federation: accept rate', rows);
} else if (import.meta.main) {
  const stateEvents = Number(process.argv[2] ?? DEFAULT_STATE_EVENTS);
  printTable('federation: accept rate, a large join, outbox CPU', await federationBench(stateEvents));
}
