/**
 * Server discovery — server-server-api.md "Resolving server names". Turns a server name into
 * where to connect (host and port, in order of preference), the `Host` header to send, and
 * the name the TLS certificate must be valid for (also the SNI, unless it is an IP address).
 *
 * Runtime-agnostic: DNS SRV lookups and the `.well-known` fetch are injected, as is the
 * clock, so the steps are tested exactly. Address (CNAME/AAAA/A) resolution of the host to
 * connect to happens when connecting.
 */
import { type HostKind, parseServerName, type ServerName } from '../../core/identifiers.ts';
import { parseJson } from '../../core/json.ts';
import { TransportError } from '../transport.ts';

/** The IANA-registered Matrix federation port ("8448 if no port is given"). */
export const DEFAULT_FEDERATION_PORT = 8448;

/** wellknown: "The recommended sensible default is 24 hours." */
export const WELL_KNOWN_DEFAULT_CACHE_MS = 24 * 60 * 60 * 1000;
/** wellknown: "Servers should additionally impose a maximum cache time for responses: 48 hours is recommended." */
export const WELL_KNOWN_MAX_CACHE_MS = 48 * 60 * 60 * 1000;
/** wellknown: "Errors are recommended to be cached for up to an hour" … */
export const WELL_KNOWN_MAX_ERROR_CACHE_MS = 60 * 60 * 1000;
/**
 * … "and servers are encouraged to exponentially back off for repeated failures": the first
 * failure is remembered for two minutes (Synapse's `WELL_KNOWN_MIN_RETRY_PERIOD` is a few
 * minutes too), doubling with each failure in a row up to the hour.
 */
export const WELL_KNOWN_FIRST_ERROR_CACHE_MS = 2 * 60 * 1000;

/**
 * How long SRV answers (records or none) are reused. Node's `resolveSrv` reports no TTL, and
 * without a cache every request would wait for one or two DNS queries; ten minutes bounds how
 * stale a changed record can be, as a typical SRV TTL would.
 */
export const SRV_CACHE_MS = 10 * 60 * 1000;

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export interface SrvResolver {
  /** The SRV records of `name`; empty when there are none. Throws only for a DNS failure. */
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

/** The answer to `GET https://<hostname>/.well-known/matrix/server`, redirects followed. */
export interface WellKnownAnswer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** Fetches `/.well-known/matrix/server` from `hostname`; throws when no answer arrives. */
export type WellKnownFetcher = (hostname: string) => Promise<WellKnownAnswer>;

export interface ConnectTarget {
  /** A DNS name (to be resolved with CNAME/AAAA/A) or an IP literal, without brackets. */
  host: string;
  port: number;
}

export interface ResolvedServer {
  /** Where to connect, in order; later ones are tried when an earlier one is unreachable. */
  targets: ConnectTarget[];
  /** The `Host` header to send. */
  hostHeader: string;
  /** The name the certificate must be valid for: a DNS name or an IP literal (no brackets). */
  tlsName: string;
  /** Whether `tlsName` is an IP address: then no SNI is sent ("SNI is not supported"). */
  tlsNameIsIp: boolean;
}

export interface DiscoveryOptions {
  srv: SrvResolver;
  wellKnown: WellKnownFetcher;
  clock: { now(): number };
  /** In [0, 1): picks among SRV records of equal priority by weight (RFC 2782). */
  random?: () => number;
}

export interface Discovery {
  resolve(serverName: string): Promise<ResolvedServer>;
}

const unbracket = (host: string) => (host.startsWith('[') ? host.slice(1, -1) : host);
const isIp = (kind: HostKind) => kind !== 'dns';

/**
 * How long to keep a successful `.well-known` answer: `Cache-Control: max-age` (or `no-store` /
 * `no-cache`: not at all), else `Expires`, else the 24-hour default; never over 48 hours.
 */
export function wellKnownCacheMs(headers: Headers, now: number): number {
  const cacheControl = (headers.get('cache-control') ?? '').toLowerCase();
  const directives = cacheControl.split(',').map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
  const maxAge = directives.map((d) => /^max-age\s*=\s*"?(\d+)"?$/.exec(d)?.[1]).find((v) => v !== undefined);
  let period: number | undefined;
  if (maxAge !== undefined) period = Number(maxAge) * 1000;
  else {
    const expires = headers.get('expires');
    if (expires !== null) {
      const at = Date.parse(expires);
      // RFC 9111 §5.3: an invalid date (such as "0") means already expired.
      period = Number.isNaN(at) ? 0 : at - now;
    }
  }
  return Math.max(0, Math.min(period ?? WELL_KNOWN_DEFAULT_CACHE_MS, WELL_KNOWN_MAX_CACHE_MS));
}

/** The delegated server name in a `.well-known` answer, or undefined when it is not a valid one. */
export function readWellKnown(answer: WellKnownAnswer): (ServerName & { name: string }) | undefined {
  if (answer.status !== 200) return undefined;
  let value: unknown;
  try {
    // "servers parsing the response should assume that the body is JSON regardless of type".
    value = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(answer.body), { fromUtf8: true });
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const name = (value as Record<string, unknown>)['m.server'];
  if (typeof name !== 'string') return undefined;
  try {
    return { ...parseServerName(name), name };
  } catch {
    return undefined;
  }
}

/** RFC 2782 order: lowest priority first; within one priority, a weighted random order. */
export function orderSrv(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Zero-weight records first in the list, so they get a small chance (RFC 2782 "Usage rules").
    const pool = [...(byPriority.get(priority) ?? [])].sort((a, b) => a.weight - b.weight);
    while (pool.length > 0) {
      const total = pool.reduce((sum, r) => sum + r.weight, 0);
      const pick = random() * (total + 1);
      let running = 0;
      let index = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        running += (pool[i] as SrvRecord).weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      out.push(...pool.splice(index, 1));
    }
  }
  return out;
}

