/**
 * Homeserver benchmarks (issue "Client-Server API … `hearth serve`"): what a client feels,
 * through the one entry point `hs.fetch`, both in-process (a `Request` handed to `hs.fetch`,
 * as a Service Worker host does) and over loopback HTTP (`serveHttp` on 127.0.0.1, Node's
 * fetch as the client, as `hearth serve` does). Every figure sits beside the bare round trip
 * of the same transport measured in the same run:
 *
 * - in-process: `hs.fetch` of `GET /versions` (routing + a fixed JSON answer, nothing stored);
 * - loopback: a bare `node:http` server answering the same `/versions` bytes, same client.
 *
 * Figures, each on the in-memory store (fake-indexeddb: what tests and a no-`--data` server
 * use) and on SQLite (a file, WAL, synchronous=FULL: what `hearth serve --data` runs):
 * - events sent per second by one client: sequential `PUT /rooms/{id}/send/m.room.message/{txn}`,
 *   each answered only once stored; on SQLite also beside the store's own persist of events
 *   of the same shape (one per transaction), for one sender and for waves of 16 sends at once
 *   in 16 rooms (their writes share commits and syncs) and in one room; over loopback, one
 *   sender beside the disk's own append + fdatasync rate (each acknowledged send waits for
 *   one: the ceiling of that row), and 16 clients at once (in 16 rooms, in one room) beside
 *   16 bare round trips at once;
 * - send → other client's /sync wake latency (p50, p99): user B long-polls
 *   `/sync?since=…&timeout=20000`; user A sends; timed from just before A's send to B's
 *   answer holding the event — in a fresh room, then (in-process) once B has 2,000 unread
 *   messages there, since unread counts are computed on every sync;
 * - initial /sync (default filter, timeline limit 10) for a user in 50 rooms × 200 events
 *   (made through `services.rooms.sendEvent`, the pipeline the send endpoint uses);
 * - sliding sync (MSC4186) for a user in 500 rooms, in-process, each beside the v3 /sync
 *   figure of the same user measured in the same run: the first response of a connection
 *   (Element X's first request: the top 20 rooms, timeline 1, a few state events; and the
 *   whole list of 500) beside an initial /sync, and the wake after a send (p50, p99) beside
 *   the /sync long-poll wake.
 *
 * Send rate limits are raised for the run: the default (10 messages/s per user) would
 * measure the limiter, not the server.
 *
 *   node bench/homeserver.ts              every figure
 *   node bench/homeserver.ts wake memory  some of send | wake | sync | sliding, memory | sqlite (to profile one)
 */
import { closeSync, fdatasync, mkdtempSync, openSync, rmSync, write } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { Services } from '../src/homeserver/services.ts';
import { serveHttp } from '../src/hosts/node.ts';
import type { Homeserver, HomeserverInternals } from '../src/server.ts';
import { openIndexedDbStore } from '../src/storage/indexeddb/index.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import type { PersistEventInput, Store } from '../src/storage/store.ts';
import { startBenchHomeserver } from './bench-homeserver.ts';
import { type BenchRow, percentile, printTable, rates2 } from './harness.ts';
import { workload } from './storage-cases.ts';

const SERVER_NAME = 'bench.localhost';
const CLIENT = '/_matrix/client/v3';
const VERSIONS = '/_matrix/client/versions';
/** Time per send-rate figure (split between the send and its bare round trip). */
const SEND_MS = 3000;
const WAKE_SAMPLES = 250;
const WAKE_WARMUP = 20;
/** Unread messages Bob has in the room for the backlog wake figure. */
const UNREAD_BACKLOG = 2000;
const BACKLOG_SAMPLES = 100;
const SYNC_ROOMS = 50;
const SYNC_EVENTS_PER_ROOM = 200;
const SYNC_RUNS = 9;
const SLIDING_ROOMS = 500;
const SLIDING_RUNS = 7;
const SLIDING_WAKE_SAMPLES = 100;
const SLIDING = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';

