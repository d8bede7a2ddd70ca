/**
 * The Node host: `node:http` (or `node:https` with a certificate) in front of `hs.fetch`. It
 * turns each incoming request into a web `Request` (body streamed, aborted when the client goes
 * away) and writes the `Response` back, streaming its body. Nothing Matrix-specific lives here.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ConnectionInfo } from '../api/http.ts';

export type FetchLike = (request: Request, info?: ConnectionInfo) => Promise<Response>;

export interface NodeServerOptions {
  host?: string;
  port?: number;
  /**
   * Serve HTTPS with this PEM key and certificate chain instead of plain HTTP: what federation
   * needs (server-server-api.md "TLS": other servers only ever speak HTTPS to us).
   */
  tls?: { key: string; cert: string };
  /** Called once per answered request (for the access log). */
  onRequest?: (entry: { method: string; path: string; status: number; ms: number; client: string }) => void;
}

export interface RunningServer {
  readonly server: Server;
  /** `http://host:port` (or `https://`) as bound (the real port when 0 was asked). */
  readonly url: string;
  close(): Promise<void>;
}

/** Methods a fetch `Request` cannot be made with (Fetch standard, "forbidden method"). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * The request as `hs.fetch` takes it, and the method to pass beside it when a `Request` cannot
 * carry that method (see `ConnectionInfo.method`): no Matrix endpoint uses such a method, so a
 * bodiless stand-in lets the router answer it like any other unknown method.
 */
function toRequest(
  req: IncomingMessage,
  signal: AbortSignal,
  origin: string,
  body: SmallBody,
): { request: Request; method?: string } {
  const method = req.method ?? 'GET';
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    return { request: standIn(req.url ?? '/', origin, signal), method };
  }
  return { request: toFetchRequest(req, signal, origin, body) };
}

/**
 * Bodies declared no longer than this are read whole before the `Request` is made, and handed
 * to it as bytes: a web stream over the socket's chunks (`Readable.toWeb`) costs the router's
 * read a round of stream machinery per request, about a tenth of a small request's CPU in the
 * host (a message send is ~100 bytes). Larger or undeclared bodies stay streamed, so that the
 * router's limits stop them before they are held.
 */
const SMALL_BODY_BYTES = 64 * 1024;

/** A small body read whole, one that failed to arrive (the client went away), or none read. */
type SmallBody = Buffer | { failed: unknown } | undefined;

/** The body of `req` when it declares a length up to `SMALL_BODY_BYTES`; undefined otherwise. */
function readSmallBody(req: IncomingMessage): Promise<SmallBody> | undefined {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD' || FORBIDDEN_METHODS.has(method.toUpperCase())) return undefined;
  const declared = req.headers['content-length'];
  // Node's parser refuses a request declaring both a length and chunked framing, or two lengths.
  if (declared === undefined || !/^\d+$/.test(declared) || Number(declared) > SMALL_BODY_BYTES)
    return undefined;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.once('error', (error) => resolve({ failed: error }));
    // The client went away before the whole body came: no 'end' follows.
    req.once('close', () => {
      if (!req.complete) resolve({ failed: new Error('the request body ended early') });
    });
  });
}

function standIn(path: string, origin: string, signal?: AbortSignal): Request {
  let url: URL;
  try {
    url = new URL(path, origin);
  } catch {
    url = new URL('/', origin);
  }
  return new Request(url, { method: 'GET', signal });
}

function toFetchRequest(req: IncomingMessage, signal: AbortSignal, origin: string, read: SmallBody): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    // HTTP/2 pseudo-headers and hop-by-hop framing are not part of a fetch Request.
    if (name.startsWith(':')) continue;
    headers.append(name, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', origin);
  // Node's socket chunks are Buffers over plain ArrayBuffers, never shared memory.
  if (read instanceof Uint8Array)
    return new Request(url, { method, headers, signal, body: read as Uint8Array<ArrayBuffer> });
  const hasBody = method !== 'GET' && method !== 'HEAD';
  // A small body that failed to arrive is read by the router as the broken stream it was.
  const body =
    read === undefined
      ? (Readable.toWeb(req) as ReadableStream<Uint8Array>)
      : new ReadableStream<Uint8Array>({ start: (controller) => controller.error(read.failed) });
  return new Request(url, {
    method,
    headers,
    signal,
    body: hasBody ? body : undefined,
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
  if (!response.body) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  const reader = response.body.getReader();
  let finished = false;
  try {
    // A body of one piece (every JSON answer) goes out with its length in one write: no chunked
    // framing to write here and for the client to parse. Longer bodies stream from their second piece.
    const first = await reader.read();
    const second = first.done ? first : await reader.read();
    if (second.done) {
      finished = true;
      const bytes = first.done ? undefined : first.value;
      if (bytes && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined)
        headers['content-length'] = String(bytes.byteLength);
      res.writeHead(response.status, headers);
      if (bytes) res.write(bytes);
      return;
    }
    res.writeHead(response.status, headers);
    for (const piece of [first.value, second.value]) {
      if (!res.write(piece)) await new Promise<void>((resolve) => res.once('drain', resolve));
      if (res.destroyed) return;
    }
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve));
      if (res.destroyed) break;
    }
  } finally {
    // A body read to its end has nothing left to hand on: releasing its lock would only make
    // Node build the error it rejects further reads with (a new V8 context, at the first
    // response of every start).
    if (!finished) reader.releaseLock();
    // A body that failed before its first piece still answers with its status, as before it.
    if (!res.headersSent) res.writeHead(response.status, headers);
    res.end();
  }
}

