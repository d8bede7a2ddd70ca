/**
 * Exact JSON end to end (core/json.ts): one user's body holding a `"\\"` key poisons the
 * runtime's JSON.parse on Node 24/26 (nodejs/node#63785), after which another user's escaped
 * key (`"\t"`, `"\u00e9"`, …) would be stored and served as `"\\"`. Every case is written as
 * raw JSON text, so the escapes reach the server exactly as a client wrote them, and every
 * answer is read with the project's decoder, so the test itself cannot be poisoned.
 *
 * Run on each store backend through `hs.fetch`, and through `hearth serve --data` with a
 * restart between the write and the read (a fresh process, poisoned again before it reads
 * the rows back from SQLite).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/core/json.ts';
import { createHomeserver } from '../../src/server.ts';
import { openIndexedDbStore } from '../../src/storage/indexeddb/index.ts';
import { openSqliteStore } from '../../src/storage/sqlite/index.ts';
import type { Store } from '../../src/storage/store.ts';
import { startServe, stopServe } from './serve.ts';

/** Each key as written in JSON text with an escape, and what it stands for. */
const ESCAPES: Array<[string, string]> = [
  ['\\t', '\t'],
  ['\\n', '\n'],
  ['\\"', '"'],
  ['\\/', '/'],
  ['\\b', '\b'],
  ['\\r', '\r'],
  ['\\u00e9', 'é'],
  ['\\u4e2d', '中'],
  ['\\u0041', 'A'],
  ['\\u00ff', 'ÿ'],
  // Longer keys: the runtime misreads these as a key seen before whose characters are the
  // raw ones written (`ab\\`, `x\\`).
  ['ab\\n', 'ab\n'],
  ['x\\"', 'x"'],
];
const POISON_BODIES = [
  '{"msgtype":"m.text","body":"poison","\\\\":1}',
  '{"msgtype":"m.text","body":"poison","ab\\\\":1}',
  '{"msgtype":"m.text","body":"poison","x\\\\":1}',
];

type Fetch = (request: Request) => Promise<Response>;