const now = () => performance.now();

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** One way of reaching a server: in-process `hs.fetch` or Node's fetch over loopback. */
interface Transport {
  label: string;
  call(method: string, path: string, token?: string, body?: unknown): Promise<Reply>;
}

function requestInit(method: string, token?: string, body?: unknown): RequestInit {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
}

async function reply(response: Response): Promise<Reply> {
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

function inProcess(hs: Homeserver): Transport {
  const origin = `http://${SERVER_NAME}`;
  return {
    label: 'in-process',
    call: async (method, path, token, body) =>
      reply(await hs.fetch(new Request(origin + path, requestInit(method, token, body)))),
  };
}

function overHttp(url: string): Transport {
  return {
    label: 'loopback HTTP',
    call: async (method, path, token, body) =>
      reply(await fetch(url + path, requestInit(method, token, body))),
  };
}

/** A bare node:http server answering fixed bytes: the least any loopback request costs. */
async function bareHttpServer(body: string): Promise<{ url: string; close(): Promise<void> }> {
  const bytes = Buffer.from(body);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface User {
  userId: string;
  token: string;
}

interface Bench {
  hs: Homeserver;
  services: Services;
  /** The context, for the wake-latency probe on the notifier. */
  ctx: HomeserverInternals['ctx'];
  /** The transports under test, each with its bare round trip. */
  transports: { t: Transport; bare: () => Promise<unknown> }[];
  close(): Promise<void>;
}

async function openBench(store: Store): Promise<Bench> {
  const { homeserver: hs, internals } = startBenchHomeserver(SERVER_NAME, store);
  const { services, ctx } = await internals();
  const local = inProcess(hs);
  const versionsBody = JSON.stringify((await local.call('GET', VERSIONS)).body);
  const served = await serveHttp((request, info) => hs.fetch(request, info), { host: '127.0.0.1', port: 0 });
  const bare = await bareHttpServer(versionsBody);
  const check = (r: Reply) => {
    if (r.status !== 200) throw new Error(`bare round trip answered ${r.status}`);
  };
  return {
    hs,
    services,
    ctx,
    transports: [
      { t: local, bare: async () => check(await local.call('GET', VERSIONS)) },
      { t: overHttp(served.url), bare: async () => check(await reply(await fetch(bare.url + VERSIONS))) },
    ],
    async close() {
      await served.close();
      await bare.close();
      await hs.close();
    },
  };
}

async function expectOk(r: Promise<Reply>, what: string): Promise<Record<string, unknown>> {
  const { status, body } = await r;
  if (status !== 200) throw new Error(`${what}: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** Registers through the real endpoint (open registration, m.login.dummy). */
async function register(t: Transport, username: string): Promise<User> {
  const body = await expectOk(
    t.call('POST', `${CLIENT}/register`, undefined, {
      username,
      password: `pw-${username}`,
      auth: { type: 'm.login.dummy' },
    }),
    `register ${username}`,
  );
  return { userId: body.user_id as string, token: body.access_token as string };
}

/** Alice creates a room, invites Bob, Bob joins — all through the API. */
async function roomOfTwo(t: Transport, alice: User, bob: User): Promise<string> {
  const { room_id } = await expectOk(
    t.call('POST', `${CLIENT}/createRoom`, alice.token, { preset: 'private_chat', invite: [bob.userId] }),
    'createRoom',
  );
  const roomId = room_id as string;
  await expectOk(t.call('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}`, bob.token, {}), 'join');
  return roomId;
}

let txnCounter = 0;
function sendPath(roomId: string): string {
  return `${CLIENT}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/bench-${++txnCounter}`;
}

const message = (body: string) => ({ msgtype: 'm.text', body });

/** Sequential sends by one client beside the bare round trip, alternating slices of each. */
async function sendRates(bench: Bench, storeLabel: string, alice: User, roomId: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const { t, bare } of bench.transports) {
    const send = async () => {
      const r = await t.call('PUT', sendPath(roomId), alice.token, message('hello from the send-rate bench'));
      if (r.status !== 200 || typeof r.body.event_id !== 'string')
        throw new Error(`send answered ${r.status}`);
    };
    const [sent, bareRate] = await rates2(send, bare, SEND_MS);
    rows.push({
      name: `send → stored, ${t.label}, ${storeLabel}`,
      value: sent,
      unit: 'events/s',
      baselineName: `bare ${t.label} round trip`,
      baselineValue: bareRate,
      ratio: sent / bareRate,
    });
  }
  return rows;
}

