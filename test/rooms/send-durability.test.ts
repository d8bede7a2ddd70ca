/**
 * Sends to one room while the disk is slow (SQLite, its WAL sync held by the test): the room's
 * next event is built on one that is committed but not yet durable, so the two share the
 * disk's flushes — and nothing of either is acknowledged, shown to a waiting /sync or
 * repeated to a retried transaction before its sync is done.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServices } from '../../src/homeserver/start.ts';
import { createStore } from '../../src/storage/create-store.ts';
import { SqliteEngine } from '../../src/storage/sqlite/engine.ts';
import { nodeSqliteDriver } from '../../src/storage/sqlite/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-send-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/** Until `done()` holds (checked every millisecond), or 5 s: what a busy machine may take. */
async function until(done: () => boolean): Promise<void> {
  const start = Date.now();
  while (!done() && Date.now() - start < 5000) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe('sends to one room and the WAL sync', () => {
  it('builds the next event on a committed one, and answers nothing before its sync is done', async () => {
    let holding = false;
    const held: (() => void)[] = [];
    const engine = await SqliteEngine.open({
      ...nodeSqliteDriver({ path: join(dir, 'hearth.sqlite') }),
      sync: () => (holding ? new Promise<void>((resolve) => held.push(resolve)) : Promise.resolve()),
    });
    const store = createStore(engine);
    try {
      const { ctx, services } = await startServices(store, {
        serverName: 'durable.test',
        registration: 'open',
        passwordIterations: 1000,
      });
      const alice = (await services.accounts.createUser({ localpart: 'alice', login: true })).userId;
      const bob = (await services.accounts.createUser({ localpart: 'bob', login: true })).userId;
      const { roomId } = await services.rooms.createRoom(alice, { preset: 'public_chat' });
      await services.rooms.join(bob, roomId);

      holding = true;
      const woken = ctx.notifier.wait(bob, new Set([roomId]), ctx.notifier.version, 5000);
      const answered: string[] = [];
      const send = (body: string) =>
        services.rooms
          .sendEvent({
            sender: alice,
            roomId,
            type: 'm.room.message',
            content: { msgtype: 'm.text', body },
            deviceId: 'ALICEDEV',
            txnId: body,
          })
          .then(({ eventId }) => {
            answered.push(body);
            return eventId;
          });
      const first = send('one');
      const second = send('two');
      let wokenYet = false;
      void woken.then(() => {
        wokenYet = true;
      });
      // Both committed (the second built on the first), each waiting for its own sync: the
      // first sync is still held, so the second commit did not wait for it.
      await until(() => held.length === 2);
      expect(held.length).toBe(2);
      const page = await store.rooms.timeline(roomId, { dir: 'b', limit: 2 });
      const [two, one] = page.events.map((stored) => stored.event);
      expect([one?.content.body, two?.content.body]).toEqual(['one', 'two']);
      expect(two?.prev_events).toEqual([one?.event_id]);
      // A retry of the first transaction is not answered before its sync is done either.
      const retried = send('one');
      await tick();
      expect(answered).toEqual([]);
      expect(wokenYet).toBe(false);

      held[0]?.();
      expect(await first).toBe(one?.event_id);
      expect(await woken).toBe(true);
      await tick();
      // The retry waits for the room's sends before it (here the second) to be durable.
      expect(answered).toEqual(['one']);
      held[1]?.();
      expect(await second).toBe(two?.event_id);
      expect(await retried).toBe(one?.event_id);
      expect(answered).toEqual(['one', 'two', 'one']);
    } finally {
      holding = false;
      for (const release of held) release();
      await store.close();
    }
  });
});
