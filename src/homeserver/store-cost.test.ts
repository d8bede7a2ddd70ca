/**
 * What sends and syncs cost the store, counted rather than timed (issue 13), through an
 * engine that counts transactions and requests (`storage/testing-count.ts`), on IndexedDB
 * (fake-indexeddb) and SQLite:
 * - one `sendEvent` opens the same transactions in a room of 2 and of 100 members: push
 *   rules, ignore lists and members are kept in memory between sends (write-through), the
 *   state, extremities and transaction ID are read in one snapshot, and the event with its
 *   push actions is one write;
 * - the passes of long-polls woken by one send share what every member reads alike (the
 *   room's page and state, relations, receipts): each waiter then opens one read transaction
 *   of its own, the same with 3 or 40 members and 3 or 60 earlier events; the next long-poll
 *   writes nothing (the to-device messages its token acknowledges were deleted already);
 * - accepting received events reads the store for many events at once and writes a run of
 *   messages in one transaction, so a /send transaction costs no store work per event;
 * - an incremental /sync reads unread counts from counters, never a notification row, so
 *   it makes the same requests with 3 or 60 unread notifications; thread replies are
 *   counted per thread, and receipts reset their thread.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { getRoomVersion, type Pdu } from '../core/index.ts';
import { createStore } from '../storage/create-store.ts';
import type { Engine } from '../storage/engine.ts';
import { IndexedDbEngine } from '../storage/indexeddb/index.ts';
import { openSqliteEngine } from '../storage/sqlite/index.ts';
import { countingEngine, type EngineCall } from '../storage/testing-count.ts';
import { type Clock, randomString, webRandom } from './context.ts';
import type { KeyStore } from './ports.ts';
import { member, message, remoteEvent, remoteServer } from './rooms/testing-remote.ts';
import type { Services } from './services.ts';
import { startServices } from './start.ts';
import type { SyncResponse } from './sync/index.ts';
import { addTestKeys, createTestUser, manualClock } from './testing.ts';

const engines: Record<string, () => Promise<Engine>> = {
  indexeddb: () =>
    IndexedDbEngine.open({
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      name: `send-cost-${randomString(webRandom, 8)}`,
    }),
  sqlite: () => openSqliteEngine({ path: ':memory:' }),
};

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const text = (body: string) => ({ msgtype: 'm.text', body });

interface SendCost {
  /** The first send after the members joined (members and push settings not yet known). */
  first: EngineCall[];
  /** A later send. */
  next: EngineCall[];
  /** The send after one member started ignoring the sender (their settings read again). */
  ignored: EngineCall[];
}

/** A public room of `members` local users; the transactions of two sends by its creator. */
/** The services on a store whose engine counts its transactions. */
async function countedServices(
  open: () => Promise<Engine>,
  options: { clock?: Clock; keyStore?: KeyStore } = {},
) {
  const counting = countingEngine(await open());
  const store = createStore(counting.engine);
  closers.push(() => store.close());
  const { services, ctx } = await startServices(store, {
    serverName: 'cost.localhost',
    registration: 'open',
    passwordIterations: 1000,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.keyStore ? { keyStore: options.keyStore } : {}),
  });
  return { counting, services, store, ctx };
}

async function sendCost(open: () => Promise<Engine>, members: number): Promise<SendCost> {
  const { counting, services } = await countedServices(open);
  const owner = await createTestUser(services, 'owner');
  const { roomId } = await services.rooms.createRoom(owner.userId, { preset: 'public_chat' });
  for (let i = 1; i < members; i++) {
    const member = await createTestUser(services, `member${i}`);
    await services.rooms.join(member.userId, roomId);
  }
  const send = async (body: string) => {
    counting.reset();
    await (services as Services).rooms.sendEvent({
      sender: owner.userId,
      deviceId: owner.deviceId,
      txnId: body,
      roomId,
      type: 'm.room.message',
      content: text(body),
    });
    return [...counting.calls];
  };
  const first = await send('first');
  const next = await send('next');
  // The ignore list is written through the account data service, as PUT /account_data does.
  await services.userData.setAccountData(`@member1:cost.localhost`, 'm.ignored_user_list', {
    ignored_users: { [owner.userId]: {} },
  });
  const ignored = await send('ignored');
  return { first, next, ignored };
}

