/**
 * `hearth/page` — what an app's page calls to get its own homeserver:
 *
 *   const hs = await registerHomeserver({ workerUrl: '/sw.js' });
 *   const client = createClient({ baseUrl: hs.baseUrl, fetchFn: hs.fetch });
 *
 * It registers the Service Worker (`hearth/sw`) and resolves only once that worker controls
 * this page, so the very next request is answered by it. Where Service Workers are
 * unavailable (some private windows, insecure origins) it runs the homeserver in this page
 * instead, on the same IndexedDB database, and `fetch` routes Matrix requests to it.
 *
 * The handle's `control` reaches the homeserver's owner controls — first account, backup
 * export/import, reset — over comlink: one MessageChannel per call, posted to the worker,
 * which a stopped worker is woken for.
 */
import { type Remote, releaseProxy, wrap } from 'comlink';
import type { SharedStatus } from '../transport/bridge/status.ts';
import { joinP2p, type TabHandle } from '../transport/bridge/tab.ts';
import type { BrowserHomeserver, HomeserverControl } from './browser-homeserver.ts';

export type { SharedPeer as P2pPeer, SharedStatus as P2pStatus } from '../transport/bridge/status.ts';
export type { HomeserverControl } from './browser-homeserver.ts';

import { CLAIM_MESSAGE, CONTROL_MESSAGE, isHomeserverPath } from './worker-protocol.ts';

export interface RegisterHomeserverOptions {
  /** URL of the worker script (one that calls `installHomeserverWorker`), e.g. `/sw.js`. */
  workerUrl: string | URL;
  /** Default: this page's host (`localhost:8080`), so user IDs read `@you:localhost:8080`. */
  serverName?: string;
  /** Service Worker scope; default `/` (Matrix paths are at the origin's root). */
  scope?: string;
  /** Passed to the worker: 'open' (default), 'token' or 'closed'. */
  registration?: 'open' | 'token' | 'closed';
  /**
   * Extra origins the worker answers Matrix requests for, as if a homeserver lived there
   * (e.g. `https://hearth.localhost` for a client that wants a stable base URL).
   */
  origins?: readonly string[];
  /** Passed to the worker: IndexedDB commit durability, 'relaxed' (default) or 'strict'. */
  durability?: 'strict' | 'relaxed';
  /** A module worker script (default: classic, which every browser runs). */
  type?: WorkerType;
  /** Ask the browser not to evict this origin's data (`navigator.storage.persist()`). Default true. */
  persist?: boolean;
  /** Without Service Workers: run the homeserver in this page (default), or fail. */
  fallback?: 'in-page' | 'none';
  /** How long to wait for the worker to take control; default 30 s. */
  timeoutMs?: number;
  /**
   * P2P mode (DESIGN.md "Identity"): the server name is the hex of this homeserver's key (its
   * seed is kept in IndexedDB, so the name is the same on every start; `serverName` is not
   * used), and it federates over libp2p — WebRTC between browsers, signalled through relays.
   * One tab of the origin, elected with Web Locks, runs the libp2p node and carries the
   * Service Worker's federation. Needs a Service Worker (no in-page fallback).
   */
  p2p?: P2pOptions;
}

export interface P2pOptions {
  /**
   * Relays to dial (and bootstrap from): multiaddrs ending in `/p2p/<peer ID>`, e.g. the
   * `hearth relay` the demo server starts (`/ip4/127.0.0.1/tcp/PORT/ws/p2p/12D3Koo…`).
   */
  relays: readonly string[];
}

/** This tab's view of P2P federation; every tab sees the leader's status. */
export interface P2pHandle {
  /** Whether this tab runs the libp2p node. */
  readonly leading: boolean;
  /** Resolves once this tab leads (stays pending while another tab does). */
  readonly elected: Promise<void>;
  /** The leader's node: addresses and peers with their state; `null` while none is heard. */
  status(): P2pStatus | null;
  onStatus(listener: (status: P2pStatus | null) => void): () => void;
  /** Stops taking part (the node stops, if this tab led; the next tab takes over). */
  close(): Promise<void>;
}

type P2pStatus = SharedStatus;

export interface PageHomeserverStatus {
  ready: boolean;
  /** Whether the browser promised not to evict this origin's storage. */
  persisted: boolean;
  serverName: string;
  mode: HomeserverHandle['mode'];
  schemaVersion: number;
  error?: string;
}

export type HomeserverHandleControl = Omit<HomeserverControl, 'status' | 'p2pIdentity'>;

