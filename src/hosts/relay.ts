/**
 * `hearth relay`: a libp2p relay and bootstrap node for P2P homeservers and browsers — circuit
 * relay v2 with limits, a peer directory, store-and-forward mailboxes — with its figures
 * logged. Thin: the relay is src/transport/libp2p/relay.ts.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { consoleLogger } from '../homeserver/context.ts';
import { DEFAULT_MAILBOX_LIMITS } from '../transport/libp2p/mailbox.ts';
import { createRelay, DEFAULT_RELAY_LIMITS, type Relay } from '../transport/libp2p/relay.ts';
import { nodeTransports } from '../transport/libp2p/transports-node.ts';
import { type CommandHooks, runCommand } from './run-command.ts';

export const RELAY_USAGE = `Usage: hearth relay [options]

A relay and bootstrap node for P2P homeservers (\`hearth serve --p2p --bootstrap ADDR\`) and
browsers: they hold reservations on it, reach each other through it, set up WebRTC over it,
find each other in its directory, and leave signed transactions with it for peers that are
offline (store-and-forward: it holds them, under quotas, until the peer connects and proves
its key). It prints the addresses to give as --bootstrap.

  --host HOST               address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --port PORT               TCP port (default 9090; 0 picks a free one)
  --ws-port PORT            WebSocket port, what browsers dial (default 9091; 0 picks a free one)
  --listen MULTIADDR        listen here instead (repeatable; replaces --host/--port/--ws-port)
  --key FILE                the relay's key (hex seed; created if missing), so its peer ID —
                            part of its address — survives restarts (default: a new key each start)
  --max-reservations N      peers holding a reservation at once (default ${DEFAULT_RELAY_LIMITS.maxReservations})
  --circuit-minutes N       a relayed connection lasts at most N minutes (default ${DEFAULT_RELAY_LIMITS.circuitDurationMs / 60_000})
  --circuit-mb N            and carries at most N MiB (default ${DEFAULT_RELAY_LIMITS.circuitBytes / 2 ** 20})
  --max-connections N       connections at once (default ${DEFAULT_RELAY_LIMITS.maxConnections})
  --connections-per-second N  new connections accepted per second from one IP address
                            (default ${DEFAULT_RELAY_LIMITS.inboundConnectionsPerSecond})
  --mailbox-days N          how long held transactions wait (default ${DEFAULT_MAILBOX_LIMITS.ttlMs / 86_400_000})
  --mailbox-mb N            held for one destination at most (default ${DEFAULT_MAILBOX_LIMITS.maxBytesPerDestination / 2 ** 20})
  --stats-seconds N         log the figures every N seconds (default 60; 0: never)
  --log-level LEVEL         debug | info | warn | error (default info)
`;

export interface RelayArgs {
  listen: string[];
  keyFile?: string;
  maxReservations: number;
  circuitMinutes: number;
  circuitMb: number;
  maxConnections: number;
  connectionsPerSecond: number;
  mailboxDays: number;
  mailboxMb: number;
  statsSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

function positive(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new Error(`--${name} must be a positive number, not ${text}`);
  return n;
}

export function parseRelayArgs(argv: string[]): RelayArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9090' },
      'ws-port': { type: 'string', default: '9091' },
      listen: { type: 'string', multiple: true },
      key: { type: 'string' },
      'max-reservations': { type: 'string' },
      'circuit-minutes': { type: 'string' },
      'circuit-mb': { type: 'string' },
      'max-connections': { type: 'string' },
      'connections-per-second': { type: 'string' },
      'mailbox-days': { type: 'string' },
      'mailbox-mb': { type: 'string' },
      'stats-seconds': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  const port = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 65_535)
      throw new Error(`--${name} must be 0–65535, not ${text}`);
    return n;
  };
  const ip = values.host.includes(':') ? `/ip6/${values.host}` : `/ip4/${values.host}`;
  const listen =
    values.listen && values.listen.length > 0
      ? values.listen
      : [`${ip}/tcp/${port('port', values.port)}`, `${ip}/tcp/${port('ws-port', values['ws-port'])}/ws`];
  for (const addr of listen)
    if (!addr.startsWith('/')) throw new Error(`--listen takes multiaddrs, not ${addr}`);
  const logLevel = values['log-level'] as RelayArgs['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new Error(`--log-level: ${logLevel}?`);
  return {
    listen,
    keyFile: values.key,
    maxReservations: positive(
      'max-reservations',
      values['max-reservations'],
      DEFAULT_RELAY_LIMITS.maxReservations,
    ),
    circuitMinutes: positive(
      'circuit-minutes',
      values['circuit-minutes'],
      DEFAULT_RELAY_LIMITS.circuitDurationMs / 60_000,
    ),
    circuitMb: positive('circuit-mb', values['circuit-mb'], DEFAULT_RELAY_LIMITS.circuitBytes / 2 ** 20),
    maxConnections: positive(
      'max-connections',
      values['max-connections'],
      DEFAULT_RELAY_LIMITS.maxConnections,
    ),
    connectionsPerSecond: positive(
      'connections-per-second',
      values['connections-per-second'],
      DEFAULT_RELAY_LIMITS.inboundConnectionsPerSecond,
    ),
    mailboxDays: positive('mailbox-days', values['mailbox-days'], DEFAULT_MAILBOX_LIMITS.ttlMs / 86_400_000),
    mailboxMb: positive(
      'mailbox-mb',
      values['mailbox-mb'],
      DEFAULT_MAILBOX_LIMITS.maxBytesPerDestination / 2 ** 20,
    ),
    statsSeconds: positive('stats-seconds', values['stats-seconds'], 60, true),
    logLevel,
  };
}

/** The relay's seed from `file` (64 hex digits), made there (mode 0600) when missing. */
function relaySeed(file: string): Uint8Array {
  if (!existsSync(file)) {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    writeFileSync(file, `${Buffer.from(seed).toString('hex')}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return seed;
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new Error(`${file} does not hold a relay key (64 hex digits)`);
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export async function startRelay(args: RelayArgs): Promise<{ relay: Relay; stop(): Promise<void> }> {
  const logger = consoleLogger(args.logLevel);
  const relay = await createRelay({
    transports: nodeTransports({ webRTC: false }),
    listen: args.listen,
    ...(args.keyFile ? { seed: relaySeed(args.keyFile) } : {}),
    limits: {
      maxReservations: args.maxReservations,
      circuitDurationMs: args.circuitMinutes * 60_000,
      circuitBytes: Math.round(args.circuitMb * 2 ** 20),
      maxConnections: args.maxConnections,
      inboundConnectionsPerSecond: args.connectionsPerSecond,
    },
    mailbox: {
      ttlMs: args.mailboxDays * 86_400_000,
      maxBytesPerDestination: Math.round(args.mailboxMb * 2 ** 20),
    },
  });
  const report = () => {
    const s = relay.stats();
    logger.info(
      `relay: ${s.connectedPeers} peers connected, ${s.reservations} reservations, ${s.announcedPeers} announced, ` +
        `${s.relayedBytes} bytes relayed, ${s.sentBytes} bytes sent, ` +
        `mailbox ${s.mailbox.items} items / ${s.mailbox.bytes} bytes for ${s.mailbox.destinations} servers`,
    );
  };
  const timer = args.statsSeconds > 0 ? setInterval(report, args.statsSeconds * 1000) : undefined;
  timer?.unref();
  relay.node.addEventListener('peer:connect', (e) => logger.debug(`relay: + ${e.detail.toString()}`));
  relay.node.addEventListener('peer:disconnect', (e) => logger.debug(`relay: - ${e.detail.toString()}`));
  for (const addr of relay.addresses()) logger.info(`relay listening: ${addr}`);
  return {
    relay,
    async stop() {
      if (timer) clearInterval(timer);
      report();
      await relay.close();
    },
  };
}

export function relayMain(argv: string[], hooks: CommandHooks = {}): Promise<number> {
  return runCommand(
    argv,
    {
      name: 'hearth relay',
      usage: RELAY_USAGE,
      parse: parseRelayArgs,
      start: startRelay,
      started: (running) =>
        `Give peers one of these as --bootstrap:\n${running.relay.addresses().join('\n')}`,
    },
    hooks,
  );
}