const shape = (calls: EngineCall[]) => calls.map((call) => call.kind);

describe.each(Object.entries(engines))('store work per send (%s)', (_name, open) => {
  it('is one read snapshot and one write, whether the room has 2 or 100 members', async () => {
    const small = await sendCost(open, 2);
    const large = await sendCost(open, 100);
    // Steady state: the snapshot and the write, nothing per member.
    expect(shape(small.next)).toEqual(['read', 'write']);
    expect(shape(large.next)).toEqual(shape(small.next));
    // Right after the joins the members come with the snapshot and every member's push
    // settings are read in one more transaction, whatever their number.
    expect(shape(large.first)).toEqual(shape(small.first));
    expect(small.first.length).toBeLessThanOrEqual(3);
    // The write carries one notification per other member, in the same transaction.
    const notified = (calls: EngineCall[]) =>
      calls
        .filter((c) => c.kind === 'write')
        .flatMap((c) => c.requests)
        .filter((r) => r === 'notifications.put').length;
    expect(notified(small.next)).toBe(1);
    expect(notified(large.next)).toBe(99);
    // Writing an ignore list drops that member's cached settings: read again (one
    // transaction), and the ignored sender no longer notifies them.
    expect(shape(small.ignored)).toEqual(['read', 'read', 'write']);
    expect(shape(large.ignored)).toEqual(shape(small.ignored));
    expect(notified(small.ignored)).toBe(0);
    expect(notified(large.ignored)).toBe(98);
  });
});

/**
 * The owner's room, joined by a user of another server; the transactions of accepting
 * `count` of that user's messages, each on the one before, in one batch (as a /send
 * transaction hands them over).
 */
async function receiveCost(open: () => Promise<Engine>, count: number): Promise<EngineCall[]> {
  const remote = await remoteServer('remote.cost');
  const { counting, services, store } = await countedServices(open, { keyStore: remote.keyStore });
  const owner = await createTestUser(services, 'owner');
  const version = getRoomVersion('10');
  const { roomId } = await services.rooms.createRoom(owner.userId, {
    preset: 'public_chat',
    room_version: '10',
  });
  const bob = remote.user('bob');
  const join = await remoteEvent(remote, store, version, roomId, member(bob, bob, 'join'));
  await services.rooms.acceptRemote(roomId, [join.wire]);
  let prev = join.event;
  const wires: Pdu[] = [];
  for (let i = 0; i < count; i++) {
    const made = await remoteEvent(remote, store, version, roomId, message(bob, `hello ${i}`), {
      prevEvents: [prev],
    });
    wires.push(made.wire);
    prev = made.event;
  }
  counting.reset();
  const outcomes = await services.rooms.acceptRemote(roomId, wires);
  expect(outcomes.map((o) => o.status)).toEqual(wires.map(() => 'accepted'));
  return [...counting.calls];
}

describe.each(Object.entries(engines))('store work per received batch (%s)', (_name, open) => {
  it("reads the store for a transaction's events together and writes a run of messages once", async () => {
    const reads = (calls: EngineCall[]) => calls.filter((call) => call.kind === 'read').length;
    const writes = (calls: EngineCall[]) => calls.filter((call) => call.kind === 'write').length;
    const small = await receiveCost(open, 5);
    const large = await receiveCost(open, 50);
    // Ten times the events, the same reads: nothing per event; one write for each run.
    expect(reads(large)).toBe(reads(small));
    expect(writes(small)).toBe(1);
    expect(writes(large)).toBe(1);
  });
});

