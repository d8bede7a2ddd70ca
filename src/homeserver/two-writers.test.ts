/**
 * Two homeservers on one database, as during a Service Worker update (old and new worker), with
 * the page fallback in two tabs, or with two `hearth serve` on one `--data`: what one writes,
 * the other's next request sees, though each keeps push settings, key counts and room members
 * in memory between requests (storage/areas/common.ts `CacheMarks`); and a long-poll on one
 * is woken by what the other stored (`hearCommitsElsewhere`). Real stores: two IndexedDB
 * connections to one fake-indexeddb database, two SQLite connections to one file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { openIndexedDbStore } from '../storage/indexeddb/index.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import type { Store } from '../storage/store.ts';
import { randomString, webRandom } from './context.ts';
import type { Change } from './notifier.ts';
import type { Services } from './services.ts';
import { startServices } from './start.ts';
import type { SyncResponse } from './sync/index.ts';
import { addTestKeys, createTestUser, type TestUser } from './testing.ts';

const SERVER = 'two.localhost';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Two stores on one database. */
const databases: Record<string, () => Promise<[Store, Store]>> = {
  async indexeddb() {
    const indexedDB = new IDBFactory();
    const name = `two-writers-${randomString(webRandom, 8)}`;
    const a = await openIndexedDbStore({ indexedDB, IDBKeyRange, name });
    const b = await openIndexedDbStore({ indexedDB, IDBKeyRange, name });
    return [a, b];
  },
  async sqlite() {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-two-writers-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'hearth.db');
    const a = await openSqliteStore({ path });
    const b = await openSqliteStore({ path });
    return [a, b];
  },
};

async function twoServers(open: () => Promise<[Store, Store]>) {
  const [storeA, storeB] = await open();
  closers.push(
    () => storeA.close(),
    () => storeB.close(),
  );
  const options = { serverName: SERVER, registration: 'open' as const, passwordIterations: 1000 };
  // One after the other: the second reads the signing seed the first stored.
  const startedA = await startServices(storeA, options);
  const b = (await startServices(storeB, options)).services;
  return { a: startedA.services, b, storeA, storeB, notifierA: startedA.ctx.notifier };
}

const text = (body: string) => ({ msgtype: 'm.text', body });

/** A room of `owner` and `others` (joined through `via`). */
async function room(via: Services, owner: TestUser, others: TestUser[]) {
  const { roomId } = await via.rooms.createRoom(owner.userId, { preset: 'public_chat' });
  for (const other of others) await via.rooms.join(other.userId, roomId);
  return roomId;
}

/** Sends a message through `via`; the users it notified, read back from `store`. */
function notifier(store: Store, roomId: string, watched: TestUser[]) {
  let n = 0;
  return async (via: Services, sender: TestUser): Promise<string[]> => {
    const body = `message ${++n}`;
    const { eventId } = await via.rooms.sendEvent({
      sender: sender.userId,
      deviceId: sender.deviceId,
      txnId: body,
      roomId,
      type: 'm.room.message',
      content: text(body),
    });
    const notified: string[] = [];
    for (const user of watched) {
      const rows = await store.rooms.notificationsFor(user.userId, [roomId], {
        limit: 50,
        highlightOnly: false,
      });
      if (rows.some((row) => row.eventId === eventId)) notified.push(user.userId);
    }
    return notified;
  };
}

