/**
 * One homeserver on the browser's IndexedDB, as the Service Worker host and the in-page
 * fallback both run it: `fetch` for the Client-Server API, and the owner's controls
 * (first account, backup export/import, reset) that no HTTP endpoint offers.
 *
 * Creating it is synchronous and opens nothing: the database opens on the first request,
 * which waits for it (no start-up race). Reset and import change the data underneath: new
 * requests wait, running ones (a long-polling /sync) are ended, then the database is deleted
 * (reset: the next request starts a new homeserver) or rewritten in one transaction by the
 * homeserver's own `admin.importBackup`, which restarts its services on it — caches of the
 * old data never outlive it.
 */

import type { FederationOptions } from '../federation/index.ts';
import type { Logger, RegistrationPolicy } from '../homeserver/context.ts';
import type { Thumbnailer } from '../homeserver/media/thumbnail.ts';
import { createHomeserver, type Homeserver, openP2pIdentity } from '../server.ts';
import { openIndexedDbStore } from '../storage/indexeddb/index.ts';
import { SCHEMA_VERSION } from '../storage/schema.ts';
import { StoreError } from '../storage/store.ts';
import { createBrowserThumbnailer } from './thumbnailer-browser.ts';

export interface BrowserHomeserverOptions {
  /** The server name; not used in P2P mode. */
  serverName?: string;
  /**
   * P2P mode (DESIGN.md "Identity"): the server name is the lowercase hex of the public key of
   * the seed kept in the database — created on the first start, the same on every later one —
   * and events and requests are signed with `ed25519:p2p`.
   */
  p2p?: boolean;
  /** The worker's or page's own IndexedDB (the store touches no global). */
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  /** Default `hearth`. */
  databaseName?: string;
  /**
   * Default 'open': a homeserver in a browser belongs to whoever opened the page; every
   * visitor of a site gets their own, in their own browser storage.
   */
  registration?: RegistrationPolicy;
  /** At most 25 s: a browser stops a Service Worker whose single event runs much longer. */
  maxSyncTimeoutMs?: number;
  passwordIterations?: number;
  /**
   * IndexedDB commit durability. Default 'relaxed', the browsers' own default: a write is
   * acknowledged once the browser has handed it to the OS, so it survives the worker, the tab
   * or the whole browser being killed — only an OS crash or power loss in the next moments
   * can lose it. 'strict' waits for the disk flush on every commit (bench/browser.ts measures
   * it at roughly twice the send → /sync latency).
   */
  durability?: 'strict' | 'relaxed';
  /** Largest media upload in bytes; default 50 MiB. */
  maxUploadBytes?: number;
  /**
   * Makes thumbnails; default the browser's own (`createImageBitmap` + `OffscreenCanvas`,
   * `thumbnailer-browser.ts`), `null` for none.
   */
  thumbnailer?: Thumbnailer | null;
  /**
   * How this homeserver reaches others: in the Service Worker, the bridge to the leader tab's
   * libp2p node (`transport/bridge`). Without it, federation is off.
   */
  federation?: FederationOptions;
  logger?: Logger;
}

export interface HomeserverStatus {
  /** The store is open and the signing key loaded. */
  ready: boolean;
  serverName: string;
  /** The schema version this homeserver's code writes. */
  schemaVersion: number;
  /** Why it is not ready, when it failed to start. */
  error?: string;
}

