/** Helpers shared by the store areas. */
import { encodeBase64 } from '../../core/base64.ts';
import { sha256 } from '../../core/crypto.ts';
import type { Range, Tx } from '../engine.ts';
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
 * ending) came between, so a read that saw the state before a write never outlives it. Past
 * `kept` entries the least recently read is dropped. Writes by another store on the same
 * database are not seen: a store is its database's one writer (the Service Worker, or the
 * `hearth serve` process).
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
