#!/usr/bin/env node
/**
 * A tiny static file server for the built demo (`dist/web`), on loopback only, with a
 * `hearth relay` beside it so two browsers on this machine federate out of the box. `npm
 * start` runs it after the build:
 *
 *   node web/server.ts [DIR] [--port 8080] [--host 127.0.0.1] [--relay-port 0] [--no-relay]
 *
 * The page learns the relay's address from `GET /p2p.json` (`{"relays": [multiaddr]}`): with
 * it, the demo's homeserver runs in P2P mode (named by its key, federating over WebRTC,
 * signalled through the relay); without a relay that path is 404 and the homeserver is named
 * after the page's host, federating with nobody.
 *
 * The homeserver itself runs in the browser's Service Worker, so this server only hands out
 * files. What it must get right for that:
 * - the worker script is never cached (`Cache-Control: no-cache`), so the browser sees a new
 *   worker build at once (Service Workers spec, "Update": a cached script would delay it);
 * - `Service-Worker-Allowed: /` on scripts, so a worker served from a sub-path may still
 *   control the whole origin;
 * - hashed assets (`/assets/name-HASH.js`) are immutable; everything else is revalidated;
 * - a path with no file extension is the app's (SPA fallback to index.html), but
 *   `/_matrix/*` and `/.well-known/matrix/*` never fall back: before the worker controls a
 *   page, those requests answer a Matrix-shaped 404, not an HTML page a client cannot parse.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parseRelayArgs, startRelay } from '../src/hosts/relay.ts';

const MIME_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServerOptions {
  /** The folder to serve (the demo build, `dist/web`). */
  root: string;
  /** Loopback by default: the demo is for this machine. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Relays the page's P2P homeserver uses (WebSocket multiaddrs), served as `/p2p.json`. */
  relays?: readonly string[];
}

export interface RunningStaticServer {
  readonly server: Server;
  /** `http://host:port` as bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Paths the Service Worker answers; the static server must never dress them up as HTML. */
function isMatrixPath(path: string): boolean {
  return path.startsWith('/_matrix/') || path.startsWith('/.well-known/matrix/');
}

function cacheControl(path: string): string {
  // Vite puts content-hashed files under /assets/: they never change under one name.
  if (path.startsWith('/assets/')) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

async function fileAt(root: string, path: string): Promise<string | undefined> {
  const candidate = resolve(root, `.${path}`);
  // `..` segments are resolved away by URL parsing, but keep the guard where it matters.
  if (candidate !== root && !candidate.startsWith(root + sep)) return undefined;
  try {
    const info = await stat(candidate);
    if (info.isFile()) return candidate;
    if (info.isDirectory()) {
      const index = join(candidate, 'index.html');
      if ((await stat(index).catch(() => undefined))?.isFile()) return index;
    }
  } catch {
    // Not there: the caller decides between the SPA fallback and a 404.
  }
  return undefined;
}

function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
  });
  res.end(body);
}

async function handle(
  root: string,
  relays: readonly string[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    sendText(res, 405, 'Method not allowed\n');
    return;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    sendText(res, 400, 'Bad path\n');
    return;
  }
  if (path === '/p2p.json' && relays.length > 0) {
    sendText(res, 200, JSON.stringify({ relays }), 'application/json; charset=utf-8');
    return;
  }
  if (isMatrixPath(path)) {
    // Only reached when no Service Worker controls the page (yet).
    const body = JSON.stringify({
      errcode: 'M_UNRECOGNIZED',
      error: 'No homeserver here: it runs in the page',
    });
    sendText(res, 404, body, 'application/json; charset=utf-8');
    return;
  }
  let file = await fileAt(root, path);
  let status = 200;
  if (!file && extname(path) === '') {
    file = await fileAt(root, '/index.html');
    path = '/index.html';
  }
  if (!file) {
    status = 404;
    sendText(res, status, 'Not found\n');
    return;
  }
  const info = await stat(file);
  const headers: Record<string, string> = {
    'content-type': MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(info.size),
    'cache-control': cacheControl(path),
    'x-content-type-options': 'nosniff',
  };
  if (extname(file) === '.js' || extname(file) === '.mjs') headers['service-worker-allowed'] = '/';
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

/** Serves `root` over HTTP; resolves once listening. */
export function serveStatic(options: StaticServerOptions): Promise<RunningStaticServer> {
  const root = resolve(options.root);
  const server = createServer((req, res) => {
    handle(root, options.relays ?? [], req, res).catch(() => {
      if (!res.headersSent) sendText(res, 500, 'Internal error\n');
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolveListening, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolveListening({
        server,
        url: `http://${shownHost}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/**
 * Listens on `port`, or on the next free one of the following nine. The demo's data lives
 * in the browser per origin (scheme, host and port), so a stable port keeps it in reach.
 */
async function listenNear(
  options: StaticServerOptions & { host: string; port: number },
): Promise<RunningStaticServer> {
  const { port } = options;
  for (let offset = 0; ; offset++) {
    try {
      return await serveStatic({ ...options, port: port + offset });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || offset >= 9 || port === 0) throw err;
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string', default: process.env.PORT ?? '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'relay-port': { type: 'string', default: '0' },
      'no-relay': { type: 'boolean', default: false },
    },
  });
  const root = resolve(positionals[0] ?? 'dist/web');
  if (!(await stat(join(root, 'index.html')).catch(() => undefined))) {
    throw new Error(`${join(root, 'index.html')} is missing: build the demo first (npm run build)`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`--port must be 0–65535, not ${values.port}`);
  // A `hearth relay` for the browsers: reservations, WebRTC signalling, directory, mailboxes.
  const relay = values['no-relay']
    ? undefined
    : await startRelay(
        parseRelayArgs([
          '--host',
          values.host,
          '--port',
          '0',
          '--ws-port',
          values['relay-port'],
          '--stats-seconds',
          '300',
          '--log-level',
          'warn',
        ]),
      );
  const relays = relay?.relay.addresses().filter((a) => a.includes('/ws/')) ?? [];
  const running = await listenNear({ root, host: values.host, port, relays });
  console.log(`\nHearth demo: open ${running.url}/ in a browser (Ctrl-C stops the server).`);
  console.log('The homeserver runs in that page, in its Service Worker; its data stays in the browser.');
  if (relay) {
    console.log(`hearth relay beside it: ${relays.join(' ')}`);
    console.log(
      'Open the demo in a second browser (or a private window) and invite @name:<its server name>: ' +
        'the two federate over WebRTC.',
    );
  }
  if (port !== 0 && !running.url.endsWith(`:${port}`)) {
    console.log(
      `(Port ${port} was taken. The browser keeps data per origin: this port has its own homeserver.)`,
    );
  }
  const stop = () => {
    Promise.all([running.close(), relay?.stop()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  });
}