/** Senders at once in the concurrent-send figures (group commit shares their commits). */
const CONCURRENT = 16;

/**
 * SQLite only: sends beside the store's own persist of events of the same shape (the storage
 * bench's workload, one event per transaction, into another room of the same store) — what
 * the send pipeline adds to the write it ends with. Then waves of ${CONCURRENT} sends at once,
 * in ${CONCURRENT} rooms and in one room, beside the same persist: concurrent writes share a
 * commit (group commit) when the rooms differ; one room's sends are built one after another.
 */
/** What the SQLite send figures start from: the bench, two users and their room. */
interface SendSetup {
  bench: Bench;
  alice: User;
  bob: User;
  roomId: string;
}

/** `CONCURRENT` fresh rooms of Alice and Bob. */
async function concurrentRooms({ bench, alice, bob }: SendSetup): Promise<string[]> {
  const local = bench.transports[0]?.t as Transport;
  const rooms: string[] = [];
  for (let i = 0; i < CONCURRENT; i++) rooms.push(await roomOfTwo(local, alice, bob));
  return rooms;
}

async function sendBesidePersist(setup: SendSetup, store: Store): Promise<BenchRow[]> {
  const { bench, alice, roomId } = setup;
  const local = bench.transports[0]?.t as Transport;
  const { inputs } = workload(200_000);
  let next = 0;
  const persist = async () => {
    await store.rooms.persistEvents([inputs[next++] as PersistEventInput]);
  };
  const sendTo = async (room: string) => {
    const r = await local.call('PUT', sendPath(room), alice.token, message('hello from the send-rate bench'));
    if (r.status !== 200) throw new Error(`send answered ${r.status}`);
  };
  const rooms = await concurrentRooms(setup);
  const row = (name: string, sent: number, persisted: number, note?: string): BenchRow => ({
    name,
    value: sent,
    unit: 'events/s',
    baselineName: 'SQLite persist of the same events, 1 per tx',
    baselineValue: persisted,
    ratio: sent / persisted,
    ...(note ? { note } : {}),
  });
  const [sequential, persisted] = await rates2(() => sendTo(roomId), persist, SEND_MS);
  const [spread, persisted2] = await rates2(() => Promise.all(rooms.map(sendTo)), persist, SEND_MS);
  const [oneRoom, persisted3] = await rates2(
    () => Promise.all(rooms.map(() => sendTo(roomId))),
    persist,
    SEND_MS,
  );
  return [
    row('send → stored, in-process, SQLite, one sender', sequential, persisted, 'aim ≥ 0.5× persist'),
    row(
      `send → stored, in-process, SQLite, ${CONCURRENT} senders in ${CONCURRENT} rooms`,
      spread * CONCURRENT,
      persisted2,
    ),
    row(
      `send → stored, in-process, SQLite, ${CONCURRENT} senders in one room`,
      oneRoom * CONCURRENT,
      persisted3,
    ),
  ];
}

/**
 * What the disk allows: an append to a file beside the database and its fdatasync, in Node's
 * thread pool as the SQLite driver syncs its WAL. One sender's send waits for one such sync
 * (nothing is acknowledged before it is on disk), so its rate cannot pass this.
 */
function diskSync(dir: string): { sync: () => Promise<void>; close(): void } {
  const fd = openSync(join(dir, 'fsync-probe'), 'w');
  const page = Buffer.alloc(4096, 1);
  return {
    sync: () =>
      new Promise<void>((resolve, reject) =>
        write(fd, page, (error) =>
          error ? reject(error) : fdatasync(fd, (e) => (e ? reject(e) : resolve())),
        ),
      ),
    close: () => closeSync(fd),
  };
}

