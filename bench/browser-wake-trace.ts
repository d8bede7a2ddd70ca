/**
 * Where a send → /sync wake through the Service Worker goes (`node bench/browser-wake-trace.ts`;
 * `SAMPLES=n` traced after `WARMUP=n` not, `SHOW=n` samples printed request by request, `STACKS=1` with a stack each).
 * A diagnostic beside bench/browser.ts, not part of `npm run bench`: the worker's IndexedDB
 * and fetch-event calls are wrapped from outside (Playwright's `evaluate` in the worker), in
 * the shipped worker bundle built unminified (readable stacks); each phase is timed on one clock
 * (`performance.timeOrigin + now()`, page and worker alike), relative to the page's send:
 *
 * - the send's fetch event (dispatch lag), its read transaction (requests, commit), its event
 *   signed (WebCrypto), its write transaction (first answer, complete), the woken /sync pass's
 *   read transaction (created, first and last answer), each response resolved in the worker
 *   and seen by the page; the worker's own time in IndexedDB calls;
 * - the wake as ten steps one after the other, each with its p50 and share of the time;
 * - per sample: transactions and requests, and how many rounds of requests each waited for
 *   (a round: requests issued before an answer to the first of them; approximate, as the
 *   worker's clock ticks in 0.1 ms).
 */
import { build } from 'vite';
import { buildTestSite, launch } from '../test/browser/testing-sw.ts';
import { workerBundleConfig } from '../vite.config.ts';
import { setUpUsers, wakeSamples } from './browser.ts';

const SAMPLES = Number(process.env.SAMPLES ?? 60);
/** Wakes run before the traced ones, as bench/browser.ts does (state hints, caches, optimised code). */
const WARMUP = Number(process.env.WARMUP ?? 20);
const SHOW = Number(process.env.SHOW ?? 1);

interface Entry {
  k: 'tx' | 'req' | 'commit' | 'fetch' | 'sign';
  id?: number;
  mode?: string;
  stores?: number;
  requests?: number;
  op?: string;
  store?: string;
  stack?: string;
  method?: string;
  url?: string;
  dispatched?: number;
  /** Milliseconds spent in the IndexedDB call itself (creating the transaction, issuing the request). */
  made?: number;
  start: number;
  end: number;
}

/** Runs in the worker: wraps IndexedDB and `FetchEvent.respondWith` to log into `__wakeLog`. */
function instrument(stacks: boolean) {
  const g = globalThis as unknown as { __wakeLog: Entry[] };
  g.__wakeLog = [];
  const log = g.__wakeLog;
  const now = () => performance.timeOrigin + performance.now();
  let ids = 0;
  const meta = new WeakMap<IDBTransaction, { id: number; requests: number }>();
  const open = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (
    this: IDBDatabase,
    ...args: Parameters<IDBDatabase['transaction']>
  ) {
    const start = now();
    const trans = open.apply(this, args);
    const made = now() - start;
    const info = { id: ++ids, requests: 0 };
    meta.set(trans, info);
    const stores = Array.isArray(args[0]) ? args[0].length : 1;
    trans.addEventListener('complete', () =>
      log.push({
        k: 'tx',
        id: info.id,
        mode: trans.mode,
        stores,
        requests: info.requests,
        made,
        start,
        end: now(),
      }),
    );
    return trans;
  } as IDBDatabase['transaction'];
  const commit = IDBTransaction.prototype.commit;
  IDBTransaction.prototype.commit = function (this: IDBTransaction) {
    const at = now();
    log.push({ k: 'commit', id: meta.get(this)?.id ?? 0, mode: this.mode, start: at, end: at });
    return commit.call(this);
  };
  const ops = ['get', 'getAll', 'getAllKeys', 'getAllRecords', 'put', 'add', 'delete', 'openCursor', 'count'];
  for (const proto of [IDBObjectStore.prototype, IDBIndex.prototype] as unknown as Record<
    string,
    unknown
  >[]) {
    for (const op of ops) {
      const original = proto[op] as ((...a: unknown[]) => IDBRequest) | undefined;
      if (typeof original !== 'function') continue;
      proto[op] = function (this: IDBObjectStore | IDBIndex, ...a: unknown[]) {
        const trans = 'transaction' in this ? this.transaction : (this as IDBIndex).objectStore.transaction;
        const info = meta.get(trans);
        if (info) info.requests++;
        const start = now();
        const request = original.apply(this, a);
        const made = now() - start;
        const stack = stacks ? (new Error().stack ?? '').split('\n').slice(3, 10).join(' < ') : undefined;
        const store = this.name;
        request.addEventListener('success', () =>
          log.push({
            k: 'req',
            id: info?.id ?? 0,
            op,
            store,
            made,
            start,
            end: now(),
            ...(stack ? { stack } : {}),
          }),
        );
        return request;
      };
    }
  }
  // WebCrypto's Ed25519 signing: a job on another thread, answered in a later task.
  const sign = SubtleCrypto.prototype.sign;
  SubtleCrypto.prototype.sign = function (this: SubtleCrypto, ...a: Parameters<SubtleCrypto['sign']>) {
    const start = now();
    const signed = sign.apply(this, a);
    void signed.then(() => log.push({ k: 'sign', start, end: now() }));
    return signed;
  };
  const respondWith = FetchEvent.prototype.respondWith;
  FetchEvent.prototype.respondWith = function (this: FetchEvent, response: Response | Promise<Response>) {
    const start = now();
    const { method } = this.request;
    const url = new URL(this.request.url).pathname;
    const dispatched = performance.timeOrigin + this.timeStamp;
    void Promise.resolve(response).then(() =>
      log.push({ k: 'fetch', method, url, dispatched, start, end: now() }),
    );
    return respondWith.call(this, response);
  };
}