/** Alice's room with Bob in it; `unread` messages from Alice that notify Bob, then one more. */
async function syncCost(open: () => Promise<Engine>, unread: number) {
  const { counting, services } = await countedServices(open);
  const alice = await createTestUser(services, 'alice');
  const bob = await createTestUser(services, 'bob');
  const { roomId } = await services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
  await services.rooms.join(bob.userId, roomId);
  const say = (body: string) =>
    services.rooms.sendEvent({ sender: alice.userId, roomId, type: 'm.room.message', content: text(body) });
  for (let i = 0; i < unread; i++) await say(`unread ${i}`);
  const bobSync = (since?: string) =>
    services.sync.sync({ userId: bob.userId, deviceId: bob.deviceId, ...(since ? { since } : {}) });
  const since = (await bobSync()).next_batch;
  await say('one more');
  counting.reset();
  const body = await bobSync(since);
  return { services, roomId, alice, bob, body, calls: [...counting.calls], bobSync, say };
}

const requests = (calls: EngineCall[]) => calls.flatMap((call) => call.requests).sort();

describe.each(Object.entries(engines))('unread counts in /sync (%s)', (_name, open) => {
  it('are read from counters: no notification row read, the same requests at 3 and 60 unread', async () => {
    const few = await syncCost(open, 3);
    const many = await syncCost(open, 60);
    expect(few.body.rooms.join[few.roomId]?.unread_notifications).toEqual({
      notification_count: 4,
      highlight_count: 0,
    });
    expect(many.body.rooms.join[many.roomId]?.unread_notifications).toEqual({
      notification_count: 61,
      highlight_count: 0,
    });
    for (const { calls } of [few, many]) {
      expect(requests(calls).filter((r) => r.startsWith('notifications.'))).toEqual([]);
      expect(requests(calls)).toContain('notification_counts.query');
    }
    expect(requests(many.calls)).toEqual(requests(few.calls));
  });

  it('counts thread replies per thread, and a receipt resets only its thread', async () => {
    const { services, roomId, alice, bob, bobSync } = await syncCost(open, 2);
    const root = (
      await services.rooms.sendEvent({
        sender: alice.userId,
        roomId,
        type: 'm.room.message',
        content: text('a thread'),
      })
    ).eventId;
    const reply = async () =>
      (
        await services.rooms.sendEvent({
          sender: alice.userId,
          roomId,
          type: 'm.room.message',
          content: { ...text('reply'), 'm.relates_to': { rel_type: 'm.thread', event_id: root } },
        })
      ).eventId;
    const first = await reply();
    await reply();
    const threaded = { room: { timeline: { unread_thread_notifications: true } } };
    const counts = async (filter?: object) => {
      const body = await services.sync.sync({
        userId: bob.userId,
        deviceId: bob.deviceId,
        fullState: true,
        ...(filter ? { filter } : {}),
      });
      const room = body.rooms.join[roomId];
      return { main: room?.unread_notifications, threads: room?.unread_thread_notifications };
    };
    // 3 before the thread, its root, 2 replies.
    expect(await counts(threaded)).toEqual({
      main: { notification_count: 4, highlight_count: 0 },
      threads: { [root]: { notification_count: 2, highlight_count: 0 } },
    });
    expect((await counts()).main).toEqual({ notification_count: 6, highlight_count: 0 });
    await services.receipts.send(bob.userId, roomId, 'm.read', first, root);
    expect(await counts(threaded)).toEqual({
      main: { notification_count: 4, highlight_count: 0 },
      threads: { [root]: { notification_count: 1, highlight_count: 0 } },
    });
    await services.receipts.send(bob.userId, roomId, 'm.read', root, 'main');
    expect((await counts(threaded)).main).toEqual({ notification_count: 0, highlight_count: 0 });
    await services.receipts.send(bob.userId, roomId, 'm.read', first);
    expect((await counts()).main).toEqual({ notification_count: 1, highlight_count: 0 });
    expect((await bobSync()).rooms.join[roomId]?.unread_notifications?.notification_count).toBe(1);
  });
});

