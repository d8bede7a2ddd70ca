/**
 * The SW↔page bridge in Node, with the browser's parts where Node has them: real
 * MessageChannels (structured clone, transferred ports and buffers), comlink, Web Locks
 * (`navigator.locks`), and the Service Worker's own homeserver (`createBrowserHomeserver`)
 * on fake-indexeddb. "a.test" lives in a stand-in Service Worker that can be stopped (its
 * memory lost, its database kept) and is started again by the next message, as a browser
 * does; its tabs elect a leader that carries its federation over the in-memory network to
 * "b.test", an ordinary homeserver. The same code runs in Chromium over libp2p in
 * test/browser/p2p.test.ts.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJson } from '../../core/json.ts';
import { type BrowserHomeserver, createBrowserHomeserver } from '../../hosts/browser-homeserver.ts';
import { openIndexedDbStore } from '../../storage/indexeddb/index.ts';
import type { Store } from '../../storage/store.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';
import { createMemoryNetwork, type MemoryNetwork } from '../memory.ts';
import { joinP2p, type TabHandle } from './tab.ts';
import { createWorkerBridge, type WorkerBridge } from './worker.ts';

const A = 'a.test';
const B = 'b.test';
const enc = encodeURIComponent;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Worker {
  readonly hs: BrowserHomeserver;
  readonly bridge: WorkerBridge;
}

/**
 * A Service Worker for a.test: started by the first message (or request), stopped on demand
 * with everything in memory lost, the IndexedDB database kept.
 */
function standInWorker(tabs: Set<Tab>) {
  const indexedDB = new IDBFactory();
  let running: Worker | null = null;
  let starts = 0;
  const start = (): Worker => {
    starts++;
    let hs!: BrowserHomeserver;
    const bridge = createWorkerBridge({
      broadcast: async (message) => {
        for (const tab of tabs) tab.fromWorker.postMessage(message);
      },
      inbound: (request, info) => hs.fetch(request, info),
      leaderWaitMs: 300,
    });
    hs = createBrowserHomeserver({
      serverName: A,
      indexedDB,
      IDBKeyRange,
      passwordIterations: 1000,
      thumbnailer: null,
      federation: { transport: bridge.transport },
    });
    return { hs, bridge };
  };
  const current = () => {
    running ??= start();
    return running;
  };
  // What pages post to `registration.active`: a real channel, so data is cloned and ports move.
  const inbox = new MessageChannel();
  inbox.port2.onmessage = (event) => {
    void current().bridge.receive(event.data, event.ports);
  };
  cleanups.push(async () => {
    inbox.port1.close();
    inbox.port2.close();
    await running?.hs.close();
  });
  return {
    indexedDB,
    get hs() {
      return current().hs;
    },
    get bridge() {
      return current().bridge;
    },
    get starts() {
      return starts;
    },
    post(message: unknown, transfer: Transferable[]) {
      inbox.port1.postMessage(message, transfer);
    },
    /** Like CDP's `ServiceWorker.stopAllWorkers`: the next message starts a fresh worker. */
    async stop() {
      const was = running;
      running = null;
      await was?.hs.close();
    },
  };
}

type StandInWorker = ReturnType<typeof standInWorker>;

/** A stand-in relay's store-and-forward: it takes requests only while `taking`. */
type HeldRequests = { destination: string; request: Request }[] & { taking?: boolean };

interface Tab {
  /** Where the worker's broadcasts arrive (`navigator.serviceWorker`'s message event). */
  fromWorker: MessagePort;
  handle: TabHandle;
  /** The leading tab's transport reports `serverName` reachable (a peer connected). */
  peerConnected(serverName: string): void;
  close(): Promise<void>;
}

/**
 * A tab of a.test's origin (`joinP2p`, as `hearth/page` runs it): it queues for the lead and,
 * leading, carries a.test's federation over the memory network.
 */
