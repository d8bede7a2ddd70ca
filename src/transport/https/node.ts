/**
 * The Node side of federation over HTTPS: the TLS connector (node:https, node:tls), DNS
 * (node:dns) and an HTTPS listener feeding a homeserver. Everything runtime-specific about
 * HTTPS federation is in this file (STYLE.md §9).
 */
import type { promises as dns } from 'node:dns';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Agent, Server } from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import { type InboundHandler, TransportError, type TransportErrorCode } from '../transport.ts';
import type { SrvRecord, SrvResolver } from './discovery.ts';
import {
  createHttpsTransport,
  type HttpsConnector,
  type HttpsTransport,
  type HttpsTransportOptions,
} from './index.ts';

export interface NodeHttpsOptions {
  /**
   * Extra trusted CA certificates (PEM), on top of the operating system's and Node's bundled
   * ones (the spec: "strongly encouraged to rely on the operating system's judgement. Servers
   * can offer administrators a means to override the trusted authorities list").
   */
  ca?: string | readonly string[];
  /** Address resolution (CNAME/AAAA/A); default the system's `dns.lookup`. Tests map names to loopback. */
  lookup?: LookupFunction;
}

/**
 * node:https, node:tls and node:dns when first used, not when this file loads: a server that
 * has not federated yet (every start) loads none of them.
 */
const https = () => process.getBuiltinModule('node:https');
const tls = () => process.getBuiltinModule('node:tls');

/** Errors of the TLS layer (node:tls, OpenSSL's X509 verification codes). */
const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH)/;

function transportCode(err: NodeJS.ErrnoException): TransportErrorCode {
  const code = err.code ?? '';
  if (TLS_ERROR.test(code) || /certificate|ssl|tls/i.test(err.message)) return 'TLS';
  if (code.startsWith('HPE_')) return 'PROTOCOL';
  return 'UNREACHABLE';
}

/** Statuses whose responses carry no body (the fetch standard's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** A connector holding a pool of kept-alive connections; `close` ends them. */
export type NodeHttpsConnector = HttpsConnector & { close(): void };

export function nodeHttpsConnector(options: NodeHttpsOptions = {}): NodeHttpsConnector {
  const extra =
    options.ca === undefined ? [] : typeof options.ca === 'string' ? [options.ca] : [...options.ca];
  // One pool of kept-alive connections per connector: a busy destination reuses its TLS session.
  // Made at the first request: reading the system's trust store takes hundreds of
  // milliseconds and a few megabytes, which a server that never federates need not spend
  // at start.
  let pool: Agent | undefined;
  const agentFor = (): Agent => {
    if (pool === undefined) {
      const { getCACertificates } = tls();
      pool = new (https().Agent)({
        keepAlive: true,
        ca: [...new Set([...getCACertificates('default'), ...getCACertificates('system'), ...extra])],
      });
    }
    return pool;
  };

  const connect: HttpsConnector = (exchange) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      exchange.headers.forEach((value, name) => {
        headers[name] = value;
      });
      headers.host = exchange.hostHeader;
      if (exchange.body !== undefined) headers['content-length'] = String(exchange.body.byteLength);
      let settled = false;
      const fail = (err: TransportError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = https().request({
        agent: agentFor(),
        host: exchange.host,
        port: exchange.port,
        method: exchange.method,
        path: exchange.path,
        headers,
        // "a SNI should be sent for the certificate which is expected, unless that certificate
        // is expected to be an IP address in which case SNI is not supported".
        servername: exchange.tlsNameIsIp ? '' : exchange.tlsName,
        // The certificate is checked against the name discovery says, not the host connected
        // to (an SRV target or a delegated address).
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          tls().checkServerIdentity(exchange.tlsName, cert),
        lookup: options.lookup,
      });
      const timer = setTimeout(
        () =>
          fail(
            new TransportError(
              'TIMEOUT',
              `no answer from ${exchange.hostHeader} in ${exchange.timeoutMs} ms`,
            ),
          ),
        exchange.timeoutMs,
      );
      req.on('error', (err: NodeJS.ErrnoException) =>
        fail(
          new TransportError(transportCode(err), `${exchange.hostHeader}: ${err.message}`, { cause: err }),
        ),
      );
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.byteLength;
          if (total > exchange.maxResponseBytes) {
            fail(
              new TransportError(
                'TOO_LARGE',
                `${exchange.hostHeader} answered more than ${exchange.maxResponseBytes} bytes`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err: NodeJS.ErrnoException) =>
          fail(new TransportError('UNREACHABLE', `${exchange.hostHeader}: ${err.message}`, { cause: err })),
        );
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const responseHeaders = new Headers();
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            responseHeaders.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string);
          }
          const status = res.statusCode ?? 502;
          resolve(
            new Response(NULL_BODY_STATUS.has(status) ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage,
              headers: responseHeaders,
            }),
          );
        });
      });
      req.end(exchange.body === undefined ? undefined : Buffer.from(exchange.body));
    });
  return Object.assign(connect, { close: () => pool?.destroy() });
}

/** SRV lookups through the system's DNS servers; no records (NXDOMAIN, NODATA) is an empty answer. */
export function nodeSrvResolver(resolver?: Pick<typeof dns, 'resolveSrv'>): SrvResolver {
  return {
    async resolveSrv(name) {
      try {
        return (await (resolver ?? process.getBuiltinModule('node:dns').promises).resolveSrv(name)).map(
          (r): SrvRecord => ({ name: r.name, port: r.port, priority: r.priority, weight: r.weight }),
        );
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
        throw err;
      }
    },
  };
}

export type NodeHttpsTransportOptions = NodeHttpsOptions &
  Omit<HttpsTransportOptions, 'connector' | 'srv'> & { srv?: SrvResolver };

/** Federation over HTTPS on Node: system DNS and trust store unless told otherwise. */
export function createNodeHttpsTransport(
  options: NodeHttpsTransportOptions = {},
): HttpsTransport & { close(): void } {
  const connector = nodeHttpsConnector(options);
  const transport = createHttpsTransport({ ...options, connector, srv: options.srv ?? nodeSrvResolver() });
  return { ...transport, close: connector.close };
}

// --- inbound -------------------------------------------------------------------------------

export interface HttpsListenOptions {
  /** PEM private key and certificate chain. */
  key: string;
  cert: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface HttpsListener {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

async function answer(handler: InboundHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    if (!name.startsWith(':')) headers.append(name, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', `https://${headers.get('host') ?? 'localhost'}`);
  } catch {
    // A Host header that is no authority: the path still counts, the host is ours anyway.
    url = new URL(req.url ?? '/', 'https://localhost');
  }
  const request = new Request(url, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    ...(hasBody ? { duplex: 'half' } : {}),
  } as RequestInit);
  let response: Response;
  try {
    response = await handler(request, { clientAddress: req.socket.remoteAddress });
  } catch {
    response = Response.json({ errcode: 'M_UNKNOWN', error: 'Internal server error' }, { status: 500 });
  }
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  res.writeHead(response.status, out);
  res.end(response.body ? Buffer.from(await response.arrayBuffer()) : undefined);
}

/** Serves federation requests over HTTPS (node:https) to `handler` — e.g. `hs.fetch`. */
export function listenHttps(handler: InboundHandler, options: HttpsListenOptions): Promise<HttpsListener> {
  const server = https().createServer({ key: options.key, cert: options.cert }, (req, res) => {
    answer(handler, req, res).catch(() => res.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