/** An answer with nothing in it (a long-poll would have waited). */
const quiet = (body: SyncResponse) =>
  Object.keys(body.rooms.join).length === 0 &&
  body.presence.events.length === 0 &&
  body.device_lists.changed.length === 0 &&
  body.account_data.events.length === 0;

/**
 * A room of `members` where `history` messages were sent; three members long-poll /sync
 * (their tokens from before one more message), and are woken by it. The clock stands still,
 * as it nearly does for waiters woken together (shared reads last 20 ms).
 */
async function wakeCost(open: () => Promise<Engine>, members: number, history: number) {
  const { counting, services, ctx } = await countedServices(open, { clock: manualClock() });
  const owner = await createTestUser(services, 'owner');
  const { roomId } = await services.rooms.createRoom(owner.userId, { preset: 'public_chat' });
  const waiting: Awaited<ReturnType<typeof createTestUser>>[] = [];
  for (let i = 1; i < members; i++) {
    const member = await createTestUser(services, `member${i}`);
    await services.rooms.join(member.userId, roomId);
    if (waiting.length < 3) waiting.push(member);
  }
  for (let i = 0; i < history; i++)
    await services.rooms.sendEvent({
      sender: owner.userId,
      roomId,
      type: 'm.room.message',
      content: text(`old ${i}`),
    });
  // Each member's token once nothing more is waiting for them (the others coming online, …).
  const sync = (member: (typeof waiting)[number], since?: string) =>
    services.sync.sync({ userId: member.userId, deviceId: member.deviceId, ...(since ? { since } : {}) });
  // A to-device message each, so every token acknowledges a position above 0.
  await ctx.store.e2ee.sendToDevice(
    waiting.map((member) => ({
      userId: member.userId,
      deviceId: member.deviceId,
      sender: owner.userId,
      type: 'org.example.ping',
      content: {},
    })),
  );
  ctx.notifier.notify({ users: waiting.map((member) => member.userId) });
  const initial = [];
  for (const member of waiting) initial.push(await sync(member));
  const tokens: string[] = [];
  for (const [i, member] of waiting.entries()) {
    let body = initial[i] as SyncResponse;
    for (let k = 0; k < 5 && (k === 0 || !quiet(body)); k++) body = await sync(member, body.next_batch);
    if (!quiet(body)) throw new Error(`${member.userId} still has news`);
    tokens.push(body.next_batch);
  }
  // Each is parked on the notifier, then one send wakes them all.
  let parked = 0;
  const wait = ctx.notifier.wait;
  ctx.notifier.wait = (...args) => {
    parked++;
    return wait.apply(ctx.notifier, args);
  };
  const answers = waiting.map((member, i) =>
    services.sync.sync({
      userId: member.userId,
      deviceId: member.deviceId,
      since: tokens[i],
      timeoutMs: 20_000,
    }),
  );
  while (parked < waiting.length) await new Promise((resolve) => setTimeout(resolve, 1));
  // Counted from the send on: the waiters wake before it returns.
  counting.reset();
  await services.rooms.sendEvent({
    sender: owner.userId,
    roomId,
    type: 'm.room.message',
    content: text('news'),
  });
  const bodies = await Promise.all(answers);
  for (const body of bodies) {
    const events = body.rooms.join[roomId]?.timeline.events ?? [];
    expect(events.map((e) => (e.content as { body?: string }).body)).toEqual(['news']);
  }
  // The send's own (its snapshot and its write, see above) left out: the woken passes'.
  const woken = counting.calls.filter((call) => call.kind === 'read' && !call.tables.includes('txn_ids'));
  // Woken once the send's write asked to commit (IndexedDB: its reads are queued behind it)
  // or, where the engine does not say when that is, once it ended, each pass asks for all it
  // reads before any answer comes: the positions with the events since its token, its
  // snapshot, and in the room the notifier named, the state at `since`, the state before the
  // new event and its relations.
  const write = counting.calls.find((call) => call.kind === 'write');
  if (!write) throw new Error('the send wrote nothing');
  const written = write.committing ?? write.ended ?? Number.POSITIVE_INFINITY;
  const afterWrite = woken.filter((call) => call.began > written);
  expect(afterWrite.length).toBeGreaterThan(0);
  if (counting.engine.kind === 'indexeddb') {
    // There the woken passes' reads are all asked before the write's end comes back.
    expect(write.committing).toBeDefined();
    expect(Math.max(...afterWrite.map((call) => call.began))).toBeLessThan(write.ended as number);
  }
  expect(Math.max(...afterWrite.map((call) => call.began))).toBeLessThan(
    Math.min(...afterWrite.map((call) => call.ended ?? Number.POSITIVE_INFINITY)),
  );
  // The next long-poll from each answer's token acknowledges the to-device position the
  // previous request did: no write again.
  counting.reset();
  for (const [i, member] of waiting.entries())
    await services.sync.sync({
      userId: member.userId,
      deviceId: member.deviceId,
      since: (bodies[i] as SyncResponse).next_batch,
    });
  expect(counting.calls.filter((call) => call.kind === 'write')).toEqual([]);
  return woken;
}

