/**
 * Storage benchmark cases shared by every backend (and safe in a browser page): the event
 * workload, and the IndexedDB measurements beside raw IndexedDB on the same database.
 *
 * Workload: one linear room; every tenth event is a join (a state delta: a new state
 * group, current state and membership rows), the rest ~700-byte messages. Each event is
 * persisted in its own transaction, as a client's send is. "Raw" is the same backend
 * storing the same event rows in the same table (same indexes), one per transaction, with
 * nothing else: no state, no stream counter, no extremities, no edges or search words.
 */
import type { IdentifiedPdu } from '../src/core/pdu.ts';
import { createStore } from '../src/storage/create-store.ts';
import type { Row } from '../src/storage/engine.ts';
import { IndexedDbEngine } from '../src/storage/indexeddb/engine.ts';
import { eventRowEntries } from '../src/storage/schema.ts';
import type { PersistEventInput } from '../src/storage/store.ts';
import type { BenchRow } from './harness.ts';

export const BENCH_ROOM = '!bench:bench.example.org';
export const PAGE = 50;

function pdu(i: number, prev: string | null): IdentifiedPdu {
  const join = i < 2 || i % 10 === 0;
  const user = i < 2 ? '@alice:bench.example.org' : `@user${i}:bench.example.org`;
  return {
    event_id: `$bench-event-${i}`,
    room_id: BENCH_ROOM,
    sender: user,
    type: i === 0 ? 'm.room.create' : join ? 'm.room.member' : 'm.room.message',
    ...(i === 0 ? { state_key: '' } : join ? { state_key: user } : {}),
    content:
      i === 0
        ? { room_version: '11' }
        : join
          ? { membership: 'join', displayname: `User ${i}` }
          : {
              msgtype: 'm.text',
              body: `Message ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(14)}`,
            },
    prev_events: prev ? [prev] : [],
    auth_events: [],
    depth: i + 1,
    origin_server_ts: 1_700_000_000_000 + i,
    hashes: { sha256: 'x5k1Jv0z3HqG0x1iD2wT7o8JQ8kK2m3ZkQ3lN4p0y8A' },
    signatures: { 'bench.example.org': { 'ed25519:a': 'sig'.repeat(28) } },
  };
}

/** The store inputs and, for the raw baseline, the `events` rows the store writes for them. */
export function workload(n: number): { inputs: PersistEventInput[]; rows: Row[] } {
  const inputs: PersistEventInput[] = [];
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const event = pdu(i, i === 0 ? null : `$bench-event-${i - 1}`);
    inputs.push({
      event,
      stateBefore: i === 0 ? { state: new Map() } : { afterEvent: `$bench-event-${i - 1}` },
    });
    rows.push({
      event_id: event.event_id,
      room_id: BENCH_ROOM,
      stream: i + 1,
      depth: event.depth,
      type: event.type,
      state_key: event.state_key ?? null,
      sender: event.sender,
      pdu: event,
      outlier: false,
      rejected: null,
      soft_failed: false,
      redacted_by: null,
      state_before: i,
      state_after: i + 1,
      txn: null,
    });
  }
  return { inputs, rows };
}

/**
 * The IndexedDB requests `persistEvents` makes for event `i` of the workload (its optimistic
 * path, counted in Chromium): the event row, carrying its prev event, its claim on its own ID,
 * its search words (entries of the row's own indexes) and the room's extremities after it
 * (schema v12); a join also makes a state group and writes current state and membership.
 */
export function storeRequests(
  rows: readonly Row[],
  i: number,
): [string, 'add' | 'put' | 'delete', unknown][] {
  const row = rows[i] as Row;
  const extremities = [{ event_id: row.event_id, depth: row.depth, stream: row.stream }];
  const requests: [string, 'add' | 'put' | 'delete', unknown][] = [
    ['events', 'add', { ...eventRowEntries(row, [], row.event_id as string), extremities }],
  ];
  if (i === 0) requests.push(['rooms', 'put', { room_id: BENCH_ROOM, room_version: '11', published: null }]);
  if (row.state_key !== null) {
    const group = row.state_after as number;
    const key = `${row.type}\u0000${row.state_key}`;
    requests.push([
      'state_groups',
      'add',
      { id: group, room_id: BENCH_ROOM, prev: group - 1 || null, chain: [], delta: [[key, row.event_id]] },
    ]);
    requests.push([
      'current_state',
      'put',
      {
        room_id: BENCH_ROOM,
        type: row.type,
        state_key: row.state_key,
        event_id: row.event_id,
        stream: row.stream,
      },
    ]);
    requests.push([
      'room_members',
      'put',
      {
        room_id: BENCH_ROOM,
        user_id: row.state_key,
        membership: 'join',
        event_id: row.event_id,
        stream: row.stream,
        forgotten: false,
      },
    ]);
  }
  return requests;
}

