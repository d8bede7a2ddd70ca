/**
 * A store hearing of other connections' commits on its database (`onCommittedElsewhere`), as
 * two `hearth serve` on one `--data` (SQLite: `PRAGMA data_version`) or two tabs' in-page
 * homeservers and an old and a new Service Worker (IndexedDB: a BroadcastChannel) are: it
 * hears the other store's commits soon after, never its own, and nothing once its listener
 * stopped. What the homeserver makes of it: src/homeserver/two-writers.test.ts and
 * test/e2e/two-serve-one-data.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openIndexedDbStore } from './indexeddb/index.ts';
import { ELSEWHERE_POLL_MS } from './sqlite/engine.ts';
import { openSqliteStore } from './sqlite/index.ts';
import type { Store } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-elsewhere-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
let files = 0;

const databases: Record<string, () => () => Promise<Store>> = {
  sqlite() {
    const path = join(dir, `stores-${files++}.sqlite`);
    return () => openSqliteStore({ path });
  },
  indexeddb() {
    const indexedDB = new IDBFactory();
    return () => openIndexedDbStore({ indexedDB, IDBKeyRange, name: 'elsewhere' });
  },
};

/** Past every way of hearing: SQLite's look, IndexedDB's coalesced message. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 3 * ELSEWHERE_POLL_MS));

describe.each(Object.entries(databases))('a store hearing of commits elsewhere (%s)', (_name, database) => {
  it("calls its listeners for the other store's commits, never for its own", async () => {
    const open = database();
    const a = await open();
    const b = await open();
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    let heard = 0;
    const stop = a.onCommittedElsewhere(() => heard++);

    await a.userData.setAccountData('@own:two.test', 'm.test', { n: 1 });
    await settle();
    expect(heard).toBe(0);

    await b.userData.setAccountData('@other:two.test', 'm.test', { n: 2 });
    await settle();
    expect(heard).toBe(1);

    // A run of commits is heard, the last of them after it is committed.
    for (let n = 3; n < 13; n++) await b.userData.setAccountData('@other:two.test', 'm.test', { n });
    await settle();
    expect(heard).toBeGreaterThanOrEqual(2);
    expect(heard).toBeLessThanOrEqual(11);

    // Stopped: nothing more.
    const before = heard;
    stop();
    await b.userData.setAccountData('@other:two.test', 'm.test', { n: 20 });
    await settle();
    expect(heard).toBe(before);
  }, 30_000);
});
