/**
 * What every homeserver service is given (STYLE.md §8: factories with declared
 * collaborators, no globals). Clock and randomness are injected so tests are
 * deterministic; the store is the only way to durable state.
 */
import type { SigningKey } from '../core/crypto.ts';
import { serverNameOf } from '../core/identifiers.ts';
import type { Store } from '../storage/store.ts';
import type { Notifier } from './notifier.ts';
import type { FederationPort, KeyStore } from './ports.ts';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export interface Random {
  /** Cryptographically strong random bytes. */
  bytes(length: number): Uint8Array;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Who made the request, once the token is known. */
export interface Auth {
  userId: string;
  /** `null` for tokens without a device (application services). */
  deviceId: string | null;
  isGuest: boolean;
  /** `false` exempts the caller from rate limits (application services, admins). */
  rateLimited?: boolean;
  /** A server admin (known when the token was resolved). */
  admin?: boolean;
  /** The application service acting (its `as_token`), with `userId` the user it acts as. */
  appserviceId?: string;
  /** Suspended by an admin (admin.yaml `suspend`): may read, not act. */
  suspended?: boolean;
}

export type RegistrationPolicy = 'open' | 'token' | 'closed';

/** TURN with coturn's shared secret (`use-auth-secret`): voip.yaml `GET /voip/turnServer`. */
export interface TurnConfig {
  uris: string[];
  sharedSecret: string;
  /** Lifetime of handed-out credentials, in seconds. */
  ttlSeconds: number;
}

/** `/.well-known/matrix/support` (support.yaml). */
export interface SupportInfo {
  contacts: { role: string; matrix_id?: string; email_address?: string }[];
  support_page?: string;
}

export interface HomeserverConfig {
  /** The server name in user IDs, room aliases and signatures (`example.org`, `localhost:8008`). */
  readonly serverName: string;
  /** Who may register: anyone, holders of a registration token, or nobody. */
  readonly registration: RegistrationPolicy;
  /** Whether guests may register (`kind=guest`). */
  readonly guestAccess: boolean;
  /** Room version of new rooms unless the client asks for another. */
  readonly defaultRoomVersion: string;
  /** The client base URL for `/.well-known/matrix/client`; the request's origin when absent. */
  readonly publicBaseUrl?: string;
  /** PBKDF2-SHA-512 iterations for password hashes (OWASP 2023: 210,000). Tests lower it. */
  readonly passwordIterations: number;
  /** Longest /sync long-poll: a Service Worker host is stopped past 30 s of one request. */
  readonly maxSyncTimeoutMs: number;
  /** Access token lifetime when the client supports refresh tokens; null = no expiry. */
  readonly accessTokenLifetimeMs: number | null;
  /** Largest upload to the content repository, in bytes (`m.upload.size`). */
  readonly maxUploadBytes: number;
  /** TURN servers for `/voip/turnServer`; absent: none configured. */
  readonly turn?: TurnConfig;
  /** `/.well-known/matrix/support`; absent: 404. */
  readonly support?: SupportInfo;
  /** Whether HTTP pushers are delivered (a host with outgoing HTTP) or only stored (a browser). */
  readonly pushDelivery?: boolean;
  /**
   * Joins through another server ask for partial state (send_join `omit_members`, as
   * Synapse's faster joins): the room is usable at once, its members fill in afterwards.
   * On unless false; false: every join waits for the whole state.
   */
  readonly partialStateJoins?: boolean;
}

export interface HomeserverContext {
  readonly config: HomeserverConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** This server's ed25519 key: signs every event and federation request it makes. */
  readonly signingKey: SigningKey;
  readonly notifier: Notifier;
  /** Requests to other servers (`federationOff` unless federation is configured). */
  readonly federation: FederationPort;
  /** Other servers' signing keys, for checking the events they sign. */
  readonly keys: KeyStore;
}

/**
 * Whether a user ID, room ID, event ID or room alias names this server. The server name is
 * parsed, not matched as a suffix (`@a:evil.example:8448` is not local to `example:8448`'s
 * lookalikes); anything that does not parse is not local.
 */
export function isLocalId(config: Pick<HomeserverConfig, 'serverName'>, id: string): boolean {
  try {
    return serverNameOf(id) === config.serverName;
  } catch {
    return false;
  }
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random string of `length` characters from [A-Za-z0-9] (device IDs, tokens, session IDs). */
export function randomString(random: Random, length: number): string {
  // 62 does not divide 256: reject the top bytes so every character is equally likely.
  const limit = 256 - (256 % ALPHANUMERIC.length);
  let out = '';
  while (out.length < length) {
    for (const byte of random.bytes(length - out.length + 8)) {
      if (byte < limit) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
      if (out.length === length) break;
    }
  }
  return out;
}

export const systemClock: Clock = { now: () => Date.now() };

export const webRandom: Random = {
  bytes(length) {
    const out = new Uint8Array(length);
    // getRandomValues fills at most 65,536 bytes per call.
    for (let at = 0; at < length; at += 65_536)
      globalThis.crypto.getRandomValues(out.subarray(at, at + 65_536));
    return out;
  },
};

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function consoleLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = ['debug', 'info', 'warn', 'error'];
  const min = order.indexOf(level);
  const at =
    (name: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
      if (order.indexOf(name) < min) return;
      const line = fields ? `${message} ${JSON.stringify(fields)}` : message;
      console[name === 'debug' ? 'log' : name](`${new Date().toISOString()} ${name.toUpperCase()} ${line}`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