/** The steps of a wake, one after the other: each ends at the time `steps` holds for it. */
const STEPS = [
  'page → worker: the send fetch event dispatched',
  'routing, token lookup issued (shared read created)',
  'token lookup answered (auth round)',
  "handler up to the send's snapshot issued",
  "snapshot answered (the send's reads round)",
  'event built and signed, write created',
  'write: waits on the read, counters read, rows issued, commit asked',
  'commit: asked → complete',
  "woken pass's reads (queued behind the write) answered, /sync built",
  '/sync answer: worker → page (read and parsed)',
];

/** The send's read transaction's first request, first answer, first request of the next round, last answer. */
function readRequests(read: Entry | undefined, of: (t: Entry | undefined) => Entry[]) {
  const requests = of(read).sort((a, b) => a.start - b.start);
  const first = requests[0];
  if (!first) return undefined;
  const firstAnswer = Math.min(...requests.map((r) => r.end));
  const second = requests.find((r) => r.start > firstAnswer);
  if (!second) return undefined;
  return { first, firstAnswer, second, answered: Math.max(...requests.map((r) => r.end)) };
}

/** Rounds of requests: one issued after an answer to the current round starts the next. */
function rounds(requests: Entry[]): number {
  let count = 0;
  let firstAnswer = Number.NEGATIVE_INFINITY;
  for (const r of [...requests].sort((a, b) => a.start - b.start)) {
    // Clocks tick in 0.1 ms here: a request issued in the same tick as an answer is of its round.
    if (r.start > firstAnswer) {
      count++;
      firstAnswer = r.end;
    } else firstAnswer = Math.min(firstAnswer, r.end);
  }
  return count;
}

