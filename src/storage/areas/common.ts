/** Helpers shared by the store areas. */
import { encodeBase64 } from '../../core/base64.ts';
import { sha256 } from '../../core/crypto.ts';
import type { Range, Row, Tx } from '../engine.ts';
import { StoreError } from '../store.ts';

/** Stream counters: `events` is read from the events table, the others kept in `streams`. */
export type Counter =
  | 'events'
  | 'backfill'
  | 'receipts'
  | 'account_data'
  | 'to_device'
  | 'device_lists'
  | 'state_groups'
  | 'outbox'
  | 'filters'
  | 'partial_state';

/**
 * The next position of a counter. Read and written inside the caller's transaction, so
 * concurrent writers are serialised by the backend and a rolled-back write leaves no gap.
 */
export async function nextPosition(tx: Tx, counter: Counter): Promise<number> {
  if (counter === 'events') return (await currentPosition(tx, 'events')) + 1;
  const row = await tx.get('streams', counter);
  const position = ((row?.position as number | undefined) ?? 0) + 1;
  await tx.put('streams', { name: counter, position });
  return position;
}

export async function currentPosition(tx: Tx, counter: Counter): Promise<number> {
  if (counter === 'events') {
    // The events stream is the highest position in the events table's unique stream index:
    // no counter row to rewrite on the hottest write path.
    const [last] = await tx.query('events', { index: 'stream', reverse: true, limit: 1 });
    return Math.max(0, (last?.stream as number | undefined) ?? 0);
  }
  const row = await tx.get('streams', counter);
  return (row?.position as number | undefined) ?? 0;
}

const utf8 = new TextEncoder();

/** Tokens are stored as sha256 (unpadded base64): a copy of the database grants no access. */
export function hashToken(token: string): string {
  return encodeBase64(sha256(utf8.encode(token)));
}

export function invalid(message: string): StoreError {
  return new StoreError('INVALID', message);
}