interface Client {
  token: string;
  userId: string;
  call(
    method: string,
    path: string,
    body?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
}

async function register(fetch: Fetch, base: string, name: string): Promise<Client> {
  const call = async (method: string, path: string, body?: string, token?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(new Request(`${base}/_matrix/client/v3${path}`, { method, headers, body }));
    const text = await response.text();
    return {
      status: response.status,
      body: (text ? parseJson(text, { loneSurrogates: 'allow' }) : {}) as Record<string, unknown>,
    };
  };
  const reply = await call(
    'POST',
    '/register',
    JSON.stringify({ username: name, password: 'correct horse battery', auth: { type: 'm.login.dummy' } }),
  );
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  const token = reply.body.access_token as string;
  return { token, userId: reply.body.user_id as string, call: (m, p, b) => call(m, p, b, token) };
}

interface Written {
  roomId: string;
  events: Array<{ eventId: string; decoded: string }>;
}

/** Alice poisons the parser; Bob then writes one event, one state event and account data per escape. */
async function writeVictims(alice: Client, bob: Client): Promise<Written> {
  const created = await alice.call(
    'POST',
    '/createRoom',
    '{"preset":"public_chat","power_level_content_override":{"state_default":0}}',
  );
  expect(created.status).toBe(200);
  const roomId = created.body.room_id as string;
  const room = encodeURIComponent(roomId);
  expect((await bob.call('POST', `/join/${room}`, '{}')).status).toBe(200);
  await poison(alice, roomId);

  const events: Written['events'] = [];
  for (const [i, [escaped, decoded]] of ESCAPES.entries()) {
    const sent = await bob.call(
      'PUT',
      `/rooms/${room}/send/m.room.message/t${i}`,
      `{"msgtype":"m.text","body":"victim ${i}","${escaped}":"v${i}"}`,
    );
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    events.push({ eventId: sent.body.event_id as string, decoded });

    const state = await bob.call(
      'PUT',
      `/rooms/${room}/state/org.example.exact/k${i}`,
      `{"${escaped}":{"${escaped}":${i}}}`,
    );
    expect(state.status, JSON.stringify(state.body)).toBe(200);

    const user = encodeURIComponent(bob.userId);
    const data = await bob.call(
      'PUT',
      `/user/${user}/account_data/org.example.exact${i}`,
      `{"${escaped}":[${i}]}`,
    );
    expect(data.status, JSON.stringify(data.body)).toBe(200);
    const roomData = await bob.call(
      'PUT',
      `/user/${user}/rooms/${room}/account_data/org.example.exact${i}`,
      `{"x":{"${escaped}":true}}`,
    );
    expect(roomData.status, JSON.stringify(roomData.body)).toBe(200);
  }
  return { roomId, events };
}

async function poison(alice: Client, roomId: string): Promise<void> {
  for (const body of POISON_BODIES) {
    const txn = `poison-${Math.random().toString(36).slice(2)}`;
    const sent = await alice.call(
      'PUT',
      `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
      body,
    );
    expect(sent.status).toBe(200);
  }
}

/** Every place the victims are served holds exactly the keys Bob wrote. */
async function readVictims(bob: Client, written: Written): Promise<void> {
  const room = encodeURIComponent(written.roomId);
  const user = encodeURIComponent(bob.userId);
  const messages = await bob.call('GET', `/rooms/${room}/messages?dir=b&limit=100`);
  expect(messages.status).toBe(200);
  const chunk = messages.body.chunk as Array<{ event_id: string; content: Record<string, unknown> }>;
  const states = await bob.call('GET', `/rooms/${room}/state`);
  const stateEvents = states.body as unknown as Array<{ type: string; state_key: string; content: unknown }>;

  for (const [i, { eventId, decoded }] of written.events.entries()) {
    const single = await bob.call('GET', `/rooms/${room}/event/${encodeURIComponent(eventId)}`);
    expect(Object.keys(single.body.content as object).sort(), `event ${i}`).toEqual(
      ['body', 'msgtype', decoded].sort(),
    );
    const paged = chunk.find((e) => e.event_id === eventId);
    expect(paged?.content[decoded], `/messages ${i}`).toBe(`v${i}`);

    const state = await bob.call('GET', `/rooms/${room}/state/org.example.exact/k${i}`);
    expect(state.body, `state ${i}`).toEqual({ [decoded]: { [decoded]: i } });
    expect(
      stateEvents.find((e) => e.type === 'org.example.exact' && e.state_key === `k${i}`)?.content,
    ).toEqual({
      [decoded]: { [decoded]: i },
    });

    const data = await bob.call('GET', `/user/${user}/account_data/org.example.exact${i}`);
    expect(data.body, `account data ${i}`).toEqual({ [decoded]: [i] });
    const roomData = await bob.call('GET', `/user/${user}/rooms/${room}/account_data/org.example.exact${i}`);
    expect(roomData.body, `room account data ${i}`).toEqual({ x: { [decoded]: true } });
  }

  // An initial /sync serves the same bytes.
  const sync = await bob.call('GET', '/sync');
  const joined = (
    sync.body.rooms as {
      join: Record<
        string,
        { timeline: { events: Array<{ event_id: string; content: Record<string, unknown> }> } }
      >;
    }
  ).join;
  const timeline = joined[written.roomId]?.timeline.events ?? [];
  const last = written.events.at(-1) as Written['events'][number];
  expect(timeline.find((e) => e.event_id === last.eventId)?.content[last.decoded]).toBe(
    `v${ESCAPES.length - 1}`,
  );
}

const BACKENDS: Array<[string, (dir: string) => Promise<Store>]> = [
  [
    'IndexedDB (fake-indexeddb)',
    async () => openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange, name: 'exact-json' }),
  ],
  ['SQLite', async (dir) => openSqliteStore({ path: join(dir, 'hearth.sqlite') })],
];

describe.each(BACKENDS)('exact JSON through hs.fetch on %s', (_name, open) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-exact-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores and serves every escaped key exactly after another body poisoned the parser', async () => {
    const hs = createHomeserver({
      serverName: 'exact.test',
      store: await open(dir),
      registration: 'open',
      passwordIterations: 1000,
    });
    try {
      const fetch: Fetch = (request) => hs.fetch(request);
      const alice = await register(fetch, 'http://exact.test', 'alice');
      const bob = await register(fetch, 'http://exact.test', 'bob');
      const written = await writeVictims(alice, bob);
      await poison(alice, written.roomId);
      await readVictims(bob, written);
    } finally {
      await hs.close();
    }
  }, 60_000);
});

describe('exact JSON through `hearth serve --data`, across a restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-exact-serve-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('reads back from SQLite exactly what was written, in a fresh process poisoned before the read', async () => {
    const fetch: Fetch = (request) => globalThis.fetch(request);
    let serve = await startServe(dataDir, 'exact.test');
    let written: Written;
    let alice: Client;
    let bob: Client;
    try {
      alice = await register(fetch, serve.url, 'alice');
      bob = await register(fetch, serve.url, 'bob');
      written = await writeVictims(alice, bob);
    } finally {
      await stopServe(serve.child);
    }
    serve = await startServe(dataDir, 'exact.test');
    try {
      const rebase = (c: Client): Client => ({
        ...c,
        call: async (m, p, b) => {
          const response = await fetch(
            new Request(`${serve.url}/_matrix/client/v3${p}`, {
              method: m,
              headers: { 'content-type': 'application/json', authorization: `Bearer ${c.token}` },
              body: b,
            }),
          );
          const text = await response.text();
          return { status: response.status, body: (text ? parseJson(text) : {}) as Record<string, unknown> };
        },
      });
      alice = rebase(alice);
      bob = rebase(bob);
      await poison(alice, written.roomId);
      await readVictims(bob, written);
    } finally {
      await stopServe(serve.child);
    }
  }, 120_000);
});