describe.each(Object.entries(databases))('two homeservers on one database (%s)', (_name, open) => {
  it('refuses at once, through one, a token logged out through the other', async () => {
    const { a, b } = await twoServers(open);
    const alice = await createTestUser(a, 'alice');
    // B has resolved the token (and remembers its owner) before A logs it out.
    const auth = await b.accounts.resolveAccessToken(alice.accessToken);
    expect(auth?.userId).toBe(alice.userId);
    expect((await b.accounts.resolveAccessToken(alice.accessToken))?.deviceId).toBe(alice.deviceId);
    await a.accounts.logout({ userId: alice.userId, deviceId: alice.deviceId, isGuest: false });
    expect(await b.accounts.resolveAccessToken(alice.accessToken)).toBeNull();
    expect(await a.accounts.resolveAccessToken(alice.accessToken)).toBeNull();
  });

  it("sees push rules and ignore lists written through the other in its next send's push", async () => {
    const { a, b, storeB } = await twoServers(open);
    const owner = await createTestUser(a, 'owner');
    const bob = await createTestUser(a, 'bob');
    const carol = await createTestUser(a, 'carol');
    const roomId = await room(a, owner, [bob, carol]);
    const send = notifier(storeB, roomId, [bob, carol]);
    // B's sends keep the members and both users' push settings.
    expect(await send(b, owner)).toEqual([bob.userId, carol.userId]);
    expect(await send(b, owner)).toEqual([bob.userId, carol.userId]);

    // Bob mutes everything through A: an override rule without conditions, doing nothing.
    await a.push.putRule(bob.userId, 'override', 'mute', { conditions: [], actions: [] });
    expect(await send(b, owner)).toEqual([carol.userId]);
    // Carol ignores the owner through A (PUT /account_data m.ignored_user_list).
    await a.userData.setAccountData(carol.userId, 'm.ignored_user_list', {
      ignored_users: { [owner.userId]: {} },
    });
    expect(await send(b, owner)).toEqual([]);

    // And back, both through A: B's next send notifies both again.
    await a.push.deleteRule(bob.userId, 'override', 'mute');
    await a.userData.setAccountData(carol.userId, 'm.ignored_user_list', { ignored_users: {} });
    expect(await send(b, owner)).toEqual([bob.userId, carol.userId]);
    // The writer's own caches followed its own writes all along.
    expect(await send(a, owner)).toEqual([bob.userId, carol.userId]);
  });

  it("sees joins and leaves made through the other in its next send's members", async () => {
    const { a, b, storeB } = await twoServers(open);
    const owner = await createTestUser(a, 'owner');
    const bob = await createTestUser(a, 'bob');
    const carol = await createTestUser(a, 'carol');
    const roomId = await room(a, owner, [bob]);
    const send = notifier(storeB, roomId, [bob, carol]);
    expect(await send(b, owner)).toEqual([bob.userId]);
    expect(await send(b, owner)).toEqual([bob.userId]);

    await a.rooms.join(carol.userId, roomId);
    expect(await send(b, owner)).toEqual([bob.userId, carol.userId]);
    await a.rooms.leave(bob.userId, roomId);
    expect(await send(b, owner)).toEqual([carol.userId]);
    // A knew of its own writes.
    expect(await send(a, owner)).toEqual([carol.userId]);
  });

  it("shows key uploads and claims made through the other in its next /sync's key counts", async () => {
    const { a, b, storeA } = await twoServers(open);
    const alice = await createTestUser(a, 'alice');
    const sync = async (via: Services, since?: string) =>
      (await via.sync.sync({
        userId: alice.userId,
        deviceId: alice.deviceId,
        ...(since ? { since } : {}),
      })) as SyncResponse;
    let body = await sync(b);
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    // Kept by B from here on.
    body = await sync(b, body.next_batch);
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });

    await addTestKeys(storeA, alice.userId, alice.deviceId);
    body = await sync(b, body.next_batch);
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
    expect(body.device_unused_fallback_key_types).toEqual(['signed_curve25519']);

    await storeA.e2ee.claimKeys([
      { userId: alice.userId, deviceId: alice.deviceId, algorithm: 'signed_curve25519' },
    ]);
    body = await sync(b, body.next_batch);
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    // And the other way round: B claims, A's kept count follows.
    expect((await sync(a)).device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    await b.e2ee.claimKeys({ [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } });
    expect((await sync(a)).device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
  });

  it('wakes a long-polling /sync on one for a message sent through the other, and shows it', async () => {
    const { a, b, notifierA } = await twoServers(open);
    const notified: Change[] = [];
    const notify = notifierA.notify.bind(notifierA);
    notifierA.notify = (change) => {
      notified.push(change);
      notify(change);
    };
    const alice = await createTestUser(a, 'alice');
    const bob = await createTestUser(a, 'bob');
    const roomId = await room(a, alice, [bob]);
    const sync = (since?: string, timeoutMs = 0) =>
      a.sync.sync({
        userId: alice.userId,
        deviceId: alice.deviceId,
        timeoutMs,
        ...(since ? { since } : {}),
      }) as Promise<SyncResponse>;
    const since = (await sync()).next_batch;

    const started = performance.now();
    const waiting = sync(since, 20_000);
    // Sent once the long-poll waits (it has nothing to show before).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { eventId } = await b.rooms.sendEvent({
      sender: bob.userId,
      deviceId: bob.deviceId,
      txnId: 'through B',
      roomId,
      type: 'm.room.message',
      content: text('stored through the other homeserver'),
    });
    const body = await waiting;
    expect(body.rooms?.join?.[roomId]?.timeline?.events.map((event) => event.event_id)).toContain(eventId);
    // Woken by the other's commit (SQLite: within a few 200 ms looks), not at the 20 s timeout.
    expect(performance.now() - started).toBeLessThan(5_000);

    // A read receipt through B: placed by its room, it wakes alice's next long-poll too.
    const again = performance.now();
    const next = sync(body.next_batch, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await b.receipts.send(bob.userId, roomId, 'm.read', eventId);
    const receipts = (await next).rooms?.join?.[roomId]?.ephemeral?.events ?? [];
    expect(receipts).toContainEqual(
      expect.objectContaining({
        type: 'm.receipt',
        content: { [eventId]: { 'm.read': { [bob.userId]: expect.anything() } } },
      }),
    );
    expect(performance.now() - again).toBeLessThan(5_000);
    // Placed by room: no change heard from B woke every waiter.
    expect(notified.some((change) => change.everyone)).toBe(false);
    expect(notified.some((change) => [...(change.rooms ?? [])].includes(roomId))).toBe(true);
  });
});