/**
 * SQLite, loopback HTTP: one sender beside the disk's own append + fdatasync rate (the
 * ceiling an acknowledged-once-durable send cannot pass), then ${CONCURRENT} clients sending at
 * once — in ${CONCURRENT} rooms and in one room — beside ${CONCURRENT} bare round trips at once
 * over the same loopback, so the ratio compares like with like.
 */
async function loopbackBesideDisk(setup: SendSetup, dir: string): Promise<BenchRow[]> {
  const { bench, alice, roomId } = setup;
  const { t, bare } = bench.transports[1] as Bench['transports'][number];
  const sendTo = async (room: string) => {
    const r = await t.call('PUT', sendPath(room), alice.token, message('hello from the send-rate bench'));
    if (r.status !== 200) throw new Error(`send answered ${r.status}`);
  };
  const rooms = await concurrentRooms(setup);
  const disk = diskSync(dir);
  try {
    const [sequential, synced] = await rates2(() => sendTo(roomId), disk.sync, SEND_MS);
    const bareWave = () => Promise.all(rooms.map(bare));
    const [spread, bareSpread] = await rates2(() => Promise.all(rooms.map(sendTo)), bareWave, SEND_MS);
    const [oneRoom, bareOne] = await rates2(
      () => Promise.all(rooms.map(() => sendTo(roomId))),
      bareWave,
      SEND_MS,
    );
    const concurrent = (what: string, sent: number, bareRate: number): BenchRow => ({
      name: `send → stored, loopback HTTP, SQLite, ${CONCURRENT} clients ${what}`,
      value: sent * CONCURRENT,
      unit: 'events/s',
      baselineName: `bare loopback HTTP round trip, ${CONCURRENT} at once`,
      baselineValue: bareRate * CONCURRENT,
      ratio: sent / bareRate,
      note: 'aim ≥ 0.3×',
    });
    return [
      {
        name: 'send → stored, loopback HTTP, SQLite, one sender',
        value: sequential,
        unit: 'events/s',
        baselineName: 'disk: 4 KiB append + fdatasync (each send waits for one)',
        baselineValue: synced,
        ratio: sequential / synced,
      },
      concurrent(`in ${CONCURRENT} rooms`, spread, bareSpread),
      concurrent('in one room', oneRoom, bareOne),
    ];
  } finally {
    disk.close();
  }
}

interface WakeOptions {
  storeLabel: string;
  samples: number;
  /** Only the in-process transport (the unread-backlog figure). */
  inProcessOnly?: boolean;
  /** Added to the figure's name. */
  what?: string;
  aim?: string;
}

/**
 * Send → other client's /sync wake latency. Bob's long-poll must be parked before Alice
 * sends, or the figure would mix in a sync that merely had not started yet: the notifier's
 * `wait` is wrapped (observed, not changed) to tell when Bob's request is waiting.
 */
