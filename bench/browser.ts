/**
 * The Service Worker homeserver in headless Chromium (`npm run bench -- browser`, or
 * `node bench/browser.ts`):
 *
 * - cold start: the worker stopped through DevTools, then the time until a page's
 *   `fetch('/_matrix/client/versions')` is answered (start the worker, open IndexedDB, load
 *   the signing key, route) — beside a warm request of the same, in the same run;
 * - send → /sync wake: a long-polling /sync in the page, then a message sent; the time from
 *   the send to the /sync answer carrying it (p50/p99) — beside a plain `fetch` of a static
 *   file through the same controlled page (the worker lets it pass to the network);
 * - where a wake's time goes: a send alone, an incremental /sync with one new message and
 *   one with nothing new (timeout 0), each beside a warm `/versions` through the same worker
 *   (the fetch interception, routing and answer with no store work), interleaved;
 * - media: 1 MiB uploads and downloads through the worker (`fetch` of a Blob, the body read to
 *   its end), beside the page's own IndexedDB put and get of the same Blob, interleaved;
 * - the gzipped size of the worker bundle and of the page bundle (and its fallback chunk).
 *
 * Aims (issue 5): cold start ≤ 150 ms, send → sync p50 ≤ 30 ms, worker ≤ 250 KB gzipped;
 * (issue 13) send → sync p50 ≤ 12 ms, p99 ≤ 30 ms.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSize } from '../scripts/build.ts';
import { buildTestSite, launch, type PageGlobals } from '../test/browser/testing-sw.ts';
import { type BenchRow, percentile, printTable } from './harness.ts';

const PASSWORD = 'bench password';
const COLD_STARTS = 12;
/**
 * Wakes measured: p99 is then the 4th slowest of 400, not the 2nd of 150 (one stall under a
 * loaded machine moved it by tens of ms). After `WAKE_WARMUP` unmeasured ones (the worker's
 * first passes read state it keeps afterwards).
 */
const WAKES = 400;
const WAKE_WARMUP = 20;
const STRICT_WAKES = 60;
const SENDERS = 4;
const MEDIA_ROUNDS = 40;
const PART_ROUNDS = 60;

export interface Users {
  reader: string;
  writers: string[];
  room: string;
}

/** Registers the worker, a reader and `SENDERS` writers, and a public room they all joined. */
export function setUpUsers(page: import('playwright-core').Page): Promise<Users> {
  return page.evaluate(
    async ({ password, senders }) => {
      const w = window as unknown as PageGlobals;
      w.handle = await w.hearth.registerHomeserver({ workerUrl: '/sw.js' });
      const tokens: string[] = [];
      for (let i = 0; i <= senders; i++) {
        await w.handle.control.createAccount(`user${i}`, password);
        tokens.push(await w.mx.login(`user${i}`, password));
      }
      const [reader, ...writers] = tokens as [string, ...string[]];
      const room = await w.mx.createRoom(reader, { preset: 'public_chat' });
      for (const token of writers) await w.mx.join(token, room);
      return { reader, writers, room };
    },
    { password: PASSWORD, senders: SENDERS },
  );
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/**
 * `rounds` times, interleaved: a 1 MiB upload through the worker and the page's own IndexedDB
 * put of the same Blob; then a download of it (read to the end) and the page's IndexedDB get
 * (its Blob read to the end). Returns the mean milliseconds of each.
 */
function mediaSamples(page: import('playwright-core').Page, token: string, rounds: number) {
  return page.evaluate(
    async ({ token, rounds }) => {
      const file = new Blob([new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 251)]);
      const auth = { authorization: `Bearer ${token}` };
      const drain = async (stream: ReadableStream<Uint8Array> | null) => {
        if (!stream) return 0;
        const reader = stream.getReader();
        let total = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return total;
          total += value.byteLength;
        }
      };
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('bench-raw-media', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('media');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const put = (key: string, value: Blob) =>
        new Promise<void>((resolve, reject) => {
          const tx = db.transaction('media', 'readwrite');
          tx.objectStore('media').put(value, key);
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
        });
      const get = (key: string) =>
        new Promise<Blob>((resolve, reject) => {
          const request = db.transaction('media').objectStore('media').get(key);
          request.onsuccess = () => resolve(request.result as Blob);
          request.onerror = () => reject(request.error);
        });
      const totals = { upload: 0, put: 0, download: 0, get: 0 };
      let path = '';
      for (let i = 0; i < rounds + 3; i++) {
        const warm = i < 3;
        let start = performance.now();
        const res = await fetch('/_matrix/media/v3/upload', {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/octet-stream' },
          body: file,
        });
        path = ((await res.json()) as { content_uri: string }).content_uri.slice('mxc://'.length);
        if (!warm) totals.upload += performance.now() - start;
        start = performance.now();
        await put(`m${i}`, file);
        if (!warm) totals.put += performance.now() - start;
        start = performance.now();
        const down = await fetch(`/_matrix/client/v1/media/download/${path}`, { headers: auth });
        if ((await drain(down.body)) !== file.size) throw new Error('short download');
        if (!warm) totals.download += performance.now() - start;
        start = performance.now();
        if ((await drain((await get(`m${i}`)).stream())) !== file.size) throw new Error('short read');
        if (!warm) totals.get += performance.now() - start;
      }
      db.close();
      return {
        upload: totals.upload / rounds,
        put: totals.put / rounds,
        download: totals.download / rounds,
        get: totals.get / rounds,
      };
    },
    { token, rounds },
  );
}

