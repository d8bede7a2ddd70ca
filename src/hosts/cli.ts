#!/usr/bin/env node
/**
 * The `hearth` command. `hearth serve` runs a homeserver over HTTP on loopback:
 *
 *   hearth serve [--host 127.0.0.1] [--port 8008] [--server-name localhost:8008]
 *                [--data DIR] [--registration open|token|closed] [--max-upload-size 50M]
 *
 * With `--data` the homeserver keeps everything in DIR/hearth.sqlite (SQLite, WAL);
 * without it, in memory (IndexedDB semantics through fake-indexeddb), and says so.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { consoleLogger, type RegistrationPolicy } from '../homeserver/context.ts';
import { createHomeserver, type Homeserver } from '../server.ts';
import { openIndexedDbStore } from '../storage/indexeddb/index.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import type { Store } from '../storage/store.ts';
import { serveHttp } from './node.ts';
import { createNodeThumbnailer } from './thumbnailer-node.ts';

const USAGE = `Usage: hearth serve [options]

  --host HOST             address to listen on (default 127.0.0.1)
  --port PORT             port (default 8008)
  --server-name NAME      the server name in user IDs (default localhost:<port>)
  --data DIR              keep data in DIR (SQLite); without it nothing persists
  --registration POLICY   open | token | closed (default token: a token is printed at start)
  --max-upload-size SIZE  largest media upload: bytes, or with K, M or G (binary: 1M = 1 MiB;
                          default 50M)
  --log-level LEVEL       debug | info | warn | error (default info)
`;

export interface ServeOptions {
  host: string;
  port: number;
  serverName?: string;
  data?: string;
  registration: RegistrationPolicy;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Largest media upload in bytes; the homeserver's default when absent. */
  maxUploadBytes?: number;
}

/** `1048576`, `512K`, `50M`, `1G` (also `50MiB`, `50MB`: all binary, as upload limits are usually meant). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*([KMG]?)(i?B)?\s*$/i.exec(text);
  if (!m) throw new Error(`--max-upload-size must be bytes or a number with K, M or G, not ${text}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new Error(`--max-upload-size: ${text} is not a usable size`);
  return bytes;
}

export function parseServeArgs(argv: string[]): ServeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8008' },
      'server-name': { type: 'string' },
      data: { type: 'string' },
      registration: { type: 'string', default: 'token' },
      'log-level': { type: 'string', default: 'info' },
      'max-upload-size': { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`--port must be 0–65535, not ${values.port}`);
  const registration = values.registration as RegistrationPolicy;
  if (!['open', 'token', 'closed'].includes(registration)) {
    throw new Error(`--registration must be open, token or closed, not ${values.registration}`);
  }
  const logLevel = values['log-level'] as ServeOptions['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new Error(`--log-level: ${logLevel}?`);
  return {
    host: values.host,
    port,
    serverName: values['server-name'],
    data: values.data,
    registration,
    logLevel,
    ...(values['max-upload-size'] !== undefined
      ? { maxUploadBytes: parseSize(values['max-upload-size']) }
      : {}),
  };
}

/** Starts `hearth serve`; resolves once listening, with a function that stops it cleanly. */
export async function serve(options: ServeOptions): Promise<{ url: string; stop(): Promise<void> }> {
  const logger = consoleLogger(options.logLevel);
  let store: Store;
  if (options.data) {
    const dir = resolve(options.data);
    mkdirSync(dir, { recursive: true });
    store = await openSqliteStore({ path: join(dir, 'hearth.sqlite') });
    logger.info(`data: ${join(dir, 'hearth.sqlite')}`);
  } else {
    store = await openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange, name: 'hearth' });
    logger.warn('no --data DIR given: everything is kept in memory and lost when the server stops');
  }
  // Listen first, so `--port 0` names the server after the port it really got.
  let startHomeserver!: (hs: Homeserver) => void;
  const started = new Promise<Homeserver>((resolveStarted) => {
    startHomeserver = resolveStarted;
  });
  const running = await serveHttp(async (request, info) => (await started).fetch(request, info), {
    host: options.host,
    port: options.port,
    onRequest: (e) => logger.info(`${e.client} ${e.method} ${e.path} → ${e.status} ${e.ms.toFixed(1)} ms`),
  });
  const serverName = options.serverName ?? `localhost:${new URL(running.url).port}`;
  const hs = createHomeserver({
    serverName,
    store,
    registration: options.registration,
    logger,
    thumbnailer: await createNodeThumbnailer(logger),
    ...(options.maxUploadBytes !== undefined ? { maxUploadBytes: options.maxUploadBytes } : {}),
  });
  await hs.ready;
  startHomeserver(hs);
  logger.info(`Hearth ${serverName} listening on ${running.url}`);
  if (options.registration === 'token') {
    const token = await hs.admin.createRegistrationToken();
    logger.info(`registration token (share it with whoever may sign up): ${token}`);
  }
  return {
    url: running.url,
    async stop() {
      await running.close();
      await hs.close();
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'serve') {
    process.stderr.write(
      command === undefined || command === '--help' || command === 'help'
        ? USAGE
        : `Unknown command ${command}\n\n${USAGE}`,
    );
    return command === undefined || command === '--help' || command === 'help' ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: ServeOptions;
  try {
    options = parseServeArgs(rest);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const running = await serve(options);
  console.log(`\nPoint a Matrix client at ${running.url} (homeserver URL).`);
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      console.log(`\n${signal}: shutting down`);
      running.stop().then(resolveStop, (err) => {
        console.error(err);
        resolveStop();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
