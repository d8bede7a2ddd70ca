/**
 * `createHomeserver` — the whole homeserver as one function, `fetch(Request) → Response`
 * (README "Architecture"). Hosts (Service Worker, page, Node) only feed it
 * requests, and use the few operator actions of `admin` that no HTTP endpoint offers.
 *
 * Creating a homeserver is synchronous and cheap; the store opens lazily on the first
 * request (or on `ready`), and every request waits for it, so a request that races start-up
 * is answered, not refused.
 */
import { operatorCheck } from './api/client/admin.ts';
import { clientEndpoints, RATE_LIMITS } from './api/client/index.ts';
import { federationEndpoints } from './api/federation/index.ts';
import { type ConnectionInfo, createRouter, type FetchHandler } from './api/http.ts';
import type { RateLimitConfig } from './api/rate-limit.ts';
import { createE2eeRemote } from './federation/e2ee-remote.ts';
import { createFederation, type Federation, type FederationOptions } from './federation/index.ts';
import { createFederationPort } from './federation/port.ts';
import { createRemoteMedia } from './federation/remote-media.ts';
import { createSender, type Sender } from './federation/sender.ts';
import { type HomeserverContext, silentLogger } from './homeserver/context.ts';
import type { FederationPort } from './homeserver/ports.ts';
import type { Services } from './homeserver/services.ts';
import { type ServicesOptions, startServices } from './homeserver/start.ts';
import type { Store } from './storage/store.ts';

export interface HomeserverOptions extends ServicesOptions {
  /** The store, or a function opening it (called once, on first use). */
  store: Store | (() => Promise<Store>);
  /** Rate limits per class, over the defaults (`RATE_LIMITS`): a deployment or a benchmark may raise them. */
  rateLimits?: Partial<Record<keyof typeof RATE_LIMITS, RateLimitConfig>>;
  /**
   * How to reach other servers (transport, notaries). With it, other servers' keys are fetched
   * and checked; without it, only this server's key is known and other servers are unreachable.
   */
  federation?: FederationOptions;
  /**
   * `m.server` of `/.well-known/matrix/server` (`host[:port]`): where other servers reach this
   * one when that is not its name (delegation). Without it that path answers 404.
   */
  wellKnownServer?: string;
  /** Server admins are not rate-limited. Default false. */
  rateLimitExemptAdmins?: boolean;
  /** Largest JSON request body, in bytes (the router's default: 64 KiB). */
  maxJsonBodyBytes?: number;
}

/** What the operator of a homeserver may do that no Matrix client may. */
export interface HomeserverAdmin {
  /** A registration token for the `token` policy; unlimited and without expiry unless told. */
  createRegistrationToken(options?: {
    /** The token itself (a configured one); a random one when absent. */
    token?: string;
    usesAllowed?: number | null;
    expiresAt?: number | null;
  }): Promise<string>;
  /** Makes a local user a server admin, or not. M_NOT_FOUND-like error when the user does not exist. */
  setAdmin(userId: string, admin: boolean): Promise<void>;
  /** Deactivates a local account (the demo's admin panel). */
  deactivateUser(userId: string): Promise<void>;
  /** The local accounts, for the operator's own view (the demo's admin panel). */
  listUsers(): Promise<{ userId: string; admin: boolean; deactivated: boolean; isGuest: boolean }[]>;
  /** The rooms this server has, with their names and member counts. */
  listRooms(): Promise<
    { roomId: string; name: string | null; alias: string | null; joinedMembers: number }[]
  >;
  /** Creates an account whatever the registration policy (the owner's first account). */
  createUser(localpart: string, password: string): Promise<{ userId: string }>;
  /** The whole homeserver as one file (`storage/backup.ts`). */
  exportBackup(): Promise<Blob>;
  /**
   * Replaces everything with the backup's contents, all or nothing, and restarts the services
   * on it (their caches describe the old data). Requests still running keep the old services:
   * a host ends them first (`hosts/browser-homeserver.ts`).
   */
  importBackup(backup: Blob): Promise<void>;
}

export interface Homeserver {
  readonly serverName: string;
  /** Answers one Client-Server (and later Server-Server) API request. */
  fetch(request: Request, info?: ConnectionInfo): Promise<Response>;
  /** Resolves once the store is open and the signing key loaded; rejects if that failed. */
  readonly ready: Promise<void>;
  readonly admin: HomeserverAdmin;
  /** Stops answering and closes the store. */
  close(): Promise<void>;
}