const site = await buildTestSite(false);
// Function names readable in stacks: the same worker, not minified.
const config = workerBundleConfig({ outDir: site.dir, keepOutDir: true, fileName: 'sw.js' });
await build({ ...config, build: { ...config.build, minify: false }, logLevel: 'error' });
const browser = await launch(site);
try {
  const page = await browser.open();
  const users = await setUpUsers(page);
  const worker = browser.context.serviceWorkers()[0];
  if (!worker) throw new Error('no Service Worker');
  await wakeSamples(page, users, WARMUP);
  await worker.evaluate(instrument, process.env.STACKS === '1');

  // bench/browser.ts's wakes: a long-poll, then a send; the time until the poll answers with it.
  const samples = (await wakeSamples(page, users, SAMPLES)).times;
  const log = (await worker.evaluate(
    () => (globalThis as unknown as { __wakeLog: Entry[] }).__wakeLog,
  )) as Entry[];

  const ms = (x: number) => x.toFixed(1);
  /** Per sample, the times (after the send) at which each step of `STEPS` ends. */
  const steps: number[][] = [];
  const phases = new Map<string, number[]>();
  const add = (name: string, value: number) => {
    const list = phases.get(name) ?? [];
    list.push(value);
    phases.set(name, list);
  };
  for (const [n, s] of samples.entries()) {
    const at = (t: number) => t - s.start;
    const seen = log
      .filter((e) => e.end >= s.start - 1 && e.start <= s.woke + 1)
      .sort((a, b) => a.start - b.start);
    const txs = seen.filter((e) => e.k === 'tx');
    const reqs = seen.filter((e) => e.k === 'req');
    const send = seen.find((e) => e.k === 'fetch' && e.method === 'PUT');
    const sync = seen.filter((e) => e.k === 'fetch' && e.method === 'GET').at(-1);
    const write = txs.find((t) => t.mode === 'readwrite');
    const read = txs.find((t) => t.mode === 'readonly' && (!write || t.start < write.start));
    // The woken pass's: the first read made after the write (queued behind it once it asks
    // to commit, or made after it ended).
    const pass = write && txs.find((t) => t.mode === 'readonly' && t.start > write.start);
    const commitAsked = write && seen.find((e) => e.k === 'commit' && e.id === write.id);
    const of = (t: Entry | undefined) => reqs.filter((r) => t && r.id === t.id);
    add('wake (page: send asked → /sync answered)', at(s.woke));
    const path = readRequests(read, of);
    if (send?.dispatched !== undefined && path && write && commitAsked && sync) {
      steps.push(
        [
          send.dispatched,
          path.first.start,
          path.firstAnswer,
          path.second.start,
          path.answered,
          write.start,
          commitAsked.start,
          write.end,
          sync.end,
          s.woke,
        ].map(at),
      );
    }
    if (send?.dispatched !== undefined) add('send fetch event dispatched', at(send.dispatched));
    if (send) add("send's respondWith called", at(send.start));
    if (read) {
      if (path) {
        add("send's first read issued", at(path.first.start));
        add("send's first read answered", at(path.firstAnswer));
        add("send's second round issued", at(path.second.start));
      }
      add("send's reads answered", Math.max(...of(read).map((r) => at(r.end))));
      add("send's read transaction complete", at(read.end));
      add("send's read rounds", rounds(of(read)));
    }
    const signing = seen.find((e) => e.k === 'sign');
    if (signing) {
      add('event signing asked', at(signing.start));
      add('event signed', at(signing.end));
    }
    if (write) {
      add('write transaction created', at(write.start));
      add("write's first answer", Math.min(...of(write).map((r) => at(r.end))));
      if (commitAsked) add('write asked to commit', at(commitAsked.start));
      add('write transaction complete', at(write.end));
      add('write rounds', rounds(of(write)));
    }
    if (pass) {
      add("woken pass's read transaction created", at(pass.start));
      add("woken pass's first answer", Math.min(...of(pass).map((r) => at(r.end))));
      add("woken pass's last answer", Math.max(...of(pass).map((r) => at(r.end))));
      add("woken pass's rounds", rounds(of(pass)));
      add("woken pass's requests", of(pass).length);
    }
    if (send) {
      add('send answered in the worker', at(send.end));
      add('send: worker answer → page', s.sent - send.end);
    }
    if (sync) add('/sync answered in the worker', at(sync.end));
    add('/sync: worker answer → page', s.woke - (sync?.end ?? s.woke));
    add('transactions', txs.length);
    // The worker's own time in IndexedDB calls (the calls return before any answer).
    const inCalls = (list: Entry[]) => list.reduce((sum, e) => sum + (e.made ?? 0), 0);
    add('ms in transaction() calls', inCalls(txs));
    add('ms issuing requests', inCalls(reqs));
    add('requests', reqs.length);
    if (n < SHOW) {
      console.log(
        `\nsample ${n}: wake ${ms(at(s.woke))} ms, send answered in the page at +${ms(at(s.sent))}`,
      );
      for (const e of seen) {
        if (e.k === 'fetch')
          console.log(
            `  fetch ${e.method} ${e.url?.slice(0, 40)} dispatched +${ms(at(e.dispatched ?? e.start))} answered +${ms(at(e.end))}`,
          );
        else if (e.k === 'tx')
          console.log(
            `  tx#${e.id} ${e.mode} over ${e.stores} stores, ${e.requests} requests: +${ms(at(e.start))} → complete +${ms(at(e.end))}`,
          );
        else if (e.k === 'commit') console.log(`    commit tx#${e.id} +${ms(at(e.start))}`);
        else if (e.k === 'sign') console.log(`  sign +${ms(at(e.start))} → +${ms(at(e.end))}`);
        else
          console.log(
            `    tx#${e.id} ${e.op} ${e.store} +${ms(at(e.start))} → +${ms(at(e.end))}${e.stack ? `  ${e.stack}` : ''}`,
          );
      }
    }
  }
  console.log(`\n${SAMPLES} wakes; milliseconds after the page's send (counts as they are):`);
  for (const [name, values] of phases) {
    const sorted = [...values].sort((a, b) => a - b);
    const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
    console.log(`  ${name.padEnd(44)} p50 ${ms(p(0.5)).padStart(6)}   p90 ${ms(p(0.9)).padStart(6)}`);
  }
  // Each step's time (from the end of the one before), and its share of the summed wakes.
  const total = steps.reduce((sum, times) => sum + (times.at(-1) as number), 0);
  console.log(
    `\nthe wake step by step (${steps.length} wakes with every step seen): p50 ms, share of the time`,
  );
  for (const [i, name] of STEPS.entries()) {
    const spans = steps.map((times) => (times[i] as number) - (i === 0 ? 0 : (times[i - 1] as number)));
    const sorted = [...spans].sort((a, b) => a - b);
    const share = spans.reduce((sum, x) => sum + x, 0) / total;
    const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0;
    console.log(`  ${name.padEnd(72)} ${ms(p50).padStart(5)}  ${(share * 100).toFixed(0).padStart(3)}%`);
  }
} finally {
  await browser.close();
  site.remove();
}
