/**
 * `hearth serve --config hearth.yaml`: the configuration file, YAML like Synapse's
 * `homeserver.yaml`. Two kinds of keys:
 *
 * - every command-line flag of `hearth serve`, by its name with `_` for `-` (`server_name`,
 *   `max_upload_size`, `tls_cert`, …), read through the flag table itself (`SERVE_FLAGS` in
 *   cli.ts): a flag added there is a configuration key at once. A flag given on the command
 *   line wins over the file; a repeatable flag adds to the file's list.
 * - what flags do not carry: rate limits, registration tokens and the shared secret, admins,
 *   the JSON body limit, TURN, the support contacts, the default room version (below).
 *
 * Everything is checked before the server starts; a mistake names its key (`rate_limits.
 * message.burst: must be a number ≥ 1`). Paths in the file are relative to the file.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { RateLimitConfig } from '../api/rate-limit.ts';
import { isValidUserId } from '../core/identifiers.ts';
import { roomVersions } from '../core/room-versions.ts';
import { parseYaml } from './yaml.ts';

/** One flag as `node:util` parseArgs declares it. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  default?: string | boolean;
}

/** Flags whose values name files: relative to the configuration file when given there. */
const PATH_FLAGS = new Set(['data', 'tls-cert', 'tls-key', 'federation-ca', 'appservice']);
/** Flags that make no sense inside the file. */
const NOT_IN_FILE = new Set(['config', 'help']);
/** Synapse's names for the same settings, accepted so a homeserver.yaml habit works. */
const SYNAPSE_ALIASES: Readonly<Record<string, string>> = {
  app_service_config_files: 'appservice',
};

export interface TurnConfig {
  uris: string[];
  /** coturn's `static-auth-secret` (`use-auth-secret`): credentials are HMAC-SHA1 of it. */
  sharedSecret: string;
  /** Lifetime of the credentials handed out, in seconds. */
  ttlSeconds: number;
}

export interface SupportConfig {
  contacts: { role: string; matrix_id?: string; email_address?: string }[];
  support_page?: string;
}

export interface RegistrationTokenConfig {
  token: string;
  usesAllowed: number | null;
  expiresAt: number | null;
}

/** What the file sets beyond the flags. */
export interface ConfigExtras {
  rateLimits?: Record<string, RateLimitConfig>;
  /** Admins are not rate-limited. */
  rateLimitExemptAdmins?: boolean;
  registrationTokens?: RegistrationTokenConfig[];
  /** Synapse's `registration_shared_secret`: `/_synapse/admin/v1/register` and `hearth register-user`. */
  registrationSharedSecret?: string;
  /** Local users made server admins at start. */
  admins?: string[];
  defaultRoomVersion?: string;
  /** Largest JSON request body, in bytes. */
  maxJsonBodyBytes?: number;
  turn?: TurnConfig;
  support?: SupportConfig;
}

export interface LoadedConfig {
  /** The flags the file sets, as command-line arguments (to go before the real ones). */
  argv: string[];
  extras: ConfigExtras;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const RATE_LIMIT_CLASSES = ['login', 'register', 'message', 'default'];

type Checker = (value: unknown, key: string, extras: ConfigExtras, file: string) => void;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(key: string, message: string): never {
  throw new ConfigError(`${key}: ${message}`);
}

function str(value: unknown, key: string): string {
  if (typeof value !== 'string' || value === '') fail(key, 'must be a non-empty string');
  return value;
}

function positive(value: unknown, key: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
    fail(key, `must be a number ≥ ${min}`);
  return value;
}

function objectKeys(value: unknown, key: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(value)) fail(key, 'must be a mapping');
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) fail(`${key}.${k}`, `unknown key (known: ${allowed.join(', ')})`);
  }
  return value;
}

/** `1048576`, `512K`, `50M`, `1G`: bytes, binary units. */
export function sizeInBytes(value: unknown, key: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const m = typeof value === 'string' ? /^\s*(\d+)\s*([KMG]?)(i?B)?\s*$/i.exec(value) : null;
  if (!m) fail(key, 'must be bytes, or a number with K, M or G');
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) fail(key, `${String(value)} is not a usable size`);
  return bytes;
}

