/**
 * matrix-js-sdk's own sliding sync client (`SlidingSync`, and `SlidingSyncSdk` behind
 * `startClient({ slidingSync })`), unmodified, against Hearth's simplified sliding sync
 * (MSC4186) through `hs.fetch`: a list over 100 rooms whose range moves, a new message that
 * reorders the list, a room subscription, and the `to_device` and `e2ee` extensions carrying
 * what an encrypted client needs (to-device messages, acknowledged; one-time key counts and
 * fallback key types; device-list changes).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientEvent, createClient, type MatrixClient, SyncState } from 'matrix-js-sdk';
import {
  type Extension,
  ExtensionState,
  type MSC3575RoomData,
  type MSC3575SlidingSyncResponse,
  SlidingSync,
  SlidingSyncEvent,
  SlidingSyncState,
} from 'matrix-js-sdk/lib/sliding-sync.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Homeserver, startHomeserver } from '../../src/server.ts';
import { openSqliteStore } from '../../src/storage/sqlite/index.ts';
import { createTestHomeserver, type TestHomeserver, type TestUser } from '../../src/testing.ts';

const BASE = 'http://slide.test';
const quiet = { debug() {}, info() {}, log() {}, warn() {}, error() {}, trace() {}, getChild: () => quiet };

let hs: TestHomeserver;
let alice: TestUser;
const stops: (() => void)[] = [];

beforeEach(async () => {
  hs = await createTestHomeserver({ serverName: 'slide.test' });
  alice = await hs.createUser('alice');
});
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await hs.close();
});

/** In-process fetch that, like a browser's, rejects when its request is aborted. */
const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
  new Promise<Response>((resolve, reject) => {
    const signal = init?.signal;
    const abort = () => reject(new DOMException('aborted', 'AbortError'));
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    hs.fetch(new Request(input, init)).then(resolve, reject);
  })) as typeof fetch;

function client(user: TestUser): MatrixClient {
  return createClient({
    baseUrl: BASE,
    fetchFn,
    userId: user.userId,
    accessToken: user.accessToken,
    deviceId: user.deviceId,
    logger: quiet as never,
  });
}

async function createRooms(user: TestUser, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: user.accessToken,
      body: { name: `Room ${i}` },
    });
    ids.push(res.body.room_id as string);
  }
  return ids;
}

