/**
 * `npm run bench edge` — the edge hosts over loopback HTTP, each beside a bare hello-world
 * handler on the same runtime measured in the same run: workerd (miniflare), Deno, Bun and the
 * WASI component under `jco serve`. Per host: requests/s of `GET /versions` and of a message
 * send (`PUT …/send/m.room.message/{txnId}`, one at a time), and the send → /sync wake latency
 * (a long-poll parked, then a message sent; from the send to the /sync answer) beside one
 * hello-world round trip. For the component, also its size and cold start.
 *
 * Rate limits are raised for the run (HEARTH_RATE_LIMITS): the figures are the server's, not
 * the limiter's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { bundleWorkerd } from '../scripts/edge-build.ts';
import { parseJson } from '../src/core/json.ts';
import { freePort } from '../test/e2e/serve.ts';
import {
  bunHost,
  denoHost,
  jcoServe,
  startHostProcess,
  startWorkerd,
  stopHostProcess,
} from '../test/edge/processes.ts';
import { buildComponent } from '../wasm-bindings/build.ts';
import { type BenchRow, medianMs, rates2 } from './harness.ts';

const UNLIMITED = 'login=1000/1000,register=1000/1000,message=100000/100000,default=100000/100000';

interface Target {
  host: string;
  url: string;
  helloUrl: string;
  stop(): Promise<void>;
}

type Json = Record<string, unknown>;

async function call(url: string, method: string, path: string, body?: Json, token?: string): Promise<Json> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok && response.status !== 401)
    throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return parseJson(text) as Json;
}

async function register(url: string, username: string): Promise<string> {
  const body = { username, password: 'bench password 1' };
  const first = await call(url, 'POST', '/_matrix/client/v3/register', body);
  const done = await call(url, 'POST', '/_matrix/client/v3/register', {
    ...body,
    auth: { type: 'm.login.dummy', session: first.session },
  });
  return done.access_token as string;
}

const drain = (response: Response) => response.arrayBuffer();

async function measure(target: Target): Promise<BenchRow[]> {
  const { url, helloUrl, host } = target;
  const hello = () => fetch(helloUrl).then(drain);
  const alice = await register(url, 'alice');
  const bob = await register(url, 'bob');
  const room = (await call(url, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice))
    .room_id as string;
  await call(url, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {}, bob);
  const sendPath = () =>
    `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/${Math.random().toString(36).slice(2)}`;
  const send = () => call(url, 'PUT', sendPath(), { msgtype: 'm.text', body: 'bench' }, alice);

  const [versions, helloRate] = await rates2(
    () => fetch(`${url}/_matrix/client/versions`).then(drain),
    hello,
    3000,
    6,
  );
  const [sends, helloRate2] = await rates2(send, hello, 3000, 6);

  // send → /sync wake: Bob's long-poll is parked first, then Alice sends.
  let since = (await call(url, 'GET', '/_matrix/client/v3/sync?timeout=0', undefined, bob))
    .next_batch as string;
  // A host whose /sync does not wait (the component under jco serve) answers the parked one
  // at once: the client polls again, and the figure is send → the first /sync showing it.
  const syncFrom = (from: string) =>
    call(url, 'GET', `/_matrix/client/v3/sync?timeout=20000&since=${from}`, undefined, bob);
  const shows = (body: Json) =>
    (
      body.rooms as { join?: Record<string, { timeline?: { events?: { type: string }[] } }> } | undefined
    )?.join?.[room]?.timeline?.events?.some((event) => event.type === 'm.room.message') === true;
  const wakes: number[] = [];
  for (let i = 0; i < 7; i++) {
    let sync = syncFrom(since);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = performance.now();
    await send();
    for (;;) {
      const body = await sync;
      since = body.next_batch as string;
      if (shows(body)) break;
      sync = syncFrom(since);
    }
    wakes.push(performance.now() - started);
  }
  wakes.sort((a, b) => a - b);
  const wake = wakes[Math.floor(wakes.length / 2)] as number;
  const helloMs = await medianMs(hello, 7);
  return [
    {
      name: `${host}: GET /versions`,
      value: versions,
      unit: 'req/s',
      baselineName: 'hello world',
      baselineValue: helloRate,
      ratio: versions / helloRate,
    },
    {
      name: `${host}: message send`,
      value: sends,
      unit: 'req/s',
      baselineName: 'hello world',
      baselineValue: helloRate2,
      ratio: sends / helloRate2,
    },
    {
      name: `${host}: send → /sync wake (median)`,
      value: wake,
      unit: 'ms',
      baselineName: 'hello round trip',
      baselineValue: helloMs,
      ratio: helloMs / wake,
    },
  ];
}

const HELLO_WORKER = "export default { fetch() { return new Response('hello'); } };";

async function workerd(root: string): Promise<Target> {
  const bundle = await bundleWorkerd(join(root, 'workerd'));
  const server = await startWorkerd(bundle.file, join(root, 'workerd-data'), {
    HEARTH_SERVER_NAME: 'bench.test',
    HEARTH_REGISTRATION: 'open',
    HEARTH_RATE_LIMITS: UNLIMITED,
  });
  const hello = new Miniflare({ modules: true, script: HELLO_WORKER, host: '127.0.0.1', port: 0 });
  return {
    host: 'workerd',
    url: server.url,
    helloUrl: (await hello.ready).origin,
    stop: async () => {
      await server.stop();
      await hello.dispose();
    },
  };
}

/** Prints the line `startHostProcess` waits for, with the port bound. */
const ANNOUNCE = "console.log('Point a Matrix client at http://127.0.0.1:' + port)";
const HELLO_DENO = `Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: ({ port }) => ${ANNOUNCE} }, () => new Response('hello'));`;
const HELLO_BUN = `const { port } = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('hello') }); ${ANNOUNCE};`;

