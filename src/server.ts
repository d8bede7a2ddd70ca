/**
 * `createHomeserver` — the whole homeserver as one function, `fetch(Request) → Response`
 * (DESIGN.md "One idea carries it"). Hosts (Service Worker, page, Node, edge) only feed it
 * requests.
 *
 * Creating a homeserver is synchronous and cheap; the store opens lazily on the first
 * request (or on `ready`), and every request waits for it, so a request that races start-up
 * is answered, not refused.
 */
import { clientEndpoints, RATE_LIMITS } from './api/client/index.ts';
import { type ConnectionInfo, createRouter, type FetchHandler } from './api/http.ts';
import type { RateLimitConfig } from './api/rate-limit.ts';
import { encodeBase64Url } from './core/base64.ts';
import { signingKeyFromSeed } from './core/crypto.ts';
import { DEFAULT_ROOM_VERSION } from './core/room-versions.ts';
import {
  type Clock,
  type HomeserverConfig,
  type HomeserverContext,
  type Logger,
  type Random,
  type RegistrationPolicy,
  silentLogger,
  systemClock,
  webRandom,
} from './homeserver/context.ts';
import { createNotifier } from './homeserver/notifier.ts';
import { type FederationPort, federationOff, type KeyStore, ownKeyStore } from './homeserver/ports.ts';
import { createServices, type Services } from './homeserver/services.ts';
import type { Store } from './storage/store.ts';

export interface HomeserverOptions {
  serverName: string;
  /** The store, or a function opening it (called once, on first use). */
  store: Store | (() => Promise<Store>);
  registration?: RegistrationPolicy;
  guestAccess?: boolean;
  defaultRoomVersion?: string;
  publicBaseUrl?: string;
  passwordIterations?: number;
  maxSyncTimeoutMs?: number;
  accessTokenLifetimeMs?: number | null;
  /** Rate limits per class, over the defaults (`RATE_LIMITS`): a deployment or a benchmark may raise them. */
  rateLimits?: Partial<Record<keyof typeof RATE_LIMITS, RateLimitConfig>>;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Requests to other servers; without it, each answers "federation is off". */
  federation?: FederationPort;
  /** Other servers' signing keys; without it, only this server's own key is known. */
  keyStore?: KeyStore;
}

export interface Homeserver {
  readonly serverName: string;
  /** Answers one Client-Server (and later Server-Server) API request. */
  fetch(request: Request, info?: ConnectionInfo): Promise<Response>;
  /** Resolves once the store is open and the signing key loaded; rejects if that failed. */
  readonly ready: Promise<Services>;
  /** Stops answering and closes the store. */
  close(): Promise<void>;
}

/** Name of the secret holding this server's ed25519 seed in the store. */
export const SIGNING_SEED_SECRET = 'signing_key_seed';

export function createHomeserver(options: HomeserverOptions): Homeserver {
  const config: HomeserverConfig = {
    serverName: options.serverName,
    registration: options.registration ?? 'token',
    guestAccess: options.guestAccess ?? false,
    defaultRoomVersion: options.defaultRoomVersion ?? DEFAULT_ROOM_VERSION,
    publicBaseUrl: options.publicBaseUrl,
    passwordIterations: options.passwordIterations ?? 210_000,
    maxSyncTimeoutMs: Math.min(options.maxSyncTimeoutMs ?? 25_000, 25_000),
    accessTokenLifetimeMs: options.accessTokenLifetimeMs ?? null,
  };
  const clock = options.clock ?? systemClock;
  const random = options.random ?? webRandom;
  const logger = options.logger ?? silentLogger;
  let closed = false;
  let store: Store | undefined;

  const ready = (async () => {
    store = typeof options.store === 'function' ? await options.store() : options.store;
    // The first start creates the seed; later starts (and racing first starts) read it back.
    const seed = await store.federation.putSecretOnce(SIGNING_SEED_SECRET, random.bytes(32));
    const probe = await signingKeyFromSeed(seed, 'probe');
    const version = `a_${encodeBase64Url(probe.publicKey.slice(0, 3)).replace(/[^a-zA-Z0-9]/g, '_')}`;
    const signingKey = await signingKeyFromSeed(seed, version);
    const ctx: HomeserverContext = {
      config,
      store,
      clock,
      random,
      logger,
      signingKey,
      notifier: createNotifier(),
      federation: options.federation ?? federationOff,
      keys: options.keyStore ?? ownKeyStore(config.serverName, signingKey),
    };
    return createServices(ctx);
  })();
  // A failed start is reported by each request; keep it from being an unhandled rejection.
  ready.catch((err) => logger.error('homeserver failed to start', { error: String(err) }));

  const router: Promise<FetchHandler> = ready.then((services) =>
    createRouter({
      endpoints: clientEndpoints(services),
      // Expired tokens answer as soft logouts (accounts/index.ts).
      resolveToken: (token) => services.accounts.resolveAccessToken(token),
      rateLimits: { ...RATE_LIMITS, ...options.rateLimits },
      clock,
      logger: {
        error: (message, detail) => logger.error(message, { detail: String(detail) }),
        warn: (message, detail) => logger.warn(message, { detail: String(detail) }),
      },
    }),
  );

  return {
    serverName: config.serverName,
    ready,
    async fetch(request, info) {
      if (closed) {
        return Response.json(
          { errcode: 'M_UNKNOWN', error: 'This homeserver is shutting down' },
          { status: 503 },
        );
      }
      let handler: FetchHandler;
      try {
        handler = await router;
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
      await ready.catch(() => undefined);
      await store?.close();
    },
  };
}