/**
 * Store and raw writes in alternating chunks, so drift on a shared machine hits both alike;
 * returns [store, raw] writes per second.
 */
export async function alternateWrites(
  n: number,
  storeWrite: (i: number) => Promise<unknown>,
  rawWrite: (i: number) => unknown,
  chunk = 100,
): Promise<[number, number]> {
  const [store, raw] = await alternateWriters(n, [storeWrite, rawWrite], chunk);
  return [store as number, raw as number];
}

/** Any number of writers in alternating chunks (see `alternateWrites`); writes per second of each. */
export async function alternateWriters(
  n: number,
  writers: readonly ((i: number) => unknown)[],
  chunk = 100,
): Promise<number[]> {
  const spent = writers.map(() => 0);
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    for (const [k, write] of writers.entries()) {
      const start = performance.now();
      for (let i = from; i < to; i++) await write(i);
      spent[k] = (spent[k] as number) + performance.now() - start;
    }
  }
  return spent.map((ms) => (n * 1000) / ms);
}

/** Two read loops timed in alternating slices over about `ms` in all; returns [a, b] calls per second. */
export async function alternateRates(
  a: () => Promise<unknown> | unknown,
  b: () => Promise<unknown> | unknown,
  ms = 2000,
): Promise<[number, number]> {
  const slice = ms / 10;
  for (let i = 0; i < 20; i++) {
    await a();
    await b();
  }
  const calls = [0, 0];
  const spent = [0, 0];
  for (let round = 0; round < 5; round++) {
    for (const [k, fn] of [a, b].entries()) {
      const start = performance.now();
      const end = start + slice;
      while (performance.now() < end) {
        await fn();
        calls[k] = (calls[k] as number) + 1;
      }
      spent[k] = (spent[k] as number) + performance.now() - start;
    }
  }
  return [
    ((calls[0] as number) * 1000) / (spent[0] as number),
    ((calls[1] as number) * 1000) / (spent[1] as number),
  ];
}

/** Start positions for backward pages of 50, spread over the room. */
export function pageStarts(events: number): () => number {
  let seed = 1;
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return PAGE + (seed % (events - PAGE));
  };
}

