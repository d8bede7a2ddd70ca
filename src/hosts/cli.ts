#!/usr/bin/env node
/**
 * The `hearth` command. `hearth serve` runs a homeserver over HTTP on loopback, or over
 * HTTPS with `--tls-cert`/`--tls-key`, which is what federation needs:
 *
 *   hearth serve [--host 127.0.0.1] [--port 8008] [--server-name localhost:8008]
 *                [--data DIR] [--registration open|token|closed] [--max-upload-size 50M]
 *                [--tls-cert FILE --tls-key FILE] [--federation-ca FILE]
 *                [--delegate-to HOST[:PORT]] [--federation on|off] [--partial-state-joins on|off]
 *
 * With `--data` the homeserver keeps everything in DIR/hearth.sqlite (SQLite, WAL);
 * without it, in memory (IndexedDB semantics through fake-indexeddb), and says so.
 * One listener answers both APIs: clients and other servers (server-server-api.md "Server
 * discovery": a server named `localhost:8448` is reached at `https://localhost:8448`).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isValidServerName } from '../core/identifiers.ts';
import {
  type AppserviceRegistration,
  checkRegistrations,
  parseRegistration,
} from '../homeserver/appservices/index.ts';
import { consoleLogger, type RegistrationPolicy } from '../homeserver/context.ts';
import { createHomeserver, type Homeserver, openP2pIdentity } from '../server.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import type { Store } from '../storage/store.ts';
import { createNodeHttpsTransport } from '../transport/https/node.ts';
import { asConfigKey, ConfigError, type ConfigExtras, type FlagSpec, readConfigFile } from './config.ts';
import { parseSize as parseSizeSetting } from './host-config.ts';
import { serveHttp } from './node.ts';
// Only the types: libp2p (and node-datachannel's native binding) loads when P2P is asked for,
// so a plain `hearth serve` starts as fast as before.
import type { NodeP2p } from './p2p-node.ts';
import { registerUserMain } from './register-user.ts';
import { type CommandHooks, runCommand } from './run-command.ts';
import { lazyNodeThumbnailer } from './thumbnailer-node.ts';
import { parseYaml } from './yaml.ts';

const USAGE = `Usage: hearth serve [options]
       hearth register-user [options] [SERVER_URL]   (hearth register-user --help)

  --config FILE           read options from a YAML file (keys: every option below with _ for -,
                          plus rate_limits, registration_tokens, registration_shared_secret,
                          admins, default_room_version, max_request_size, turn, support;
                          see examples/hearth.yaml). Options given here win over the file.
  --appservice FILE       an application service (bridge) registration file, YAML (repeatable)
  --host HOST             address to listen on (default 127.0.0.1)
  --port PORT             port (default 8008)
  --server-name NAME      the server name in user IDs (default localhost:<port>)
  --data DIR              keep data in DIR (SQLite); without it nothing persists
  --registration POLICY   open | token | closed (default token: a token is printed at start)
  --max-upload-size SIZE  largest media upload: bytes, or with K, M or G (binary: 1M = 1 MiB;
                          default 50M)
  --log-level LEVEL       debug | info | warn | error (default info)

Federation (other homeservers reach this one over HTTPS, on the same listener):
  --tls-cert FILE         serve HTTPS with this PEM certificate chain (needs --tls-key)
  --tls-key FILE          the PEM private key of --tls-cert
  --federation-ca FILE    also trust the CA certificates in this PEM file when talking to
                          other servers (repeatable; the system's trust store always counts)
  --delegate-to HOST[:PORT]
                          serve /.well-known/matrix/server naming HOST[:PORT] as where other
                          servers reach this one (delegation; without it that path is 404)
  --federation on|off     talk to other homeservers (default on); off: only this server's
                          users and rooms, every remote lookup answers "federation is off"
  --partial-state-joins on|off
                          join other servers' rooms with partial state, as Synapse's faster
                          joins (default on): usable at once, members filled in afterwards

A server named NAME:PORT (the default name is localhost:<port>) is reached by other servers at
https://NAME:PORT, so its certificate must be valid for NAME.

Peer-to-peer federation (libp2p: TCP, WebSockets, WebRTC; other names still go over HTTPS):
  --p2p                   P2P mode: the server name is the hex of this server's key (kept in
                          --data), federation with other P2P servers goes over libp2p
  --bootstrap MULTIADDR   a relay to hold a reservation on, find peers and leave mail with
                          (repeatable; see \`hearth relay\`)
  --p2p-listen MULTIADDR  where the libp2p node listens (repeatable; default TCP and WebSockets
                          on --host, ports chosen by the system)
  Without --p2p, --bootstrap/--p2p-listen still start libp2p: a DNS-named server then reaches
  P2P servers too (a bridge).

  hearth relay --help     the relay / bootstrap node for P2P peers and browsers
`;

export interface ServeOptions extends ConfigExtras {
  host: string;
  port: number;
  serverName?: string;
  data?: string;
  registration: RegistrationPolicy;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** PEM files to serve HTTPS with. */
  tlsCert?: string;
  tlsKey?: string;
  /** PEM files of extra CAs trusted for outgoing federation. */
  federationCa?: string[];
  /** `m.server` of `/.well-known/matrix/server`. */
  delegateTo?: string;
  /** Default true. */
  federation?: boolean;
  /** Joins ask for partial state (send_join `omit_members`); default false. */
  partialStateJoins?: boolean;
  /** Largest media upload in bytes; the homeserver's default when absent. */
  maxUploadBytes?: number;
  /** P2P mode: named by the key, federating over libp2p (and HTTPS for DNS names). */
  p2p?: boolean;
  /** Relays (multiaddrs); libp2p runs when there are any, or with `p2p`. */
  bootstrap?: string[];
  p2pListen?: string[];
  /** Application services' registration files (YAML). */
  appservices?: string[];
}