/** The keys that are not flags, each with its check. */
const EXTRAS: Readonly<Record<string, Checker>> = {
  rate_limits(value, key, extras) {
    const v = objectKeys(value, key, [...RATE_LIMIT_CLASSES, 'exempt_admins']);
    const limits: Record<string, RateLimitConfig> = {};
    for (const [name, cfg] of Object.entries(v)) {
      if (name === 'exempt_admins') {
        if (typeof cfg !== 'boolean') fail(`${key}.${name}`, 'must be true or false');
        extras.rateLimitExemptAdmins = cfg;
        continue;
      }
      const c = objectKeys(cfg, `${key}.${name}`, ['per_second', 'burst']);
      limits[name] = {
        perSecond: positive(c.per_second, `${key}.${name}.per_second`, Number.MIN_VALUE),
        burst: positive(c.burst, `${key}.${name}.burst`, 1),
      };
    }
    extras.rateLimits = limits;
  },
  registration_tokens(value, key, extras) {
    if (!Array.isArray(value)) fail(key, 'must be a list of tokens');
    extras.registrationTokens = value.map((item, i) => {
      const at = `${key}[${i}]`;
      if (typeof item === 'string')
        return { token: checkToken(item, at), usesAllowed: null, expiresAt: null };
      const t = objectKeys(item, at, ['token', 'uses_allowed', 'expires_at']);
      const expires = t.expires_at;
      let expiresAt: number | null = null;
      if (expires !== undefined) {
        expiresAt = expires instanceof Date ? expires.getTime() : Date.parse(String(expires));
        if (!Number.isFinite(expiresAt))
          fail(`${at}.expires_at`, 'must be a date (2027-01-31 or an ISO time)');
      }
      return {
        token: checkToken(t.token, `${at}.token`),
        usesAllowed: t.uses_allowed === undefined ? null : positive(t.uses_allowed, `${at}.uses_allowed`, 1),
        expiresAt,
      };
    });
  },
  registration_shared_secret(value, key, extras) {
    extras.registrationSharedSecret = str(value, key);
  },
  admins(value, key, extras) {
    if (!Array.isArray(value)) fail(key, 'must be a list of user IDs');
    extras.admins = value.map((u, i) => {
      if (typeof u !== 'string' || !isValidUserId(u)) fail(`${key}[${i}]`, `${String(u)} is not a user ID`);
      return u;
    });
  },
  default_room_version(value, key, extras) {
    const version = typeof value === 'number' ? String(value) : str(value, key);
    if (!Object.hasOwn(roomVersions, version))
      fail(key, `unknown room version ${version} (known: ${Object.keys(roomVersions).join(', ')})`);
    extras.defaultRoomVersion = version;
  },
  max_request_size(value, key, extras) {
    extras.maxJsonBodyBytes = sizeInBytes(value, key);
  },
  turn(value, key, extras) {
    const t = objectKeys(value, key, ['uris', 'shared_secret', 'ttl']);
    if (!Array.isArray(t.uris) || t.uris.length === 0) fail(`${key}.uris`, 'must be a non-empty list');
    const uris = t.uris.map((u, i) => {
      if (typeof u !== 'string' || !/^turns?:/.test(u))
        fail(`${key}.uris[${i}]`, 'must be a turn: or turns: URI');
      return u;
    });
    extras.turn = {
      uris,
      sharedSecret: str(t.shared_secret, `${key}.shared_secret`),
      ttlSeconds: t.ttl === undefined ? 86_400 : positive(t.ttl, `${key}.ttl`, 1),
    };
  },
  support(value, key, extras) {
    const s = objectKeys(value, key, ['contacts', 'support_page']);
    const contacts = s.contacts === undefined ? [] : s.contacts;
    if (!Array.isArray(contacts)) fail(`${key}.contacts`, 'must be a list');
    extras.support = {
      contacts: contacts.map((c, i) => {
        const at = `${key}.contacts[${i}]`;
        const o = objectKeys(c, at, ['role', 'matrix_id', 'email_address']);
        if (o.matrix_id === undefined && o.email_address === undefined)
          fail(at, 'needs matrix_id or email_address');
        return {
          role: str(o.role, `${at}.role`),
          ...(o.matrix_id !== undefined ? { matrix_id: str(o.matrix_id, `${at}.matrix_id`) } : {}),
          ...(o.email_address !== undefined
            ? { email_address: str(o.email_address, `${at}.email_address`) }
            : {}),
        };
      }),
      ...(s.support_page !== undefined ? { support_page: str(s.support_page, `${key}.support_page`) } : {}),
    };
    if (extras.support.contacts.length === 0 && extras.support.support_page === undefined)
      fail(key, 'needs contacts or support_page');
  },
};