async function wakeLatency(
  bench: Bench,
  alice: User,
  bob: User,
  roomId: string,
  o: WakeOptions,
): Promise<BenchRow[]> {
  const notifier = bench.ctx.notifier;
  const originalWait = notifier.wait;
  let onParked: (() => void) | undefined;
  notifier.wait = (userId, rooms, sinceVersion, timeoutMs, signal) => {
    const waiting = originalWait.call(notifier, userId, rooms, sinceVersion, timeoutMs, signal);
    if (userId === bob.userId) onParked?.();
    return waiting;
  };
  const rows: BenchRow[] = [];
  try {
    for (const { t, bare } of o.inProcessOnly ? bench.transports.slice(0, 1) : bench.transports) {
      let since = (await expectOk(t.call('GET', `${CLIENT}/sync?timeout=0`, bob.token), 'sync'))
        .next_batch as string;
      const latencies: number[] = [];
      const bareTimes: number[] = [];
      for (let i = 0; i < WAKE_WARMUP + o.samples; i++) {
        const nonce = `wake ${t.label} ${i} ${Math.random()}`;
        const parked = new Promise<void>((resolve) => {
          onParked = resolve;
        });
        // Bob's long-poll loop: re-polls until an answer holds Alice's event.
        const woken = (async () => {
          for (;;) {
            const body = await expectOk(
              t.call('GET', `${CLIENT}/sync?since=${encodeURIComponent(since)}&timeout=20000`, bob.token),
              'long-poll sync',
            );
            const at = now();
            since = body.next_batch as string;
            const rooms = body.rooms as {
              join?: Record<string, { timeline?: { events?: { content?: { body?: string } }[] } }>;
            };
            if (rooms?.join?.[roomId]?.timeline?.events?.some((e) => e.content?.body === nonce)) return at;
          }
        })();
        await parked;
        onParked = undefined;
        const start = now();
        await expectOk(t.call('PUT', sendPath(roomId), alice.token, message(nonce)), 'send');
        const end = await woken;
        // One bare round trip per sample, so both see the same machine load.
        const bareStart = now();
        await bare();
        const bareMs = now() - bareStart;
        if (i >= WAKE_WARMUP) {
          latencies.push(end - start);
          bareTimes.push(bareMs);
        }
      }
      latencies.sort((a, b) => a - b);
      bareTimes.sort((a, b) => a - b);
      const bareP50 = percentile(bareTimes, 50);
      for (const p of [50, 99]) {
        const value = percentile(latencies, p);
        const notes = [`${o.samples} samples`, ...(o.aim && t.label === 'in-process' ? [o.aim] : [])];
        rows.push({
          name: `send → other client's /sync wake${o.what ?? ''}, ${t.label}, ${o.storeLabel}`,
          value,
          unit: `ms p${p}`,
          baselineName: `bare ${t.label} round trip p50`,
          baselineValue: bareP50,
          ratio: bareP50 / value,
          note: p === 50 ? notes.join('; ') : undefined,
        });
      }
    }
  } finally {
    notifier.wait = originalWait;
  }
  return rows;
}

/** Bob in 50 rooms of 200 messages each, made through the same pipeline the send endpoint uses. */
async function fillRooms(services: Services, alice: User, bob: User): Promise<void> {
  for (let r = 0; r < SYNC_ROOMS; r++) {
    const { roomId } = await services.rooms.createRoom(alice.userId, {
      preset: 'private_chat',
      name: `Bench room ${r}`,
      invite: [bob.userId],
    });
    await services.rooms.join(bob.userId, roomId);
    for (let e = 0; e < SYNC_EVENTS_PER_ROOM; e++) {
      const sender = e % 2 === 0 ? alice : bob;
      await services.rooms.sendEvent({
        sender: sender.userId,
        roomId,
        type: 'm.room.message',
        content: message(`Message ${e} in room ${r}: the quick brown fox jumps over the lazy dog.`),
      });
    }
  }
}

async function initialSync(bench: Bench, bob: User, storeLabel: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const { t, bare } of bench.transports) {
    const sync = async () => {
      const body = await expectOk(t.call('GET', `${CLIENT}/sync`, bob.token), 'initial sync');
      const joined = Object.keys((body.rooms as { join?: object })?.join ?? {}).length;
      if (joined < SYNC_ROOMS) throw new Error(`initial sync shows ${joined} joined rooms`);
    };
    // Alternate the two so drift hits both; one warm-up call of each.
    await sync();
    await bare();
    const syncTimes: number[] = [];
    const bareTimes: number[] = [];
    for (let i = 0; i < SYNC_RUNS; i++) {
      let start = now();
      await sync();
      syncTimes.push(now() - start);
      start = now();
      await bare();
      bareTimes.push(now() - start);
    }
    const value = percentile(
      syncTimes.sort((a, b) => a - b),
      50,
    );
    const baselineValue = percentile(
      bareTimes.sort((a, b) => a - b),
      50,
    );
    rows.push({
      name: `initial /sync, ${SYNC_ROOMS} rooms × ${SYNC_EVENTS_PER_ROOM} events, ${t.label}, ${storeLabel}`,
      value,
      unit: `ms (median of ${SYNC_RUNS})`,
      baselineName: `bare ${t.label} round trip`,
      baselineValue,
      ratio: baselineValue / value,
      note: t.label === 'in-process' ? 'default filter; aim ≤ 300 ms' : 'default filter',
    });
  }
  return rows;
}

