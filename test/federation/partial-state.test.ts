/**
 * Partial-state joins on the joining side (server-server-api.md send_join `omit_members`,
 * as Synapse's faster joins; src/homeserver/rooms/partial-state.ts): B joins A's room asking
 * for partial state while A's `/state` and `/state_ids` are held back, so everything checked
 * before they are let go happened on partial state. Driven by matrix-js-sdk where a client
 * sees it; over the in-memory network, B on SQLite where it restarts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { settableClock } from '../../src/federation/testing.ts';
import type { Logger } from '../../src/homeserver/context.ts';
import { openSqliteStore } from '../../src/storage/sqlite/index.ts';
import type { Store } from '../../src/storage/store.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';
import { createMemoryNetwork, type MemoryNetwork } from '../../src/transport/memory.ts';
import type { InboundHandler } from '../../src/transport/transport.ts';
import { startClient, until } from '../e2e/js-sdk-scenario.ts';

const enc = encodeURIComponent;
/** Members of A's room beside Alice: more than the resync fetches one by one, so `/state` is used. */
const MEMBERS = 30;

const open: { close(): Promise<void> }[] = [];
const clients: MatrixClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.stopClient();
  for (const server of open.splice(0).reverse()) await server.close().catch(() => {});
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A's state endpoints wait on `release()`; `answers` may rewrite A's `/state` answer. */
function stateGate() {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const asked: string[] = [];
  const wrap =
    (handler: InboundHandler, rewrite?: (body: Record<string, unknown>) => void): InboundHandler =>
    async (request, info) => {
      const path = new URL(request.url).pathname;
      if (!/^\/_matrix\/federation\/v1\/state(_ids)?\//.test(path)) return handler(request, info);
      asked.push(path.split('/')[4] as string);
      await released;
      const response = await handler(request, info);
      if (!rewrite || !path.startsWith('/_matrix/federation/v1/state/') || response.status !== 200)
        return response;
      const body = (await response.json()) as Record<string, unknown>;
      rewrite(body);
      return Response.json(body);
    };
  return { release: () => release(), asked, wrap };
}

interface World {
  network: MemoryNetwork;
  a: TestHomeserver;
  c: TestHomeserver;
  roomId: string;
  alice: { userId: string; accessToken: string; deviceId: string };
  carol: { userId: string; accessToken: string; deviceId: string };
  members: string[];
  clock: ReturnType<typeof settableClock>;
}

/** A's room: Alice, MEMBERS more users of A, and Carol of C. */
async function world(
  gate: ReturnType<typeof stateGate>,
  rewrite?: (body: Record<string, unknown>) => void,
  count = MEMBERS,
) {
  const network = createMemoryNetwork();
  const clock = settableClock(Date.now());
  const serve = async (name: string, wrap?: (h: InboundHandler) => InboundHandler) => {
    const hs = await createTestHomeserver({
      serverName: name,
      clock,
      // A and C hold the whole room (C joins with full state, so only B's join is partial).
      partialStateJoins: false,
      federation: { transport: network.transport(name) },
    });
    open.push(hs);
    const handler: InboundHandler = (request, info) => hs.fetch(request, info);
    network.serve(name, wrap ? wrap(handler) : handler);
    return hs;
  };
  const a = await serve('a.test', (h) => gate.wrap(h, rewrite));
  const c = await serve('c.test');
  const alice = await a.createUser('alice');
  const carol = await c.createUser('carol');
  const created = await a.call('POST', '/_matrix/client/v3/createRoom', {
    token: alice.accessToken,
    body: { preset: 'public_chat', name: 'Big room' },
  });
  const roomId = created.body.room_id as string;
  const members: string[] = [];
  for (let i = 0; i < count; i++) {
    const user = await a.createUser(`member${i}`);
    expect(
      (await a.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: user.accessToken, body: {} }))
        .status,
    ).toBe(200);
    members.push(user.userId);
  }
  const joined = await c.call('POST', `/_matrix/client/v3/join/${enc(roomId)}?via=a.test`, {
    token: carol.accessToken,
    body: {},
  });
  expect(joined.status).toBe(200);
  return { network, a, c, roomId, alice, carol, members, clock } satisfies World;
}

async function serveB(network: MemoryNetwork, store: () => Promise<Store>, logger?: Logger) {
  const b = await createTestHomeserver({
    serverName: 'b.test',
    store,
    partialStateJoins: true,
    federation: { transport: network.transport('b.test') },
    ...(logger ? { logger } : {}),
  });
  const unserve = network.serve('b.test', (request, info) => b.fetch(request, info));
  const server = {
    hs: b,
    async close() {
      unserve();
      await b.close();
    },
  };
  open.push(server);
  return server;
}