/** What the page may ask the homeserver beyond HTTP (over comlink in the Service Worker case). */
export interface HomeserverControl {
  /** Waits for the store to open; reports whether it did. */
  status(): Promise<HomeserverStatus>;
  /** Creates an account whatever the registration policy (the owner's first account). */
  createAccount(localpart: string, password: string): Promise<{ userId: string }>;
  /** The whole homeserver as one file (see `storage/backup.ts`). */
  exportBackup(): Promise<Blob>;
  /** Replaces everything with the backup's contents; all or nothing. */
  importBackup(backup: Blob): Promise<void>;
  /** The owner's admin view: the accounts on this homeserver. */
  listUsers(): Promise<{ userId: string; admin: boolean; deactivated: boolean; isGuest: boolean }[]>;
  /** The owner's admin view: the rooms this homeserver has. */
  listRooms(): Promise<
    { roomId: string; name: string | null; alias: string | null; joinedMembers: number }[]
  >;
  /** Deactivates an account (it leaves its rooms; its tokens stop working). */
  deactivateUser(userId: string): Promise<void>;
  /** Deletes every trace of this homeserver; the next request starts a new, empty one. */
  reset(): Promise<void>;
  /**
   * P2P mode: the server name and the seed it comes from, for the leader tab's libp2p node,
   * whose key it is (the peer ID and the server name are one identity). Same-origin pages
   * only: the key never leaves this origin.
   */
  p2pIdentity(): Promise<{ serverName: string; seed: Uint8Array }>;
}

export interface BrowserHomeserver {
  fetch(request: Request, info?: { clientAddress?: string }): Promise<Response>;
  readonly control: HomeserverControl;
  close(): Promise<void>;
}

/** One homeserver over one opening of the database. */
interface Generation {
  /** Made at once, or (P2P mode) once the database has given its seed, and so its name. */
  hs: Promise<Homeserver>;
  /** P2P mode: the seed and the name it gives. */
  identity: Promise<{ serverName: string; seed: Uint8Array }> | null;
  /** Ends the requests still running when the data changes underneath them. */
  stop: AbortController;
  running: Set<Promise<unknown>>;
  failed: boolean;
}