/** Eve in 500 rooms (Frank's, two messages each), made through the pipeline. */
async function fillSlidingRooms(services: Services, frank: User, eve: User): Promise<string[]> {
  const rooms: string[] = [];
  for (let r = 0; r < SLIDING_ROOMS; r++) {
    const { roomId } = await services.rooms.createRoom(frank.userId, {
      preset: 'private_chat',
      name: `Sliding room ${r}`,
      invite: [eve.userId],
    });
    await services.rooms.join(eve.userId, roomId);
    for (let e = 0; e < 2; e++) {
      await services.rooms.sendEvent({
        sender: frank.userId,
        roomId,
        type: 'm.room.message',
        content: message(`Message ${e} in room ${r}`),
      });
    }
    rooms.push(roomId);
  }
  return rooms;
}

/** The list Element X opens with (its first request): the top rooms, one event, a few state events. */
const slidingList = (end: number) => ({
  lists: {
    all: {
      ranges: [[0, end]],
      timeline_limit: 1,
      required_state: [
        ['m.room.name', ''],
        ['m.room.avatar', ''],
        ['m.room.encryption', ''],
        ['m.room.member', '$LAZY'],
        ['m.room.member', '$ME'],
      ],
    },
  },
  extensions: { to_device: { enabled: true }, e2ee: { enabled: true }, account_data: { enabled: true } },
});

/** Median of `runs` timed calls of each, alternated so drift hits them alike. */
async function medians(fns: (() => Promise<unknown>)[], runs: number): Promise<number[]> {
  const times: number[][] = fns.map(() => []);
  for (const fn of fns) await fn(); // warm-up
  for (let i = 0; i < runs; i++) {
    for (const [j, fn] of fns.entries()) {
      const start = now();
      await fn();
      times[j]?.push(now() - start);
    }
  }
  return times.map((t) =>
    percentile(
      t.sort((a, b) => a - b),
      50,
    ),
  );
}

/**
 * Sliding sync for a user in 500 rooms beside v3 /sync for the same user, in-process: the
 * first response of a connection beside an initial /sync, and send → wake beside the /sync wake.
 */