function openTab(
  network: MemoryNetwork,
  worker: StandInWorker,
  tabs: Set<Tab>,
  name: string,
  held: HeldRequests,
): Tab {
  const changed = new Set<(reachable?: string) => void>();
  const handle = joinP2p({
    locks: navigator.locks,
    name,
    post: (message, transfer) => worker.post(message, transfer),
    async startTransport(deliver) {
      const unserve = network.serve(A, deliver);
      const memory = network.transport(A);
      return {
        transport: {
          send: (destination, request) => memory.send(destination, request),
          // A relay's store-and-forward: it takes everything, for the test to deliver.
          async hold(destination, requests) {
            if (!held.taking) return false;
            held.push(...requests.map((request) => ({ destination, request })));
            return true;
          },
        },
        status: () => ({ serverName: A, addresses: [], peers: [] }),
        onChange(listener) {
          changed.add(listener);
          return () => changed.delete(listener);
        },
        async stop() {
          unserve();
        },
      };
    },
  });
  const channel = new MessageChannel();
  channel.port2.onmessage = (event) => handle.receive(event.data);
  const tab: Tab = {
    fromWorker: channel.port1,
    handle,
    peerConnected(serverName) {
      for (const listener of changed) listener(serverName);
    },
    async close() {
      tabs.delete(tab);
      await handle.close();
      channel.port1.close();
      channel.port2.close();
    },
  };
  tabs.add(tab);
  cleanups.push(() => tab.close());
  return tab;
}

async function call(
  fetcher: { fetch(request: Request): Promise<Response> },
  method: string,
  path: string,
  token: string,
  body?: unknown,
) {
  const response = await fetcher.fetch(
    new Request(`https://${A}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  const text = await response.text();
  return { status: response.status, body: (text ? parseJson(text) : {}) as Record<string, unknown> };
}

async function texts(fetcher: { fetch(request: Request): Promise<Response> }, token: string, roomId: string) {
  const { body } = await call(
    fetcher,
    'GET',
    `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=f&limit=100`,
    token,
  );
  return ((body.chunk ?? []) as { type: string; content: { body?: string } }[])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => e.content.body);
}

let txn = 0;
async function say(
  fetcher: { fetch(request: Request): Promise<Response> },
  token: string,
  roomId: string,
  text: string,
) {
  const sent = await call(
    fetcher,
    'PUT',
    `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`,
    token,
    { msgtype: 'm.text', body: text },
  );
  expect(sent.status).toBe(200);
}

/** a.test (in the stand-in worker, with `tabCount` tabs) and b.test, with a room both are in. */
async function setUp(tabCount: number) {
  const network = createMemoryNetwork();
  const tabs = new Set<Tab>();
  const worker = standInWorker(tabs);
  const lock = `test-${crypto.randomUUID()}`;
  const held: HeldRequests = [];
  const open = () => openTab(network, worker, tabs, lock, held);
  const opened = Array.from({ length: tabCount }, open);
  const b: TestHomeserver = await createTestHomeserver({
    serverName: B,
    federation: { transport: network.transport(B) },
  });
  cleanups.push(() => b.close());
  network.serve(B, (request, info) => b.fetch(request, info));

  const alice = await worker.hs.control.createAccount('alice', 'alice password');
  const login = await worker.hs.fetch(
    new Request(`https://${A}/_matrix/client/v3/login`, {
      method: 'POST',
      body: JSON.stringify({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'alice' },
        password: 'alice password',
      }),
    }),
  );
  const aliceToken = (parseJson(await login.text()) as { access_token: string }).access_token;
  const bob = await b.createUser('bob');

  await opened[0]?.handle.elected;
  const created = await call(worker.hs, 'POST', '/_matrix/client/v3/createRoom', aliceToken, {
    preset: 'private_chat',
    invite: [bob.userId],
  });
  expect(created.status).toBe(200);
  const roomId = created.body.room_id as string;
  // The invite went out through the leader tab, and b.test holds it.
  expect((await b.store.rooms.membership(roomId, bob.userId))?.membership).toBe('invite');
  const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {
    token: bob.accessToken,
    body: {},
  });
  expect(joined.status).toBe(200);
  await expect
    .poll(async () => (await b.store.rooms.membership(roomId, alice.userId))?.membership)
    .toBe('join');
  return { network, tabs, worker, open, opened, b, bob, aliceToken, roomId, held };
}