let txn = 0;
async function send(user: TestUser, roomId: string, body: string) {
  const res = await hs.call(
    'PUT',
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${++txn}`,
    { token: user.accessToken, body: { msgtype: 'm.text', body } },
  );
  expect(res.status).toBe(200);
}

interface Seen {
  resp: MSC3575SlidingSyncResponse;
  rooms: Map<string, MSC3575RoomData>;
}

/** Records each processed response with its rooms; `next` waits for one that satisfies `check`. */
function watch(sync: SlidingSync) {
  const seen: Seen[] = [];
  let rooms = new Map<string, MSC3575RoomData>();
  const waiters = new Set<() => void>();
  sync.on(SlidingSyncEvent.RoomData, (roomId, data) => {
    rooms.set(roomId, data);
  });
  sync.on(SlidingSyncEvent.Lifecycle, (state, resp) => {
    if (state !== SlidingSyncState.Complete || !resp) return;
    seen.push({ resp, rooms });
    rooms = new Map();
    for (const wake of waiters) wake();
  });
  let read = 0;
  return {
    seen,
    next(check: (s: Seen) => boolean, what: string, ms = 15_000): Promise<Seen> {
      return new Promise((resolve, reject) => {
        const look = () => {
          while (read < seen.length) {
            const s = seen[read++] as Seen;
            if (check(s)) {
              waiters.delete(look);
              clearTimeout(timer);
              resolve(s);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`timed out waiting for ${what}`));
        }, ms);
        waiters.add(look);
        look();
      });
    },
  };
}

const bodies = (data: MSC3575RoomData | undefined) =>
  (data?.timeline ?? []).filter((e) => e.type === 'm.room.message').map((e) => e.content.body);

describe('matrix-js-sdk SlidingSync against simplified sliding sync', () => {
  it('moves a range over 100 rooms, reorders on a new message, and subscribes', async () => {
    const rooms = await createRooms(alice, 100);
    const mx = client(alice);
    const sync = new SlidingSync(
      BASE,
      new Map([['all', { ranges: [[0, 19]], timeline_limit: 1, required_state: [['m.room.name', '']] }]]),
      { timeline_limit: 5, required_state: [['*', '*']] },
      mx,
      10_000,
    );
    const w = watch(sync);
    void sync.start();
    stops.push(() => sync.stop());

    // The 20 most recent rooms, newest first: rooms 99 … 80.
    const first = await w.next((s) => s.rooms.size > 0, 'the first page');
    expect(sync.getListData('all')?.joinedCount).toBe(100);
    expect([...first.rooms.keys()].sort()).toEqual(rooms.slice(80).sort());
    for (const [roomId, data] of first.rooms) {
      expect(data.initial).toBe(true);
      expect(data.name).toBe(`Room ${rooms.indexOf(roomId)}`);
    }
    const topStamp = Math.max(...[...first.rooms.values()].map((d) => d.bump_stamp ?? 0));

    // A message in room 5, far out of range, brings it to the top: it arrives whole.
    await send(alice, rooms[5] as string, 'up we go');
    const moved = await w.next((s) => s.rooms.has(rooms[5] as string), 'room 5 entering the range');
    const room5 = moved.rooms.get(rooms[5] as string);
    expect(room5?.initial).toBe(true);
    expect(bodies(room5)).toEqual(['up we go']);
    expect(room5?.bump_stamp).toBeGreaterThan(topStamp);

    // The range grows to the whole list: the 79 rooms the client lacks, no others.
    sync.setListRanges('all', [[0, 99]]);
    const grown = await w.next((s) => s.rooms.size > 0, 'the rest of the list');
    expect(grown.rooms.size).toBe(79);
    expect(grown.rooms.has(rooms[5] as string)).toBe(false);
    expect(grown.rooms.has(rooms[0] as string)).toBe(true);

    // Back to the top ten; a message in room 50 moves it there, as an update of what the
    // client has (not initial), with the highest bump stamp.
    sync.setListRanges('all', [[0, 9]]);
    await send(alice, rooms[50] as string, 'fifty');
    const fifty = await w.next((s) => s.rooms.has(rooms[50] as string), 'room 50 update');
    const data50 = fifty.rooms.get(rooms[50] as string);
    expect(data50?.initial).toBeFalsy();
    expect(bodies(data50)).toEqual(['fifty']);
    expect(data50?.bump_stamp).toBeGreaterThan(room5?.bump_stamp as number);
    expect(sync.getListData('all')?.joinedCount).toBe(100);

    // A subscription to room 30 (out of range, but the client has it from the whole list)
    // sends what its own config adds: the state it lacks and the longer timeline, not the
    // name it has, and not as initial.
    sync.modifyRoomSubscriptions(new Set([rooms[30] as string]));
    const sub = await w.next((s) => s.rooms.has(rooms[30] as string), 'the subscribed room');
    const data30 = sub.rooms.get(rooms[30] as string);
    expect(data30?.initial).toBeFalsy();
    expect(data30?.timeline.length).toBe(5);
    const added = data30?.required_state.map((e) => e.type);
    expect(added).toEqual(expect.arrayContaining(['m.room.create', 'm.room.power_levels', 'm.room.member']));
    expect(added).not.toContain('m.room.name');
    // It stays subscribed: its next message comes although the list window is elsewhere.
    await send(alice, rooms[0] as string, 'zero');
    await send(alice, rooms[30] as string, 'thirty');
    const later = await w.next((s) => s.rooms.has(rooms[30] as string), 'subscribed room update');
    expect(bodies(later.rooms.get(rooms[30] as string))).toContain('thirty');
  }, 120_000);

  it('feeds a MatrixClient whose rooms sort by bump stamp as the room list does', async () => {
    const rooms = await createRooms(alice, 12);
    const mx = client(alice);
    const sync = new SlidingSync(
      BASE,
      new Map([['all', { ranges: [[0, 99]], timeline_limit: 1, required_state: [['m.room.name', '']] }]]),
      { timeline_limit: 5, required_state: [['*', '*']] },
      mx,
      10_000,
    );
    const syncing = new Promise<void>((resolve) => {
      mx.on(ClientEvent.Sync, (state) => {
        if (state === SyncState.Syncing) resolve();
      });
    });
    await mx.startClient({ slidingSync: sync });
    stops.push(() => mx.stopClient());
    await syncing;
    expect(mx.getRooms()).toHaveLength(12);
    const order = () =>
      [...mx.getRooms()].sort((a, b) => (b.getBumpStamp() ?? 0) - (a.getBumpStamp() ?? 0)).map((r) => r.name);
    expect(order()[0]).toBe('Room 11');
    await send(alice, rooms[3] as string, 'hello');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('room 3 never moved up')), 15_000);
      const check = () => {
        if (order()[0] === 'Room 3') {
          clearTimeout(timer);
          resolve();
        }
      };
      mx.on(ClientEvent.Sync, check);
      check();
    });
    const room3 = mx.getRoom(rooms[3] as string);
    expect(room3?.getLiveTimeline().getEvents().at(-1)?.getContent().body).toBe('hello');

    // A subscription with a longer timeline for a room the client has with one event: the
    // server sends the latest five (not initial) and the SDK files the four it lacks before
    // the one it has, each once, in order.
    const room7 = mx.getRoom(rooms[7] as string);
    const had =
      room7
        ?.getLiveTimeline()
        .getEvents()
        .map((e) => e.getId()) ?? [];
    expect(had).toHaveLength(1);
    sync.modifyRoomSubscriptions(new Set([rooms[7] as string]));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('room 7 never got its longer timeline')), 15_000);
      const check = () => {
        if ((room7?.getLiveTimeline().getEvents().length ?? 0) >= 5) {
          clearTimeout(timer);
          resolve();
        }
      };
      mx.on(ClientEvent.Sync, check);
      check();
    });
    const events = room7?.getLiveTimeline().getEvents() ?? [];
    const ids = events.map((e) => e.getId());
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.at(-1)).toBe(had[0]);
    const stamps = events.map((e) => e.getTs());
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
  }, 60_000);
});

/** A small extension as the SDK's own are written (`Extension`), recording what it is sent. */
function recorder(name: string, request: (initial: boolean) => object, onResponse: (data: never) => void) {
  const ext: Extension<object, object> = {
    name: () => name,
    when: () => ExtensionState.PreProcess,
    onRequest: async (initial) => request(initial),
    onResponse: async (data) => onResponse(data as never),
  };
  return ext;
}

describe('matrix-js-sdk SlidingSync: the to_device and e2ee extensions', () => {
  it('delivers to-device messages once, key counts and device-list changes', async () => {
    const bob = await hs.createUser('bob');
    const created = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { preset: 'public_chat' },
    });
    const joined = await hs.call(
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(created.body.room_id as string)}`,
      {
        token: bob.accessToken,
        body: {},
      },
    );
    expect(joined.status).toBe(200);
    const { store } = hs;
    const notifier = hs.internals.ctx.notifier;
    await store.e2ee.sendToDevice([
      {
        userId: alice.userId,
        deviceId: alice.deviceId,
        sender: bob.userId,
        type: 'm.room.encrypted',
        content: {
          algorithm: 'm.olm.v1.curve25519-aes-sha2',
          sender_key: 'bobkey',
          ciphertext: { a: { type: 0, body: 'x' } },
        },
      },
    ]);
    await store.e2ee.addOneTimeKeys(alice.userId, alice.deviceId, [
      { algorithm: 'signed_curve25519', keyId: 'AAAAAQ', key: { key: 'k1', signatures: {} } },
      { algorithm: 'signed_curve25519', keyId: 'AAAAAg', key: { key: 'k2', signatures: {} } },
    ]);
    await store.e2ee.putFallbackKey(alice.userId, alice.deviceId, {
      algorithm: 'signed_curve25519',
      keyId: 'AAAAAw',
      key: { key: 'fb', fallback: true, signatures: {} },
    });

    const toDevice: { events: { type: string; sender: string }[]; next_batch: string }[] = [];
    const e2ee: {
      device_lists?: { changed: string[]; left: string[] };
      device_one_time_keys_count?: Record<string, number>;
      device_unused_fallback_key_types?: string[];
    }[] = [];
    let nextBatch: string | undefined;
    const mx = client(alice);
    const sync = new SlidingSync(
      BASE,
      new Map([['all', { ranges: [[0, 9]], timeline_limit: 1, required_state: [] }]]),
      { timeline_limit: 1, required_state: [] },
      mx,
      10_000,
    );
    sync.registerExtension(
      recorder(
        'to_device',
        () => ({ enabled: true, limit: 100, since: nextBatch }),
        (data: { events: { type: string; sender: string }[]; next_batch: string }) => {
          toDevice.push(data);
          nextBatch = data.next_batch;
        },
      ),
    );
    sync.registerExtension(
      recorder(
        'e2ee',
        () => ({ enabled: true }),
        (data: (typeof e2ee)[number]) => e2ee.push(data),
      ),
    );
    const w = watch(sync);
    void sync.start();
    stops.push(() => sync.stop());

    await w.next(() => true, 'the first answer');
    expect(toDevice[0]?.events).toEqual([
      expect.objectContaining({ type: 'm.room.encrypted', sender: bob.userId }),
    ]);
    expect(e2ee[0]?.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
    expect(e2ee[0]?.device_unused_fallback_key_types).toEqual(['signed_curve25519']);

    // Bob adds a device: Alice, who shares a room with him, must learn his list changed.
    await store.e2ee.putDeviceKeys(bob.userId, 'BOBPHONE', {
      user_id: bob.userId,
      device_id: 'BOBPHONE',
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: { 'curve25519:BOBPHONE': 'c', 'ed25519:BOBPHONE': 'e' },
      signatures: {},
    });
    notifier.notify({ users: [alice.userId] });
    await w.next(() => (e2ee.at(-1)?.device_lists?.changed ?? []).includes(bob.userId), 'device list change');

    // The first message was acknowledged by the request after it: it is gone from the store,
    // and a new one comes alone.
    await store.e2ee.sendToDevice([
      { userId: alice.userId, deviceId: alice.deviceId, sender: bob.userId, type: 'm.dummy', content: {} },
    ]);
    notifier.notify({ users: [alice.userId] });
    await w.next(() => (toDevice.at(-1)?.events ?? []).length > 0, 'the second to-device message');
    expect(toDevice.at(-1)?.events.map((e) => e.type)).toEqual(['m.dummy']);
    const left = await store.e2ee.toDeviceMessages(alice.userId, alice.deviceId, 0, 10);
    expect(left.messages.map((m) => m.type)).not.toContain('m.room.encrypted');
    expect(toDevice.flatMap((d) => d.events).filter((e) => e.type === 'm.room.encrypted')).toHaveLength(1);
  }, 60_000);
});

