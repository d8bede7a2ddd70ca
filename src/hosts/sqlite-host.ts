/**
 * What the Deno and Bun hosts share: a homeserver on SQLite (`node:sqlite`, which both
 * runtimes offer, behind the same `SqlDriver` as Node's), configured by the `config.ts`
 * settings plus the listener's own — `HEARTH_HOST`, `HEARTH_PORT`, `HEARTH_DATA`,
 * `HEARTH_TLS_CERT`/`HEARTH_TLS_KEY`, `HEARTH_FEDERATION_CA` (files, as `hearth serve`'s
 * `--host`, `--port`, `--data`, `--tls-cert`, `--tls-key`, `--federation-ca`).
 *
 * Each runtime brings only its listener, its file reading and its `fetch` trusting extra CAs
 * (`deno.ts`, `bun.ts`).
 */
import type { ConnectionInfo } from '../api/http.ts';
import { consoleLogger } from '../homeserver/context.ts';
import { createHomeserver, type Homeserver } from '../server.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import { createFetchHttpsTransport, type FetchFunction } from '../transport/https/fetch.ts';
import {
  announceRegistrationToken,
  homeserverOptions,
  readHostConfig,
  type Settings,
} from './host-config.ts';

export interface Listener {
  /** `http://host:port` or `https://…`, with the port really bound. */
  url: string;
  close(): Promise<void>;
}

/** What a runtime provides to the shared host. */
export interface Runtime {
  name: string;
  listen(
    handler: (request: Request, info: ConnectionInfo) => Promise<Response>,
    options: { host: string; port: number; tls?: { cert: string; key: string } },
  ): Promise<Listener>;
  readTextFile(path: string): string;
  /** Creates a folder and its parents (the data folder). */
  makeDir(path: string): void;
  /** `fetch` trusting these CA certificates (PEM) besides the system's. */
  fetchTrusting(caPem: string): FetchFunction;
}

export interface RunningHost {
  url: string;
  homeserver: Homeserver;
  stop(): Promise<void>;
}

function port(text: string | undefined): number {
  if (text === undefined || text === '') return 8008;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65_535) throw new Error(`HEARTH_PORT must be 0–65535, not ${text}`);
  return n;
}

/** Listens, then starts the homeserver named after the bound port unless HEARTH_SERVER_NAME says otherwise. */
export async function startSqliteHost(settings: Settings, runtime: Runtime): Promise<RunningHost> {
  const host = settings.HEARTH_HOST || '127.0.0.1';
  const tlsCert = settings.HEARTH_TLS_CERT;
  const tlsKey = settings.HEARTH_TLS_KEY;
  if (!tlsCert !== !tlsKey) throw new Error('HEARTH_TLS_CERT and HEARTH_TLS_KEY go together');
  // Read every file and check every setting before listening: a mistake stops start-up.
  const tls =
    tlsCert && tlsKey
      ? { cert: runtime.readTextFile(tlsCert), key: runtime.readTextFile(tlsKey) }
      : undefined;
  const caFile = settings.HEARTH_FEDERATION_CA;
  const ca = caFile ? runtime.readTextFile(caFile) : undefined;
  readHostConfig(settings, { serverName: 'localhost' });
  const data = settings.HEARTH_DATA;
  const path = data ? `${data.replace(/\/+$/, '')}/hearth.sqlite` : ':memory:';
  if (data) runtime.makeDir(data);

  let started!: (hs: Homeserver) => void;
  const ready = new Promise<Homeserver>((resolve) => {
    started = resolve;
  });
  const listener = await runtime.listen(async (request, info) => (await ready).fetch(request, info), {
    host,
    port: port(settings.HEARTH_PORT),
    tls,
  });
  const config = readHostConfig(settings, { serverName: `localhost:${new URL(listener.url).port}` });
  const logger = consoleLogger(config.logLevel);
  const transport = config.federation
    ? createFetchHttpsTransport(ca ? { fetch: runtime.fetchTrusting(ca) } : {})
    : undefined;
  const hs = createHomeserver(
    homeserverOptions(config, () => openSqliteStore({ path }), {
      logger,
      ...(transport ? { federation: { transport } } : {}),
    }),
  );
  started(hs);
  try {
    await hs.ready;
  } catch (error) {
    await listener.close();
    throw error;
  }
  if (!data)
    logger.warn('no HEARTH_DATA folder given: everything is kept in memory and lost when the server stops');
  logger.info(`Hearth ${config.serverName} on ${runtime.name}, data in ${path}`);
  announceRegistrationToken(hs, config, logger);
  return {
    url: listener.url,
    homeserver: hs,
    async stop() {
      await listener.close();
      await hs.close();
    },
  };
}
