/**
 * The store's caches with another store writing the same database (areas/common.ts
 * `CacheMarks`): a change by the other is found in the next snapshot that serves a cache, this
 * store's own writes drop nothing but their own entries, and a writer killed (SIGKILL) mid-way
 * leaves the survivor's caches exactly as coherent as its committed writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BOB, ROOM, seedRoom } from './conformance/testing.ts';
import { openIndexedDbStore } from './indexeddb/index.ts';
import { openSqliteStore } from './sqlite/index.ts';
import type { Store } from './store.ts';
import { runUntilKilled } from './testing-kill.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-marks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const USER = '@watched:hearth.test';
let files = 0;

const databases: Record<string, () => Promise<[Store, Store]>> = {
  async indexeddb() {
    const indexedDB = new IDBFactory();
    const a = await openIndexedDbStore({ indexedDB, IDBKeyRange, name: 'marks' });
    const b = await openIndexedDbStore({ indexedDB, IDBKeyRange, name: 'marks' });
    return [a, b];
  },
  async sqlite() {
    const path = join(dir, `two-${files++}.db`);
    return [await openSqliteStore({ path }), await openSqliteStore({ path })];
  },
};

async function pair(open: () => Promise<[Store, Store]>) {
  const stores = await open();
  for (const store of stores) closers.push(() => store.close());
  return stores;
}

const ignoring = (who: string) => ({ ignored_users: { [who]: {} } });

describe.each(Object.entries(databases))('cache marks (%s)', (_name, open) => {
  it("drops a family when another store's write is found, never for this store's own", async () => {
    const [a, b] = await pair(open);
    const moved: string[] = [];
    a.onChangedElsewhere('members', () => moved.push('members'));
    a.onChangedElsewhere('partial_state', () => moved.push('partial_state'));
    await a.positions();
    // The first sight of the marks drops: whatever was kept before was checked against nothing.
    expect(moved.sort()).toEqual(['members', 'partial_state']);
    moved.length = 0;

    // Its own writes move marks (push, keys) and drop nothing of other families.
    await a.userData.setAccountData(USER, 'm.ignored_user_list', ignoring('@x:hearth.test'));
    await a.e2ee.addOneTimeKeys(USER, 'D', [{ algorithm: 'signed_curve25519', keyId: 'A', key: {} }]);
    await a.positions();
    expect(moved).toEqual([]);
    expect((await a.userData.pushSettings([USER])).get(USER)?.ignoredUsers).toEqual(
      ignoring('@x:hearth.test'),
    );

    // Another store's write of the same family: found by the next read that checks the marks.
    await b.userData.setAccountData(USER, 'm.ignored_user_list', ignoring('@y:hearth.test'));
    expect((await a.userData.pushSettings([USER])).get(USER)?.ignoredUsers).toEqual(
      ignoring('@x:hearth.test'),
    );
    await a.positions();
    expect((await a.userData.pushSettings([USER])).get(USER)?.ignoredUsers).toEqual(
      ignoring('@y:hearth.test'),
    );
    // A purge empties the room's members and partial state: both families move.
    await b.operator.purgeRoom('!r:hearth.test');
    expect(moved).toEqual([]);
    await a.positions();
    expect(moved.sort()).toEqual(['members', 'partial_state']);
    moved.length = 0;
    // Its own writes at once (SQLite: one group commit; a read may find a commit before it is
    // acknowledged): still its own, nothing dropped.
    await Promise.all(Array.from({ length: 8 }, (_, i) => a.operator.purgeRoom(`!p${i}:hearth.test`)));
    await a.positions();
    expect(moved).toEqual([]);
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        await a.operator.purgeRoom(`!q${i}:hearth.test`);
        await a.positions();
      }),
    );
    expect(moved).toEqual([]);
    // Other account data moves no mark: a.'s push settings stay kept (nothing read for them).
    await b.userData.setAccountData(USER, 'm.direct', {});
    await b.userData.setAccountData(
      USER,
      'm.ignored_user_list',
      ignoring('@y:hearth.test'),
      '!r:hearth.test',
    );
    await a.positions();
    expect(moved).toEqual([]);
  });
});

describe.each(Object.entries(databases))('memberships kept by /sync snapshots (%s)', (_name, open) => {
  it("serves a user's kept memberships only while no store changed any membership", async () => {
    const [a, b] = await pair(open);
    const room = await seedRoom(a, 0);
    const snapshot = async (store: Store) =>
      (await store.syncSnapshot(BOB, { deviceId: null, unreadRooms: [] })).memberships;
    expect(await snapshot(a)).toEqual([]);
    // Another store's join: the very next snapshot of this one shows it.
    await b.rooms.persistEvents([room.member(BOB, 'join')]);
    expect(await snapshot(a)).toMatchObject([{ roomId: ROOM, membership: 'join' }]);
    // Kept again; this store's own leave, then another store's forget: each seen at once.
    expect(await snapshot(a)).toEqual(await a.rooms.roomsForUser(BOB));
    await a.rooms.persistEvents([room.member(BOB, 'leave')]);
    expect(await snapshot(a)).toMatchObject([{ roomId: ROOM, membership: 'leave', forgotten: false }]);
    await b.rooms.forgetRoom(ROOM, BOB);
    expect(await snapshot(a)).toMatchObject([{ roomId: ROOM, membership: 'leave', forgotten: true }]);
    // A snapshot's answer is its own: changing it changes no later one.
    (await snapshot(a)).length = 0;
    expect(await snapshot(a)).toHaveLength(1);
  });
});

describe('cache marks with a writer killed mid-way (sqlite)', () => {
  it('keep the survivor coherent with every write the killed one committed', async () => {
    const path = join(dir, 'killed.db');
    const survivor = await openSqliteStore({ path });
    closers.push(() => survivor.close());
    const ignored = async () => {
      // A /sync pass's order: positions (the marks), then what the caches serve.
      await survivor.positions();
      const settings = (await survivor.userData.pushSettings([USER])).get(USER);
      const snapshot = await survivor.syncSnapshot(USER, { deviceId: 'DEVICE', unreadRooms: [] });
      const [who] = Object.keys((settings?.ignoredUsers?.ignored_users as object | undefined) ?? {});
      return {
        ignoring: who === undefined ? 0 : Number(who.slice(2, who.indexOf(':'))),
        keys: snapshot.keys?.oneTimeKeyCounts.signed_curve25519 ?? 0,
      };
    };
    expect(await ignored()).toEqual({ ignoring: 0, keys: 0 });

    // While the writer runs, each check made after an acknowledgement sees at least that write.
    let acked = 0;
    const checks: Promise<void>[] = [];
    await runUntilKilled(
      join(import.meta.dirname, 'sqlite/testdata/marks-writer.ts'),
      [path],
      (line) => {
        acked = Number(line.split(' ')[1]);
        if (acked % 10 === 0) {
          const at = acked;
          checks.push(
            ignored().then((seen) => {
              expect(seen.ignoring).toBeGreaterThanOrEqual(at);
              expect(seen.keys).toBeGreaterThanOrEqual(at);
            }),
          );
        }
      },
      60,
    );
    await Promise.all(checks);
    expect(checks.length).toBeGreaterThanOrEqual(6);

    // After the kill: exactly what a store opened now reads, though the survivor kept both.
    const fresh = await openSqliteStore({ path });
    closers.push(() => fresh.close());
    const [who] = Object.keys(
      ((await fresh.userData.pushSettings([USER])).get(USER)?.ignoredUsers?.ignored_users as object) ?? {},
    );
    const committed = Number(who?.slice(2, who.indexOf(':')));
    expect(committed).toBeGreaterThanOrEqual(acked);
    const keys = (await fresh.e2ee.countOneTimeKeys(USER, 'DEVICE')).signed_curve25519;
    expect(await ignored()).toEqual({ ignoring: committed, keys });
  });
});
