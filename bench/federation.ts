/**
 * Federation benchmarks (issue 10), each beside the raw primitive it rests on, in one run:
 *
 * - inbound PDUs accepted per second with every check (signature, hash, auth against its
 *   auth events and the state before it, soft-fail, persist) — beside bare ed25519 verifies
 *   per second of the same bytes (the aim: ≥ 0.8×);
 * - a join of a room with `STATE_EVENTS` state events from another in-process server (the
 *   in-memory network; make_join, send_join, every returned event checked and stored) —
 *   beside verifying that many signatures bare (the aim: ≤ 10 s for 10,000);
 * - a room of as many state events, nearly all members, joined in full by one server and
 *   with partial state (send_join `omit_members`) by another: the partial join's time to a
 *   usable room (the aim: ≤ 2 s) and until its full state is in, beside the full join;
 * - the outbox: a message for 20 remote servers sent as 20 signed transactions; our CPU per
 *   destination (`process.cpuUsage`, the transport answers at once) — beside one bare ed25519
 *   sign (the aim: ≤ 2 ms a destination).
 *
 * The accept rate is measured on the in-memory store (fake-indexeddb) and on SQLite; the join
 * and the outbox run on the in-memory store, as the federation tests do.
 *
 *   node bench/federation.ts [state-events]
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
  type Pdu,
  redact,
  signedBytes,
  toWirePdu,
} from '../src/core/index.ts';
import { createFederationClient } from '../src/federation/client.ts';
import { createSender } from '../src/federation/sender.ts';
import { createFederatedServers } from '../src/federation/testing.ts';
import { silentLogger, webRandom } from '../src/homeserver/context.ts';
import { member, remoteEvent, remoteServer } from '../src/homeserver/rooms/testing-remote.ts';
import { openTestStore } from '../src/homeserver/testing.ts';
import { startHomeserver } from '../src/server.ts';
import { seedRoom } from '../src/storage/conformance/testing.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import { createTestHomeserver } from '../src/testing.ts';
import { type BenchRow, printTable } from './harness.ts';

const now = () => performance.now();
const DEFAULT_STATE_EVENTS = 10_000;
const ACCEPTED_PDUS = 400;
const DESTINATIONS = 20;
const OUTBOX_MESSAGES = 25;

/** Bare ed25519 verifies per second of `pdu`'s signed bytes, for `ms`. */
async function bareVerifyRate(pdu: Pdu, server: string, ms = 1000): Promise<number> {
  const backend = await defaultEd25519();
  const version = getRoomVersion('10');
  const bytes = signedBytes(
    redact(toWirePdu(pdu as IdentifiedPdu, version), version),
    canonicalOptions(version),
  );
  const [keyId, sig] = Object.entries(pdu.signatures?.[server] ?? {})[0] ?? [];
  if (!keyId || !sig) throw new Error('unsigned');
  const remote = await remoteServer(server);
  const key = (await remote.keyStore.verifyKeys(server, [keyId], 0)).get(keyId) ?? remote.key.publicKey;
  const signature = decodeBase64(sig);
  let n = 0;
  const end = now() + ms;
  const start = now();
  while (now() < end) {
    await backend.verify(key, bytes, signature);
    n++;
  }
  return (n * 1000) / (now() - start);
}

