/**
 * `npm run bench` — every benchmark table. Figures are rates or times measured in this
 * run; ratios against the raw primitive beside them are what to compare across runs.
 */
import { printScaling, printTable } from './harness.ts';

const only = process.argv[2];
// Each table's modules are loaded when it runs: `npm run bench core` holds only what the core
// rows use (a server-sized heap of ~12 MB, not the ~75 MB of every table's modules, in which
// V8 grows the young generation and a signing loop's scavenges take tens of milliseconds).

console.log(`Hearth benchmarks — Node ${process.version}, ${new Date().toISOString()}`);
if (!only || only === 'core')
  printTable(
    'core: signing, verifying, canonical JSON, state resolution',
    await (await import('./core.ts')).coreBench(),
  );
if (!only || only === 'json')
  printTable(
    'json: the exact decoder beside raw JSON.parse on the same texts',
    (await import('./json.ts')).jsonBench(),
  );
if (!only || only === 'storage')
  printTable(
    'storage: persist and read, each backend beside its raw rate',
    await (await import('./storage.ts')).storageBench(),
  );
if (!only || only === 'homeserver')
  printTable(
    'homeserver: send, /sync wake, initial /sync, sliding sync — in-process and loopback HTTP, each store',
    await (await import('./homeserver.ts')).homeserverBench(),
  );
if (!only || only === 'scaling')
  printScaling(
    'scaling: growth with members, unread, waiters, rooms (SQLite, in-process)',
    await (await import('./scaling.ts')).scalingBench(),
  );
if (!only || only === 'startup')
  printTable(
    'start-up: hearth serve beside a bare node:http server',
    await (await import('./startup.ts')).startupBench(),
  );
if (!only || only === 'media')
  printTable(
    'media: upload and download beside the store write and read of the same bytes',
    await (await import('./media.ts')).mediaBench(),
  );
if (!only || only === 'e2ee')
  printTable(
    'e2ee: key query/claim and to-device fan-out for 100 devices, beside their store calls',
    await (await import('./e2ee.ts')).e2eeBench(),
  );
if (!only || only === 'federation')
  printTable(
    'federation: inbound accept rate, outbox CPU per destination, a join of a room with 10,000 state events',
    await (await import('./federation.ts')).federationBench(),
  );
if (!only || only === 'p2p')
  printTable(
    'p2p: libp2p federation beside raw libp2p echoes on the same connections',
    await (await import('./p2p.ts')).p2pBench(),
  );
if (!only || only === 'client-api')
  printTable(
    'client-api: search index cost, search latency, relations and threads on 1,000 replies',
    await (await import('./client-api.ts')).clientApiBench(),
  );
if (!only || only === 'browser')
  printTable(
    'browser: the Service Worker homeserver in headless Chromium',
    await (await import('./browser.ts')).browserBench(),
  );
if (!only || only === 'p2p-browser')
  printTable(
    'p2p in Chromium: two pages over WebRTC through a loopback relay',
    await (await import('./p2p-browser.ts')).p2pBrowserBench(),
  );
// Builds the workerd bundle and two WASI components first (minutes): only when asked for.
if (only === 'edge')
  printTable(
    'edge: workerd, Deno, Bun and the WASI component over loopback, each beside a hello-world handler on the same host',
    await (await import('./edge.ts')).edgeBench(process.argv.slice(3)),
  );

// Every table closes what it opened, yet after a full run something a library keeps (no
// socket, file or timer of ours is left open then) has held the event loop. The tables are
// printed: name what Node still counts (stdout's own pipe or terminal aside), and end, rather
// than leave `npm run bench` hanging.
const left = process.getActiveResourcesInfo().filter((kind) => kind !== 'TTYWrap' && kind !== 'PipeWrap');
if (left.length > 0) console.error(`bench: ending with ${left.join(', ')} still open`);
process.stdout.write('', () => process.exit(0));