export interface HomeserverHandle {
  /** The homeserver's base URL for clients: this page's origin. */
  readonly baseUrl: string;
  readonly serverName: string;
  /**
   * A `fetch` for clients. With a Service Worker it is the page's own `fetch` (the worker
   * answers); in the in-page fallback it hands Matrix requests to the homeserver here.
   */
  readonly fetch: typeof fetch;
  readonly mode: 'service-worker' | 'in-page';
  /** Why the fallback runs, when it does. */
  readonly fallbackReason?: string;
  status(): Promise<PageHomeserverStatus>;
  readonly control: HomeserverHandleControl;
  /** P2P federation, in P2P mode. */
  readonly p2p?: P2pHandle;
}

export async function registerHomeserver(options: RegisterHomeserverOptions): Promise<HomeserverHandle> {
  const serverName = options.serverName ?? location.host;
  // Asked early and not awaited: Firefox may show a prompt that is answered much later.
  const persisted: Promise<boolean> =
    options.persist === false
      ? Promise.resolve(false)
      : (navigator.storage?.persist?.() ?? Promise.resolve(false)).catch(() => false);
  const container = navigator.serviceWorker as ServiceWorkerContainer | undefined;
  let reason = 'this browser offers no Service Workers here (private window or insecure origin?)';
  if (options.p2p && !container) throw new Error(`P2P mode needs a Service Worker: ${reason}`);
  if (container) {
    try {
      return await serviceWorkerHandle(container, serverName, options, persisted);
    } catch (error) {
      if (options.fallback === 'none' || options.p2p) throw error;
      reason = `the Service Worker could not start: ${String(error)}`;
    }
  } else if (options.fallback === 'none') {
    throw new Error(reason);
  }
  return inPageHandle(serverName, options, persisted, reason);
}

async function serviceWorkerHandle(
  container: ServiceWorkerContainer,
  requestedName: string,
  options: RegisterHomeserverOptions,
  persisted: Promise<boolean>,
): Promise<HomeserverHandle> {
  let serverName = requestedName;
  const script = new URL(options.workerUrl, location.href);
  // In P2P mode the worker names itself after its key.
  if (options.p2p) script.searchParams.set('p2p', '1');
  else script.searchParams.set('server_name', serverName);
  if (options.registration) script.searchParams.set('registration', options.registration);
  if (options.durability) script.searchParams.set('durability', options.durability);
  if (options.origins?.length)
    script.searchParams.set('origins', options.origins.map((o) => new URL(o).origin).join(','));
  const registration = await container.register(script, {
    scope: options.scope ?? '/',
    type: options.type ?? 'classic',
    // Always look for a new worker build on the network, never in the HTTP cache.
    updateViaCache: 'none',
  });
  await controlledBy(container, registration, script.href, options.timeoutMs ?? 30_000);

  const worker = () => {
    const active = container.controller ?? registration.active;
    if (!active) throw new Error('the homeserver worker is gone (unregistered?)');
    return active;
  };
  /** One comlink call over a fresh channel: a channel does not survive a stopped worker. */
  const call = async <T>(use: (remote: Remote<HomeserverControl>) => Promise<T>): Promise<T> => {
    const { port1, port2 } = new MessageChannel();
    worker().postMessage({ type: CONTROL_MESSAGE }, [port2]);
    const remote = wrap<HomeserverControl>(port1);
    try {
      return await use(remote);
    } finally {
      // Tells the worker the call is over (its message event then lets it stop); comlink
      // closes the port once the worker acknowledges.
      remote[releaseProxy]();
    }
  };
  let p2p: P2pHandle | undefined;
  if (options.p2p) {
    const status = await call((r) => r.status());
    if (!status.ready) throw new Error(`the homeserver did not start: ${status.error}`);
    serverName = status.serverName;
    p2p = joinTabs(container, worker, call, options.scope ?? '/', options.p2p);
  }
  return {
    baseUrl: location.origin,
    serverName,
    fetch: globalThis.fetch.bind(globalThis),
    mode: 'service-worker',
    ...(p2p ? { p2p } : {}),
    async status() {
      const [status, persist] = await Promise.all([
        call((r) => r.status()),
        persisted.then(() => storagePersisted()),
      ]);
      return { ...status, persisted: persist, mode: 'service-worker' };
    },
    control: {
      createAccount: (localpart, password) => call((r) => r.createAccount(localpart, password)),
      exportBackup: () => call((r) => r.exportBackup()),
      importBackup: (backup) => call((r) => r.importBackup(backup)),
      listUsers: () => call((r) => r.listUsers()),
      listRooms: () => call((r) => r.listRooms()),
      deactivateUser: (userId) => call((r) => r.deactivateUser(userId)),
      reset: () => call((r) => r.reset()),
    },
  };
}

/**
 * This tab's part in P2P federation (transport/bridge/tab.ts): it queues for the lead; when
 * it leads, it starts the libp2p node — loaded only then, so a page that never leads never
 * downloads libp2p — with the homeserver's own key, which it asks the worker for.
 */
