/**
 * The WASI 0.2 HTTP component's entry (built by wasm-bindings/build.ts with componentize-js,
 * exporting `wasi:http/incoming-handler@0.2.10` through StarlingMonkey's fetch event): each
 * request goes to `hs.fetch`. What the component reaches is its WIT world
 * (`wasm-bindings/wit/world.wit`): the host's SQLite database behind the same `SqlDriver` as
 * every SQLite backend, PBKDF2, and the settings of `config.ts`.
 *
 * Why host storage and not memory: a StarlingMonkey instance answers one request only
 * (bytecodealliance/StarlingMonkey#247: a reused instance fails its second fetch event), so
 * hosts give each request a fresh instance and memory does not outlive a request. Everything
 * durable therefore lives in the host's database; what Hearth keeps only in memory (typing
 * notices, presence, rate-limit buckets, the /sync notifier) lasts one request here, and a
 * long-poll /sync is capped at `HEARTH_MAX_SYNC_TIMEOUT` (default 1 s here): it cannot be
 * woken by another instance's event, so clients poll instead.
 *
 * Nothing runs at module top level but the listener: componentize-js snapshots the module at
 * build time, when no host is there to ask.
 */

// First, and alone (a side-effect import, which import sorting leaves in place): it must be
// evaluated before any module that asks for randomness as it loads.
import './wasi-prelude.ts';
import * as host from 'hearth:homeserver/host';
import { createHomeserver, type Homeserver } from '../server.ts';
import { createStore } from '../storage/create-store.ts';
import { type SqlDriver, SqliteEngine, type SqlRow, type SqlValue } from '../storage/sqlite/engine.ts';
import { homeserverOptions, misconfigured, readHostConfig } from './host-config.ts';
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

/**
 * StarlingMonkey's WebCrypto has no PBKDF2: password hashing (the homeserver's
 * `crypto.subtle` calls, unchanged) goes to the host's native PBKDF2-SHA-512 instead.
 */
function hostPbkdf2(subtle: SubtleCrypto): void {
  const passwords = new WeakMap<object, Uint8Array>();
  const importKey = subtle.importKey.bind(subtle);
  // StarlingMonkey has no deriveBits at all.
  const deriveBits: SubtleCrypto['deriveBits'] = subtle.deriveBits
    ? subtle.deriveBits.bind(subtle)
    : () => Promise.reject(new DOMException('deriveBits is not supported', 'NotSupportedError'));
  const isPbkdf2 = (algorithm: unknown) =>
    algorithm === 'PBKDF2' || (algorithm as { name?: unknown })?.name === 'PBKDF2';
  Object.assign(subtle, {
    importKey(
      format: string,
      data: BufferSource,
      algorithm: unknown,
      extractable: boolean,
      usages: string[],
    ) {
      if (format !== 'raw' || !isPbkdf2(algorithm))
        return (importKey as (...args: unknown[]) => Promise<CryptoKey>)(
          format,
          data,
          algorithm,
          extractable,
          usages,
        );
      const key = { type: 'secret', algorithm: { name: 'PBKDF2' }, extractable: false, usages };
      passwords.set(key, new Uint8Array(ArrayBuffer.isView(data) ? data.buffer.slice(0) : data.slice(0)));
      return Promise.resolve(key);
    },
    deriveBits(algorithm: Pbkdf2Params, key: CryptoKey, length: number) {
      const password = passwords.get(key);
      if (!password || !isPbkdf2(algorithm)) return deriveBits(algorithm, key, length);
      const hash = typeof algorithm.hash === 'string' ? algorithm.hash : algorithm.hash.name;
      if (hash !== 'SHA-512')
        return Promise.reject(new Error(`PBKDF2 with ${hash} is not offered by the host`));
      const salt = new Uint8Array(
        ArrayBuffer.isView(algorithm.salt) ? algorithm.salt.buffer.slice(0) : algorithm.salt.slice(0),
      );
      const bytes = host.pbkdf2Sha512(password, salt, algorithm.iterations, length / 8);
      return Promise.resolve(new Uint8Array(bytes).buffer);
    },
  });
}

let homeserver: Homeserver | undefined;
let refuse: (() => Response) | undefined;

function start(): Homeserver | undefined {
  if (homeserver || refuse) return homeserver;
  running();
  try {
    hostPbkdf2(crypto.subtle);
    const config = readHostConfig(Object.fromEntries(host.settings()));
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

addEventListener('fetch', (event) => {
  const { request } = event as FetchEvent;
  (event as FetchEvent).respondWith(
    (async () => {
      const hs = start();
      return hs ? hs.fetch(request) : (refuse as () => Response)();
    })(),
  );
});