async function clientOn(
  server: TestHomeserver,
  user: { userId: string; accessToken: string; deviceId: string },
) {
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
    server.fetch(new Request(input, init))) as typeof fetch;
  // Without lazy-loading: /sync is how the client learns the room's members.
  const client = await startClient({ baseUrl: `http://${server.serverName}`, fetchFn }, user, 20, false);
  clients.push(client);
  return client;
}

const bodies = (room: Room | null): string[] =>
  (room?.getLiveTimeline().getEvents() ?? [])
    .filter((e: MatrixEvent) => e.getType() === 'm.room.message')
    .map((e: MatrixEvent) => e.getContent().body as string);

async function messages(server: TestHomeserver, token: string, roomId: string): Promise<string[]> {
  const res = await server.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100`, {
    token,
  });
  return (res.body.chunk as { type: string; content: { body?: string } }[])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => e.content.body as string);
}

const sqlite = () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-partial-'));
  dirs.push(dir);
  const path = join(dir, 'b.db');
  return () => openSqliteStore({ path });
};

describe('a partial-state join', () => {
  it('is usable before the full state comes; the members then fill in through /sync', async () => {
    const gate = stateGate();
    const w = await world(gate);
    const b = await serveB(w.network, sqlite());
    const bob = await b.hs.createUser('bob');
    const bobClient = await clientOn(b.hs, bob);

    await bobClient.joinRoom(w.roomId, { viaServers: ['a.test'] });
    // The room is usable while A still holds its full state back.
    await until([bobClient], () => bobClient.getRoom(w.roomId)?.getMyMembership() === 'join', 'Bob joined');
    expect(await b.hs.store.rooms.partialStateRooms()).toEqual([
      expect.objectContaining({ roomId: w.roomId, servers: expect.arrayContaining(['a.test', 'c.test']) }),
    ]);
    const room = bobClient.getRoom(w.roomId) as Room;
    expect(room.name).toBe('Big room');
    expect(room.getMember(w.members[0] as string)).toBeNull();

    // Messages both ways: Bob's reaches C, which B knows only from servers_in_room.
    await bobClient.sendTextMessage(w.roomId, 'hello from B');
    await expect.poll(() => messages(w.a, w.alice.accessToken, w.roomId)).toContain('hello from B');
    await expect.poll(() => messages(w.c, w.carol.accessToken, w.roomId)).toContain('hello from B');
    // Alice's and Carol's memberships were omitted: their events are checked on their auth events.
    await w.a.call('PUT', `/_matrix/client/v3/rooms/${enc(w.roomId)}/send/m.room.message/t1`, {
      token: w.alice.accessToken,
      body: { msgtype: 'm.text', body: 'hello from A' },
    });
    await w.c.call('PUT', `/_matrix/client/v3/rooms/${enc(w.roomId)}/send/m.room.message/t1`, {
      token: w.carol.accessToken,
      body: { msgtype: 'm.text', body: 'hello from C' },
    });
    await until(
      [bobClient],
      () => bodies(bobClient.getRoom(w.roomId)).includes('hello from A'),
      'Bob to hear A',
    );
    await until(
      [bobClient],
      () => bodies(bobClient.getRoom(w.roomId)).includes('hello from C'),
      'Bob to hear C',
    );
    expect(await b.hs.store.rooms.partialStateRooms()).toHaveLength(1);
    expect(gate.asked.length).toBeGreaterThan(0);

    gate.release();
    await until(
      [bobClient],
      () => w.members.every((id) => bobClient.getRoom(w.roomId)?.getMember(id)?.membership === 'join'),
      'the omitted members to fill in',
    );
    expect(await b.hs.store.rooms.partialStateRooms()).toEqual([]);
    const joined = await b.hs.call('GET', `/_matrix/client/v3/rooms/${enc(w.roomId)}/joined_members`, {
      token: bob.accessToken,
    });
    expect(Object.keys(joined.body.joined as object).sort()).toEqual(
      [w.alice.userId, bob.userId, w.carol.userId, ...w.members].sort(),
    );
    // The room goes on as any other.
    await bobClient.sendTextMessage(w.roomId, 'after the fill');
    await expect.poll(() => messages(w.a, w.alice.accessToken, w.roomId)).toContain('after the fill');
  }, 60_000);

  it('fetches a few missing events one by one, each checked against the auth events it cites', async () => {
    const gate = stateGate();
    const w = await world(gate, undefined, 3);
    const b = await serveB(w.network, sqlite());
    const bob = await b.hs.createUser('bob');
    const joined = await b.hs.call('POST', `/_matrix/client/v3/join/${enc(w.roomId)}?via=a.test`, {
      token: bob.accessToken,
      body: {},
    });
    expect(joined.status).toBe(200);
    gate.release();
    await expect
      .poll(async () => (await b.hs.store.rooms.partialStateRooms()).length, { timeout: 20_000 })
      .toBe(0);
    // Only state_ids was asked: the few missing events came by /event.
    expect(gate.asked).toEqual(['state_ids']);
    const members = (await b.hs.store.rooms.members(w.roomId, 'join')).map((m) => m.userId).sort();
    expect(members).toEqual([w.alice.userId, bob.userId, w.carol.userId, ...w.members].sort());
  }, 60_000);

  it('resumes its resync after a restart', async () => {
    const gate = stateGate();
    const w = await world(gate);
    const store = sqlite();
    const first = await serveB(w.network, store);
    const bob = await first.hs.createUser('bob');
    const joined = await first.hs.call('POST', `/_matrix/client/v3/join/${enc(w.roomId)}?via=a.test`, {
      token: bob.accessToken,
      body: {},
    });
    expect(joined.status).toBe(200);
    await expect.poll(() => gate.asked.length).toBeGreaterThan(0);
    await first.close();
    open.splice(open.indexOf(first), 1);
    const askedBefore = gate.asked.length;

    const again = await serveB(w.network, store);
    expect(await again.hs.store.rooms.partialStateRooms()).toHaveLength(1);
    // The restarted server asks again by itself: the room was left partial in its store.
    await expect.poll(() => gate.asked.length).toBeGreaterThan(askedBefore);
    gate.release();
    await expect
      .poll(
        async () => (await again.hs.store.rooms.membership(w.roomId, w.members[0] as string))?.membership,
        {
          timeout: 20_000,
        },
      )
      .toBe('join');
    expect(await again.hs.store.rooms.partialStateRooms()).toEqual([]);
    const members = await again.hs.store.rooms.members(w.roomId, 'join');
    expect(members).toHaveLength(MEMBERS + 3);
  }, 60_000);

  it('refuses a forged event of the full state and keeps the room whole', async () => {
    const gate = stateGate();
    let forged: string | undefined;
    const w = await world(gate, (body) => {
      // One member's join with another event's signature: its signature check fails.
      const pdus = body.pdus as Record<string, unknown>[];
      const members = pdus.filter(
        (p) => p.type === 'm.room.member' && String(p.state_key).startsWith('@member1'),
      );
      const victim = members[0] as Record<string, unknown>;
      const donor = pdus.find((p) => p !== victim && p.type === 'm.room.member') as Record<string, unknown>;
      victim.signatures = donor.signatures;
      forged = victim.state_key as string;
    });
    const warnings: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn(message, fields) {
        warnings.push(`${message} ${JSON.stringify(fields ?? {})}`);
      },
      error() {},
    };
    const b = await serveB(w.network, sqlite(), logger);
    const bob = await b.hs.createUser('bob');
    expect(
      (
        await b.hs.call('POST', `/_matrix/client/v3/join/${enc(w.roomId)}?via=a.test`, {
          token: bob.accessToken,
          body: {},
        })
      ).status,
    ).toBe(200);
    gate.release();
    await expect
      .poll(async () => (await b.hs.store.rooms.partialStateRooms()).length, { timeout: 20_000 })
      .toBe(0);
    expect(forged).toBeDefined();
    // Everyone but the forged membership is in; the forged one is nowhere.
    expect((await b.hs.store.rooms.membership(w.roomId, forged as string))?.membership).toBeUndefined();
    const members = (await b.hs.store.rooms.members(w.roomId, 'join')).map((m) => m.userId);
    expect(members).toHaveLength(MEMBERS + 2);
    expect(members).toContain(w.members[0]);
    expect(warnings.some((w) => w.includes('refused an event') && w.includes('fails its checks'))).toBe(true);
    // The room still works both ways.
    await b.hs.call('PUT', `/_matrix/client/v3/rooms/${enc(w.roomId)}/send/m.room.message/t1`, {
      token: bob.accessToken,
      body: { msgtype: 'm.text', body: 'still here' },
    });
    await expect.poll(() => messages(w.a, w.alice.accessToken, w.roomId)).toContain('still here');
    await w.a.call('PUT', `/_matrix/client/v3/rooms/${enc(w.roomId)}/send/m.room.message/t2`, {
      token: w.alice.accessToken,
      body: { msgtype: 'm.text', body: 'heard?' },
    });
    await expect.poll(() => messages(b.hs, bob.accessToken, w.roomId)).toContain('heard?');
  }, 60_000);
});