function joinTabs(
  container: ServiceWorkerContainer,
  worker: () => ServiceWorker,
  call: <T>(use: (remote: Remote<HomeserverControl>) => Promise<T>) => Promise<T>,
  scope: string,
  options: P2pOptions,
): P2pHandle {
  const tab: TabHandle = joinP2p({
    locks: navigator.locks,
    name: new URL(scope, location.href).href,
    post: (message, transfer) => worker().postMessage(message, transfer),
    onError: (error) => console.error('hearth: the P2P node could not start', error),
    async startTransport(deliver) {
      const [{ startLibp2pLeader }, identity] = await Promise.all([
        import('../transport/bridge/libp2p-leader.ts'),
        call((r) => r.p2pIdentity()),
      ]);
      return startLibp2pLeader({ seed: identity.seed, relays: options.relays, deliver });
    },
  });
  const onMessage = (event: MessageEvent) => tab.receive(event.data);
  container.addEventListener('message', onMessage);
  container.startMessages();
  return {
    get leading() {
      return tab.leading;
    },
    elected: tab.elected,
    status: () => tab.status(),
    onStatus: (listener) => tab.onStatus(listener),
    async close() {
      container.removeEventListener('message', onMessage);
      await tab.close();
    },
  };
}

/** Resolves once `scriptUrl`'s worker controls this page. */
function controlledBy(
  container: ServiceWorkerContainer,
  registration: ServiceWorkerRegistration,
  scriptUrl: string,
  timeoutMs: number,
): Promise<void> {
  if (container.controller?.scriptURL === scriptUrl) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (container.controller?.scriptURL !== scriptUrl) return false;
      finish();
      resolve();
      return true;
    };
    const onStateChange = () => {
      // Activated but not in control: this page was loaded without a controller (a hard
      // reload, or before the worker existed) and the worker claimed before we listened.
      if (
        registration.active?.scriptURL === scriptUrl &&
        registration.active.state === 'activated' &&
        !check()
      ) {
        registration.active.postMessage({ type: CLAIM_MESSAGE });
      }
    };
    const watched = new Set<ServiceWorker>();
    const watch = () => {
      for (const w of [registration.installing, registration.waiting, registration.active]) {
        if (w && !watched.has(w)) {
          watched.add(w);
          w.addEventListener('statechange', onStateChange);
        }
      }
      onStateChange();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`the homeserver worker did not take control within ${timeoutMs} ms`));
    }, timeoutMs);
    function finish() {
      clearTimeout(timer);
      container.removeEventListener('controllerchange', check);
      registration.removeEventListener('updatefound', watch);
      for (const w of watched) w.removeEventListener('statechange', onStateChange);
    }
    container.addEventListener('controllerchange', check);
    registration.addEventListener('updatefound', watch);
    watch();
  });
}

async function storagePersisted(): Promise<boolean> {
  try {
    return (await navigator.storage?.persisted?.()) ?? false;
  } catch {
    return false;
  }
}

async function inPageHandle(
  serverName: string,
  options: RegisterHomeserverOptions,
  persisted: Promise<boolean>,
  reason: string,
): Promise<HomeserverHandle> {
  // Loaded only here: a page with a Service Worker never downloads the homeserver itself.
  const { startInPageHomeserver } = await import('./page-fallback.ts');
  const hs: BrowserHomeserver = startInPageHomeserver({
    serverName,
    ...(options.registration ? { registration: options.registration } : {}),
    ...(options.durability ? { durability: options.durability } : {}),
  });
  const { control } = hs;
  return {
    baseUrl: location.origin,
    serverName,
    fetch: inPageFetch(hs),
    mode: 'in-page',
    fallbackReason: reason,
    async status() {
      const [status, persist] = await Promise.all([
        control.status(),
        persisted.then(() => storagePersisted()),
      ]);
      return { ...status, persisted: persist, mode: 'in-page' };
    },
    control: {
      createAccount: (localpart, password) => control.createAccount(localpart, password),
      exportBackup: () => control.exportBackup(),
      importBackup: (backup) => control.importBackup(backup),
      listUsers: () => control.listUsers(),
      listRooms: () => control.listRooms(),
      deactivateUser: (userId) => control.deactivateUser(userId),
      reset: () => control.reset(),
    },
  };
}

/** A `fetch` that hands this origin's Matrix requests to the in-page homeserver. */
function inPageFetch(hs: BrowserHomeserver): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin === location.origin && isHomeserverPath(url.pathname)) {
      return hs.fetch(request, { clientAddress: 'page' });
    }
    return fetch(request);
  };
}
