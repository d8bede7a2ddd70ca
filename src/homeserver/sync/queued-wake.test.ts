/**
 * /sync is woken as a send's write asks to commit (IndexedDB, `WriteOptions.committing`): the
 * woken pass's reads are queued behind the write and see it once committed. A write that then
 * fails shows nothing: the pass finds no change and the long-poll waits again, to answer with
 * the next send that does commit. On fake-indexeddb (the same engine the Service Worker runs).
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { createStore } from '../../storage/create-store.ts';
import type { Engine } from '../../storage/engine.ts';
import { IndexedDbEngine } from '../../storage/indexeddb/index.ts';
import { randomString, webRandom } from '../context.ts';
import { startServices } from '../start.ts';
import { createTestUser } from '../testing.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/**
 * An IndexedDB engine whose event writes, while `failing` names a stored event, also insert
 * that event's row again: the insert fails in the backend after the write asked to commit,
 * and the whole write is undone.
 */
async function failableEngine() {
  const engine = await IndexedDbEngine.open({
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    name: `queued-wake-${randomString(webRandom, 8)}`,
  });
  /** `committing`: how many writes asked to commit; `onCommitting`, told of each. */
  const state = { failing: undefined as string | undefined, committing: 0, onCommitting: () => {} };
  const wrapped: Engine = {
    kind: engine.kind,
    bytes: engine.bytes,
    read: (tables, fn, options) => engine.read(tables, fn, options),
    write(tables, fn, options) {
      const failing = state.failing;
      const committing = options?.committing;
      return engine.write(
        tables,
        async (tx) => {
          const result = await fn(tx);
          if (failing !== undefined && tables.includes('events'))
            await tx.insert('events', { event_id: failing });
          return result;
        },
        {
          ...options,
          ...(committing
            ? {
                committing: () => {
                  state.committing++;
                  state.onCommitting();
                  committing();
                },
              }
            : {}),
        },
      );
    },
    close: () => engine.close(),
  };
  return { engine: wrapped, state };
}

describe('a /sync woken as a write asks to commit', () => {
  it('waits again when the write then fails, and answers with the next that commits', async () => {
    const { engine, state } = await failableEngine();
    const store = createStore(engine);
    closers.push(() => store.close());
    const { services, ctx } = await startServices(store, {
      serverName: 'queued.localhost',
      registration: 'open',
      passwordIterations: 1000,
    });
    const alice = await createTestUser(services, 'alice');
    const bob = await createTestUser(services, 'bob');
    const { roomId } = await services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
    await services.rooms.join(bob.userId, roomId);
    const send = (body: string) =>
      services.rooms.sendEvent({
        sender: alice.userId,
        roomId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body },
      });
    const { eventId: stored } = await send('before');
    const since = (await services.sync.sync({ userId: bob.userId, deviceId: bob.deviceId })).next_batch;

    let waits = 0;
    const wait = ctx.notifier.wait;
    ctx.notifier.wait = (...args) => {
      waits++;
      return wait.apply(ctx.notifier, args);
    };
    let answered = false;
    const polling = services.sync
      .sync({ userId: bob.userId, deviceId: bob.deviceId, since, timeoutMs: 20_000 })
      .finally(() => {
        answered = true;
      });
    while (waits < 1) await new Promise((resolve) => setTimeout(resolve, 1));

    // Every attempt of this send fails once it asked to commit: each woke the long-poll, whose
    // pass found nothing and waited again (wakes close together make one pass).
    let waitsAtLastCommitting = 0;
    state.onCommitting = () => {
      waitsAtLastCommitting = waits;
    };
    state.failing = stored;
    await expect(send('lost')).rejects.toThrow();
    state.failing = undefined;
    expect(state.committing).toBeGreaterThanOrEqual(1);
    while (waits <= waitsAtLastCommitting) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(answered).toBe(false);

    await send('kept');
    const body = await polling;
    const texts = (body.rooms.join[roomId]?.timeline.events ?? []).map(
      (e) => (e.content as { body?: string }).body,
    );
    expect(texts).toEqual(['kept']);
    // The failed one is nowhere: a fresh sync from the same token shows the same.
    const again = await services.sync.sync({ userId: bob.userId, deviceId: bob.deviceId, since });
    expect(
      (again.rooms.join[roomId]?.timeline.events ?? []).map((e) => (e.content as { body?: string }).body),
    ).toEqual(['kept']);
  });
});
