/**
 * Federation over HTTPS (server-server-api.md "API standards", "TLS", "Resolving server
 * names"): each request goes to the address server discovery finds for the destination,
 * with the `Host` header and certificate name the spec prescribes for how it was found.
 *
 * Runtime-agnostic: the TLS connection is made by an injected `HttpsConnector` (node.ts for
 * Node; an edge runtime would bring its own), SRV lookups by an injected resolver.
 */
import type { FederationTransport } from '../transport.ts';
import { isTransportError, requestTarget, TransportError } from '../transport.ts';
import {
  type ConnectTarget,
  createDiscovery,
  type Discovery,
  type SrvResolver,
  type WellKnownAnswer,
} from './discovery.ts';

export { DEFAULT_FEDERATION_PORT } from './discovery.ts';

/** One request on one connection, as the connector makes it. */
export interface HttpsExchange extends ConnectTarget {
  /** Sent as the `Host` header. */
  hostHeader: string;
  /** The certificate must be valid for this name (DNS name, or IP address without brackets). */
  tlsName: string;
  /** `tlsName` is an IP address: send no SNI. */
  tlsNameIsIp: boolean;
  method: string;
  /** Path and query. */
  path: string;
  headers: Headers;
  body: Uint8Array | undefined;
  /** Larger answers fail with `TransportError('TOO_LARGE')`. */
  maxResponseBytes: number;
  /** The whole exchange, connection included; past it, `TransportError('TIMEOUT')`. */
  timeoutMs: number;
}

/** Makes one HTTPS exchange and returns the buffered answer; rejects with `TransportError`. */
export type HttpsConnector = (exchange: HttpsExchange) => Promise<Response>;

/**
 * How long one federation request may take. Synapse's federation client gives a request
 * 60 s by default; a transaction of 50 PDUs to a slow server needs about that.
 */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** Largest federation answer. A `/state` or `/send_join` answer of a large room runs to tens of MB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024;
/** A `.well-known` answer is a line of JSON; Synapse refuses more than 50 KiB. */
export const WELL_KNOWN_MAX_BYTES = 50 * 1024;
/** `.well-known` sits on the ordinary HTTPS port (RFC 8615). */
export const WELL_KNOWN_PORT = 443;
/** wellknown.yaml: "follow 30x redirects, carefully avoiding redirect loops"; browsers stop at 20, five is plenty. */
export const MAX_WELL_KNOWN_REDIRECTS = 5;
/** A `.well-known` lookup delays the first request to a server: it gets less time than a request. */
export const WELL_KNOWN_TIMEOUT_MS = 10_000;

export interface HttpsTransportOptions {
  connector: HttpsConnector;
  srv: SrvResolver;
  clock?: { now(): number };
  random?: () => number;
  timeoutMs?: number;
  maxResponseBytes?: number;
  /** The port `.well-known` is fetched on. Default 443; tests on loopback use their own. */
  wellKnownPort?: number;
}

export interface HttpsTransport extends FederationTransport {
  readonly discovery: Discovery;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const isIpHost = (host: string) => host.startsWith('[') || /^[0-9.]+$/.test(host);
const unbracket = (host: string) => (host.startsWith('[') ? host.slice(1, -1) : host);

export function createHttpsTransport(options: HttpsTransportOptions): HttpsTransport {
  const { connector } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const wellKnownPort = options.wellKnownPort ?? WELL_KNOWN_PORT;

  /** `GET https://<hostname>/.well-known/matrix/server`, following redirects but never in a loop. */
  async function fetchWellKnown(hostname: string): Promise<WellKnownAnswer> {
    let url = new URL(`https://${hostname}/.well-known/matrix/server`);
    const seen = new Set<string>();
    for (;;) {
      seen.add(url.href);
      const response = await connector({
        host: unbracket(url.hostname),
        port: url.port ? Number(url.port) : wellKnownPort,
        hostHeader: url.host,
        tlsName: unbracket(url.hostname),
        tlsNameIsIp: isIpHost(url.hostname),
        method: 'GET',
        path: `${url.pathname}${url.search}`,
        headers: new Headers({ Accept: 'application/json' }),
        body: undefined,
        maxResponseBytes: WELL_KNOWN_MAX_BYTES,
        timeoutMs: Math.min(timeoutMs, WELL_KNOWN_TIMEOUT_MS),
      });
      const location = response.headers.get('location');
      if (REDIRECTS.has(response.status) && location !== null) {
        const next = new URL(location, url);
        if (next.protocol !== 'https:')
          throw new Error(`.well-known of ${hostname} redirects away from https`);
        if (seen.has(next.href) || seen.size > MAX_WELL_KNOWN_REDIRECTS) {
          throw new Error(`.well-known of ${hostname} redirects in a loop or too often`);
        }
        url = next;
        continue;
      }
      return {
        status: response.status,
        headers: response.headers,
        body: new Uint8Array(await response.arrayBuffer()),
      };
    }
  }

  const discovery = createDiscovery({
    srv: options.srv,
    wellKnown: fetchWellKnown,
    clock: options.clock ?? { now: () => Date.now() },
    random: options.random,
  });

  return {
    discovery,
    async send(destination, request) {
      const resolved = await discovery.resolve(destination);
      const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
      const body = hasBody ? new Uint8Array(await request.arrayBuffer()) : undefined;
      let lastError: unknown;
      for (const target of resolved.targets) {
        try {
          return await connector({
            ...target,
            hostHeader: resolved.hostHeader,
            tlsName: resolved.tlsName,
            tlsNameIsIp: resolved.tlsNameIsIp,
            method: request.method,
            path: requestTarget(request),
            headers: new Headers(request.headers),
            body,
            maxResponseBytes,
            timeoutMs,
          });
        } catch (err) {
          // Only an unreachable target moves on to the next SRV target; a TLS failure or a
          // timeout says something about this server, not about one address of it.
          if (!isTransportError(err) || err.code !== 'UNREACHABLE') throw err;
          lastError = err;
        }
      }
      throw lastError ?? new TransportError('UNREACHABLE', `no address for ${destination}`);
    },
  };
}
