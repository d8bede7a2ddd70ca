/**
 * The configuration of the edge hosts (workerd, Deno, Bun, the WASI component) in one shape,
 * read from string settings — environment variables, Workers vars and secrets — named after
 * `hearth serve`'s options (`--server-name` is `HEARTH_SERVER_NAME`, and so on), and the start-up
 * every host shares: a signing seed given as a secret goes into the store before the homeserver
 * reads it, and the password hashing cost is checked against its floor.
 *
 * Runtime-agnostic: no `node:` import, no globals but WebCrypto (a host passes its environment).
 */
import type { RATE_LIMITS } from '../api/client/index.ts';
import type { RateLimitConfig } from '../api/rate-limit.ts';
import { decodeBase64 } from '../core/base64.ts';
import { isValidServerName } from '../core/identifiers.ts';
import { consoleLogger, type Logger, type RegistrationPolicy } from '../homeserver/context.ts';
import { type Homeserver, type HomeserverOptions, SIGNING_SEED_SECRET } from '../server.ts';
import type { Store } from '../storage/store.ts';

/**
 * The fewest PBKDF2-SHA-512 iterations a host accepts for new password hashes. Workers cap
 * PBKDF2 at 100,000 iterations and bill its CPU time to the request, so their default is this
 * floor; other hosts default to OWASP's 2023 figure (210,000). Below it an offline guess
 * costs too little to call the hash a defence: no host goes lower, whatever it is told.
 */
export const PASSWORD_ITERATIONS_FLOOR = 100_000;
/** OWASP Password Storage Cheat Sheet (2023), PBKDF2-HMAC-SHA-512. */
export const PASSWORD_ITERATIONS_DEFAULT = 210_000;

export type RateLimitClass = keyof typeof RATE_LIMITS;