/** Runs `fn` on a.test's database through a connection of its own (the worker keeps its own). */
async function onStore<T>(worker: StandInWorker, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openIndexedDbStore({ indexedDB: worker.indexedDB, IDBKeyRange, name: 'hearth' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Sets `destination`'s backoff on a.test's store as if it had failed for an hour. */
function farBackoff(worker: StandInWorker, destination: string) {
  return onStore(worker, (store) =>
    store.federation.setDestination(destination, {
      retryAt: Date.now() + 3_600_000,
      retryInterval: 3_600_000,
      lastSuccessAt: null,
    }),
  );
}

describe('the SW↔page bridge', { timeout: 30_000 }, () => {
  it('carries a room both ways between the worker and a peer through the leader tab', async () => {
    const { worker, opened, b, bob, aliceToken, roomId } = await setUp(2);
    expect(opened[0]?.handle.leading).toBe(true);
    expect(opened[1]?.handle.leading).toBe(false);

    await say(worker.hs, aliceToken, roomId, 'hello from the worker');
    await expect.poll(() => texts(b, bob.accessToken, roomId)).toEqual(['hello from the worker']);
    await say(b, bob.accessToken, roomId, 'hello from b');
    await expect
      .poll(() => texts(worker.hs, aliceToken, roomId))
      .toEqual(['hello from the worker', 'hello from b']);
  });

  it('passes the lead to another tab when the leader closes, and goes on', async () => {
    const { worker, opened, b, bob, aliceToken, roomId } = await setUp(2);
    await opened[0]?.close();
    await opened[1]?.handle.elected;
    expect(opened[1]?.handle.leading).toBe(true);

    await say(worker.hs, aliceToken, roomId, 'after the hand-over');
    await expect.poll(() => texts(b, bob.accessToken, roomId)).toEqual(['after the hand-over']);
    await say(b, bob.accessToken, roomId, 'still here');
    await expect
      .poll(() => texts(worker.hs, aliceToken, roomId))
      .toEqual(['after the hand-over', 'still here']);
  });

  it('keeps what is sent while no tab is open, and sends it the moment a tab leads again', async () => {
    const { worker, opened, open, b, bob, aliceToken, roomId } = await setUp(1);
    await opened[0]?.close();
    await say(worker.hs, aliceToken, roomId, 'written with no tab open');
    // The send found no leader: the row waits and b.test is backing off.
    await expect
      .poll(async () => (await worker.hs.control.status()).ready && (await texts(b, bob.accessToken, roomId)))
      .toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await texts(b, bob.accessToken, roomId)).toEqual([]);
    // With no tab open the browser stops the idle worker; the backoff it left is long.
    await worker.stop();
    await farBackoff(worker, B);
    const starts = worker.starts;

    // A tab opens: it leads, its port wakes the worker, and the backoff is reset.
    open();
    await expect.poll(() => worker.starts).toBe(starts + 1);
    await expect
      .poll(() => texts(b, bob.accessToken, roomId), { timeout: 5_000 })
      .toEqual(['written with no tab open']);
  });

  it('resets the backoff of a peer the leader reports reachable again', async () => {
    const { network, worker, opened, b, bob, aliceToken, roomId } = await setUp(1);
    network.block(A, B);
    await say(worker.hs, aliceToken, roomId, 'while b.test was away');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await farBackoff(worker, B);
    network.unblock(A, B);
    expect(await texts(b, bob.accessToken, roomId)).toEqual([]);

    opened[0]?.peerConnected(B);
    await expect
      .poll(() => texts(b, bob.accessToken, roomId), { timeout: 5_000 })
      .toEqual(['while b.test was away']);
  });

  it('loses nothing when the worker is stopped mid-conversation, either way', async () => {
    const { worker, b, bob, aliceToken, roomId } = await setUp(1);
    await say(worker.hs, aliceToken, roomId, 'before the stop');
    await expect.poll(() => texts(b, bob.accessToken, roomId)).toEqual(['before the stop']);
    const starts = worker.starts;

    // A peer's request wakes the stopped worker through the leader's post.
    await worker.stop();
    await say(b, bob.accessToken, roomId, 'to a stopped worker');
    await expect.poll(() => worker.starts).toBe(starts + 1);
    await expect
      .poll(() => texts(worker.hs, aliceToken, roomId))
      .toEqual(['before the stop', 'to a stopped worker']);

    // A restarted worker has no port to the leader: it asks the tabs, and the leader answers.
    await worker.stop();
    await say(worker.hs, aliceToken, roomId, 'from a restarted worker');
    await expect
      .poll(() => texts(b, bob.accessToken, roomId))
      .toEqual(['before the stop', 'to a stopped worker', 'from a restarted worker']);
    expect(worker.bridge.hasLeader).toBe(true);
  });

  it("hands what an unreachable peer misses to the leader's store-and-forward, still signed", async () => {
    const { network, worker, b, bob, aliceToken, roomId, held } = await setUp(1);
    held.taking = true;
    network.block(A, B);
    await say(worker.hs, aliceToken, roomId, 'for the mailbox');
    await expect.poll(() => held.length).toBe(1);
    const [{ destination, request }] = held as [HeldRequests[number]];
    expect(destination).toBe(B);
    expect(request.method).toBe('PUT');
    expect(new URL(request.url).pathname).toMatch(/^\/_matrix\/federation\/v1\/send\//);
    expect(request.headers.get('authorization')).toMatch(new RegExp(`^X-Matrix origin="?${A}"?,`));
    // Taken by the relay: the outbox is empty, and no backoff was started.
    await expect.poll(() => onStore(worker, (store) => store.federation.outbox(B, 10))).toEqual([]);
    expect(await onStore(worker, (store) => store.federation.getDestination(B))).toBeFalsy();
    // b.test, when it collects, checks and applies the request as its origin signed it.
    const delivered = await b.fetch(new Request(`https://${B}${new URL(request.url).pathname}`, request));
    expect(delivered.status).toBe(200);
    expect(await texts(b, bob.accessToken, roomId)).toEqual(['for the mailbox']);
  });

  it("hands the leader's transport errors to the worker with their code", async () => {
    const { worker } = await setUp(1);
    await expect(
      worker.bridge.transport.send('c.test', new Request('https://c.test/_matrix/federation/v1/version')),
    ).rejects.toMatchObject({
      name: 'TransportError',
      code: 'UNREACHABLE',
      message: 'c.test is not reachable from a.test',
    });
  });

  it("shares the leader's status with every tab, and the next leader's once it takes over", async () => {
    const { opened, open } = await setUp(2);
    const [first, second] = opened as [Tab, Tab];
    await expect.poll(() => second.handle.status()?.serverName).toBe(A);
    // A tab opened later asks, and the leader answers.
    const third = open();
    await expect.poll(() => third.handle.status()?.serverName).toBe(A);
    const heard: (string | null)[] = [];
    third.handle.onStatus((status) => heard.push(status?.serverName ?? null));
    await first.close();
    await second.handle.elected;
    await expect.poll(() => heard).toEqual([null, A]);
  });

  it('answers a send with no tab open as unreachable, after a short wait', async () => {
    const worker = standInWorker(new Set());
    const started = Date.now();
    await expect(
      worker.bridge.transport.send(B, new Request(`https://${B}/_matrix/federation/v1/version`)),
    ).rejects.toMatchObject({ name: 'TransportError', code: 'UNREACHABLE' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});