async function slidingSync(bench: Bench, frank: User, eve: User, storeLabel: string): Promise<BenchRow[]> {
  const t = bench.transports[0]?.t as Transport;
  const rooms = await fillSlidingRooms(bench.services, frank, eve);
  let conn = 0;
  const first = (end: number, expected: number) => async () => {
    // A new connection each time: a first request, nothing remembered.
    const body = await expectOk(
      t.call('POST', SLIDING, eve.token, { conn_id: `bench-${++conn}`, ...slidingList(end) }),
      'sliding sync',
    );
    const got = Object.keys(body.rooms as object).length;
    if (got !== expected) throw new Error(`sliding sync sent ${got} rooms, expected ${expected}`);
  };
  const v3 = async () => {
    const body = await expectOk(t.call('GET', `${CLIENT}/sync`, eve.token), 'initial sync');
    const joined = Object.keys((body.rooms as { join?: object })?.join ?? {}).length;
    if (joined < SLIDING_ROOMS) throw new Error(`initial sync shows ${joined} joined rooms`);
  };
  const [top = 0, whole = 0, initial = 0] = await medians(
    [first(19, 20), first(SLIDING_ROOMS - 1, SLIDING_ROOMS), v3],
    SLIDING_RUNS,
  );
  const rows: BenchRow[] = [];
  const firstRow = (what: string, value: number): BenchRow => ({
    name: `sliding sync first response, ${what} of ${SLIDING_ROOMS} rooms, in-process, ${storeLabel}`,
    value,
    unit: `ms (median of ${SLIDING_RUNS})`,
    baselineName: `initial /sync, same user, ${SLIDING_ROOMS} rooms`,
    baselineValue: initial,
    ratio: initial / value,
    note: 'timeline 1; ratio = /sync time ÷ sliding time',
  });
  rows.push(firstRow('top 20', top), firstRow('all', whole));

  // Send → wake: Eve long-polls (sliding sync with pos, or /sync with since) in a room of the
  // 500; Frank sends; timed from just before the send to Eve's answer holding the event.
  const notifier = bench.ctx.notifier;
  const originalWait = notifier.wait;
  let onParked: (() => void) | undefined;
  notifier.wait = (userId, waitRooms, sinceVersion, timeoutMs, signal) => {
    const waiting = originalWait.call(notifier, userId, waitRooms, sinceVersion, timeoutMs, signal);
    if (userId === eve.userId) onParked?.();
    return waiting;
  };
  const roomId = rooms[SLIDING_ROOMS - 1] as string;
  try {
    let pos = (
      await expectOk(t.call('POST', SLIDING, eve.token, { conn_id: 'wake', ...slidingList(19) }), 'sliding')
    ).pos as string;
    let since = (await expectOk(t.call('GET', `${CLIENT}/sync?timeout=0`, eve.token), 'sync'))
      .next_batch as string;
    const slidingPoll = async (nonce: string) => {
      for (;;) {
        const body = await expectOk(
          t.call('POST', `${SLIDING}?pos=${encodeURIComponent(pos)}&timeout=20000`, eve.token, {
            conn_id: 'wake',
            ...slidingList(19),
          }),
          'sliding long-poll',
        );
        const at = now();
        pos = body.pos as string;
        const room = (body.rooms as Record<string, { timeline?: { content?: { body?: string } }[] }>)[roomId];
        if (room?.timeline?.some((e) => e.content?.body === nonce)) return at;
      }
    };
    const v3Poll = async (nonce: string) => {
      for (;;) {
        const body = await expectOk(
          t.call('GET', `${CLIENT}/sync?since=${encodeURIComponent(since)}&timeout=20000`, eve.token),
          'long-poll sync',
        );
        const at = now();
        since = body.next_batch as string;
        const rooms = body.rooms as {
          join?: Record<string, { timeline?: { events?: { content?: { body?: string } }[] } }>;
        };
        if (rooms?.join?.[roomId]?.timeline?.events?.some((e) => e.content?.body === nonce)) return at;
      }
    };
    const latencies = { sliding: [] as number[], v3: [] as number[] };
    for (let i = 0; i < WAKE_WARMUP + SLIDING_WAKE_SAMPLES; i++) {
      for (const [kind, poll] of [
        ['sliding', slidingPoll],
        ['v3', v3Poll],
      ] as const) {
        const nonce = `wake ${kind} ${i} ${Math.random()}`;
        const parked = new Promise<void>((resolve) => {
          onParked = resolve;
        });
        const woken = poll(nonce);
        await parked;
        onParked = undefined;
        const start = now();
        await expectOk(t.call('PUT', sendPath(roomId), frank.token, message(nonce)), 'send');
        const end = await woken;
        if (i >= WAKE_WARMUP) latencies[kind].push(end - start);
      }
    }
    latencies.sliding.sort((a, b) => a - b);
    latencies.v3.sort((a, b) => a - b);
    for (const p of [50, 99]) {
      const value = percentile(latencies.sliding, p);
      const baselineValue = percentile(latencies.v3, p);
      rows.push({
        name: `send → sliding sync wake, user in ${SLIDING_ROOMS} rooms, in-process, ${storeLabel}`,
        value,
        unit: `ms p${p}`,
        baselineName: `send → /sync wake, same user, p${p}`,
        baselineValue,
        ratio: baselineValue / value,
        note: p === 50 ? `${SLIDING_WAKE_SAMPLES} samples each, alternated` : undefined,
      });
    }
  } finally {
    notifier.wait = originalWait;
  }
  return rows;
}

/** `count` more messages from `sender`, straight through the pipeline the send endpoint uses. */
async function backlog(services: Services, sender: User, roomId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await services.rooms.sendEvent({
      sender: sender.userId,
      roomId,
      type: 'm.room.message',
      content: message(`Backlog message ${i}`),
    });
  }
}