/** `--max-upload-size`: bytes, or with K, M or G (`host-config.ts`, shared with the edge hosts' settings). */
export function parseSize(text: string): number {
  return parseSizeSetting(text, '--max-upload-size');
}

/**
 * Every flag of `hearth serve`, as `node:util` parseArgs takes them. The configuration file
 * reads this same table (`config.ts`): each flag is also a key there, `_` for `-`.
 */
export const SERVE_FLAGS = {
  config: { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8008' },
  'server-name': { type: 'string' },
  data: { type: 'string' },
  registration: { type: 'string', default: 'token' },
  'log-level': { type: 'string', default: 'info' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'federation-ca': { type: 'string', multiple: true },
  'delegate-to': { type: 'string' },
  'max-upload-size': { type: 'string' },
  federation: { type: 'string', default: 'on' },
  'partial-state-joins': { type: 'string', default: 'on' },
  appservice: { type: 'string', multiple: true },
  p2p: { type: 'boolean', default: false },
  bootstrap: { type: 'string', multiple: true },
  'p2p-listen': { type: 'string', multiple: true },
} as const satisfies Record<string, FlagSpec>;

/**
 * The options of `hearth serve`: the configuration file's (`--config`) first, then the
 * command line's over them. A bad key or value in the file is named as the file's key.
 */
export function parseServeArgs(argv: string[]): ServeOptions {
  const first = parseFlags(argv);
  if (first.config === undefined) return optionsFrom(first);
  const loaded = readConfigFile(first.config, SERVE_FLAGS);
  try {
    optionsFrom(parseFlags(loaded.argv));
  } catch (err) {
    throw new ConfigError(`${first.config}: ${asConfigKey((err as Error).message)}`);
  }
  return { ...optionsFrom(parseFlags([...loaded.argv, ...argv])), ...loaded.extras };
}

function parseFlags(argv: string[]) {
  return parseArgs({ args: argv, options: SERVE_FLAGS, strict: true }).values;
}

/** The options of parsed flags, checked (each mistake named by its flag). */
function optionsFrom(values: ReturnType<typeof parseFlags>): ServeOptions {
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`--port must be 0–65535, not ${values.port}`);
  const registration = values.registration as RegistrationPolicy;
  if (!['open', 'token', 'closed'].includes(registration)) {
    throw new Error(`--registration must be open, token or closed, not ${values.registration}`);
  }
  const logLevel = values['log-level'] as ServeOptions['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new Error(`--log-level: ${logLevel}?`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  const partialStateJoins = values['partial-state-joins'];
  if (partialStateJoins !== 'on' && partialStateJoins !== 'off') {
    throw new Error(`--partial-state-joins must be on or off, not ${partialStateJoins}`);
  }
  if (values.federation !== 'on' && values.federation !== 'off') {
    throw new Error(`--federation must be on or off, not ${values.federation}`);
  }
  const delegateTo = values['delegate-to'];
  // m.server: "the server name to delegate server-server communications to, with optional port".
  if (delegateTo !== undefined && !isValidServerName(delegateTo)) {
    throw new Error(`--delegate-to must be HOST or HOST:PORT, not ${delegateTo}`);
  }
  if (values['server-name'] !== undefined && !isValidServerName(values['server-name'])) {
    throw new Error(`--server-name must be a server name (HOST or HOST:PORT), not ${values['server-name']}`);
  }
  if (values.p2p && values['server-name'] !== undefined) {
    throw new Error('--p2p names the server after its key: leave out --server-name');
  }
  for (const addr of [...(values.bootstrap ?? []), ...(values['p2p-listen'] ?? [])]) {
    if (!addr.startsWith('/'))
      throw new Error(`--bootstrap and --p2p-listen take multiaddrs (/ip4/…), not ${addr}`);
  }
  return {
    host: values.host,
    port,
    p2p: values.p2p,
    bootstrap: values.bootstrap ?? [],
    p2pListen: values['p2p-listen'] ?? [],
    serverName: values['server-name'],
    data: values.data,
    registration,
    logLevel,
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    federationCa: values['federation-ca'] ?? [],
    delegateTo,
    federation: values.federation === 'on',
    partialStateJoins: partialStateJoins === 'on',
    appservices: values.appservice ?? [],
    ...(values['max-upload-size'] !== undefined
      ? { maxUploadBytes: parseSize(values['max-upload-size']) }
      : {}),
  };
}

/** Reads application services' registration files (YAML); a mistake names the file and key. */
export function loadAppservices(files: readonly string[]): AppserviceRegistration[] {
  const list = files.map((file) => {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`--appservice ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    try {
      return parseRegistration(doc);
    } catch (err) {
      throw new Error(`--appservice ${file}: ${(err as Error).message}`);
    }
  });
  checkRegistrations(list);
  return list;
}

/** Starts `hearth serve`; resolves once listening, with a function that stops it cleanly. */
export async function serve(
  options: ServeOptions,
): Promise<{ url: string; serverName: string; p2p: NodeP2p | undefined; stop(): Promise<void> }> {
  const logger = consoleLogger(options.logLevel);
  // Read every file before anything else: a wrong path stops start-up with its own message.
  const tls =
    options.tlsCert && options.tlsKey
      ? { cert: readFileSync(options.tlsCert, 'utf8'), key: readFileSync(options.tlsKey, 'utf8') }
      : undefined;
  const federationOn = options.federation ?? true;
  const federationCa = (options.federationCa ?? []).map((file) => readFileSync(file, 'utf8'));
  const appservices = loadAppservices(options.appservices ?? []);
  let store: Store;
  if (options.data) {
    const dir = resolve(options.data);
    mkdirSync(dir, { recursive: true });
    store = await openSqliteStore({ path: join(dir, 'hearth.sqlite'), mediaDir: join(dir, 'media') });
    logger.info(`data: ${join(dir, 'hearth.sqlite')}, media files in ${join(dir, 'media')}`);
  } else {
    // Loaded only here: a server with --data never loads Dexie and fake-indexeddb.
    const [{ IDBFactory, IDBKeyRange }, { openIndexedDbStore }] = await Promise.all([
      import('fake-indexeddb'),
      import('../storage/indexeddb/index.ts'),
    ]);
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
    tls,
    onRequest: (e) => logger.info(`${e.client} ${e.method} ${e.path} → ${e.status} ${e.ms.toFixed(1)} ms`),
  });
  const identity = options.p2p ? await openP2pIdentity(store) : undefined;
  const serverName = identity?.serverName ?? options.serverName ?? `localhost:${new URL(running.url).port}`;
  const transport = federationOn ? createNodeHttpsTransport({ ca: federationCa }) : undefined;
  const p2p =
    transport && (options.p2p || (options.bootstrap ?? []).length > 0 || (options.p2pListen ?? []).length > 0)
      ? await (await import('./p2p-node.ts')).startNodeP2p({
          seed: identity?.seed ?? (await openP2pIdentity(store)).seed,
          bootstrap: options.bootstrap ?? [],
          listen: options.p2pListen,
          host: options.host,
          handler: async (request, info) => (await started).fetch(request, info),
          dns: transport,
          logger,
        })
      : undefined;
  const hs = createHomeserver({
    serverName,
    p2p: options.p2p,
    store,
    registration: options.registration,
    logger,
    federation: transport ? { transport: p2p?.transport ?? transport } : undefined,
    wellKnownServer: options.delegateTo,
    thumbnailer: lazyNodeThumbnailer(logger),
    ...(options.maxUploadBytes !== undefined ? { maxUploadBytes: options.maxUploadBytes } : {}),
    ...(options.partialStateJoins !== undefined ? { partialStateJoins: options.partialStateJoins } : {}),
    appservices,
    // Bridges and push gateways are reached with Node's fetch.
    outboundFetch: (request) => fetch(request),
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    ...(options.rateLimitExemptAdmins ? { rateLimitExemptAdmins: true } : {}),
    ...(options.maxJsonBodyBytes !== undefined ? { maxJsonBodyBytes: options.maxJsonBodyBytes } : {}),
    ...(options.defaultRoomVersion !== undefined ? { defaultRoomVersion: options.defaultRoomVersion } : {}),
    ...(options.turn ? { turn: options.turn } : {}),
    ...(options.support ? { support: options.support } : {}),
    ...(options.registrationSharedSecret
      ? { registrationSharedSecret: options.registrationSharedSecret }
      : {}),
  });
  await hs.ready;
  for (const token of options.registrationTokens ?? []) await hs.admin.createRegistrationToken(token);
  for (const userId of options.admins ?? []) {
    await hs.admin.setAdmin(userId, true).catch(() => logger.warn(`admins: ${userId} does not exist (yet)`));
  }
  for (const reg of appservices)
    logger.info(`application service ${reg.id}: ${reg.url ?? 'no URL (sends only)'}`);
  startHomeserver(hs);
  logger.info(`Hearth ${serverName} listening on ${running.url}`);
  if (p2p) logger.info(`p2p: libp2p listening on ${p2p.addresses().join(' ')}`);
  if (!federationOn) logger.info('federation is off (--federation off)');
  else if (!tls && !options.delegateTo && !options.p2p) {
    logger.warn(
      'federation: other servers speak only HTTPS; without --tls-cert/--tls-key (or a TLS proxy and --delegate-to) they cannot reach this one',
    );
  }
  if (options.registration === 'token') {
    const token = await hs.admin.createRegistrationToken();
    logger.info(`registration token (share it with whoever may sign up): ${token}`);
  }
  return {
    url: running.url,
    serverName,
    p2p,
    async stop() {
      await running.close();
      await p2p?.stop();
      transport?.close();
      await hs.close();
    },
  };
}

/** `hearth …`; resolves with the exit code once the command ends. */
export async function main(argv: string[], hooks: CommandHooks = {}): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'relay') return (await import('./relay.ts')).relayMain(rest, hooks);
  if (command === 'register-user') return registerUserMain(rest);
  if (command !== 'serve') {
    process.stderr.write(
      command === undefined || command === '--help' || command === 'help'
        ? USAGE
        : `Unknown command ${command}\n\n${USAGE}`,
    );
    return command === undefined || command === '--help' || command === 'help' ? 0 : 2;
  }
  return runCommand(
    rest,
    {
      name: 'hearth serve',
      usage: USAGE,
      parse: parseServeArgs,
      start: serve,
      started: (running) => `Point a Matrix client at ${running.url} (homeserver URL).`,
    },
    hooks,
  );
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