/** One send → /sync wake on the page's clock (`performance.timeOrigin + now()`, as a worker's). */
export interface WakeTimes {
  /** The send asked. */
  start: number;
  /** Its answer in the page. */
  sent: number;
  /** The /sync answer carrying it in the page. */
  woke: number;
}

/**
 * `samples` times: a long-poll /sync as the reader, then a message from one of the writers;
 * the time from the send to the /sync answer carrying it. After each, a static file fetch.
 */
export function wakeSamples(page: import('playwright-core').Page, users: Users, samples: number) {
  return page.evaluate(
    async ({ reader, writers, room, samples }) => {
      const { mx } = window as unknown as PageGlobals;
      const now = () => performance.timeOrigin + performance.now();
      let since = (await mx.sync(reader)).next_batch as string;
      const wakes: number[] = [];
      const statics: number[] = [];
      const times: WakeTimes[] = [];
      for (let i = 0; i < samples; i++) {
        const text = `wake ${Date.now()} ${i}`;
        const polling = (async () => {
          for (;;) {
            const body = await mx.sync(reader, since, 10_000);
            since = body.next_batch;
            if (mx.syncTexts(body, room).includes(text)) return now();
          }
        })();
        // Let the long-poll reach the worker and start waiting.
        await new Promise((r) => setTimeout(r, 15));
        const start = now();
        await mx.send(writers[i % writers.length] as string, room, text);
        const sent = now();
        const woke = await polling;
        wakes.push(woke - start);
        times.push({ start, sent, woke });

        const fileStart = performance.now();
        const file = await fetch('/index.html', { cache: 'no-store' });
        await file.arrayBuffer();
        statics.push(performance.now() - fileStart);
        // Message rate limits are per user (10/s): spread the sends.
        await new Promise((r) => setTimeout(r, 25));
      }
      return { wakes, statics, times };
    },
    { ...users, samples },
  );
}

/**
 * `rounds` times, interleaved: a message sent, an incremental /sync that carries it, one
 * with nothing new, and a warm `/versions` — each request's time in the page (p50 of each).
 */