function checkToken(value: unknown, key: string): string {
  const token = str(value, key);
  if (!/^[A-Za-z0-9._~-]{1,64}$/.test(token)) fail(key, 'must be 1–64 of A-Z a-z 0-9 . _ ~ -');
  return token;
}

/** The configuration keys: every flag of the table (as `snake_case`) and the extras. */
export function configKeys(flags: Readonly<Record<string, FlagSpec>>): string[] {
  return [
    ...Object.keys(flags)
      .filter((f) => !NOT_IN_FILE.has(f))
      .map((f) => f.replaceAll('-', '_')),
    ...Object.keys(EXTRAS),
  ];
}

/** Reads the YAML text of a configuration file (`file` is where relative paths start). */
export function parseConfig(
  text: string,
  file: string,
  flags: Readonly<Record<string, FlagSpec>>,
): LoadedConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return { argv: [], extras: {} };
  if (!isObject(doc)) throw new ConfigError('the file must be a mapping of keys to values');
  const argv: string[] = [];
  const extras: ConfigExtras = {};
  const base = dirname(resolve(file));
  for (const [rawKey, value] of Object.entries(doc)) {
    const key = SYNAPSE_ALIASES[rawKey] ?? rawKey;
    const extra = EXTRAS[key];
    if (extra) {
      extra(value, rawKey, extras, file);
      continue;
    }
    const flag = key.replaceAll('_', '-');
    const spec = flags[flag];
    if (!spec || NOT_IN_FILE.has(flag) || key.includes('-')) {
      fail(rawKey, `unknown key (known: ${configKeys(flags).join(', ')})`);
    }
    const values = spec.multiple ? (Array.isArray(value) ? value : [value]) : [value];
    if (!spec.multiple && Array.isArray(value)) fail(rawKey, 'takes one value, not a list');
    for (const [i, item] of values.entries()) {
      const at = spec.multiple && Array.isArray(value) ? `${rawKey}[${i}]` : rawKey;
      if (spec.type === 'boolean') {
        if (typeof item !== 'boolean') fail(at, 'must be true or false');
        if (item) argv.push(`--${flag}`);
        continue;
      }
      // YAML reads `federation: on` as true, `port: 8008` as a number: both mean their text.
      let text: string;
      if (typeof item === 'string') text = item;
      else if (typeof item === 'number') text = String(item);
      else if (typeof item === 'boolean') text = item ? 'on' : 'off';
      else fail(at, 'must be a string or a number');
      if (PATH_FLAGS.has(flag) && !isAbsolute(text)) text = resolve(base, text);
      argv.push(`--${flag}`, text);
    }
  }
  return { argv, extras };
}

/** `parseConfig` on a file, with the file's name in front of any error. */
export function readConfigFile(file: string, flags: Readonly<Record<string, FlagSpec>>): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `--config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return parseConfig(text, file, flags);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.message}`);
    throw err;
  }
}

/** Rewrites `--flag-name` in a flag's error message as the key the file used. */
export function asConfigKey(message: string): string {
  return message.replace(/--([a-z][a-z-]*)/g, (_, flag: string) => flag.replaceAll('-', '_'));
}
