/**
 * The Deno host: `Deno.serve` in front of `hs.fetch`, SQLite through Deno's `node:sqlite`.
 * Deno runs this TypeScript as it is (run it from the repository, whose package.json and
 * node_modules give the npm imports):
 *
 *   HEARTH_SERVER_NAME=example.org HEARTH_DATA=.hearth-deno \
 *     deno run --allow-net --allow-read --allow-write --allow-env src/hosts/deno.ts
 *
 * Settings are environment variables (`sqlite-host.ts`, `config.ts`). It stops cleanly on
 * SIGINT/SIGTERM.
 */
import type { FetchFunction } from '../transport/https/fetch.ts';
import { type Listener, type Runtime, startSqliteHost } from './sqlite-host.ts';

/** The part of Deno's global this host uses (Deno's own types are not a dependency of Hearth). */
interface DenoApi {
  serve(
    options: {
      hostname: string;
      port: number;
      cert?: string;
      key?: string;
      onListen?(address: { hostname: string; port: number }): void;
    },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Promise<Response>,
  ): { shutdown(): Promise<void>; finished: Promise<void> };
  readTextFileSync(path: string): string;
  mkdirSync(path: string, options: { recursive: boolean }): void;
  createHttpClient(options: { caCerts: string[] }): unknown;
  env: { toObject(): Record<string, string> };
  addSignalListener(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void;
  exit(code: number): never;
}

const Deno = (globalThis as unknown as { Deno: DenoApi }).Deno;

export const denoRuntime: Runtime = {
  name: 'Deno',
  listen: (handler, options) =>
    new Promise<Listener>((resolve) => {
      const scheme = options.tls ? 'https' : 'http';
      const server = Deno.serve(
        {
          hostname: options.host,
          port: options.port,
          ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
          onListen: ({ port }) => {
            const host = options.host.includes(':') ? `[${options.host}]` : options.host;
            resolve({ url: `${scheme}://${host}:${port}`, close: () => server.shutdown() });
          },
        },
        (request, info) => handler(request, { clientAddress: info.remoteAddr.hostname }),
      );
    }),
  readTextFile: (path) => Deno.readTextFileSync(path),
  makeDir: (path) => Deno.mkdirSync(path, { recursive: true }),
  fetchTrusting(caPem): FetchFunction {
    const client = Deno.createHttpClient({ caCerts: [caPem] });
    return (url, init) => fetch(url, { ...init, client } as RequestInit);
  },
};

if (import.meta.main) {
  try {
    const running = await startSqliteHost(Deno.env.toObject(), denoRuntime);
    console.log(`Point a Matrix client at ${running.url} (homeserver URL).`);
    const stop = () => running.stop().then(() => Deno.exit(0));
    Deno.addSignalListener('SIGINT', stop);
    Deno.addSignalListener('SIGTERM', stop);
  } catch (error) {
    console.error(`Hearth could not start: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