export type HomeserverPart = 'send' | 'wake' | 'sync' | 'sliding';
const ALL_PARTS: readonly HomeserverPart[] = ['send', 'wake', 'sync', 'sliding'];

/** Every figure for one store: a fresh homeserver, users registered through the API. */
async function benchStore(
  store: Store,
  storeLabel: string,
  parts: readonly HomeserverPart[],
  /** The SQLite store's directory (the SQLite-only figures need it). */
  dir?: string,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const bench = await openBench(store);
  try {
    const local = bench.transports[0]?.t as Transport;
    const alice = await register(local, 'alice');
    const bob = await register(local, 'bob');
    if (parts.includes('send')) {
      const roomId = await roomOfTwo(local, alice, bob);
      rows.push(...(await sendRates(bench, storeLabel, alice, roomId)));
      if (dir !== undefined) {
        const setup = { bench, alice, bob, roomId };
        rows.push(...(await sendBesidePersist(setup, store)));
        rows.push(...(await loopbackBesideDisk(setup, dir)));
      }
    }
    if (parts.includes('wake')) {
      // A fresh room, so the figure does not depend on how much the send-rate run wrote.
      const roomId = await roomOfTwo(local, alice, bob);
      rows.push(
        ...(await wakeLatency(bench, alice, bob, roomId, {
          storeLabel,
          samples: WAKE_SAMPLES,
          aim: 'aim ≤ 5 ms',
        })),
      );
      // The same room once Bob has a backlog of unread messages (he sends no read receipts).
      await backlog(bench.services, alice, roomId, UNREAD_BACKLOG);
      rows.push(
        ...(await wakeLatency(bench, alice, bob, roomId, {
          storeLabel,
          samples: BACKLOG_SAMPLES,
          inProcessOnly: true,
          what: ` with ${UNREAD_BACKLOG.toLocaleString('en-US')} unread`,
        })),
      );
    }
    if (parts.includes('sync')) {
      const carol = await register(local, 'carol');
      const dave = await register(local, 'dave');
      await fillRooms(bench.services, carol, dave);
      rows.push(...(await initialSync(bench, dave, storeLabel)));
    }
    if (parts.includes('sliding')) {
      const frank = await register(local, 'frank');
      const eve = await register(local, 'eve');
      rows.push(...(await slidingSync(bench, frank, eve, storeLabel)));
    }
  } finally {
    await bench.close();
  }
  return rows;
}

export type HomeserverStore = 'memory' | 'sqlite';
const ALL_STORES: readonly HomeserverStore[] = ['memory', 'sqlite'];

/** All figures, or only some `parts` on some `stores` (for profiling one of them). */
export async function homeserverBench(
  parts: readonly HomeserverPart[] = ALL_PARTS,
  stores: readonly HomeserverStore[] = ALL_STORES,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  if (stores.includes('memory')) {
    const memory = await openIndexedDbStore({
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      name: 'hearth-bench',
    });
    rows.push(...(await benchStore(memory, 'in-memory store', parts)));
  }
  if (stores.includes('sqlite')) {
    // SQLite on a file, as `hearth serve --data` runs (WAL, synchronous=FULL).
    const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-hs-'));
    try {
      const sqlite = await openSqliteStore({ path: join(dir, 'hearth.sqlite') });
      rows.push(...(await benchStore(sqlite, 'SQLite', parts, dir)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

if (import.meta.main) {
  const started = now();
  const args = process.argv.slice(2);
  const parts = args.filter((a): a is HomeserverPart => ALL_PARTS.includes(a as HomeserverPart));
  const stores = args.filter((a): a is HomeserverStore => ALL_STORES.includes(a as HomeserverStore));
  printTable(
    'homeserver: send, /sync wake, initial /sync, sliding sync — in-process and loopback HTTP',
    await homeserverBench(parts.length > 0 ? parts : ALL_PARTS, stores.length > 0 ? stores : ALL_STORES),
  );
  console.log(`\n(${((now() - started) / 1000).toFixed(1)} s)`);
}
