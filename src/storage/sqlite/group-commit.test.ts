/**
 * Group commit in the SQLite engine: write transactions waiting together share one COMMIT,
 * each is resolved only once that COMMIT is done (another connection already sees it), a
 * failing one is undone alone, writes keep their order, and reads go ahead of waiting writes
 * (or after them, asked with `afterQueuedWrites`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreError } from '../store.ts';
import { GROUP_COMMIT_LIMIT, READS_PER_TURN, SqliteEngine } from './engine.ts';
import { coalescedSync, nodeSqliteDriver, openSqliteEngine } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-group-commit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

async function open(): Promise<{ engine: SqliteEngine; path: string }> {
  const path = join(dir, `${++files}.sqlite`);
  return { engine: await openSqliteEngine({ path }), path };
}

const putMeta = (engine: SqliteEngine, name: string, value: unknown) =>
  engine.write(['meta'], async (tx) => {
    await tx.put('meta', { name, value });
    return name;
  });

const readMeta = (engine: SqliteEngine, name: string) =>
  engine.read(['meta'], async (tx) => (await tx.get('meta', name))?.value);

describe('SQLite group commit', () => {
  it('commits concurrent writes together, each acknowledged only once another connection sees it', async () => {
    const { engine, path } = await open();
    const other = new DatabaseSync(path);
    try {
      const seenAtAck: boolean[] = [];
      const writes = Array.from({ length: 20 }, (_, i) =>
        putMeta(engine, `k${i}`, i).then((name) => {
          seenAtAck.push(other.prepare('SELECT 1 AS one FROM meta WHERE name = ?').get(name) !== undefined);
        }),
      );
      await Promise.all(writes);
      expect(seenAtAck).toEqual(Array(20).fill(true));
      // All 20 were queued before the first ran: one commit holds them.
      expect(engine.commits).toEqual({ transactions: 20, commits: 1 });
      for (let i = 0; i < 20; i++) expect(await readMeta(engine, `k${i}`)).toBe(i);
    } finally {
      other.close();
      await engine.close();
    }
  });

  it('undoes a failing write alone; the others of its commit are stored', async () => {
    const { engine } = await open();
    try {
      const first = putMeta(engine, 'first', 1);
      const ok1 = putMeta(engine, 'a', 1);
      const failing = engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'b', value: 1 });
        await tx.insert('meta', { name: 'a', value: 2 }); // 'a' exists: CONFLICT
      });
      const ok2 = putMeta(engine, 'c', 1);
      const thrown = engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'd', value: 1 });
        throw new Error('the operation failed');
      });
      await expect(failing).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(failing).rejects.toBeInstanceOf(StoreError);
      await expect(thrown).rejects.toThrow('the operation failed');
      expect(await Promise.all([first, ok1, ok2])).toEqual(['first', 'a', 'c']);
      expect(await readMeta(engine, 'a')).toBe(1);
      expect(await readMeta(engine, 'b')).toBeUndefined();
      expect(await readMeta(engine, 'c')).toBe(1);
      expect(await readMeta(engine, 'd')).toBeUndefined();
      // One commit held the three that succeeded; the two that failed left nothing in it.
      expect(engine.commits).toEqual({ transactions: 3, commits: 1 });
    } finally {
      await engine.close();
    }
  });

  it('undoes a failing first write of a group alone (it runs without a savepoint); the writes behind it are stored', async () => {
    const { engine } = await open();
    try {
      await putMeta(engine, 'a', 1);
      // Queued together: the failing one starts the group, the others wait behind it.
      const failing = engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'b', value: 1 });
        await tx.insert('meta', { name: 'a', value: 2 }); // 'a' exists: CONFLICT
      });
      const ok1 = putMeta(engine, 'c', 1);
      const ok2 = putMeta(engine, 'd', 1);
      await expect(failing).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await Promise.all([ok1, ok2])).toEqual(['c', 'd']);
      expect(await readMeta(engine, 'a')).toBe(1);
      expect(await readMeta(engine, 'b')).toBeUndefined();
      expect(await readMeta(engine, 'c')).toBe(1);
      expect(await readMeta(engine, 'd')).toBe(1);
      // The first commit (of 'a'), then one for the two behind the failed one.
      expect(engine.commits).toEqual({ transactions: 3, commits: 2 });
    } finally {
      await engine.close();
    }
  });

  /** A promise that resolves when `release` is called. */
  const gate = () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    return { held, release };
  };

  /** A read that holds the connection until `release` is called, and what it found. */
  const heldRead = (engine: SqliteEngine) => {
    const { held, release } = gate();
    const found = engine.read(['meta'], async (tx) => {
      const value = (await tx.get('meta', 'x'))?.value;
      await held;
      return value;
    });
    return { found, release };
  };

  it('runs a read ahead of the writes waiting to start, against the committed state; the writes keep their order and share a commit', async () => {
    const { engine } = await open();
    try {
      await putMeta(engine, 'x', 0);
      const busy = heldRead(engine);
      const acks: string[] = [];
      const w1 = putMeta(engine, 'x', 1).then(() => acks.push('w1'));
      const w2 = putMeta(engine, 'x', 2).then(() => acks.push('w2'));
      const read = readMeta(engine, 'x');
      const w3 = putMeta(engine, 'x', 3).then(() => acks.push('w3'));
      busy.release();
      expect(await busy.found).toBe(0);
      // None of the writes had started: the read went first and saw none of them.
      expect(await read).toBe(0);
      await Promise.all([w1, w2, w3]);
      expect(acks).toEqual(['w1', 'w2', 'w3']);
      expect(await readMeta(engine, 'x')).toBe(3);
      // The read no longer splits them: the three waiting writes shared one commit.
      expect(engine.commits).toEqual({ transactions: 4, commits: 2 });
    } finally {
      await engine.close();
    }
  });

  it('runs a read asked with afterQueuedWrites only once every write asked before it is committed', async () => {
    const { engine } = await open();
    try {
      await putMeta(engine, 'x', 0);
      const busy = heldRead(engine);
      const w1 = putMeta(engine, 'x', 1);
      const after = engine.read(['meta'], async (tx) => (await tx.get('meta', 'x'))?.value, {
        afterQueuedWrites: true,
      });
      const plain = readMeta(engine, 'x');
      const failing = engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'x', value: 'never' });
        throw new Error('refused');
      });
      const w2 = putMeta(engine, 'x', 2);
      const afterFailure = engine.read(['meta'], async (tx) => (await tx.get('meta', 'x'))?.value, {
        afterQueuedWrites: true,
      });
      busy.release();
      expect(await plain).toBe(0);
      expect(await after).toBe(2);
      // A failed write counts as settled: the read after it does not wait forever.
      await expect(failing).rejects.toThrow('refused');
      expect(await afterFailure).toBe(2);
      await Promise.all([w1, w2]);
    } finally {
      await engine.close();
    }
  });

  it('lets a write asked while a group runs join it, past a read waiting; the read then sees it', async () => {
    const { engine } = await open();
    try {
      await putMeta(engine, 'x', 0);
      const { held, release } = gate();
      const w1 = engine.write(['meta'], async (tx) => {
        await tx.put('meta', { name: 'x', value: 1 });
        await held;
      });
      const read = readMeta(engine, 'x');
      const w2 = putMeta(engine, 'x', 2);
      release();
      await Promise.all([w1, w2]);
      expect(await read).toBe(2);
      expect(engine.commits).toEqual({ transactions: 3, commits: 2 });
    } finally {
      await engine.close();
    }
  });

  it('waits one turn of the event loop before a commit, so writes asked in the next callbacks share it', async () => {
    const { engine } = await open();
    try {
      const first = putMeta(engine, 'a', 1);
      // Asked from a later callback (setImmediate): after the first write ran, before its commit.
      const later = await new Promise<Promise<string>[]>((resolve) =>
        setImmediate(() => resolve([putMeta(engine, 'b', 1), putMeta(engine, 'c', 1)])),
      );
      expect(await Promise.all([first, ...later])).toEqual(['a', 'b', 'c']);
      expect(engine.commits).toEqual({ transactions: 3, commits: 1 });
    } finally {
      await engine.close();
    }
  });

  it('runs the reads waiting together in one read transaction; a failing read fails alone', async () => {
    const path = join(dir, `${++files}.sqlite`);
    const base = nodeSqliteDriver({ path });
    const begun: string[] = [];
    const engine = await SqliteEngine.open({
      ...base,
      begin: (mode) => {
        begun.push(mode);
        base.begin(mode);
      },
    });
    try {
      await putMeta(engine, 'x', 1);
      begun.length = 0;
      const failing = engine.read(['meta'], async (tx) => {
        await tx.get('meta', 'x');
        throw new Error('refused');
      });
      const reads = [readMeta(engine, 'x'), failing.catch((e: Error) => e.message), readMeta(engine, 'x')];
      expect(await Promise.all(reads)).toEqual([1, 'refused', 1]);
      expect(begun).toEqual(['read']);
    } finally {
      await engine.close();
    }
  });

  it(`gives waiting writes their turn after ${READS_PER_TURN} reads`, async () => {
    const { engine } = await open();
    try {
      await putMeta(engine, 'x', 0);
      const busy = heldRead(engine);
      const write = putMeta(engine, 'x', 1);
      const reads = Array.from({ length: READS_PER_TURN + 1 }, () => readMeta(engine, 'x'));
      busy.release();
      await write;
      const found = await Promise.all(reads);
      // The held read and the next 63 went ahead of the write; the last waited for its turn.
      expect(found.slice(0, READS_PER_TURN - 1)).toEqual(Array(READS_PER_TURN - 1).fill(0));
      expect(found.slice(READS_PER_TURN - 1)).toEqual([1, 1]);
    } finally {
      await engine.close();
    }
  });

  it(`holds at most ${GROUP_COMMIT_LIMIT} writes in one commit`, async () => {
    const { engine } = await open();
    try {
      const count = GROUP_COMMIT_LIMIT * 2 + 1;
      await Promise.all(Array.from({ length: count }, (_, i) => putMeta(engine, `n${i}`, i)));
      // Two full groups, then the one left over.
      expect(engine.commits).toEqual({ transactions: count, commits: 3 });
    } finally {
      await engine.close();
    }
  });

  it('with a driver sync, acknowledges writes only once their sync is done; the queue goes on meanwhile', async () => {
    const path = join(dir, `${++files}.sqlite`);
    const base = nodeSqliteDriver({ path });
    expect(base.sync).toBeTypeOf('function');
    const releases: (() => void)[] = [];
    const engine = await SqliteEngine.open({
      ...base,
      sync: () => new Promise<void>((resolve) => releases.push(resolve)),
    });
    try {
      const acks: string[] = [];
      const first = putMeta(engine, 'a', 1).then(() => acks.push('a'));
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(releases.length).toBe(1);
      // Committed, not yet durable: not acknowledged, and neither stops the next transactions.
      const second = putMeta(engine, 'b', 1).then(() => acks.push('b'));
      expect(await readMeta(engine, 'a')).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(releases.length).toBe(2);
      expect(acks).toEqual([]);
      releases[0]?.();
      await first;
      expect(acks).toEqual(['a']);
      releases[1]?.();
      await second;
      expect(acks).toEqual(['a', 'b']);
    } finally {
      await engine.close();
    }
  });

  it('tells a write it is committed before its sync is done, and acknowledges it only after', async () => {
    const path = join(dir, `${++files}.sqlite`);
    const releases: (() => void)[] = [];
    const engine = await SqliteEngine.open({
      ...nodeSqliteDriver({ path }),
      sync: () => new Promise<void>((resolve) => releases.push(resolve)),
    });
    try {
      const events: string[] = [];
      const write = engine
        .write(['meta'], async (tx) => tx.put('meta', { name: 'a', value: 1 }), {
          committed: () => events.push('committed'),
        })
        .then(() => events.push('acknowledged'));
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(events).toEqual(['committed']);
      expect(releases.length).toBe(1);
      releases[0]?.();
      await write;
      expect(events).toEqual(['committed', 'acknowledged']);
      // A write that fails is never told it is committed.
      let told = false;
      await expect(
        engine.write(
          ['meta'],
          async () => {
            throw new Error('refused');
          },
          { committed: () => (told = true) },
        ),
      ).rejects.toThrow('refused');
      expect(told).toBe(false);
    } finally {
      for (const release of releases) release();
      await engine.close();
    }
  });

  it('shares one WAL sync between the commits made while the previous sync ran', async () => {
    let runs = 0;
    const gates: (() => void)[] = [];
    const sync = coalescedSync(async () => {
      runs++;
      await new Promise<void>((resolve) => gates.push(resolve));
    });
    const first = sync();
    const during = [sync(), sync(), sync()];
    expect(runs).toBe(1);
    gates[0]?.();
    await first;
    await new Promise((resolve) => setTimeout(resolve, 0));
    // The three asked while the first ran share the second run, which began after them.
    expect(runs).toBe(2);
    let settled = false;
    void Promise.all(during).then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(settled).toBe(false);
    gates[1]?.();
    await Promise.all(during);
    expect(runs).toBe(2);
  });

  it('rejects what is queued once closed, and finishes what had started', async () => {
    const { engine } = await open();
    const running = putMeta(engine, 'started', 1);
    const closing = engine.close();
    await expect(putMeta(engine, 'late', 1)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(running).resolves.toBe('started');
    await closing;
  });
});

describe('SQLite WAL checkpoints', () => {
  it('copy the WAL back every 10,000 pages on a file database, not at SQLite’s 1,000', () => {
    const path = join(dir, `${++files}.sqlite`);
    const driver = nodeSqliteDriver({ path });
    const memory = nodeSqliteDriver({ path: ':memory:' });
    try {
      expect(driver.all('PRAGMA wal_autocheckpoint', [])).toEqual([{ wal_autocheckpoint: 10_000 }]);
      // No WAL in memory: SQLite's default stays.
      expect(memory.all('PRAGMA wal_autocheckpoint', [])).toEqual([{ wal_autocheckpoint: 1000 }]);
    } finally {
      driver.close();
      memory.close();
    }
  });
});