export function row(
  name: string,
  value: number,
  unit: string,
  baselineName: string,
  baselineValue: number,
): BenchRow {
  return { name, value, unit, baselineName, baselineValue, ratio: value / baselineValue };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export interface IndexedDbBenchOptions {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  label: string;
  events: number;
  readMs?: number;
  durability?: 'strict' | 'relaxed';
}

/** Events persisted/s and timeline-page reads/s through the store, beside raw IndexedDB. */
export async function benchIndexedDb(options: IndexedDbBenchOptions): Promise<BenchRow[]> {
  const { indexedDB, IDBKeyRange: KeyRange, label, events } = options;
  const durability = options.durability ?? 'strict';
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const { inputs, rows } = workload(events);

  const open = (name: string) =>
    IndexedDbEngine.open({ indexedDB, IDBKeyRange: KeyRange, name: `bench-${name}-${run}`, durability });
  // Raw: the same rows into another Hearth database's `events` store, straight through IndexedDB.
  const rawEngine = await open('raw');
  const raw = rawEngine.db.backendDB();
  const engine = await open('store');
  const store = createStore(engine);
  // Where the store's time goes: the requests it makes for each event, made raw (another
  // database of the same schema), one transaction per event as the store's.
  const sameEngine = await open('same');
  const same = sameEngine.db.backendDB();
  const [persisted, rawPuts, sameRequests] = await alternateWriters(events, [
    (i) => store.rooms.persistEvents([inputs[i] as PersistEventInput]),
    (i) => {
      const tx = raw.transaction('events', 'readwrite', { durability });
      tx.objectStore('events').put(rows[i]);
      return done(tx);
    },
    (i) => {
      const requests = storeRequests(rows, i);
      const tx = same.transaction([...new Set(requests.map(([table]) => table))], 'readwrite', {
        durability,
      });
      for (const [table, op, value] of requests) {
        const target = tx.objectStore(table);
        if (op === 'add') target.add(value);
        else if (op === 'put') target.put(value);
        else target.delete(value as IDBValidKey);
      }
      return done(tx);
    },
  ]);
  const requestsPerEvent = rows.reduce((sum, _, i) => sum + storeRequests(rows, i).length, 0) / events;
  await rawEngine.close();
  await sameEngine.close();

  // Reads: a backward page of 50 from a random place, through the store and raw.
  const nextFrom = pageStarts(events);
  const db = engine.db.backendDB();
  const idb31 = 'getAllRecords' in db.transaction('events').objectStore('events');
  const [storePages, rawPages] = await alternateRates(
    async () => {
      const page = await store.rooms.timeline(BENCH_ROOM, { dir: 'b', from: nextFrom(), limit: PAGE });
      if (page.events.length !== PAGE) throw new Error('short page');
    },
    async () => {
      const tx = db.transaction('events', 'readonly');
      const range = KeyRange.bound([BENCH_ROOM, Number.NEGATIVE_INFINITY], [BENCH_ROOM, nextFrom()]);
      const index = tx.objectStore('events').index('[room_id+stream]');
      // The fastest raw read there is: getAll with a direction (IndexedDB 3.1) where the
      // browser has it, else a cursor — the same choice Dexie makes.
      if (idb31) {
        const page = await request(
          (index.getAll as (options: object) => IDBRequest<unknown[]>)({
            query: range,
            count: PAGE,
            direction: 'prev',
          }),
        );
        if (page.length !== PAGE) throw new Error('short page');
        return;
      }
      const cursorRequest = index.openCursor(range, 'prev');
      const page: unknown[] = await new Promise((resolve, reject) => {
        const found: unknown[] = [];
        cursorRequest.onerror = () => reject(cursorRequest.error);
        cursorRequest.onsuccess = () => {
          const cursor = cursorRequest.result;
          if (!cursor || found.length === PAGE) return resolve(found);
          found.push(cursor.value);
          cursor.continue();
        };
      });
      if (page.length !== PAGE) throw new Error('short page');
    },
    options.readMs,
  );
  const count = await request(db.transaction('events').objectStore('events').count());
  if (count !== events) throw new Error(`expected ${events} events, found ${count}`);

  // Why the engine writes on bare IndexedDB: the same store with every transaction through Dexie, or none.
  const half = Math.min(events, 300);
  const dexieEngine = await IndexedDbEngine.open({
    indexedDB,
    IDBKeyRange: KeyRange,
    name: `bench-dexie-${run}`,
    durability,
    bare: 'none',
  });
  const bareEngine = await IndexedDbEngine.open({
    indexedDB,
    IDBKeyRange: KeyRange,
    name: `bench-bare-${run}`,
    durability,
    bare: 'all',
  });
  const viaDexie = createStore(dexieEngine);
  const viaBare = createStore(bareEngine);
  const [dexieWrites, bareWrites] = await alternateWrites(
    half,
    (i) => viaDexie.rooms.persistEvents([inputs[i] as PersistEventInput]),
    (i) => viaBare.rooms.persistEvents([inputs[i] as PersistEventInput]),
    50,
  );
  const nextSmall = pageStarts(half);
  const [dexieReads, bareReads] = await alternateRates(
    () => viaDexie.rooms.timeline(BENCH_ROOM, { dir: 'b', from: nextSmall(), limit: PAGE }),
    () => viaBare.rooms.timeline(BENCH_ROOM, { dir: 'b', from: nextSmall(), limit: PAGE }),
    options.readMs,
  );
  await viaDexie.close();
  await viaBare.close();
  await store.close();
  for (const db of ['raw', 'same', 'store', 'dexie', 'bare']) indexedDB.deleteDatabase(`bench-${db}-${run}`);
  return [
    row(
      `${label}: events persisted (state delta + stream position)`,
      persisted as number,
      'events/s',
      'raw IndexedDB put, 1 per tx',
      rawPuts as number,
    ),
    row(
      `${label}: events persisted, as above`,
      persisted as number,
      'events/s',
      `raw IndexedDB, the store's ${requestsPerEvent.toFixed(1)} requests/event`,
      sameRequests as number,
    ),
    row(
      `${label}: timeline page of ${PAGE}, read`,
      storePages * PAGE,
      'events/s',
      idb31 ? 'raw IndexedDB getAll(prev) page' : 'raw IndexedDB cursor page',
      rawPages * PAGE,
    ),
    row(
      `${label}: events persisted, Dexie transactions`,
      dexieWrites,
      'events/s',
      'same, bare IndexedDB transactions',
      bareWrites,
    ),
    row(
      `${label}: timeline page of ${PAGE}, Dexie transactions`,
      dexieReads * PAGE,
      'events/s',
      'same, bare IndexedDB transactions',
      bareReads * PAGE,
    ),
  ];
}
