/**
 * The Bun host: `Bun.serve` in front of `hs.fetch`, SQLite through Bun's `node:sqlite`. Bun runs
 * this TypeScript as it is:
 *
 *   HEARTH_SERVER_NAME=example.org HEARTH_DATA=.hearth-bun bun src/hosts/bun.ts
 *
 * Settings are environment variables (`sqlite-host.ts`, `config.ts`). It stops cleanly on
 * SIGINT/SIGTERM.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import type { FetchFunction } from '../transport/https/fetch.ts';
import { type Runtime, startSqliteHost } from './sqlite-host.ts';

/** The part of Bun's global this host uses (Bun's own types are not a dependency of Hearth). */
interface BunApi {
  serve(options: {
    hostname: string;
    port: number;
    tls?: { cert: string; key: string };
    idleTimeout: number;
    fetch(
      request: Request,
      server: { requestIP(request: Request): { address: string } | null },
    ): Promise<Response>;
  }): { port: number; stop(closeActive?: boolean): Promise<void> };
  file(path: string): unknown;
  env: Record<string, string | undefined>;
}

const Bun = (globalThis as unknown as { Bun: BunApi }).Bun;

/**
 * Bun closes a connection idle for `idleTimeout` seconds (default 10), a long-polling /sync
 * included; the homeserver's longest long-poll is 25 s.
 */
const IDLE_TIMEOUT_S = 40;

export const bunRuntime: Runtime = {
  name: 'Bun',
  async listen(handler, options) {
    const server = Bun.serve({
      hostname: options.host,
      port: options.port,
      ...(options.tls ? { tls: options.tls } : {}),
      idleTimeout: IDLE_TIMEOUT_S,
      fetch: (request, bunServer) =>
        handler(request, { clientAddress: bunServer.requestIP(request)?.address ?? 'unknown' }),
    });
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    return {
      url: `${options.tls ? 'https' : 'http'}://${host}:${server.port}`,
      close: () => server.stop(true),
    };
  },
  readTextFile: (path) => readFileSync(path, 'utf8'),
  makeDir: (path) => {
    mkdirSync(path, { recursive: true });
  },
  fetchTrusting(caPem): FetchFunction {
    return (url, init) => fetch(url, { ...init, tls: { ca: caPem } } as RequestInit);
  },
};

if (import.meta.main) {
  try {
    const running = await startSqliteHost(Bun.env, bunRuntime);
    console.log(`Point a Matrix client at ${running.url} (homeserver URL).`);
    const stop = () => running.stop().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (error) {
    console.error(`Hearth could not start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
