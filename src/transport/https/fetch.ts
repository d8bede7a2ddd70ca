/**
 * Federation over HTTPS on runtimes whose only outgoing HTTP is `fetch` (workerd, Deno, Bun, a
 * WASI component): the connector sends each exchange as `fetch('https://<tlsName>:<port>/…')`.
 *
 * What fetch cannot say: where to connect apart from the URL's host. The URL's host is the name
 * the certificate must match and the `Host` header, so an exchange whose connect target differs
 * from its TLS name (an SRV target: server-server-api.md "Resolving server names", steps 3.4 and
 * 4) is refused as UNREACHABLE with a message saying why. Without SRV (no resolver is given
 * by default) discovery never asks for that: names with an explicit port, `.well-known`
 * delegation and the default port 8448 all connect to the name they are checked against.
 */
import { TransportError } from '../transport.ts';
import type { SrvResolver } from './discovery.ts';
import {
  createHttpsTransport,
  type HttpsConnector,
  type HttpsTransport,
  type HttpsTransportOptions,
} from './index.ts';

/** The runtime's fetch, maybe bound to a client trusting extra CAs (Deno's `createHttpClient`, Bun's `tls.ca`). */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

/** Statuses whose responses carry no body (the fetch standard's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

const bracketed = (host: string) => (host.includes(':') ? `[${host}]` : host);

async function readLimited(response: Response, limit: number, who: string): Promise<Uint8Array> {
  const tooLarge = () => new TransportError('TOO_LARGE', `${who} answered more than ${limit} bytes`);
  if (Number(response.headers.get('content-length') ?? 0) > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!response.body) return new Uint8Array(0);
  let total = 0;
  const counted = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        if (total > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Uint8Array(await new Response(counted).arrayBuffer());
}

export function fetchHttpsConnector(
  fetchFn: FetchFunction = (url, init) => fetch(url, init),
): HttpsConnector {
  return async (exchange) => {
    const who = exchange.hostHeader;
    if (exchange.host !== exchange.tlsName) {
      throw new TransportError(
        'UNREACHABLE',
        `${who}: reaching ${exchange.host} with a certificate for ${exchange.tlsName} needs a connection fetch cannot make`,
      );
    }
    const headers = new Headers(exchange.headers);
    headers.delete('host');
    const signal = AbortSignal.timeout(exchange.timeoutMs);
    let response: Response;
    try {
      response = await fetchFn(`https://${bracketed(exchange.tlsName)}:${exchange.port}${exchange.path}`, {
        method: exchange.method,
        headers,
        body: exchange.body as BodyInit | undefined,
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      if (signal.aborted)
        throw new TransportError('TIMEOUT', `no answer from ${who} in ${exchange.timeoutMs} ms`);
      const message = error instanceof Error ? error.message : String(error);
      // Runtimes word TLS failures differently; they all name the certificate or TLS.
      const code = /certificate|tls|ssl|handshake/i.test(message) ? 'TLS' : 'UNREACHABLE';
      throw new TransportError(code, `${who}: ${message}`, { cause: error });
    }
    let body: Uint8Array;
    try {
      body = await readLimited(response, exchange.maxResponseBytes, who);
    } catch (error) {
      if (error instanceof TransportError) throw error;
      if (signal.aborted)
        throw new TransportError('TIMEOUT', `no answer from ${who} in ${exchange.timeoutMs} ms`);
      throw new TransportError('UNREACHABLE', `${who}: ${String(error)}`, { cause: error });
    }
    return new Response(NULL_BODY_STATUS.has(response.status) ? null : (body as BodyInit), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** No SRV lookups: fetch could not connect to an SRV target under the server's name anyway. */
export const noSrv: SrvResolver = { resolveSrv: async () => [] };

export type FetchHttpsTransportOptions = Omit<HttpsTransportOptions, 'connector' | 'srv'> & {
  fetch?: FetchFunction;
};

/** Federation over HTTPS through `fetch`. */
export function createFetchHttpsTransport(options: FetchHttpsTransportOptions = {}): HttpsTransport {
  return createHttpsTransport({ ...options, connector: fetchHttpsConnector(options.fetch), srv: noSrv });
}
