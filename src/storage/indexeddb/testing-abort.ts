/**
 * Crash safety of the IndexedDB backend: a transaction aborted midway — as IndexedDB does
 * when a Service Worker or tab is killed mid-write — leaves no trace, and every write
 * acknowledged before it stays.
 */
import { describe, expect, it } from 'vitest';
import { ALICE, BOB, dump, seedRoom } from '../conformance/testing.ts';
import { createStore } from '../create-store.ts';
import type { Engine, Tx } from '../engine.ts';
import type { IndexedDbEngine } from './engine.ts';

/**
 * Aborts the underlying IndexedDB transaction at the `abortAt`-th write, as the browser
 * does to a worker's transactions when it kills the worker.
 */
function abortingEngine(engine: IndexedDbEngine, abortAt: number): Engine {
  let writes = 0;
  return {
    kind: engine.kind,
    bytes: engine.bytes,
    read: engine.read.bind(engine),
    close: engine.close.bind(engine),
    write<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>) {
      // Catch the IDBTransaction the engine opens (through Dexie or bare), to abort it.
      const db = engine.db.backendDB();
      let transaction: IDBTransaction | undefined;
      const open = db.transaction;
      db.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
        transaction = open.apply(this, args);
        return transaction;
      } as IDBDatabase['transaction'];
      try {
        return engine.write(tables, (tx) => {
          const abortHere = async <R>(op: Promise<R>): Promise<R> => {
            const result = await op;
            if (++writes === abortAt) {
              transaction?.abort();
              // A killed worker runs nothing more; stop here rather than issue requests on a dead transaction.
              throw new Error(`aborted at write ${abortAt}`);
            }
            return result;
          };
          return fn({
            get: (t, k) => tx.get(t, k),
            getMany: (t, k) => tx.getMany(t, k),
            query: (t, r) => tx.query(t, r),
            count: (t, r) => tx.count(t, r),
            put: (t, r) => abortHere(tx.put(t, r)),
            putMany: (t, r) => abortHere(tx.putMany(t, r)),
            insert: (t, r) => abortHere(tx.insert(t, r)),
            delete: (t, k) => abortHere(tx.delete(t, k)),
            deleteRange: (t, r) => abortHere(tx.deleteRange(t, r)),
          });
        });
      } finally {
        // The engine opened its transaction synchronously; restore the method at once.
        delete (db as { transaction?: unknown }).transaction;
      }
    },
  };
}

export function abortTests(
  name: string,
  open: (name: string, bare: 'writes' | 'all' | 'none') => Promise<IndexedDbEngine>,
  modes: readonly ('writes' | 'all' | 'none')[] = ['all', 'writes', 'none'],
): void {
  describe(`IndexedDB aborted transactions — ${name}`, () => {
    it.each(modes)(
      'an abort at any write of an event batch leaves nothing; earlier acknowledged writes stay (bare: %s)',
      async (bare) => {
        const engine = await open(`abort-${bare}-${Date.now()}`, bare);
        const store = createStore(engine);
        const room = await seedRoom(store, 3);
        const batch = [
          { ...room.member(BOB, 'invite', ALICE), destinations: ['remote.test'] },
          room.next({ type: 'm.room.topic', stateKey: '', content: { topic: 't' } }),
          room.message(),
          { ...room.message(), notify: [{ userId: BOB, highlight: true }] },
        ];
        const acknowledged = await dump(engine);
        let aborted = 0;
        for (let abortAt = 1; ; abortAt++) {
          const outcome = await createStore(abortingEngine(engine, abortAt))
            .rooms.persistEvents(batch)
            .then(
              () => 'committed',
              (error: unknown) => error,
            );
          if (outcome === 'committed') break;
          aborted++;
          expect(outcome).toBeInstanceOf(Error);
          expect(await dump(engine)).toEqual(acknowledged);
        }
        expect(aborted).toBeGreaterThan(10);
        expect((await store.rooms.membership('!room:hearth.test', BOB))?.membership).toBe('invite');
        await store.close();
      },
    );
  });
}