export { openP2pIdentity, SIGNING_SEED_SECRET } from './homeserver/start.ts';

/** The services and context behind a homeserver: for tests (`src/testing.ts`), never for hosts. */
export interface HomeserverInternals {
  readonly ctx: HomeserverContext;
  readonly services: Services;
}

interface Running extends HomeserverInternals {
  readonly router: FetchHandler;
  /** Outgoing transactions, when federation is configured. */
  readonly sender?: Sender;
  /** Stops the sender and its transport's reachability listener. */
  stopSending(): void;
}

/** Stops what a running homeserver does in the background (federation sender, bridges, pushes). */
function stopBackground(r: Running): void {
  r.stopSending();
  r.services.appservices.stop();
  r.services.pushDelivery.stop();
  r.services.rooms.partialStateSync.stop();
}

export function createHomeserver(options: HomeserverOptions): Homeserver {
  return startHomeserver(options).homeserver;
}

/**
 * `createHomeserver` with its internals beside it. Not exported from the package: a host
 * that needed them would be reaching past the services.
 */
export function startHomeserver(options: HomeserverOptions): {
  homeserver: Homeserver;
  internals(): Promise<HomeserverInternals>;
} {
  const { serverName } = options;
  const logger = options.logger ?? silentLogger;
  let closed = false;
  let store: Store | undefined;

  const start = async (opened: Store): Promise<Running> => {
    // Federation is built on the context's key and store once they exist (src/federation),
    // and handed back to the homeserver as its KeyStore: the homeserver never imports it.
    let federation: Federation | undefined;
    let sender: Sender | undefined;
    const { ctx, services } = await startServices(opened, {
      ...options,
      connect: (base) => {
        federation = createFederation(base, options.federation);
        if (!options.federation) return {};
        const outgoing = createSender({
          serverName: base.config.serverName,
          store: base.store,
          client: federation.client,
          clock: base.clock,
          random: base.random,
          logger: base.logger,
        });
        sender = outgoing;
        const outboxWritten = (destinations: readonly string[]) => outgoing.wake(destinations);
        const port: FederationPort = { ...createFederationPort(federation.client), outboxWritten };
        const e2eeRemote = createE2eeRemote({
          serverName: base.config.serverName,
          store: base.store,
          queries: port,
          clock: base.clock,
          logger: base.logger,
          outboxWritten,
        });
        const remoteMedia = createRemoteMedia({ fetch: federation.fetch });
        return { keys: federation.keys, port, e2eeRemote, remoteMedia };
      },
    });
    const { keys } = federation ?? createFederation(ctx, options.federation);
    const router = createRouter({
      endpoints: [
        ...clientEndpoints(services),
        ...federationEndpoints({
          server: { serverName: ctx.config.serverName, signingKey: ctx.signingKey, clock: ctx.clock },
          services,
          keys,
          wellKnownServer: options.wellKnownServer,
          logger: ctx.logger,
          seen: sender ? (origin) => sender?.seen(origin) : undefined,
        }),
      ],
      resolveToken: async (token, { url, clientAddress }) => {
        // An application service's as_token acts as its sender or, with ?user_id=, one of its users.
        const service = services.appservices.byToken(token);
        if (service) {
          // Registering a user acts as the service itself, whatever user it names (the user
          // does not exist yet); bridge SDKs send ?user_id= on every request of an intent.
          const registering = /\/register\/?$/.test(url.pathname);
          return services.appservices.authFor(
            service,
            registering ? null : url.searchParams.get('user_id'),
            registering ? null : url.searchParams.get('device_id'),
          );
        }
        // Expired tokens answer as soft logouts (accounts/index.ts).
        const auth = await services.accounts.resolveAccessToken(token, clientAddress);
        if (auth?.admin && options.rateLimitExemptAdmins) return { ...auth, rateLimited: false };
        return auth;
      },
      checkAuth: operatorCheck(ctx.logger),
      rateLimits: { ...RATE_LIMITS, ...options.rateLimits },
      ...(options.maxJsonBodyBytes !== undefined ? { maxJsonBodyBytes: options.maxJsonBodyBytes } : {}),
      clock: ctx.clock,
      logger: ctx.logger,
    });
    // Transactions staged before a restart are applied, and the outbox sent, in the background.
    services.transactions
      .resumeStaged()
      .catch((err) => ctx.logger.error('could not apply staged transactions', { error: String(err) }));
    sender?.start();
    services.appservices.start();
    services.pushDelivery.start();
    // Rooms joined with partial state before a restart fetch their full state again.
    services.rooms.partialStateSync.start();
    // A peer that comes into reach (or the transport itself, back) gets what waited for it
    // now, not at the end of a backoff.
    const outgoing = sender;
    const unlisten =
      outgoing &&
      options.federation?.transport?.onReachable?.((destination) =>
        destination === undefined ? outgoing.resume() : outgoing.seen(destination),
      );
    const stopSending = () => {
      outgoing?.stop();
      unlisten?.();
    };
    return { ctx, services, router, sender, stopSending };
  };

  let running: Promise<Running> = (async () => {
    store = typeof options.store === 'function' ? await options.store() : options.store;
    return start(store);
  })();
  // A failed start is reported by each request; keep it from being an unhandled rejection.
  running.catch((err) => logger.error('homeserver failed to start', { error: String(err) }));
  const ready = running.then(() => undefined);
  ready.catch(() => undefined);

  const admin: HomeserverAdmin = {
    async createRegistrationToken(tokenOptions) {
      return (await running).services.accounts.createRegistrationToken(tokenOptions);
    },
    async setAdmin(userId, isAdmin) {
      const { ctx } = await running;
      await ctx.store.accounts.updateUser(userId, { admin: isAdmin });
    },
    async deactivateUser(userId) {
      await (await running).services.accounts.deactivateAccount(userId, { erase: false });
    },
    async listUsers() {
      const { ctx } = await running;
      const { users } = await ctx.store.operator.listUsers({ limit: Number.MAX_SAFE_INTEGER });
      return users.map((u) => ({
        userId: u.userId,
        admin: u.admin,
        deactivated: u.deactivated,
        isGuest: u.isGuest,
      }));
    },
    async listRooms() {
      const { ctx } = await running;
      const out = [];
      for (const room of await ctx.store.operator.listRooms()) {
        const name = (await ctx.store.rooms.currentStateEvent(room.roomId, 'm.room.name', ''))?.event.content
          .name;
        const alias = (await ctx.store.rooms.currentStateEvent(room.roomId, 'm.room.canonical_alias', ''))
          ?.event.content.alias;
        out.push({
          roomId: room.roomId,
          name: typeof name === 'string' ? name : null,
          alias: typeof alias === 'string' ? alias : null,
          joinedMembers: await ctx.store.rooms.countMembers(room.roomId, 'join'),
        });
      }
      return out;
    },
    async createUser(localpart, password) {
      const { userId } = await (await running).services.accounts.createUser({ localpart, password });
      return { userId };
    },
    async exportBackup() {
      const { ctx } = await running;
      return ctx.store.exportBackup({ serverName, now: ctx.clock.now() });
    },
    async importBackup(backup) {
      const before = running;
      const next = (async () => {
        const { ctx } = await before;
        await ctx.store.importBackup(backup, { serverName });
        return start(ctx.store);
      })();
      // A refused backup changed nothing: the services running before go on.
      running = next.catch(() => before);
      await next;
      // The old services' sender would send from the replaced data: only the new one runs.
      stopBackground(await before);
    },
  };

  const homeserver: Homeserver = {
    serverName,
    ready,
    admin,
    async fetch(request, info) {
      if (closed) {
        return Response.json(
          { errcode: 'M_UNKNOWN', error: 'This homeserver is shutting down' },
          { status: 503 },
        );
      }
      let handler: FetchHandler;
      try {
        handler = (await running).router;
      } catch {
        return Response.json(
          { errcode: 'M_UNKNOWN', error: 'The homeserver could not start' },
          { status: 503 },
        );
      }
      return handler(request, info);
    },
    async close() {
      closed = true;
      const last = await running.catch(() => undefined);
      if (last) stopBackground(last);
      await store?.close();
    },
  };
  return { homeserver, internals: () => running };
}
