/**
 * Storage benchmarks (issue "Durable storage"): events persisted per second (with state
 * delta and stream position) and event reads per second for a timeline page of 50, for
 * each backend, beside the raw put/get rate of the same backend with the same records in
 * the same run. Backends: SQLite (node:sqlite, file, synchronous=FULL), IndexedDB on
 * fake-indexeddb (Node's in-memory store), IndexedDB in headless Chromium (a page served by
 * vite on loopback, driven by playwright-core).
 *
 *   node bench/storage.ts            all three
 *   node bench/storage.ts sqlite     one of sqlite | fake-indexeddb | chromium
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { CHROMIUM_ARGS, chromiumPath } from '../scripts/chromium.ts';
import { openSqliteEngine, openSqliteStore } from '../src/storage/sqlite/index.ts';
import type { PersistEventInput } from '../src/storage/store.ts';
import { type BenchRow, printTable } from './harness.ts';
import {
  alternateRates,
  alternateWrites,
  BENCH_ROOM,
  benchIndexedDb,
  PAGE,
  pageStarts,
  row,
  workload,
} from './storage-cases.ts';

const repo = join(import.meta.dirname, '..');

async function benchSqlite(events: number, readMs: number): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  try {
    const { inputs, rows } = workload(events);
    // Raw: the same rows into the same `events` table (schema made by the engine), one per transaction.
    const rawPath = join(dir, 'raw.sqlite');
    await (await openSqliteEngine({ path: rawPath })).close();
    const raw = new DatabaseSync(rawPath);
    raw.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
    const insert = raw.prepare(
      'INSERT INTO events (event_id, room_id, stream, depth, v) VALUES (?, ?, ?, ?, ?)',
    );
    const path = join(dir, 'store.sqlite');
    const store = await openSqliteStore({ path });
    const [persisted, rawPuts] = await alternateWrites(
      events,
      (i) => store.rooms.persistEvents([inputs[i] as PersistEventInput]),
      (i) => {
        const { event_id, room_id, stream, depth, ...rest } = rows[i] as Record<string, unknown>;
        raw.exec('BEGIN IMMEDIATE');
        insert.run(
          event_id as string,
          room_id as string,
          stream as number,
          depth as number,
          JSON.stringify(rest),
        );
        raw.exec('COMMIT');
      },
    );
    raw.close();

    const nextFrom = pageStarts(events);
    const reader = new DatabaseSync(path);
    const select = reader.prepare(
      'SELECT * FROM events WHERE room_id = ? AND stream <= ? AND stream IS NOT NULL ORDER BY stream DESC LIMIT ?',
    );
    const [storePages, rawPages] = await alternateRates(
      async () => {
        const page = await store.rooms.timeline(BENCH_ROOM, { dir: 'b', from: nextFrom(), limit: PAGE });
        if (page.events.length !== PAGE) throw new Error('short page');
      },
      () => {
        const page = select
          .all(BENCH_ROOM, nextFrom(), PAGE)
          .map((r) => ({ ...JSON.parse(r.v as string), event_id: r.event_id }));
        if (page.length !== PAGE) throw new Error('short page');
      },
      readMs,
    );
    reader.close();
    await store.close();
    return [
      row(
        'SQLite: events persisted (state delta + stream position)',
        persisted,
        'events/s',
        'raw SQLite INSERT, 1 per tx',
        rawPuts,
      ),
      row(
        `SQLite: timeline page of ${PAGE}, read`,
        storePages * PAGE,
        'events/s',
        'raw SQLite SELECT page',
        rawPages * PAGE,
      ),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function benchFakeIndexedDb(events: number, readMs: number): Promise<BenchRow[]> {
  return benchIndexedDb({
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    label: 'IndexedDB (fake-indexeddb, Node)',
    events,
    readMs,
  });
}

/** The IndexedDB cases in headless Chromium: a vite-served page on loopback, driven by playwright-core. */
async function benchChromium(events: number, readMs: number): Promise<BenchRow[]> {
  const executablePath = chromiumPath();
  const { createServer } = await import('vite');
  const { chromium } = await import('playwright-core');
  const server = await createServer({
    root: repo,
    configFile: false,
    logLevel: 'error',
    // No file watcher: the pages are served as they are, and chokidar's watchers of the whole
    // checkout outlived `server.close()` and kept `npm run bench` from exiting.
    server: { host: '127.0.0.1', port: 0, hmr: false, watch: null },
  });
  await server.listen();
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] });
  try {
    const address = server.httpServer?.address();
    if (!address || typeof address === 'string') throw new Error('vite did not listen');
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${address.port}/bench/storage-page.html`);
    await page.waitForFunction(() => 'hearthStorageBench' in globalThis, undefined, { timeout: 60_000 });
    return await page.evaluate(
      (options) =>
        (globalThis as unknown as { hearthStorageBench(o: object): Promise<BenchRow[]> }).hearthStorageBench(
          options,
        ),
      { events, readMs },
    );
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Every storage figure, as rows for `npm run bench`. */
export async function storageBench(only?: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  if (!only || only === 'sqlite') rows.push(...(await benchSqlite(2000, 2000)));
  if (!only || only === 'fake-indexeddb') rows.push(...(await benchFakeIndexedDb(600, 2000)));
  if (!only || only === 'chromium') rows.push(...(await benchChromium(1000, 2000)));
  return rows;
}

if (import.meta.main) {
  printTable(
    'storage: persist and timeline reads, beside the raw backend',
    await storageBench(process.argv[2]),
  );
}