function partSamples(page: import('playwright-core').Page, users: Users, rounds: number) {
  return page.evaluate(
    async ({ reader, writers, room, rounds }) => {
      const { mx } = window as unknown as PageGlobals;
      const times = {
        send: [] as number[],
        one: [] as number[],
        empty: [] as number[],
        versions: [] as number[],
      };
      const timed = async (into: number[], fn: () => Promise<unknown>) => {
        const start = performance.now();
        const value = await fn();
        into.push(performance.now() - start);
        return value;
      };
      let since = (await mx.sync(reader)).next_batch as string;
      for (let i = 0; i < rounds; i++) {
        await timed(times.send, () => mx.send(writers[i % writers.length] as string, room, `part ${i}`));
        since = ((await timed(times.one, () => mx.sync(reader, since, 0))) as { next_batch: string })
          .next_batch;
        await timed(times.empty, () => mx.sync(reader, since, 0));
        await timed(times.versions, async () => (await fetch('/_matrix/client/versions')).arrayBuffer());
        // Message rate limits are per user (10/s): spread the sends.
        await new Promise((r) => setTimeout(r, 25));
      }
      const p50 = (values: number[]) =>
        [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
      return {
        send: p50(times.send),
        one: p50(times.one),
        empty: p50(times.empty),
        versions: p50(times.versions),
      };
    },
    { ...users, rounds },
  );
}

export async function browserBench(): Promise<BenchRow[]> {
  const site = await buildTestSite(false);
  const browser = await launch(site);
  try {
    const page = await browser.open();
    const users = await setUpUsers(page);

    // Cold start: stop, then time one request from the page.
    const workers = await browser.workers(page);
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) {
      await workers.stopAll();
      const [first, second] = await page.evaluate(async () => {
        const time = async () => {
          const start = performance.now();
          const response = await fetch('/_matrix/client/versions');
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`versions: ${response.status}`);
          return performance.now() - start;
        };
        return [await time(), await time()];
      });
      cold.push(first);
      warm.push(second);
    }
    await workers.detach();

    // Send → /sync wake, and a static file through the same page, interleaved.
    await wakeSamples(page, users, WAKE_WARMUP);
    const { wakes, statics } = await wakeSamples(page, users, WAKES);
    const parts = await partSamples(page, users, PART_ROUNDS);
    const media = await mediaSamples(page, users.reader, MEDIA_ROUNDS);
    // The same with every commit flushed to disk ('strict'): a worker update, same database.
    await page.evaluate(async () => {
      const w = window as unknown as PageGlobals;
      w.handle = await w.hearth.registerHomeserver({ workerUrl: '/sw.js', durability: 'strict' });
    });
    const strict = await wakeSamples(page, users, STRICT_WAKES);
    if (browser.errors.length > 0) throw new Error(`errors in the browser:\n${browser.errors.join('\n')}`);

    const coldS = sorted(cold);
    const warmS = sorted(warm);
    const wakeS = sorted(wakes);
    const staticS = sorted(statics);
    const chunk = readdirSync(site.dir).find(
      (f) => f.startsWith('hearth-page-fallback-') && f.endsWith('.js'),
    );
    const kb = (path: string) => gzipSize(path) / 1024;
    const rows: BenchRow[] = [];
    for (const [p, label] of [
      [50, 'p50'],
      [90, 'p90'],
    ] as const) {
      const value = percentile(coldS, p);
      const base = percentile(warmS, p);
      rows.push({
        name: `worker cold start → first /versions answered, ${label}`,
        value,
        unit: 'ms',
        baselineName: `warm /versions ${label}`,
        baselineValue: base,
        ratio: base / value,
        note: `${COLD_STARTS} stops via DevTools; aim ≤ 150 ms`,
      });
    }
    for (const [p, label] of [
      [50, 'p50'],
      [99, 'p99'],
    ] as const) {
      const value = percentile(wakeS, p);
      const base = percentile(staticS, p);
      rows.push({
        name: `send → /sync wake through the worker, ${label}`,
        value,
        unit: 'ms',
        baselineName: `static file fetch ${label}`,
        baselineValue: base,
        ratio: base / value,
        note: `${WAKES} messages after ${WAKE_WARMUP} unmeasured, each followed by the static fetch; aim ≤ ${p === 50 ? 12 : 30} ms`,
      });
    }
    for (const [name, value] of [
      ['a send (PUT …/send), through the worker', parts.send],
      ['incremental /sync with one new message, timeout 0', parts.one],
      ['incremental /sync with nothing new, timeout 0', parts.empty],
    ] as const) {
      rows.push({
        name: `where a wake goes: ${name}, p50`,
        value,
        unit: 'ms',
        baselineName: 'warm /versions through the worker, p50',
        baselineValue: parts.versions,
        ratio: parts.versions / value,
        note: `${PART_ROUNDS} of each, interleaved`,
      });
    }
    const strictS = sorted(strict.wakes);
    rows.push({
      name: "send → /sync wake, p50, with durability 'strict'",
      value: percentile(strictS, 50),
      unit: 'ms',
      baselineName: "the same with 'relaxed' (default)",
      baselineValue: percentile(wakeS, 50),
      ratio: percentile(wakeS, 50) / percentile(strictS, 50),
      note: `${STRICT_WAKES} messages; every commit flushed to disk`,
    });
    for (const [name, value, base, baseName] of [
      ['upload 1 MiB through the worker', media.upload, media.put, 'page IndexedDB put of the Blob'],
      ['download 1 MiB through the worker', media.download, media.get, 'page IndexedDB get + read'],
    ] as const) {
      rows.push({
        name: `media: ${name}`,
        value: 1000 / value,
        unit: 'MiB/s',
        baselineName: baseName,
        baselineValue: 1000 / base,
        ratio: base / value,
        note: `${MEDIA_ROUNDS} rounds, interleaved`,
      });
    }
    rows.push(
      {
        name: 'worker bundle (hearth-sw.js), gzipped',
        value: kb(join(site.dir, 'sw.js')),
        unit: 'KB',
        note: 'aim ≤ 250 KB',
      },
      {
        name: 'page bundle (hearth-page.js), gzipped',
        value: kb(join(site.dir, 'hearth-page.js')),
        unit: 'KB',
      },
    );
    if (chunk) {
      rows.push({
        name: 'in-page fallback chunk (loaded without SW), gzipped',
        value: kb(join(site.dir, chunk)),
        unit: 'KB',
      });
    }
    return rows;
  } finally {
    await browser.close();
    site.remove();
  }
}

if (import.meta.main) {
  printTable('browser: the Service Worker homeserver in headless Chromium', await browserBench());
}