/** Writes a whole HTTP/1.1 response to a socket the HTTP server has let go of, then closes it. */
function writeRaw(socket: Socket, status: number, body: unknown, headers: Headers = new Headers()): void {
  writeRawText(socket, status, JSON.stringify(body), headers);
}

function writeRawText(socket: Socket, status: number, text: string, headers: Headers): void {
  headers.set('content-type', 'application/json');
  headers.set('content-length', String(Buffer.byteLength(text)));
  headers.set('connection', 'close');
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  headers.forEach((value, name) => {
    head += `${name}: ${value}\r\n`;
  });
  socket.end(`${head}\r\n${text}`);
}

/** Answers a request Node's server would not hand us, through `fetch` with its real method. */
function answerRaw(
  socket: Socket,
  fetch: FetchLike,
  request: Request,
  method: string,
  client?: string,
): void {
  fetch(request, { clientAddress: client ?? 'unknown', method })
    .then(async (response) => {
      writeRawText(socket, response.status, await response.text(), new Headers(response.headers));
    })
    .catch(() => writeRaw(socket, 500, { errcode: 'M_UNKNOWN', error: 'Internal server error' }));
}

/** Serves `fetch` over HTTP (HTTPS with `tls`) until `close()`. */
export async function serveHttp(fetch: FetchLike, options: NodeServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const scheme = options.tls ? 'https' : 'http';
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const aborter = new AbortController();
    // The client hung up before we answered: stop work such as a long-polling /sync.
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    const address = req.socket.remoteAddress ?? 'unknown';
    const origin = originOf(req.headers);
    let status = 500;
    try {
      const { request, method } = toRequest(req, aborter.signal, origin, await readSmallBody(req));
      const response = await fetch(request, { clientAddress: address, ...(method ? { method } : {}) });
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
  };
  // node:https's Server is a node:http Server underneath (tls.Server in front): one code path.
  // node:https is loaded only here, for a server with a certificate.
  const server: Server = options.tls
    ? (process
        .getBuiltinModule('node:https')
        .createServer({ key: options.tls.key, cert: options.tls.cert }, handle) as unknown as Server)
    : createServer(handle);
  // Long-polls end by themselves within 25 s; keep idle sockets from holding shutdown.
  server.keepAliveTimeout = 5_000;
  function originOf(headers: IncomingMessage['headers'] | undefined): string {
    // Made only when needed: `server.address()` is a getsockname system call.
    const fallback = () =>
      `${scheme}://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
    if (!headers?.host) return fallback();
    // A Host header that is no authority must not make the request unanswerable.
    const origin = `${scheme}://${headers.host}`;
    return URL.canParse(origin) ? origin : fallback();
  }
  // CONNECT never reaches the request handler: without this, Node closes the socket unanswered.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    answerRaw(
      socket,
      fetch,
      standIn(req.url ?? '/', originOf(req.headers)),
      req.method ?? 'CONNECT',
      socket.remoteAddress,
    );
  });
  // What Node's HTTP parser refuses (an unknown method, a request line or headers over its
  // limit, broken framing) would otherwise get a bare status with no body, or none at all.
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const head = err.rawPacket?.toString('latin1') ?? '';
    const lineEnd = head.indexOf('\r\n');
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      // No end of the request line within the limit: the URL itself is too long.
      const uri = lineEnd === -1;
      writeRaw(socket, uri ? 414 : 431, {
        errcode: 'M_TOO_LARGE',
        error: uri ? 'The request URL is too long' : 'The request headers are too large',
      });
      return;
    }
    const line = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/.exec(head.slice(0, lineEnd));
    if (err.code === 'HPE_INVALID_METHOD' && line) {
      answerRaw(
        socket,
        fetch,
        standIn(line[2] as string, originOf(undefined)),
        line[1] as string,
        socket.remoteAddress,
      );
      return;
    }
    writeRaw(socket, 400, { errcode: 'M_UNKNOWN', error: 'Malformed HTTP request' });
  });
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
    url: `${scheme}://${shownHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
