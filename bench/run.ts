/**
 * `npm run bench` — every benchmark table. Figures are rates or times measured in this
 * run; ratios against the raw primitive beside them are what to compare across runs.
 */
import { browserBench } from './browser.ts';
import { clientApiBench } from './client-api.ts';
import { coreBench } from './core.ts';
import { e2eeBench } from './e2ee.ts';
import { edgeBench } from './edge.ts';
import { federationBench } from './federation.ts';
import { printScaling, printTable } from './harness.ts';
import { homeserverBench } from './homeserver.ts';
import { jsonBench } from './json.ts';
import { mediaBench } from './media.ts';
import { p2pBench } from './p2p.ts';
import { p2pBrowserBench } from './p2p-browser.ts';
import { scalingBench } from './scaling.ts';
import { startupBench } from './startup.ts';
import { storageBench } from './storage.ts';

const only = process.argv[2];

console.log(`Hearth benchmarks — Node ${process.version}, ${new Date().toISOString()}`);
if (!only || only === 'core')
  printTable('core: signing, verifying, canonical JSON, state resolution', await coreBench());
if (!only || only === 'json')
  printTable('json: the exact decoder beside raw JSON.parse on the same texts', jsonBench());
if (!only || only === 'storage')
  printTable('storage: persist and read, each backend beside its raw rate', await storageBench());
if (!only || only === 'homeserver')
  printTable(
    'homeserver: send, /sync wake, initial /sync, sliding sync — in-process and loopback HTTP, each store',
    await homeserverBench(),
  );
if (!only || only === 'scaling')
  printScaling(
    'scaling: growth with members, unread, waiters, rooms (SQLite, in-process)',
    await scalingBench(),
  );
if (!only || only === 'startup')
  printTable('start-up: hearth serve beside a bare node:http server', await startupBench());
if (!only || only === 'media')
  printTable(
    'media: upload and download beside the store write and read of the same bytes',
    await mediaBench(),
  );
if (!only || only === 'e2ee')
  printTable(
    'e2ee: key query/claim and to-device fan-out for 100 devices, beside their store calls',
    await e2eeBench(),
  );
if (!only || only === 'federation')
  printTable(
    'federation: inbound accept rate, outbox CPU per destination, a join of a room with 10,000 state events',
    await federationBench(),
  );
if (!only || only === 'p2p')
  printTable('p2p: libp2p federation beside raw libp2p echoes on the same connections', await p2pBench());
if (!only || only === 'client-api')
  printTable(
    'client-api: search index cost, search latency, relations and threads on 1,000 replies',
    await clientApiBench(),
  );
if (!only || only === 'browser')
  printTable('browser: the Service Worker homeserver in headless Chromium', await browserBench());
if (!only || only === 'p2p-browser')
  printTable('p2p in Chromium: two pages over WebRTC through a loopback relay', await p2pBrowserBench());
// Builds the workerd bundle and two WASI components first (minutes): only when asked for.
if (only === 'edge')
  printTable(
    'edge: workerd, Deno, Bun and the WASI component over loopback, each beside a hello-world handler on the same host',
    await edgeBench(process.argv.slice(3)),
  );
