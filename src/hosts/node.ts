/**
 * The Node host: `node:http` in front of `hs.fetch`. It turns each incoming request into
 * a web `Request` (body streamed, aborted when the client goes away) and writes the
 * `Response` back, streaming its body. Nothing Matrix-specific lives here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ConnectionInfo } from '../api/http.ts';

export type FetchLike = (request: Request, info?: ConnectionInfo) => Promise<Response>;

export interface NodeServerOptions {
  host?: string;
  port?: number;
  /** Called once per answered request (for the access log). */
  onRequest?: (entry: { method: string; path: string; status: number; ms: number; client: string }) => void;
}

export interface RunningServer {
  readonly server: Server;
  /** `http://host:port` as bound (the real port when 0 was asked). */
  readonly url: string;
  close(): Promise<void>;
}

function toRequest(req: IncomingMessage, signal: AbortSignal, origin: string): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    // HTTP/2 pseudo-headers and hop-by-hop framing are not part of a fetch Request.
    if (name.startsWith(':')) continue;
    headers.append(name, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    signal,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    // Node's fetch needs this to accept a streamed request body.
    ...(hasBody ? { duplex: 'half' } : {}),
  } as RequestInit);
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie') return;
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve));
      if (res.destroyed) break;
    }
  } finally {
    reader.releaseLock();
    res.end();
  }
}

/** Serves `fetch` over HTTP until `close()`. */
export async function serveHttp(fetch: FetchLike, options: NodeServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer(async (req, res) => {
    const started = performance.now();
    const aborter = new AbortController();
    // The client hung up before we answered: stop work such as a long-polling /sync.
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    const address = req.socket.remoteAddress ?? 'unknown';
    const origin = `http://${req.headers.host ?? `${host}:${(server.address() as AddressInfo).port}`}`;
    let status = 500;
    try {
      const response = await fetch(toRequest(req, aborter.signal, origin), { clientAddress: address });
      status = response.status;
      await writeResponse(response, res);
    } catch (err) {
      // hs.fetch answers every request itself; reaching here means the host failed.
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: 'Internal server error' }));
      } else {
        res.destroy(err as Error);
      }
    } finally {
      options.onRequest?.({
        method: req.method ?? 'GET',
        path: (req.url ?? '/').replace(/access_token=[^&]*/, 'access_token=<redacted>'),
        status,
        ms: performance.now() - started,
        client: address,
      });
    }
  });
  // Long-polls end by themselves within 25 s; keep idle sockets from holding shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8008, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    url: `http://${shownHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