export function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${what} must be a non-empty string`);
  return value;
}

export function requirePosition(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(`${what} must be an integer`);
  return value;
}

/** The rows of `index` at positions in (from, to]: what "since a token" reads. */
export function sinceRange(index: string, from: number, to: number): Range {
  return {
    index,
    lower: [requirePosition(from, 'from')],
    lowerOpen: true,
    upper: [requirePosition(to, 'to')],
  };
}

/**
 * A bounded map of what reads found, kept until a write drops it (the write-through caches of
 * the store: push settings, device key counts). A read calls `begin()` before it starts and
 * `set` with that epoch after: what it found is kept only if no `forget` (a write beginning or
 * ending, or another store's write found by `CacheMarks`) came between, so a read that saw the
 * state before a write never outlives it. Past `kept` entries the least recently read is
 * dropped.
 *
 * Another store may write the same database (an old and a new Service Worker during an update,
 * the in-page fallback in two tabs, two `hearth serve` on one `--data`): every cache is one of
 * the `CacheFamily`s, whose mark in `streams` each write changing it moves in its own
 * transaction, and is served only after a read of the caller's (a send's snapshot, a /sync
 * pass's positions, a sync snapshot) found the marks where this store last left them; a mark
 * moved by another store drops the family's caches first (`CacheMarks`).
 */
export class KeptReads<V> {
  private readonly entries = new Map<string, V>();
  private readonly kept: number;
  private epoch = 0;

  constructor(kept: number) {
    this.kept = kept;
  }

  get(key: string): V | undefined {
    const found = this.entries.get(key);
    if (found !== undefined) {
      // Least recently read first in insertion order.
      this.entries.delete(key);
      this.entries.set(key, found);
    }
    return found;
  }

  begin(): number {
    return this.epoch;
  }

  set(key: string, value: V, startedAt: number): void {
    if (startedAt !== this.epoch) return;
    this.entries.set(key, value);
    if (this.entries.size > this.kept) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Drops one entry, or all. */
  forget(key?: string): void {
    this.epoch++;
    if (key === undefined) this.entries.clear();
    else this.entries.delete(key);
  }

  /** Runs a write that changes `key`'s value (or any, without a key), dropping it before and after. */
  async writing<T>(key: string | undefined, write: () => Promise<T>): Promise<T> {
    this.forget(key);
    try {
      return await write();
    } finally {
      this.forget(key);
    }
  }
}

/**
 * What the store's caches hold, by family, each with a change mark: a row `cache:<family>` of
 * `streams` whose position every write transaction changing the family's rows moves by one
 * (`create-store.ts` `markWrites`, from the tables and rows each write touches).
 */
export type CacheFamily = 'push' | 'keys' | 'members' | 'partial_state';
export const CACHE_FAMILIES: readonly CacheFamily[] = ['push', 'keys', 'members', 'partial_state'];
const markName = (family: CacheFamily) => `cache:${family}`;
/** Every mark row, and nothing else of `streams` (';' follows ':'): one request reads them all. */
const MARKS: Range = { lower: ['cache:'], upper: ['cache;'], upperOpen: true };

/**
 * Which families' marks this store has seen where, and who to tell when another store moved
 * one. A mark is read in the same snapshot as what a cache serves beside it (one more request
 * issued with the read's others: no round trip of its own); when it is past where this store
 * last saw it, some other store changed the family and its caches are dropped before the read
 * returns. This store's own writes move the mark too, and leave it known (`settle`), so they
 * drop nothing (their own caches drop their entries as before). The first sight of a mark
 * drops too: caches filled before it were checked against nothing.
 *
 * A killed writer leaves nothing to clean up: its mark moved in the transaction that committed
 * its change, or neither happened.
 */
export class CacheMarks {
  private readonly seen = new Map<CacheFamily, number>();
  private readonly listeners = new Map<CacheFamily, Set<() => void>>();
  /**
   * Marks this store's writes have put and not yet settled: committed perhaps (SQLite's reads
   * see a commit before its sync acknowledges it), so a read may find them first — they are
   * this store's own, no other store's.
   */
  private readonly own = new Map<CacheFamily, Set<number>>();

  /** Calls `listener` whenever another store is found to have changed `family`. */
  onMoved(family: CacheFamily, listener: () => void): () => void {
    let set = this.listeners.get(family);
    if (!set) {
      set = new Set();
      this.listeners.set(family, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Reads every family's mark in `tx` (over `streams`): issue it with the read's other requests.
   * Resolves to the marks found: what a cache may check an entry against in this snapshot.
   */
  async readIn(tx: Tx): Promise<ReadonlyMap<CacheFamily, number>> {
    return this.observeRows(await tx.query('streams', MARKS));
  }

  /** The marks among rows of `streams` read for another purpose (every counter's row); returns them. */
  observeRows(rows: readonly Row[]): ReadonlyMap<CacheFamily, number> {
    const marks = marksIn(rows);
    for (const [family, mark] of marks) this.observe(family, mark);
    return marks;
  }

  /**
   * Within a write transaction over `streams`, before its first change of a family's rows: the
   * marks as they were (issued now, so a later change in the same transaction, as an import's
   * wholesale replacement of `streams`, cannot hide them; awaited by `move` only).
   */
  marksBefore(tx: Tx): Promise<Row[]> {
    return tx.query('streams', MARKS);
  }

  /**
   * At the end of that write transaction: moves the marks of `families` by one past where
   * `before` found them; returns what `settle` takes once the transaction has committed.
   */
  async move(
    tx: Tx,
    before: Promise<Row[]>,
    families: ReadonlySet<CacheFamily>,
  ): Promise<Map<CacheFamily, number>> {
    // What another store did before this write is found here, as by a read.
    const found = this.observeRows(await before);
    const moved = new Map<CacheFamily, number>();
    const puts: Promise<void>[] = [];
    for (const family of families) {
      const name = markName(family);
      const position = (found.get(family) as number) + 1;
      moved.set(family, position);
      let own = this.own.get(family);
      if (!own) {
        own = new Set();
        this.own.set(family, own);
      }
      own.add(position);
      puts.push(tx.put('streams', { name, position }));
    }
    await Promise.all(puts);
    return moved;
  }

  /** After a write `move` was part of committed: its own move is known, not another store's. */
  settle(moved: ReadonlyMap<CacheFamily, number>): void {
    // Only from the mark the write itself found: if a read saw more since, it has dropped already.
    for (const [family, position] of moved) {
      this.own.get(family)?.delete(position);
      if (this.seen.get(family) === position - 1) this.seen.set(family, position);
    }
  }

  /**
   * After a write `move` was part of failed: its marks are not in the database, though a read
   * may have taken them for this store's (`own`). The family is dropped and its mark learnt
   * again. (Another store that took the same position between the rollback and this call went
   * unseen meanwhile: that needs a failed commit, an I/O error, during a concurrent write.)
   */
  abandon(moved: ReadonlyMap<CacheFamily, number>): void {
    for (const [family, position] of moved) {
      this.own.get(family)?.delete(position);
      if ((this.seen.get(family) ?? -1) < position) continue;
      this.seen.delete(family);
      this.drop(family);
    }
  }

  private observe(family: CacheFamily, mark: number): void {
    let seen = this.seen.get(family);
    if (seen !== undefined && mark <= seen) return;
    this.seen.set(family, mark);
    // Moves of this store's own writes, found before they settled, drop nothing.
    const own = this.own.get(family);
    while (seen !== undefined && seen < mark && own?.has(seen + 1)) seen++;
    if (seen !== mark) this.drop(family);
  }

  private drop(family: CacheFamily): void {
    for (const listener of this.listeners.get(family) ?? []) listener();
  }
}

/** Every family's mark among rows of `streams` (0 for one never moved). */
function marksIn(rows: readonly Row[]): Map<CacheFamily, number> {
  return new Map(
    CACHE_FAMILIES.map((family) => {
      const row = rows.find((one) => one.name === markName(family));
      return [family, (row?.position as number | undefined) ?? 0];
    }),
  );
}