export interface HostConfig {
  /** `HEARTH_SERVER_NAME` (`--server-name`): the name in user IDs. Required. */
  serverName: string;
  /** `HEARTH_REGISTRATION` (`--registration`): open | token | closed; default token. */
  registration: RegistrationPolicy;
  /** `HEARTH_SIGNING_SEED`, a secret: base64 of 32 bytes, the ed25519 seed; else one is made and kept in the store. */
  signingSeed?: Uint8Array;
  /** `HEARTH_PASSWORD_ITERATIONS`: PBKDF2 cost of new password hashes, at least the floor. */
  passwordIterations: number;
  /** `HEARTH_MAX_UPLOAD_SIZE` (`--max-upload-size`): bytes, or with K, M or G. */
  maxUploadBytes?: number;
  /** `HEARTH_MAX_SYNC_TIMEOUT`: longest /sync long-poll in ms (at most 25 s). */
  maxSyncTimeoutMs?: number;
  /** `HEARTH_RATE_LIMITS`: `class=perSecond/burst,…` over the defaults (`message=10/50`). */
  rateLimits?: Partial<Record<RateLimitClass, RateLimitConfig>>;
  /** `HEARTH_FEDERATION` (`--federation`): on | off; default on. */
  federation: boolean;
  /** `HEARTH_FEDERATION_CA` (`--federation-ca`): extra trusted CA certificates, PEM text. */
  federationCa?: string;
  /** `HEARTH_DELEGATE_TO` (`--delegate-to`): `m.server` of `/.well-known/matrix/server`. */
  delegateTo?: string;
  /** `HEARTH_LOG_LEVEL` (`--log-level`): debug | info | warn | error; default info. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export type Settings = Readonly<Record<string, string | undefined>>;

/** `1048576`, `512K`, `50M`, `1G` (also `50MiB`, `50MB`: all binary, as upload limits are usually meant). */
export function parseSize(text: string, label = 'a size'): number {
  const m = /^\s*(\d+)\s*([KMG]?)(i?B)?\s*$/i.exec(text);
  if (!m) throw new Error(`${label} must be bytes or a number with K, M or G, not ${text}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`${label}: ${text} is not a usable size`);
  return bytes;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`${name} must be ${allowed.join(', ')}, not ${value}`);
  return value as T;
}

function integer(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min)
    throw new Error(`${name} must be an integer of at least ${min}, not ${value}`);
  return n;
}

const RATE_LIMIT_CLASSES: readonly RateLimitClass[] = ['login', 'register', 'message', 'default'];

function parseRateLimits(text: string): Partial<Record<RateLimitClass, RateLimitConfig>> {
  const limits: Partial<Record<RateLimitClass, RateLimitConfig>> = {};
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+)\s*$/.exec(part);
    const name = m?.[1] as RateLimitClass | undefined;
    if (!m || !name || !RATE_LIMIT_CLASSES.includes(name) || Number(m[2]) <= 0 || Number(m[3]) < 1) {
      throw new Error(
        `HEARTH_RATE_LIMITS: each entry is class=perSecond/burst with class one of ${RATE_LIMIT_CLASSES.join(', ')}, not ${part}`,
      );
    }
    limits[name] = { perSecond: Number(m[2]), burst: Number(m[3]) };
  }
  return limits;
}

/**
 * Reads the settings; throws one message naming the setting at the first wrong one.
 * `defaults.passwordIterations` is the host's default cost (Workers: the floor).
 */
export function readHostConfig(
  settings: Settings,
  defaults: { passwordIterations?: number; serverName?: string } = {},
): HostConfig {
  const get = (name: string) => {
    const value = settings[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const serverName = get('HEARTH_SERVER_NAME') ?? defaults.serverName;
  if (serverName === undefined)
    throw new Error('HEARTH_SERVER_NAME is required (the server name in user IDs)');
  if (!isValidServerName(serverName))
    throw new Error(`HEARTH_SERVER_NAME must be a server name (HOST or HOST:PORT), not ${serverName}`);
  const delegateTo = get('HEARTH_DELEGATE_TO');
  if (delegateTo !== undefined && !isValidServerName(delegateTo))
    throw new Error(`HEARTH_DELEGATE_TO must be HOST or HOST:PORT, not ${delegateTo}`);
  let signingSeed: Uint8Array | undefined;
  const seedText = get('HEARTH_SIGNING_SEED');
  if (seedText !== undefined) {
    try {
      signingSeed = decodeBase64(seedText.trim());
    } catch {
      signingSeed = undefined;
    }
    if (signingSeed?.length !== 32) throw new Error('HEARTH_SIGNING_SEED must be base64 of exactly 32 bytes');
  }
  const iterationsText = get('HEARTH_PASSWORD_ITERATIONS');
  const passwordIterations =
    iterationsText === undefined
      ? (defaults.passwordIterations ?? PASSWORD_ITERATIONS_DEFAULT)
      : integer('HEARTH_PASSWORD_ITERATIONS', iterationsText, PASSWORD_ITERATIONS_FLOOR);
  const upload = get('HEARTH_MAX_UPLOAD_SIZE');
  const syncTimeout = get('HEARTH_MAX_SYNC_TIMEOUT');
  const rateLimits = get('HEARTH_RATE_LIMITS');
  const federationCa = get('HEARTH_FEDERATION_CA');
  return {
    serverName,
    registration: oneOf(
      'HEARTH_REGISTRATION',
      get('HEARTH_REGISTRATION'),
      ['open', 'token', 'closed'],
      'token',
    ),
    signingSeed,
    passwordIterations,
    ...(upload !== undefined ? { maxUploadBytes: parseSize(upload, 'HEARTH_MAX_UPLOAD_SIZE') } : {}),
    ...(syncTimeout !== undefined
      ? { maxSyncTimeoutMs: integer('HEARTH_MAX_SYNC_TIMEOUT', syncTimeout, 0) }
      : {}),
    ...(rateLimits !== undefined ? { rateLimits: parseRateLimits(rateLimits) } : {}),
    federation: oneOf('HEARTH_FEDERATION', get('HEARTH_FEDERATION'), ['on', 'off'], 'on') === 'on',
    ...(federationCa !== undefined ? { federationCa } : {}),
    ...(delegateTo !== undefined ? { delegateTo } : {}),
    logLevel: oneOf('HEARTH_LOG_LEVEL', get('HEARTH_LOG_LEVEL'), ['debug', 'info', 'warn', 'error'], 'info'),
  };
}

/**
 * Puts the configured seed into a freshly opened store, or checks it is the one already there:
 * a store keeps one signing key for life (other servers cache it), so a different secret is
 * refused rather than silently ignored.
 */
export async function installSigningSeed(store: Store, seed: Uint8Array | undefined): Promise<void> {
  if (!seed) return;
  const kept = await store.federation.putSecretOnce(SIGNING_SEED_SECRET, seed);
  if (kept.length !== seed.length || kept.some((byte, i) => byte !== seed[i])) {
    throw new Error(
      'HEARTH_SIGNING_SEED differs from the signing key this store already has; a server keeps its key for life',
    );
  }
}

/**
 * `createHomeserver`'s options for a host configuration: `openStore` opens the host's store
 * (the seed is installed before the homeserver reads it); `extra` adds what only the host
 * knows (its federation transport, its clock in tests).
 */
export function homeserverOptions(
  config: HostConfig,
  openStore: () => Promise<Store>,
  extra: Partial<HomeserverOptions> & { logger?: Logger } = {},
): HomeserverOptions {
  return {
    serverName: config.serverName,
    registration: config.registration,
    passwordIterations: config.passwordIterations,
    logger: extra.logger ?? consoleLogger(config.logLevel),
    ...(config.maxUploadBytes !== undefined ? { maxUploadBytes: config.maxUploadBytes } : {}),
    ...(config.maxSyncTimeoutMs !== undefined ? { maxSyncTimeoutMs: config.maxSyncTimeoutMs } : {}),
    ...(config.rateLimits ? { rateLimits: config.rateLimits } : {}),
    ...(config.delegateTo !== undefined ? { wellKnownServer: config.delegateTo } : {}),
    ...extra,
    store: async () => {
      const store = await openStore();
      try {
        await installSigningSeed(store, config.signingSeed);
      } catch (error) {
        await store.close();
        throw error;
      }
      return store;
    },
  };
}

/**
 * Under the `token` policy, logs a fresh registration token once the homeserver is ready, as
 * `hearth serve` does: whoever reads the host's log may let people sign up.
 */
export function announceRegistrationToken(hs: Homeserver, config: HostConfig, logger?: Logger): void {
  if (config.registration !== 'token') return;
  const log = logger ?? consoleLogger(config.logLevel);
  hs.ready
    .then(() => hs.admin.createRegistrationToken())
    .then(
      (token) => log.info(`registration token (share it with whoever may sign up): ${token}`),
      (error) => log.error('could not create a registration token', { error: String(error) }),
    );
}

/** The answer of a host whose settings are wrong: the detail goes to the operator's log only. */
export function misconfigured(error: unknown, logger: Logger = consoleLogger('error')): () => Response {
  logger.error(`Hearth cannot start: ${error instanceof Error ? error.message : String(error)}`);
  return () =>
    Response.json({ errcode: 'M_UNKNOWN', error: 'The homeserver is misconfigured' }, { status: 503 });
}