describe('matrix-js-sdk sliding sync requests across a restart', () => {
  it('carries on from pos on a restarted homeserver over the same SQLite file, losing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-slide-'));
    const open = () =>
      startHomeserver({
        serverName: 'slide.test',
        store: () => openSqliteStore({ path: join(dir, 'hearth.sqlite') }),
        registration: 'open',
        passwordIterations: 1000,
      }).homeserver;
    let server: Homeserver = open();
    const viaCurrent = ((input: RequestInfo | URL, init?: RequestInit) =>
      server.fetch(new Request(input, init))) as typeof fetch;
    const call = async (path: string, token: string | undefined, body: unknown, method = 'POST') => {
      const res = await server.fetch(
        new Request(`${BASE}${path}`, {
          method,
          headers: {
            'content-type': 'application/json',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: JSON.stringify(body),
        }),
      );
      expect(res.status, `${path}: ${await res.text()}`).toBe(200);
    };
    try {
      const reg = await server.fetch(
        new Request(`${BASE}/_matrix/client/v3/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'carol', password: 'pw', auth: { type: 'm.login.dummy' } }),
        }),
      );
      const me = (await reg.json()) as { user_id: string; access_token: string; device_id: string };
      const mx = createClient({
        baseUrl: BASE,
        fetchFn: viaCurrent,
        userId: me.user_id,
        accessToken: me.access_token,
        deviceId: me.device_id,
        logger: quiet as never,
      });
      const roomIds: string[] = [];
      for (const name of ['listed', 'subscribed']) {
        const res = await server.fetch(
          new Request(`${BASE}/_matrix/client/v3/createRoom`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${me.access_token}` },
            body: JSON.stringify({ name }),
          }),
        );
        roomIds.push(((await res.json()) as { room_id: string }).room_id);
      }
      const [listed, subscribed] = roomIds as [string, string];
      const lists = { all: { ranges: [[0, 0]], timeline_limit: 5, required_state: [['m.room.name', '']] } };
      const first = await mx.slidingSync({
        lists,
        room_subscriptions: { [listed]: { timeline_limit: 5, required_state: [] } },
      });
      const second = await mx.slidingSync({
        lists,
        pos: first.pos,
        room_subscriptions: { [subscribed]: { timeline_limit: 5, required_state: [] } },
      });
      // The client had the room from the list: the subscription adds nothing it lacks.
      expect(second.rooms[subscribed]?.initial).toBeFalsy();
      const sendTo = (roomId: string, body: string, txnId: string) =>
        call(
          `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txnId}`,
          me.access_token,
          { msgtype: 'm.text', body },
          'PUT',
        );
      // Sent while the client is away; then the server stops.
      await sendTo(listed, 'before the restart', 't1');
      await server.close();
      server = open();
      await sendTo(subscribed, 'after the restart', 't2');
      const third = await mx.slidingSync({ lists, pos: second.pos });
      // Nothing lost, nothing sent twice, and the subscription remembered by the store.
      expect(third.rooms[listed]?.initial).toBeFalsy();
      expect(third.rooms[listed]?.timeline.map((e) => e.content.body)).toEqual(['before the restart']);
      expect(third.rooms[subscribed]?.initial).toBeFalsy();
      expect(third.rooms[subscribed]?.timeline.map((e) => e.content.body)).toEqual(['after the restart']);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
