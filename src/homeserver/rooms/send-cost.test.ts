/**
 * What a send costs the store, counted rather than timed (issue 13): the transactions one
 * `sendEvent` opens, through an engine that counts them (`storage/testing-count.ts`), in a
 * room of 2 and of 100 members — the same, on IndexedDB (fake-indexeddb) and SQLite. Push
 * rules, ignore lists and members are kept in memory between sends (write-through), the
 * state, extremities and transaction ID are read in one snapshot, and the event with its
 * push actions is one write.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { createStore } from '../../storage/create-store.ts';
import type { Engine } from '../../storage/engine.ts';
import { IndexedDbEngine } from '../../storage/indexeddb/index.ts';
import { openSqliteEngine } from '../../storage/sqlite/index.ts';
import { countingEngine, type EngineCall } from '../../storage/testing-count.ts';
import { randomString, webRandom } from '../context.ts';
import type { Services } from '../services.ts';
import { startServices } from '../start.ts';
import { createTestUser } from '../testing.ts';

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
async function sendCost(open: () => Promise<Engine>, members: number): Promise<SendCost> {
  const counting = countingEngine(await open());
  const store = createStore(counting.engine);
  closers.push(() => store.close());
  const { services } = await startServices(store, {
    serverName: 'cost.localhost',
    registration: 'open',
    passwordIterations: 1000,
  });
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
