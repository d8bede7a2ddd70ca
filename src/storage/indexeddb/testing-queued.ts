/**
 * Reads queued behind a write (`ReadOptions.afterQueuedWrites`, `WriteOptions.committing`):
 * a read asked when the write asks to commit — before its commit comes back — sees it once
 * committed, and nothing of it when the write then fails. Run on fake-indexeddb and in
 * Chromium.
 */
import { describe, expect, it } from 'vitest';
import { StoreError } from '../store.ts';
import type { IndexedDbEngine } from './engine.ts';

export function queuedReadTests(name: string, open: (name: string) => Promise<IndexedDbEngine>): void {
  describe(`IndexedDB reads queued behind a write — ${name}`, () => {
    /** A write of `key` (then `failing`, an insert of a key that exists), and a read of `key` asked as it asks to commit. */
    async function writeThenRead(engine: IndexedDbEngine, key: string, failing?: string) {
      let read: Promise<unknown> | undefined;
      let asked!: () => void;
      const committing = new Promise<void>((resolve) => {
        asked = resolve;
      });
      // The write's own transaction, to tell whether it had ended when the read was asked.
      const db = engine.db.backendDB();
      const open = db.transaction;
      let ended: (() => boolean) | undefined;
      db.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
        const trans = open.apply(this, args);
        let done = false;
        const finish = () => {
          done = true;
        };
        trans.addEventListener('complete', finish);
        trans.addEventListener('abort', finish);
        ended = () => done;
        return trans;
      } as IDBDatabase['transaction'];
      let endedWhenAsked: boolean | undefined;
      const written = engine
        .write(
          ['meta'],
          async (tx) => {
            await tx.put('meta', { name: key, value: 'new' });
            if (failing !== undefined) await tx.insert('meta', { name: failing, value: 'again' });
          },
          {
            committing: () => {
              endedWhenAsked = ended?.();
              read = engine.read(['meta'], (t) => t.get('meta', key), { afterQueuedWrites: true });
              asked();
            },
          },
        )
        .then(
          () => 'committed',
          (error: unknown) => error,
        );
      // The engine opened its write transaction synchronously.
      delete (db as { transaction?: unknown }).transaction;
      await Promise.race([committing, written]);
      // Asked before the write's end came back.
      expect(endedWhenAsked).toBe(false);
      return { outcome: await written, seen: await read };
    }

    it('a read asked as a write asks to commit sees it, once committed', async () => {
      const engine = await open(`queued-${Date.now()}-ok`);
      try {
        await engine.write(['meta'], (tx) => tx.put('meta', { name: 'k', value: 'old' }));
        const { outcome, seen } = await writeThenRead(engine, 'k');
        expect(outcome).toBe('committed');
        expect(seen).toEqual({ name: 'k', value: 'new' });
      } finally {
        await engine.close();
      }
    });

    it('a read asked as a write asks to commit sees nothing of it when the write then fails', async () => {
      const engine = await open(`queued-${Date.now()}-abort`);
      try {
        await engine.write(['meta'], async (tx) => {
          await tx.put('meta', { name: 'k', value: 'old' });
          await tx.put('meta', { name: 'taken', value: 'first' });
        });
        // The insert of a key that exists fails in the backend, after the commit was asked.
        const { outcome, seen } = await writeThenRead(engine, 'k', 'taken');
        expect(outcome).toBeInstanceOf(StoreError);
        expect((outcome as StoreError).code).toBe('CONFLICT');
        expect(seen).toEqual({ name: 'k', value: 'old' });
        expect(await engine.read(['meta'], (tx) => tx.get('meta', 'taken'))).toEqual({
          name: 'taken',
          value: 'first',
        });
      } finally {
        await engine.close();
      }
    });
  });
}