async function acceptRate(backend: 'memory' | 'SQLite'): Promise<BenchRow> {
  const remote = await remoteServer('remote.bench');
  const dir = mkdtempSync(join(tmpdir(), 'hearth-federation-bench-'));
  const store =
    backend === 'SQLite'
      ? await openSqliteStore({ path: join(dir, 'hearth.sqlite') })
      : await openTestStore();
  const { homeserver, internals } = startHomeserver({
    serverName: 'bench.localhost',
    store,
    keyStore: remote.keyStore,
    registration: 'open',
    passwordIterations: 1000,
  });
  const hs = { store, internals: (await internals()).services, close: () => homeserver.close() };
  try {
    const services = hs.internals;
    const alice = await services.accounts.createUser({ localpart: 'alice' });
    const bob = remote.user('bob');
    const version = getRoomVersion('10');
    const { roomId } = await services.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_version: '10',
    });
    const join = await remoteEvent(remote, hs.store, version, roomId, member(bob, bob, 'join'));
    await services.rooms.acceptRemote(roomId, [join.wire]);
    // A chain of messages from the remote server, each on the one before (the live case).
    const chain: { event: IdentifiedPdu; wire: Pdu }[] = [];
    let prev: IdentifiedPdu = join.event;
    for (let i = 0; i < ACCEPTED_PDUS; i++) {
      const made = await remoteEvent(
        remote,
        hs.store,
        version,
        roomId,
        { sender: bob, type: 'm.room.message', content: { msgtype: 'm.text', body: `message ${i}` } },
        { prevEvents: [prev] },
      );
      chain.push(made);
      prev = made.event;
    }
    const verify = await bareVerifyRate(chain[0]?.wire as Pdu, remote.name);
    const start = now();
    // As /send hands them over: up to 50 a transaction.
    for (let i = 0; i < chain.length; i += 50)
      await services.rooms.acceptRemote(
        roomId,
        chain.slice(i, i + 50).map((c) => c.wire),
      );
    const accepted = (chain.length * 1000) / (now() - start);
    return {
      name: `inbound PDUs accepted with every check (${ACCEPTED_PDUS}, 50 a transaction, ${backend})`,
      value: accepted,
      unit: 'PDUs/s',
      baselineName: 'bare ed25519 verify of one PDU',
      baselineValue: verify,
      ratio: accepted / verify,
      note: 'aim ≥ 0.8',
    };
  } finally {
    await hs.close();
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
    const verify = await bareVerifyRate(some, 'a.bench');
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

/**
 * A room whose state is `stateEvents` events, nearly all members (as a large room's is: here
 * invites, which a resident omits from partial state as it does joins), joined
 * from two servers: B waits for the whole state; C asks for partial state (send_join
 * `omit_members`), is usable once the answer is checked, and has the full state once its
 * background resync (`/state_ids`, one `/state`, every event checked, the merge) is done.
 */
async function partialJoinLargeRoom(stateEvents: number): Promise<BenchRow[]> {
  const net = await createFederatedServers(['a.bench', 'b.bench', 'c.bench'], {
    homeserverFor: (name) => ({ partialStateJoins: name === 'c.bench' }),
  });
  try {
    const a = net.servers['a.bench']?.hs;
    const b = net.servers['b.bench']?.hs;
    const c = net.servers['c.bench']?.hs;
    if (!a || !b || !c) throw new Error('no servers');
    const alice = await a.createUser('alice');
    const bob = await b.createUser('bob');
    const carol = await c.createUser('carol');
    // The members are invited by the creator, in the one write that makes the room: a join
    // each would re-read the growing member list per event (minutes of set-up for 10,000).
    const BASE = 6; // create, the creator's join, power levels, join rules, history visibility, guest access
    const { roomId } = await a.internals.rooms.createRoom(alice.userId, {
      preset: 'public_chat',
      room_version: '10',
      initial_state: Array.from({ length: stateEvents - BASE }, (_, i) => ({
        type: 'm.room.member',
        state_key: `@member${i}:a.bench`,
        content: { membership: 'invite' },
      })),
    });
    const base = stateEvents - (await a.store.rooms.members(roomId, 'invite')).length;
    const fullStart = now();
    await b.internals.rooms.join(bob.userId, roomId, { servers: ['a.bench'] });
    const full = (now() - fullStart) / 1000;
    const start = now();
    await c.internals.rooms.join(carol.userId, roomId, { servers: ['a.bench'] });
    const usable = (now() - start) / 1000;
    const partialHeld = (await c.store.rooms.currentStateEvents(roomId)).length;
    await c.internals.rooms.partialStateSync.whenFull(roomId);
    const filled = (now() - start) / 1000;
    for (const [server, hs] of [
      ['b.bench', b],
      ['c.bench', c],
    ] as const) {
      const held = (await hs.store.rooms.currentStateEvents(roomId)).length;
      if (held < stateEvents) throw new Error(`${server} holds ${held} state events, not ${stateEvents}`);
    }
    if (partialHeld >= stateEvents) throw new Error('the partial-state join was not partial');
    const what = `a room of ${stateEvents} state events, ${stateEvents - base} of them members (invites)`;
    return [
      {
        name: `partial-state join of ${what}: until the room is usable (${partialHeld} state events checked)`,
        value: usable,
        unit: 's',
        baselineName: 'a full join of the same room',
        baselineValue: full,
        ratio: full / usable,
        note: 'aim ≤ 2 s for 10,000',
      },
      {
        name: `partial-state join of ${what}: until its full state is in (every event checked)`,
        value: filled,
        unit: 's',
        baselineName: 'a full join of the same room',
        baselineValue: full,
        ratio: full / filled,
        note: 'in the background',
      },
    ];
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
    ...(await partialJoinLargeRoom(stateEvents)),
  ];
}

if (import.meta.main) {
  const stateEvents = Number(process.argv[2] ?? DEFAULT_STATE_EVENTS);
  printTable('federation: accept rate, a large join, outbox CPU', await federationBench(stateEvents));
}