const bin = (name: string) => join(process.cwd(), 'node_modules', '.bin', name);

async function runtime(root: string, name: 'Deno' | 'Bun'): Promise<Target> {
  const env = {
    HEARTH_SERVER_NAME: 'bench.test',
    HEARTH_PORT: '0',
    HEARTH_DATA: join(root, name),
    HEARTH_REGISTRATION: 'open',
    HEARTH_RATE_LIMITS: UNLIMITED,
  };
  const server = await (name === 'Deno' ? denoHost(env) : bunHost(env));
  const hello = await (name === 'Deno'
    ? startHostProcess(bin('deno'), ['eval', HELLO_DENO], {})
    : startHostProcess(bin('bun'), ['-e', HELLO_BUN], {}));
  return {
    host: name,
    url: server.url,
    helloUrl: hello.url,
    stop: async () => {
      await stopHostProcess(server.child);
      await stopHostProcess(hello.child);
    },
  };
}

async function wasi(root: string, rows: BenchRow[]): Promise<Target> {
  const [hearth, hello] = [
    await buildComponent(join(root, 'wasi'), 'hearth'),
    await buildComponent(join(root, 'wasi'), 'hello'),
  ];
  rows.push({
    name: 'WASI component: size',
    value: hearth.bytes / 1024 / 1024,
    unit: 'MiB',
    baselineName: 'hello-world component',
    baselineValue: hello.bytes / 1024 / 1024,
    ratio: hello.bytes / hearth.bytes,
    note: `bundled JS ${(hearth.bundleBytes / 1024).toFixed(0)} KiB`,
  });
  const env = {
    HEARTH_SERVER_NAME: 'bench.test',
    HEARTH_REGISTRATION: 'open',
    HEARTH_DATA: join(root, 'wasi-data'),
    HEARTH_FEDERATION: 'off',
    HEARTH_RATE_LIMITS: UNLIMITED,
  };
  const started = performance.now();
  const server = await jcoServe(hearth.wasm, await freePort(), env);
  const serverStart = performance.now() - started;
  const helloStarted = performance.now();
  const helloServer = await jcoServe(hello.wasm, await freePort(), {});
  const helloStart = performance.now() - helloStarted;
  rows.push({
    name: 'WASI component: cold start (jco serve started to its first answer)',
    value: serverStart,
    unit: 'ms',
    baselineName: 'hello-world component',
    baselineValue: helloStart,
    ratio: helloStart / serverStart,
  });
  // Every request is a fresh instance: one request's time is the instance's cold start.
  const first = await medianMs(() => fetch(`${server.url}/_matrix/client/versions`).then(drain), 7);
  const firstHello = await medianMs(() => fetch(helloServer.url).then(drain), 7);
  rows.push({
    name: 'WASI component: a request after start (fresh instance), GET /versions',
    value: first,
    unit: 'ms',
    baselineName: 'hello-world instance',
    baselineValue: firstHello,
    ratio: firstHello / first,
  });
  return {
    host: 'WASI (jco serve)',
    url: server.url,
    helloUrl: helloServer.url,
    stop: async () => {
      await stopHostProcess(server.child);
      await stopHostProcess(helloServer.child);
    },
  };
}

/** `hosts`: some of workerd, deno, bun, wasi (`npm run bench edge deno bun`); default all. */
export async function edgeBench(hosts: readonly string[] = []): Promise<BenchRow[]> {
  const root = mkdtempSync(join(tmpdir(), 'hearth-bench-edge-'));
  const rows: BenchRow[] = [];
  try {
    const all: [string, () => Promise<Target>][] = [
      ['workerd', () => workerd(root)],
      ['deno', () => runtime(root, 'Deno')],
      ['bun', () => runtime(root, 'Bun')],
      ['wasi', () => wasi(root, rows)],
    ];
    const starts = all
      .filter(([name]) => hosts.length === 0 || hosts.includes(name))
      .map(([, start]) => start);
    for (const start of starts) {
      const target = await start();
      try {
        rows.push(...(await measure(target)));
      } finally {
        await target.stop();
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
