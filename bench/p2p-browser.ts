/**
 * P2P between two Chromium pages (issue 11), on loopback: two browser contexts (separate
 * storage), each page running a Hearth libp2p node as the leader tab does, a `hearth relay` in
 * this process for reservations and WebRTC signalling. Each figure beside a raw libp2p echo on
 * the same kind of connection, measured in the same run:
 *
 * - set-up from nothing open to the first federation answer (a relayed circuit, WebRTC
 *   signalled over it, then the request on WebRTC), beside dialling the same WebRTC path and
 *   echoing one byte; also in round trips (÷ a ping on the connection it made);
 * - a PDU-sized request's round trip over WebRTC (`/matrix/federation/1`, one stream each, a
 *   handler that answers at once), p50/p99, beside echoing the same bytes on a fresh stream.
 *
 *   node bench/p2p-browser.ts      (or npm run bench p2p-browser)
 */
import type { Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../scripts/chromium.ts';
import { createRelay } from '../src/transport/libp2p/relay.ts';
import { nodeTransports } from '../src/transport/libp2p/transports-node.ts';
import { WEBRTC_LOOPBACK } from '../test/browser/testing-sw.ts';
import { type BenchRow, percentile, printTable } from './harness.ts';

const SETUPS = 8;
const ROUND_TRIPS = 200;
/** A PDU of a short message is ~1–2 KB on the wire. */
const PDU_BYTES = 1_500;

type Bench = {
  start(relay: string): Promise<string>;
  setUp(peer: string, kind: 'federation' | 'echo'): Promise<{ ms: number; via: string }>;
  roundTrips(peer: string, n: number, size: number): Promise<{ federation: number[]; echo: number[] }>;
  stop(): Promise<void>;
};

const call = <T>(page: Page, method: keyof Bench, ...args: unknown[]) =>
  page.evaluate(
    ([m, a]) =>
      (globalThis as unknown as { p2pBench: Record<string, (...x: unknown[]) => Promise<T>> }).p2pBench[
        m as string
      ]?.(...(a as unknown[])),
    [method, args] as const,
  ) as Promise<T>;

const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export async function p2pBrowserBench(): Promise<BenchRow[]> {
  const { createServer } = await import('vite');
  const { chromium } = await import('playwright-core');
  const relay = await createRelay({ transports: nodeTransports({ webRTC: false }) });
  const relayWs = relay.addresses().find((a) => a.includes('/ws/')) as string;
  const server = await createServer({
    root: `${import.meta.dirname}/..`,
    configFile: false,
    logLevel: 'error',
    // No file watcher: the pages are served as they are, and chokidar's watchers of the whole
    // checkout outlived `server.close()` and kept `npm run bench` from exiting.
    server: { host: '127.0.0.1', port: 0, hmr: false, watch: null },
  });
  await server.listen();
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, ...(WEBRTC_LOOPBACK.args ?? [])],
  });
  try {
    const address = server.httpServer?.address();
    if (!address || typeof address === 'string') throw new Error('vite did not listen');
    const pages: Page[] = [];
    for (let i = 0; i < 2; i++) {
      const context = await browser.newContext({ permissions: WEBRTC_LOOPBACK.permissions });
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${address.port}/bench/p2p-page.html`);
      await page.waitForFunction(() => 'p2pBench' in globalThis, undefined, { timeout: 120_000 });
      pages.push(page);
    }
    const [a, b] = pages as [Page, Page];
    await call<string>(a, 'start', relayWs);
    const bName = await call<string>(b, 'start', relayWs);

    const setups = { federation: [] as number[], echo: [] as number[] };
    const vias = new Set<string>();
    // One unmeasured round first: the first WebRTC set-up warms the browser's stack.
    await call(a, 'setUp', bName, 'federation').catch((e) => {
      throw new Error(`warm-up: ${e}`);
    });
    for (let i = 0; i < SETUPS; i++) {
      for (const kind of ['federation', 'echo'] as const) {
        // Closed connections (WebRTC, circuits, the relay's signalling streams) settle first.
        await new Promise((r) => setTimeout(r, 500));
        const { ms, via } = await call<{ ms: number; via: string }>(a, 'setUp', bName, kind).catch((e) => {
          throw new Error(`set-up ${i} ${kind}: ${e}`);
        });
        setups[kind].push(ms);
        vias.add(via);
      }
    }
    // The round trips start on a fresh connection, dialled once the last set-up's has settled
    // (one full run found the connection gone when they began at once: "no connection … in time").
    await new Promise((r) => setTimeout(r, 500));
    await call(a, 'setUp', bName, 'federation');
    const rtts = await call<{ federation: number[]; echo: number[] }>(
      a,
      'roundTrips',
      bName,
      ROUND_TRIPS,
      PDU_BYTES,
    );
    // One round trip on the open WebRTC connection: a one-byte echo on a fresh stream.
    const ping = median((await call<{ echo: number[] }>(a, 'roundTrips', bName, 21, 1)).echo);
    const fed = median(setups.federation);
    const echo = median(setups.echo);
    const sorted = (v: number[]) => [...v].sort((x, y) => x - y);
    const rows: BenchRow[] = [
      {
        name: 'Chromium↔Chromium set-up to first federation answer (relay circuit, then WebRTC)',
        value: fed,
        unit: 'ms',
        baselineName: 'the same dial + a 1-byte echo',
        baselineValue: echo,
        ratio: echo / fed,
        note: `median of ${SETUPS}; ≈ ${(fed / ping).toFixed(0)} round trips of ${ping.toFixed(2)} ms (1-byte echo on the open connection); via ${[...vias].join(', ')}`,
      },
    ];
    for (const p of [50, 99]) {
      const f = percentile(sorted(rtts.federation), p);
      const e = percentile(sorted(rtts.echo), p);
      rows.push({
        name: `PDU (${PDU_BYTES} B) federation round trip over WebRTC, p${p}`,
        value: f,
        unit: 'ms',
        baselineName: `echo of the same bytes, fresh stream, p${p}`,
        baselineValue: e,
        ratio: e / f,
        note: `${ROUND_TRIPS} each, interleaved; aim ≤ 1.5× the echo (ratio ≥ 0.67)`,
      });
    }
    for (const page of pages) await call(page, 'stop');
    return rows;
  } finally {
    await browser.close();
    await server.close();
    await relay.close();
  }
}

if (import.meta.main)
  printTable('p2p in Chromium: two pages over WebRTC through a loopback relay', await p2pBrowserBench());
