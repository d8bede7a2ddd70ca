/**
 * `hearth/sw` — the homeserver as a Service Worker. A worker script is one call:
 *
 *   import { installHomeserverWorker } from 'hearth/sw';
 *   installHomeserverWorker();
 *
 * It answers `/_matrix/*` and `/.well-known/matrix/*` on its own origin (and on any virtual
 * origins given) with `hs.fetch`, passing the request and response bodies through as
 * streams; every other request is left to the network (no `respondWith` at all).
 *
 * What it must get right (the walls Dendrite's 2020 Service Worker hit):
 * - No start-up race: the homeserver is created as the script runs and the database opens
 *   in the background; a request arriving meanwhile waits for it instead of failing.
 * - Stopped at any time: nothing lives only in memory, so a worker the browser stopped
 *   answers the next request after a cold start. A /sync long-poll ends within 25 s, so no
 *   single event outlives the browser's patience.
 * - An update keeps the data: the new worker takes over at once (`skipWaiting`,
 *   `clients.claim`) and opens the same database, which Dexie migrates to the new schema
 *   (the old worker's connection closes on `versionchange`); nothing is ever wiped.
 *
 * The server name comes from the script URL (`sw.js?server_name=…`, set by
 * `registerHomeserver`), so every restart of the worker sees the same one. The page talks to
 * the worker's controls (`HomeserverControl`) over comlink: each call posts a fresh
 * MessagePort, and the message event keeps the worker alive until the call is released.
 * `navigator.storage.persist()` exists only in pages: `registerHomeserver` asks for it.
 */
import { expose, finalizer } from 'comlink';
import { consoleLogger, type Logger, type RegistrationPolicy } from '../homeserver/context.ts';
import { createWorkerBridge } from '../transport/bridge/worker.ts';
import { type BrowserHomeserver, createBrowserHomeserver } from './browser-homeserver.ts';
import { CLAIM_MESSAGE, CONTROL_MESSAGE, isHomeserverPath } from './worker-protocol.ts';

export type { BrowserHomeserver, HomeserverControl, HomeserverStatus } from './browser-homeserver.ts';
export { isHomeserverPath } from './worker-protocol.ts';

export interface HomeserverWorkerOptions {
  /** Default: the script URL's `server_name` query parameter, else the worker's own host. */
  serverName?: string;
  /**
   * Extra origins whose Matrix requests this worker answers, e.g. `https://hearth.localhost`
   * for a client configured with that base URL. Requests to them never reach the network.
   * Default: the script URL's `origins` parameter (comma-separated).
   */
  origins?: readonly string[];
  /** Default: the script URL's `registration` parameter, else 'open'. */
  registration?: RegistrationPolicy;
  /** IndexedDB database name; default `hearth`. */
  databaseName?: string;
  /** Longest /sync long-poll, at most (and by default) 25 s. */
  maxSyncTimeoutMs?: number;
  passwordIterations?: number;
  /** IndexedDB commit durability (see `BrowserHomeserverOptions`); default the `durability` parameter, else 'relaxed'. */
  durability?: 'strict' | 'relaxed';
  /** Largest media upload in bytes; default the script URL's `max_upload_size`, else 50 MiB. */
  maxUploadBytes?: number;
  /**
   * P2P mode: federation goes through the leader tab's libp2p node (`transport/bridge`).
   * Default: the script URL's `p2p` parameter (`p2p=1`, set by `registerHomeserver`).
   */
  p2p?: boolean;
  /** Default: warnings and errors to the worker's console. */
  logger?: Logger;
}

/**
 * How long one control call may keep the worker alive. An export or import of a large
 * homeserver takes seconds; Chromium allows an event at most 5 minutes.
 */
const CONTROL_CALL_MAX_MS = 4 * 60_000;

const POLICIES: readonly string[] = ['open', 'token', 'closed'];

/**
 * A JSON answer with its body as a stream. Chromium hands a worker's response whose body is
 * a string or bytes to the page as a blob, through the browser process; a stream goes
 * straight down a data pipe. Measured (a ~600-byte answer, fetch → text in the page): p50
 * 6.3 → 4.4 ms, the same as a body built as a `ReadableStream`. Media keep their `Blob`s.
 */
function streamed(response: Response): Response {
  if (!response.body || !response.headers.get('content-type')?.startsWith('application/json'))
    return response;
  return new Response(response.body, response);
}

