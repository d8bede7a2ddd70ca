/**
 * The shared read transaction (`IndexedDbEngine.sharedRead`) on fake-indexeddb: reads join
 * it, and once it takes no new reads (a write was asked) it is committed as soon as no read
 * is under way on it — never while one is.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { IndexedDbEngine } from './engine.ts';
import { queuedReadTests } from './testing-queued.ts';

const indexedDB = new IDBFactory();
let opened: IndexedDbEngine[] = [];
let n = 0;

/** An engine whose transactions are recorded: their mode, and whether `commit` was called. */
async function watched() {
  // The window reads may join in is not what these tests are about: a long one, so that a
  // loaded machine taking more than the default 20 ms between two reads changes nothing.
  const engine = await IndexedDbEngine.open({
    indexedDB,
    IDBKeyRange,
    name: `shared-read-${++n}`,
    sharedReadMs: 60_000,
  });
  opened.push(engine);
  const db = engine.db.backendDB();
  const made: { mode: IDBTransactionMode; committed: boolean; done: boolean; trans: IDBTransaction }[] = [];
  const open = db.transaction;
  db.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
    const trans = open.apply(this, args);
    const entry = { mode: trans.mode, committed: false, done: false, trans };
    const commit = trans.commit.bind(trans);
    trans.commit = () => {
      entry.committed = true;
      commit();
    };
    trans.addEventListener('complete', () => {
      entry.done = true;
    });
    made.push(entry);
    return trans;
  } as IDBDatabase['transaction'];
  return { engine, made };
}

afterEach(async () => {
  for (const engine of opened) await engine.close();
  opened = [];
});

describe('IndexedDB shared read transaction', () => {
  it('reads one after another join one transaction, committed when a write is asked', async () => {
    const { engine, made } = await watched();
    await engine.read(['meta'], (tx) => tx.get('meta', 'a'));
    await engine.read(['meta'], (tx) => tx.get('meta', 'b'));
    const reads = made.filter((t) => t.mode === 'readonly');
    expect(reads).toHaveLength(1);
    expect(reads[0]?.committed).toBe(false);
    await engine.write(['meta'], (tx) => tx.put('meta', { name: 'a', value: 1 }));
    expect(reads[0]?.committed).toBe(true);
    expect(await engine.read(['meta'], (tx) => tx.get('meta', 'a'))).toEqual({ name: 'a', value: 1 });
    // The read after the write is a new transaction.
    expect(made.filter((t) => t.mode === 'readonly')).toHaveLength(2);
  });

  it('a read under way when a write is asked keeps its transaction, committed when it ends', async () => {
    const { engine, made } = await watched();
    await engine.write(['meta'], (tx) => tx.put('meta', { name: 'a', value: 1 }));
    // A read of two requests, each after the one before; the write is asked after the first.
    const reading = engine.read(['meta'], async (tx) => {
      const first = await tx.get('meta', 'a');
      return [first, await tx.get('meta', 'a')];
    });
    const writing = engine.write(['meta'], (tx) => tx.put('meta', { name: 'a', value: 2 }));
    const read = made.filter((t) => t.mode === 'readonly')[0];
    expect(read?.committed).toBe(false);
    // Its second request went to the same transaction: the snapshot before the write.
    expect(await reading).toEqual([
      { name: 'a', value: 1 },
      { name: 'a', value: 1 },
    ]);
    expect(read?.committed).toBe(true);
    await writing;
    expect(await engine.read(['meta'], (tx) => tx.get('meta', 'a'))).toEqual({ name: 'a', value: 2 });
  });

  it('a read made before a write ends the shared transaction when it ends', async () => {
    const { engine, made } = await watched();
    await engine.read(['meta'], (tx) => tx.get('meta', 'a'));
    await engine.read(['meta'], (tx) => tx.get('meta', 'b'), { beforeWrite: true });
    const reads = made.filter((t) => t.mode === 'readonly');
    expect(reads).toHaveLength(1);
    expect(reads[0]?.committed).toBe(true);
    // Nothing joins it any more: the next read is a new transaction.
    await engine.read(['meta'], (tx) => tx.get('meta', 'c'));
    expect(made.filter((t) => t.mode === 'readonly')).toHaveLength(2);
  });
});

queuedReadTests('fake-indexeddb', (name) => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name }));