describe.each(Object.entries(engines))('a /sync wake (%s)', (_name, open) => {
  it('reads the snapshots of all waiters in one transaction, whatever the history and member count', async () => {
    const small = await wakeCost(open, 4, 3);
    const large = await wakeCost(open, 40, 60);
    for (const calls of [small, large]) {
      // One snapshot per waiter (unread counters; the user's memberships and the device's key
      // counts are known from its pass before it waited), the three woken by one send read in
      // one transaction, with the cache marks once for all (the kept memberships and key counts
      // are served only if nothing changed them since, by any store on the database:
      // areas/common.ts `CacheMarks`) …
      const own = calls.filter((call) => call.tables.includes('room_members'));
      expect(own.length).toBe(1);
      expect(own.flatMap((call) => call.requests).sort()).toEqual(
        [...Array(3).fill('notification_counts.query'), 'streams.query'].sort(),
      );
      // … and the reads of the room's change once for all (positions with the events since
      // the tokens, the state at `since`, the state before the new event, its relations).
      expect(calls.length - own.length).toBeLessThanOrEqual(4);
    }
    expect(requests(large)).toEqual(requests(small));
  });
});

describe.each(Object.entries(engines))('key counts in /sync (%s)', (_name, open) => {
  it('are read once per device, then again only after a write of its keys (upload, claim)', async () => {
    const { counting, services, store } = await countedServices(open);
    const alice = await createTestUser(services, 'alice');
    const keyReads = () =>
      counting.calls
        .flatMap((call) => call.requests)
        .filter((request) => request.startsWith('one_time_keys.') || request.startsWith('fallback_keys.'));
    const sync = async (since?: string) => {
      counting.reset();
      const body = await services.sync.sync({
        userId: alice.userId,
        deviceId: alice.deviceId,
        ...(since ? { since } : {}),
      });
      return { body, reads: keyReads() };
    };
    const first = await sync();
    expect(first.reads.length).toBe(2);
    expect(first.body.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    const again = await sync(first.body.next_batch);
    expect(again.reads).toEqual([]);

    await addTestKeys(store, alice.userId, alice.deviceId);
    const uploaded = await sync(again.body.next_batch);
    expect(uploaded.reads.length).toBe(2);
    expect(uploaded.body.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
    expect(uploaded.body.device_unused_fallback_key_types).toEqual(['signed_curve25519']);

    await store.e2ee.claimKeys([
      { userId: alice.userId, deviceId: alice.deviceId, algorithm: 'signed_curve25519' },
    ]);
    const claimed = await sync(uploaded.body.next_batch);
    expect(claimed.body.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    expect((await sync(claimed.body.next_batch)).reads).toEqual([]);
  });
});