export function installHomeserverWorker(options: HomeserverWorkerOptions = {}): BrowserHomeserver {
  const worker = globalThis as unknown as ServiceWorkerGlobalScope;
  const params = new URL(worker.location.href).searchParams;
  const serverName = options.serverName ?? (params.get('server_name') || worker.location.host);
  const policy = options.registration ?? params.get('registration') ?? 'open';
  if (!POLICIES.includes(policy))
    throw new Error(`registration must be open, token or closed, not ${policy}`);
  const durability = options.durability ?? (params.get('durability') === 'strict' ? 'strict' : 'relaxed');
  const uploadParam = Number(params.get('max_upload_size') ?? Number.NaN);
  const maxUploadBytes =
    options.maxUploadBytes ??
    (Number.isSafeInteger(uploadParam) && uploadParam > 0 ? uploadParam : undefined);

  const p2p = options.p2p ?? params.get('p2p') === '1';
  // Federation rides on the leader tab: a worker has no WebRTC (DESIGN.md "Browser facts").
  const bridge = p2p
    ? createWorkerBridge({
        async broadcast(message) {
          for (const client of await worker.clients.matchAll({ type: 'window', includeUncontrolled: true }))
            client.postMessage(message);
        },
        inbound: (request, info) => hs.fetch(request, info),
      })
    : null;

  const hs = createBrowserHomeserver({
    ...(p2p ? { p2p } : { serverName }),
    indexedDB: worker.indexedDB,
    IDBKeyRange: globalThis.IDBKeyRange,
    registration: policy as RegistrationPolicy,
    durability,
    logger: options.logger ?? consoleLogger('warn'),
    ...(options.databaseName !== undefined ? { databaseName: options.databaseName } : {}),
    ...(options.maxSyncTimeoutMs !== undefined ? { maxSyncTimeoutMs: options.maxSyncTimeoutMs } : {}),
    ...(options.passwordIterations !== undefined ? { passwordIterations: options.passwordIterations } : {}),
    ...(maxUploadBytes !== undefined ? { maxUploadBytes } : {}),
    ...(bridge ? { federation: { transport: bridge.transport } } : {}),
  });
  const extra = options.origins ?? params.get('origins')?.split(',').filter(Boolean) ?? [];
  const origins = new Set([worker.location.origin, ...extra.map((o) => new URL(o).origin)]);

  // A new version replaces the old at once: both open the same database, and the schema
  // only ever migrates forward, so there is no "old page with new data" to protect.
  worker.addEventListener('install', (event) => event.waitUntil(worker.skipWaiting()));
  worker.addEventListener('activate', (event) => event.waitUntil(worker.clients.claim()));

  worker.addEventListener('fetch', (event) => {
    const url = new URL(event.request.url);
    if (!origins.has(url.origin) || !isHomeserverPath(url.pathname)) return;
    // The tab is the "client address": rate limits of unauthenticated requests are per tab.
    event.respondWith(
      hs.fetch(event.request, { clientAddress: event.clientId || 'service-worker' }).then(streamed),
    );
  });

  worker.addEventListener('message', (event) => {
    // The leader tab's port, a peer's request, a peer back: the bridge's (transport/bridge).
    const bridged = bridge?.receive(event.data, event.ports);
    if (bridged) {
      event.waitUntil(bridged);
      return;
    }
    const type = (event.data as { type?: unknown } | null)?.type;
    if (type === CLAIM_MESSAGE) {
      // A page loaded without a controller (a hard reload) asks to be taken over.
      event.waitUntil(worker.clients.claim());
      return;
    }
    const port = event.ports[0];
    if (type !== CONTROL_MESSAGE || !port) return;
    let released!: () => void;
    const done = new Promise<void>((resolve) => {
      released = resolve;
    });
    const { control } = hs;
    expose(
      {
        status: () => control.status(),
        createAccount: (localpart: string, password: string) => control.createAccount(localpart, password),
        exportBackup: () => control.exportBackup(),
        importBackup: (backup: Blob) => control.importBackup(backup),
        listUsers: () => control.listUsers(),
        listRooms: () => control.listRooms(),
        deactivateUser: (userId: string) => control.deactivateUser(userId),
        reset: () => control.reset(),
        p2pIdentity: () => control.p2pIdentity(),
        [finalizer]: released,
      },
      port,
    );
    // The worker stays alive while the page holds the channel (it releases it after one call).
    event.waitUntil(Promise.race([done, new Promise((resolve) => setTimeout(resolve, CONTROL_CALL_MAX_MS))]));
  });

  return hs;
}