interface CachedWellKnown {
  delegated: (ServerName & { name: string }) | undefined;
  until: number;
  /** Failures in a row, for the back-off. */
  failures: number;
}

export function createDiscovery(options: DiscoveryOptions): Discovery {
  const { srv, wellKnown, clock } = options;
  const random = options.random ?? Math.random;
  const wellKnownCache = new Map<string, CachedWellKnown>();
  const srvCache = new Map<string, { records: SrvRecord[]; until: number }>();

  async function lookupSrv(name: string): Promise<SrvRecord[]> {
    const now = clock.now();
    const cached = srvCache.get(name);
    if (cached && now < cached.until) return cached.records;
    let records: SrvRecord[];
    try {
      records = await srv.resolveSrv(name);
    } catch (err) {
      // A DNS failure is not an answer: nothing cached, the next request asks again.
      throw new TransportError('UNREACHABLE', `SRV lookup of ${name} failed`, { cause: err });
    }
    srvCache.set(name, { records, until: now + SRV_CACHE_MS });
    return records;
  }

  async function delegation(hostname: string): Promise<(ServerName & { name: string }) | undefined> {
    const now = clock.now();
    const cached = wellKnownCache.get(hostname);
    if (cached && now < cached.until) return cached.delegated;
    let delegated: (ServerName & { name: string }) | undefined;
    let period = 0;
    try {
      const answer = await wellKnown(hostname);
      delegated = readWellKnown(answer);
      if (delegated) period = wellKnownCacheMs(answer.headers, now);
    } catch {
      delegated = undefined;
    }
    // Any failure — no answer, not 200, not JSON, no valid `m.server` — is cached, backing off.
    const failures = delegated ? 0 : (cached?.failures ?? 0) + 1;
    if (!delegated) {
      period = Math.min(WELL_KNOWN_FIRST_ERROR_CACHE_MS * 2 ** (failures - 1), WELL_KNOWN_MAX_ERROR_CACHE_MS);
    }
    wellKnownCache.set(hostname, { delegated, until: now + period, failures });
    return delegated;
  }

  /** `_matrix-fed._tcp.<host>`, then the deprecated `_matrix._tcp.<host>`; empty when neither has records. */
  async function srvTargets(host: string): Promise<ConnectTarget[]> {
    for (const service of ['_matrix-fed._tcp', '_matrix._tcp']) {
      const records = await lookupSrv(`${service}.${host}`);
      if (records.length === 0) continue;
      // RFC 2782: a target of "." means "the service is decidedly not available at this domain".
      if (records.length === 1 && (records[0]?.name === '.' || records[0]?.name === '')) {
        throw new TransportError('UNREACHABLE', `${service}.${host} says the service is not available`);
      }
      return orderSrv(records, random).map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port }));
    }
    return [];
  }

  /** Steps 3.3–3.5 and 4–6: a DNS name without a port, by SRV or else on port 8448. */
  async function bySrv(host: string): Promise<ResolvedServer> {
    const targets = await srvTargets(host);
    return {
      targets: targets.length > 0 ? targets : [{ host, port: DEFAULT_FEDERATION_PORT }],
      hostHeader: host,
      tlsName: host,
      tlsNameIsIp: false,
    };
  }

  /** Steps 1 and 2 (and 3.1 and 3.2 for a delegated name): a name with an IP or a port. */
  function direct(name: ServerName & { name: string }): ResolvedServer {
    const host = unbracket(name.host);
    return {
      targets: [{ host, port: name.port ?? DEFAULT_FEDERATION_PORT }],
      hostHeader: name.name,
      tlsName: host,
      tlsNameIsIp: isIp(name.kind),
    };
  }

  return {
    async resolve(serverName) {
      let parsed: ServerName;
      try {
        parsed = parseServerName(serverName);
      } catch {
        throw new TransportError('UNREACHABLE', `"${serverName}" is not a server name`);
      }
      // 1. An IP literal; 2. a hostname with an explicit port.
      if (isIp(parsed.kind) || parsed.port !== undefined) return direct({ ...parsed, name: serverName });
      // 3. `.well-known` delegation, its name taken through 3.1–3.5 (never a second `.well-known`).
      const delegated = await delegation(parsed.host);
      if (delegated) {
        if (isIp(delegated.kind) || delegated.port !== undefined) return direct(delegated);
        return bySrv(delegated.host);
      }
      // 4.–6. No delegation: SRV on the hostname, then port 8448.
      return bySrv(parsed.host);
    },
  };
}
