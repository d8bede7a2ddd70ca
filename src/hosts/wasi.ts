/**
 * The WASI 0.2 HTTP component's entry (built by wasm-bindings/build.ts with componentize-js,
 * exporting `wasi:http/incoming-handler@0.2.10` through StarlingMonkey's fetch event): each
 * request goes to `hs.fetch`. What the component reaches is its WIT world
 * (`wasm-bindings/wit/world.wit`): the host's SQLite database behind the same `SqlDriver` as
 * every SQLite backend, PBKDF2 and Ed25519 (wasi-crypto.ts), and the settings of `config.ts`.
 *
 * Why host storage and not memory: a StarlingMonkey instance answers one request only
 * (bytecodealliance/StarlingMonkey#247: a reused instance fails its second fetch event), so
 * hosts give each request a fresh instance and memory does not outlive a request. Everything
 * durable therefore lives in the host's database; what Hearth keeps only in memory (typing
 * notices, presence, rate-limit buckets, the /sync notifier) lasts one request here, and a
 * long-poll /sync is capped at `HEARTH_MAX_SYNC_TIMEOUT` (default 1 s here; 0 under `jco serve`,
 * which answers one request at a time): it cannot be woken by another instance's event, so
 * clients poll instead.
 *
 * Nothing runs at module top level but the listener and pure computation (noble's tables):
 * componentize-js snapshots the module at build time, when no host is there to ask.
 */

// First, and alone (a side-effect import, which import sorting leaves in place): it must be
// evaluated before any module that asks for randomness as it loads.
import './wasi-prelude.ts';
import * as host from 'hearth:homeserver/host';
import { nobleEd25519 } from '../core/crypto.ts';
import { createHomeserver, type Homeserver } from '../server.ts';
import { createStore } from '../storage/create-store.ts';
import { type SqlDriver, SqliteEngine, type SqlRow, type SqlValue } from '../storage/sqlite/engine.ts';
import { homeserverOptions, misconfigured, readHostConfig } from './host-config.ts';
import { installHostCrypto } from './wasi-crypto.ts';
import { running } from './wasi-prelude.ts';

/** Default longest /sync wait: no other instance can wake this one (see above). */
const SYNC_POLL_MS = 1_000;

function toHost(value: SqlValue): host.SqlValue {
  if (value === null) return { tag: 'null' };
  if (typeof value === 'string') return { tag: 'text', val: value };
  if (value instanceof Uint8Array) return { tag: 'blob', val: value };
  return Number.isSafeInteger(value) ? { tag: 'integer', val: BigInt(value) } : { tag: 'real', val: value };
}

function fromHost(value: host.SqlValue): SqlValue {
  switch (value.tag) {
    case 'null':
      return null;
    case 'integer':
      return Number(value.val);
    case 'blob':
      return new Uint8Array(value.val);
    default:
      return value.val;
  }
}

/** A host `sql-error` as the engine expects SQLite errors: `errcode`, `code`. */
function sqlError(error: unknown): unknown {
  const payload = (error as { payload?: host.SqlError })?.payload;
  if (!payload) return error;
  return Object.assign(new Error(payload.message), { errcode: payload.code, code: 'ERR_SQLITE_ERROR' });
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw sqlError(error);
  }
}

const rows = (sql: string, params: readonly SqlValue[]): SqlRow[] =>
  call(() => host.query(sql, params.map(toHost))).map((row) => {
    const out: SqlRow = {};
    for (const [name, value] of row) out[name] = fromHost(value);
    return out;
  });

const hostDriver: SqlDriver = {
  exec: (sql) => call(() => host.exec(sql)),
  all: rows,
  iterate: rows,
  run: (sql, params) => call(() => host.run(sql, params.map(toHost))),
  begin: (mode) => call(() => host.begin(mode === 'write')),
  commit: () => call(() => host.commit()),
  rollback: () => host.rollback(),
  // The host's connection lives as long as the host, not this instance.
  close: () => {},
};

let homeserver: Homeserver | undefined;
let refuse: (() => Response) | undefined;

function start(): Homeserver | undefined {
  if (homeserver || refuse) return homeserver;
  running();
  try {
    installHostCrypto(crypto.subtle);
    const settings = Object.fromEntries(host.settings());
    timing = settings.HEARTH_WASI_TIMING === '1';
    const config = readHostConfig(settings);
    homeserver = createHomeserver(
      homeserverOptions({ ...config, maxSyncTimeoutMs: config.maxSyncTimeoutMs ?? SYNC_POLL_MS }, async () =>
        createStore(await SqliteEngine.open(hostDriver)),
      ),
    );
  } catch (error) {
    refuse = misconfigured(error);
  }
  return homeserver;
}

interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}

// Built into the snapshot: noble's table of base-point multiples (made on its first use, and
// in an interpreter the dearest step of deriving a public key), so no instance makes it again.
void nobleEd25519.signer(new Uint8Array(32));

/**
 * With `HEARTH_WASI_TIMING=1`, one line per request on stderr: the milliseconds of
 * `createHomeserver`, of its start (store opened, signing key derived) and of `hs.fetch`.
 */
let timing = false;

async function respond(request: Request): Promise<Response> {
  const started = Date.now();
  const hs = start();
  if (!hs) return (refuse as () => Response)();
  if (!timing) return hs.fetch(request);
  const created = Date.now();
  await hs.ready.catch(() => undefined);
  const ready = Date.now();
  const response = await hs.fetch(request);
  const path = new URL(request.url).pathname;
  console.error(
    `[hearth-timing] ${request.method} ${path} create=${created - started} start=${ready - created} fetch=${Date.now() - ready}`,
  );
  return response;
}

addEventListener('fetch', (event) => {
  (event as FetchEvent).respondWith(respond((event as FetchEvent).request));
});