export function createBrowserHomeserver(options: BrowserHomeserverOptions): BrowserHomeserver {
  const { p2p = false } = options;
  if (!p2p && !options.serverName) throw new TypeError('a server name is needed (or P2P mode)');
  const configuredName = options.serverName ?? '';
  const databaseName = options.databaseName ?? 'hearth';
  const thumbnailer = options.thumbnailer === undefined ? createBrowserThumbnailer() : options.thumbnailer;
  const openStore = () =>
    openIndexedDbStore({
      indexedDB: options.indexedDB,
      IDBKeyRange: options.IDBKeyRange,
      name: databaseName,
      durability: options.durability ?? 'relaxed',
    });
  const start = (): Generation => {
    const common = {
      registration: options.registration ?? 'open',
      maxSyncTimeoutMs: Math.min(options.maxSyncTimeoutMs ?? 25_000, 25_000),
      ...(options.passwordIterations !== undefined ? { passwordIterations: options.passwordIterations } : {}),
      ...(options.maxUploadBytes !== undefined ? { maxUploadBytes: options.maxUploadBytes } : {}),
      ...(thumbnailer ? { thumbnailer } : {}),
      ...(options.federation ? { federation: options.federation } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    } as const;
    let identity: Generation['identity'] = null;
    let hs: Promise<Homeserver>;
    if (p2p) {
      // The name is the key's: read (or made) before the homeserver that bears it.
      const store = openStore();
      identity = store.then((opened) => openP2pIdentity(opened));
      hs = identity.then(
        ({ serverName }) => createHomeserver({ ...common, serverName, p2p: true, store: () => store }),
        async (error: unknown) => {
          await (await store.catch(() => null))?.close();
          throw error;
        },
      );
    } else {
      hs = Promise.resolve(createHomeserver({ ...common, serverName: configuredName, store: openStore }));
    }
    const generation: Generation = {
      hs,
      identity,
      stop: new AbortController(),
      running: new Set(),
      failed: false,
    };
    hs.then((h) => h.ready).catch(() => {
      generation.failed = true;
    });
    return generation;
  };
  /** A generation's homeserver, or `null` when it failed to be made. */
  const made = (gen: Generation) => gen.hs.catch(() => null);

  // Started at once: a Service Worker woken by a request opens the database while the
  // request is still being dispatched. After a reset, the next caller starts the next one.
  let current: Generation | null = start();
  /** Set while a reset or an import runs: everything else waits for it. */
  let replacing: Promise<unknown> | null = null;
  let closed = false;

  /** Runs `fn` on the current generation, counted as running until it settles. */
  async function use<T>(fn: (gen: Generation) => Promise<T>): Promise<T> {
    while (replacing) await replacing.catch(() => undefined);
    if (closed) throw new StoreError('CLOSED', 'this homeserver was closed');
    // A start that failed (e.g. the database could not open) is retried by the next caller.
    if (current?.failed) {
      void made(current).then((hs) => hs?.close().catch(() => undefined));
      current = null;
    }
    current ??= start();
    const gen = current;
    const run = fn(gen);
    gen.running.add(run);
    try {
      return await run;
    } finally {
      gen.running.delete(run);
    }
  }

  /**
   * Ends the current generation's running requests (waiting for them), then runs `work` on it
   * while every other caller waits.
   */
  function exclusive(work: (gen: Generation | null) => Promise<void>): Promise<void> {
    const previous = replacing;
    const job = (async () => {
      if (previous) await previous.catch(() => undefined);
      const gen = current;
      if (gen) {
        gen.stop.abort();
        await Promise.allSettled([...gen.running]);
        gen.stop = new AbortController();
      }
      await work(gen);
    })();
    replacing = job;
    const settled = () => {
      if (replacing === job) replacing = null;
    };
    // The caller sees the failure; this only clears the gate.
    job.then(settled, settled);
    return job;
  }

  const control: HomeserverControl = {
    async status() {
      return use(async (gen) => {
        try {
          const hs = await gen.hs;
          await hs.ready;
          return { ready: true, serverName: hs.serverName, schemaVersion: SCHEMA_VERSION };
        } catch (error) {
          return {
            ready: false,
            serverName: configuredName,
            schemaVersion: SCHEMA_VERSION,
            error: String(error),
          };
        }
      });
    },

    async p2pIdentity() {
      return use(async (gen) => {
        if (!gen.identity) throw new Error('this homeserver is not in P2P mode');
        const { serverName, seed } = await gen.identity;
        return { serverName, seed: seed.slice() };
      });
    },

    async createAccount(localpart, password) {
      return use(async (gen) => (await gen.hs).admin.createUser(localpart, password));
    },

    async exportBackup() {
      return use(async (gen) => (await gen.hs).admin.exportBackup());
    },

    async listUsers() {
      return use(async (gen) => (await gen.hs).admin.listUsers());
    },

    async listRooms() {
      return use(async (gen) => (await gen.hs).admin.listRooms());
    },

    async deactivateUser(userId) {
      return use(async (gen) => (await gen.hs).admin.deactivateUser(userId));
    },

    async importBackup(backup) {
      if (!(backup instanceof Blob)) throw new TypeError('importBackup takes a Blob (or File)');
      await exclusive(async (gen) => {
        // After a reset no homeserver runs yet (and a failed one is retried): start one to import into.
        if (gen?.failed) void made(gen).then((hs) => hs?.close().catch(() => undefined));
        if (gen === null || gen.failed) current = start();
        await (await (current as Generation).hs).admin.importBackup(backup);
      });
    },

    async reset() {
      await exclusive(async (gen) => {
        if (gen) {
          if (current === gen) current = null;
          await (await made(gen))?.close();
        }
        // The next caller starts a new, empty homeserver.
        await deleteDatabase(options.indexedDB, databaseName);
      });
    },
  };

  return {
    fetch(request, info) {
      return use(async (gen) => {
        // A reset or import ends running requests (a long-poll would hold it up to 25 s).
        const signal = AbortSignal.any([request.signal, gen.stop.signal]);
        return (await gen.hs).fetch(new Request(request, { signal }), info);
      });
    },
    control,
    async close() {
      closed = true;
      if (replacing) await replacing.catch(() => undefined);
      if (!current) return;
      current.stop.abort();
      await Promise.allSettled([...current.running]);
      await (await made(current))?.close();
    },
  };
}

/** Deletes an IndexedDB database; other connections get `versionchange` and (Dexie) close. */
function deleteDatabase(factory: IDBFactory, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = factory.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
  });
}
