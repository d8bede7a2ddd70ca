/**
 * Client API benchmarks (issue 14, "Performance"):
 * - the search index's cost per message: events persisted per second with a searchable body
 *   (indexed words) beside the same events whose text is not indexed (the plain send path's
 *   store write), alternating, on SQLite and on fake-indexeddb;
 * - search over SEARCH_MESSAGES messages in one room (SQLite): `POST /search` latency p50/p99
 *   through the search service (index walk, visibility, ranking, formatting), for a rare word,
 *   a common word and two words, beside a 50-event timeline page read in the same run;
 * - relations and the thread list on an event with 1,000 thread replies: a page of 50
 *   `/relations`, `/threads`, and the root served with its bundled aggregations (`/event`),
 *   beside the same 50-event timeline page read.
 *
 *   node bench/run.ts client-api      (SEARCH_MESSAGES=20000 for a quicker run)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { IdentifiedPdu } from '../src/core/pdu.ts';
import { createTestUser } from '../src/homeserver/testing.ts';
import { startHomeserver } from '../src/server.ts';
import { openIndexedDbStore } from '../src/storage/indexeddb/index.ts';
import { openSqliteStore } from '../src/storage/sqlite/index.ts';
import type { PersistEventInput, Store } from '../src/storage/store.ts';
import { type BenchRow, percentile } from './harness.ts';
import { alternateWrites } from './storage-cases.ts';

const SEARCH_MESSAGES = Number(process.env.SEARCH_MESSAGES ?? 100_000);
const REPLIES = 1000;
const QUERIES = 200;
const ROOM = '!bench:bench.example.org';
const SENDER = '@alice:bench.example.org';

/** A seeded PRNG (mulberry32): the same messages every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A vocabulary of 5,000 made-up words, drawn Zipf-like: a few common, most rare. */
const VOCABULARY = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}x`);
function sentence(next: () => number): string {
  const words: string[] = [];
  const n = 8 + Math.floor(next() * 10);
  for (let i = 0; i < n; i++) words.push(VOCABULARY[Math.floor(VOCABULARY.length * next() ** 3)] as string);
  return words.join(' ');
}

function message(
  i: number,
  prev: string,
  depth: number,
  content: Record<string, unknown>,
): PersistEventInput {
  const event: IdentifiedPdu = {
    event_id: `$m${i}`,
    room_id: ROOM,
    sender: SENDER,
    type: 'm.room.message',
    content: content as IdentifiedPdu['content'],
    prev_events: [prev],
    auth_events: [],
    depth,
    origin_server_ts: 1_700_000_000_000 + i,
    hashes: { sha256: 'x5k1Jv0z3HqG0x1iD2wT7o8JQ8kK2m3ZkQ3lN4p0y8A' },
    signatures: {},
  };
  return { event, stateBefore: { afterEvent: prev } };
}

function seedEvents(roomId: string): PersistEventInput[] {
  const create: IdentifiedPdu = {
    event_id: '$create',
    room_id: roomId,
    sender: SENDER,
    type: 'm.room.create',
    state_key: '',
    content: { room_version: '11' },
    prev_events: [],
    auth_events: [],
    depth: 1,
    origin_server_ts: 1_700_000_000_000,
    hashes: { sha256: 'x' },
    signatures: {},
  };
  const join: IdentifiedPdu = {
    ...create,
    event_id: '$join',
    type: 'm.room.member',
    state_key: SENDER,
    content: { membership: 'join' },
    prev_events: ['$create'],
    depth: 2,
  };
  return [
    { event: create, stateBefore: { state: new Map() } },
    { event: join, stateBefore: { afterEvent: '$create' } },
  ];
}

/** Index cost: indexed messages beside the same messages with nothing to index, alternating. */
async function indexCost(
  name: string,
  open: (tag: string) => Promise<Store>,
  n: number,
): Promise<BenchRow[]> {
  const [indexed, plain] = [await open('indexed'), await open('plain')];
  for (const store of [indexed, plain]) await store.rooms.persistEvents(seedEvents(ROOM));
  const next = prng(7);
  const bodies = Array.from({ length: n }, () => sentence(next));
  let prevA = '$join';
  let prevB = '$join';
  const [withIndex, without] = await alternateWrites(
    n,
    async (i) => {
      const input = message(i, prevA, i + 3, { msgtype: 'm.text', body: bodies[i] });
      prevA = input.event.event_id;
      await indexed.rooms.persistEvents([input]);
    },
    async (i) => {
      // The same bytes under a key no index reads: what a send costs without the word index.
      const input = message(i, prevB, i + 3, { msgtype: 'm.text', text: bodies[i] });
      prevB = input.event.event_id;
      await plain.rooms.persistEvents([input]);
    },
  );
  await indexed.close();
  await plain.close();
  return [
    {
      name: `${name}: messages persisted/s with the search index`,
      value: withIndex,
      unit: 'events/s',
      baselineName: 'the same messages, nothing indexed',
      baselineValue: without,
      ratio: withIndex / without,
      note: `index cost ${(((1 / withIndex - 1 / without) / (1 / without)) * 100).toFixed(0)}% of a plain send`,
    },
  ];
}

async function timed(fn: () => Promise<unknown>, times: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await fn();
    out.push(performance.now() - start);
  }
  return out.sort((a, b) => a - b);
}

function latencyRows(name: string, samples: number[], baseline: number[], baselineName: string): BenchRow[] {
  return ([50, 99] as const).map((p) => {
    const value = percentile(samples, p);
    const base = percentile(baseline, p);
    return {
      name: `${name} p${p}`,
      value,
      unit: 'ms',
      baselineName: `${baselineName} p${p}`,
      baselineValue: base,
      ratio: base / value,
    };
  });
}

/** Search over SEARCH_MESSAGES messages, and relations/threads on a root with REPLIES replies. */
async function searchAndRelations(dir: string): Promise<BenchRow[]> {
  const store = await openSqliteStore({ path: join(dir, 'search.sqlite'), synchronous: 'normal' });
  const { homeserver, internals } = startHomeserver({
    serverName: 'bench.example.org',
    store,
    registration: 'open',
  });
  const { services } = await internals();
  const alice = await createTestUser(services, 'reader');
  const { roomId } = await services.rooms.createRoom(alice.userId, { preset: 'public_chat' });
  let [head] = (await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId);
  let depth = (await store.rooms.getEvent(head as string))?.depth ?? 1;
  const next = prng(11);
  const batch: PersistEventInput[] = [];
  const flush = async () => {
    await store.rooms.persistEvents(batch);
    batch.length = 0;
  };
  const add = (content: Record<string, unknown>) => {
    const input = message(batch.length + depth, head as string, ++depth, content);
    input.event.room_id = roomId;
    input.event.event_id = `$bench${depth}`;
    head = input.event.event_id;
    batch.push(input);
  };
  for (let i = 0; i < SEARCH_MESSAGES; i++) {
    add({ msgtype: 'm.text', body: sentence(next) });
    if (batch.length === 1000) await flush();
  }
  add({ msgtype: 'm.text', body: 'the thread root' });
  const root = head as string;
  for (let i = 0; i < REPLIES; i++) {
    add({ msgtype: 'm.text', body: `reply ${i}`, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    if (batch.length === 1000) await flush();
  }
  await flush();

  const viewer = { userId: alice.userId, deviceId: alice.deviceId };
  const page = async () => {
    const { next: from } = await store.rooms.timeline(roomId, { dir: 'b', limit: 1 });
    return store.rooms.timeline(roomId, { dir: 'b', limit: 50, ...(from !== null ? { from } : {}) });
  };
  const baseline = await timed(page, QUERIES);
  const baseName = 'a 50-event timeline page';
  const q = (term: string, order: 'rank' | 'recent') => () =>
    services.search.search(viewer, { search_term: term, order_by: order });
  const rows: BenchRow[] = [
    ...latencyRows(
      `search "${VOCABULARY[300]}" (rare), recent`,
      await timed(q(VOCABULARY[300] as string, 'recent'), QUERIES),
      baseline,
      baseName,
    ),
    ...latencyRows(
      `search "${VOCABULARY[1]}" (common), recent`,
      await timed(q(VOCABULARY[1] as string, 'recent'), QUERIES),
      baseline,
      baseName,
    ),
    ...latencyRows(
      `search "${VOCABULARY[1]}" (common), rank`,
      await timed(q(VOCABULARY[1] as string, 'rank'), 50),
      baseline,
      baseName,
    ),
    ...latencyRows(
      `search "${VOCABULARY[2]} ${VOCABULARY[30]}" (two words), recent`,
      await timed(q(`${VOCABULARY[2]} ${VOCABULARY[30]}`, 'recent'), QUERIES),
      baseline,
      baseName,
    ),
    ...latencyRows(
      `/relations of a root with ${REPLIES} replies, limit 50`,
      await timed(
        () => services.relations.relations(viewer, roomId, root, { relType: 'm.thread', limit: 50 }),
        QUERIES,
      ),
      baseline,
      baseName,
    ),
    ...latencyRows(
      '/threads (room with that thread), limit 20',
      await timed(() => services.relations.threads(viewer, roomId, { include: 'all' }), QUERIES),
      baseline,
      baseName,
    ),
    ...latencyRows(
      '/event of the root with its thread summary bundled',
      await timed(() => services.roomRead.event(viewer, roomId, root), QUERIES),
      baseline,
      baseName,
    ),
  ];
  for (const r of rows) r.note = `${SEARCH_MESSAGES.toLocaleString('en-US')} messages, SQLite`;
  await homeserver.close();
  return rows;
}

export async function clientApiBench(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-client-api-'));
  try {
    let n = 0;
    return [
      ...(await indexCost('SQLite', (tag) => openSqliteStore({ path: join(dir, `${tag}.sqlite`) }), 1000)),
      ...(await indexCost(
        'fake-indexeddb',
        (tag) =>
          openIndexedDbStore({ name: `bench-${tag}-${n++}`, indexedDB: new IDBFactory(), IDBKeyRange }),
        1000,
      )),
      ...(await searchAndRelations(dir)),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
