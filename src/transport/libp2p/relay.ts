/**
 * `hearth relay`'s node: what browsers and NATed peers need from a server they all reach.
 *
 * - a circuit relay v2 server, with limits: peers hold reservations on it, dial each other
 *   through it, and signal WebRTC over those circuits (after which traffic goes peer to peer);
 * - a bootstrap: its addresses are what a page is configured with;
 * - `/hearth/relay/1` (one framed HTTP exchange per stream, framing.ts), whose caller is the
 *   peer noise authenticated:
 *     POST   /announce             list me in the directory (while I am connected)
 *     GET    /peers                the announced peers: server name, peer ID, addresses
 *     GET    /peers/{serverName}   one of them (404 when not here)
 *     PUT    /mailbox/{serverName} hold this item for that server (store-and-forward)
 *     GET    /mailbox?limit=N      my items, oldest first
 *     DELETE /mailbox?through=ID   I have them, up to ID
 * - figures: connected peers, reservations, bytes relayed and sent, mailbox contents.
 */
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { isP2pServerName } from '../../core/p2p-identity.ts';
import { jsonError, serveExchange } from './framing.ts';
import { peerIdFromServerName, serverNameFromPeerId } from './identity.ts';
import { createMailboxes, DEFAULT_MAILBOX_LIMITS, type Mailboxes, type MailboxLimits } from './mailbox.ts';
import { createHearthNode, type HearthNode, type TransportFactory } from './node.ts';
import { countingMetrics } from './relay-metrics.ts';

export const RELAY_PROTOCOL = '/hearth/relay/1';

/** A relay answers small requests; a mailbox item is at most 128 KiB. */
const MAX_RELAY_REQUEST_BYTES = 256 * 1024;
const RELAY_EXCHANGE_TIMEOUT_MS = 30_000;
/** Items handed over per `GET /mailbox`. */
export const MAX_MAILBOX_BATCH = 100;

export interface RelayLimits {
  /** Peers holding a reservation at once. */
  maxReservations: number;
  /** A relayed circuit lasts at most this long, then the peers dial again (or WebRTC has replaced it). */
  circuitDurationMs: number;
  /** And carries at most this many bytes each way. */
  circuitBytes: number;
  maxConnections: number;
  /** New inbound connections per second from one IP address. */
  inboundConnectionsPerSecond: number;
  maxPendingInbound: number;
}

/**
 * Circuits carry federation until WebRTC is up, and all of it between two Node peers that
 * cannot reach each other directly: 10 minutes and 64 MiB (libp2p's defaults, 2 minutes and
 * 128 KiB, suit only signalling). 1024 reservations and connections: a small relay's share.
 */
export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxReservations: 1024,
  circuitDurationMs: 10 * 60 * 1000,
  circuitBytes: 64 * 1024 * 1024,
  maxConnections: 1024,
  inboundConnectionsPerSecond: 20,
  maxPendingInbound: 64,
};

export interface RelayOptions {
  transports: TransportFactory[];
  /** Default: TCP and WebSockets on 127.0.0.1, ports chosen by the system. */
  listen?: readonly string[];
  /** The relay's key (keep it to keep its peer ID, and so its address, across restarts). */
  privateKey?: PrivateKey;
  seed?: Uint8Array;
  limits?: Partial<RelayLimits>;
  mailbox?: Partial<MailboxLimits>;
  /** The mailboxes themselves (default in memory, `createMailboxes`): tests put a hostile one here. */
  mailboxes?: Mailboxes;
  clock?: { now(): number };
}

export interface RelayStats {
  connectedPeers: number;
  reservations: number;
  announcedPeers: number;
  /** Bytes forwarded between the two ends of circuits. */
  relayedBytes: number;
  /** Bytes written on all connections. */
  sentBytes: number;
  mailbox: { destinations: number; items: number; bytes: number };
}

export interface DirectoryEntry {
  server_name: string;
  peer_id: string;
  /** The peer's own addresses (as identify told us) and its circuit address through this relay. */
  addresses: string[];
}

export interface Relay {
  readonly node: HearthNode;
  /** The relay's full addresses (with `/p2p/<id>`): what peers are given as `--bootstrap`. */
  addresses(): string[];
  stats(): RelayStats;
  readonly mailboxes: Mailboxes;
  close(): Promise<void>;
}

export async function createRelay(options: RelayOptions): Promise<Relay> {
  const limits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
  const { counters, metrics } = countingMetrics();
  const node = await createHearthNode({
    transports: options.transports,
    listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'],
    ...(options.privateKey ? { privateKey: options.privateKey } : {}),
    ...(options.seed ? { seed: options.seed } : {}),
    ...(!options.privateKey && !options.seed ? { seed: crypto.getRandomValues(new Uint8Array(32)) } : {}),
    maxConnections: limits.maxConnections,
    inboundConnectionsPerSecond: limits.inboundConnectionsPerSecond,
    maxPendingInbound: limits.maxPendingInbound,
    relayServer: {
      reservations: {
        maxReservations: limits.maxReservations,
        defaultDurationLimit: limits.circuitDurationMs,
        defaultDataLimit: BigInt(limits.circuitBytes),
      },
    },
    metrics,
  });
  const relayService = (node.services as unknown as { relay: CircuitRelayService }).relay;
  const mailboxes =
    options.mailboxes ??
    createMailboxes({ ...DEFAULT_MAILBOX_LIMITS, ...options.mailbox }, options.clock ?? Date);
  /** Announced peers, by peer ID string; dropped when their last connection closes. */
  const announced = new Map<string, string>();
  const onDisconnect = (evt: CustomEvent<PeerId>) => announced.delete(evt.detail.toString());
  node.addEventListener('peer:disconnect', onDisconnect);

  const circuitAddress = (peer: string) => {
    const own = node.getMultiaddrs()[0]?.toString();
    return own ? [`${own}/p2p-circuit/p2p/${peer}`] : [];
  };

  async function entry(peerId: string, serverName: string): Promise<DirectoryEntry> {
    const stored = await node.peerStore.get(peerIdFromServerName(serverName)).catch(() => undefined);
    const own = (stored?.addresses ?? [])
      .map((a) => a.multiaddr.toString())
      .filter((a) => !a.includes('/p2p-circuit') && !a.includes('/webrtc'))
      .map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`));
    const reserved = relayService.reservations.has(peerIdFromServerName(serverName));
    return {
      server_name: serverName,
      peer_id: peerId,
      addresses: [...own, ...(reserved ? circuitAddress(peerId) : [])],
    };
  }

  const ok = (body: object) => Response.json(body);

  async function handle(caller: string, callerId: string, request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    if (request.method === 'POST' && path === '/announce') {
      announced.set(callerId, caller);
      return ok(await entry(callerId, caller));
    }
    if (request.method === 'GET' && path === '/peers') {
      return ok({ peers: await Promise.all([...announced].map(([id, name]) => entry(id, name))) });
    }
    const peerMatch = /^\/peers\/([^/]+)$/.exec(path);
    if (request.method === 'GET' && peerMatch) {
      const name = decodeURIComponent(peerMatch[1] as string);
      const id = isP2pServerName(name) ? peerIdFromServerName(name).toString() : undefined;
      if (!id || !announced.has(id)) return jsonError(404, 'M_NOT_FOUND', `${name} is not here`);
      return ok(await entry(id, name));
    }
    const boxMatch = /^\/mailbox\/([^/]+)$/.exec(path);
    if (request.method === 'PUT' && boxMatch) {
      const destination = decodeURIComponent(boxMatch[1] as string);
      if (!isP2pServerName(destination)) {
        return jsonError(400, 'M_INVALID_PARAM', 'Mail is held only for P2P server names');
      }
      let item: string;
      try {
        item = new TextDecoder('utf-8', { fatal: true }).decode(await request.arrayBuffer());
      } catch {
        return jsonError(400, 'M_NOT_JSON', 'A mailbox item is UTF-8 text');
      }
      const result = mailboxes.deposit(destination, caller, item);
      if (result.ok) return ok({ id: result.id });
      return result.reason === 'item'
        ? jsonError(413, 'M_TOO_LARGE', 'The item is too large')
        : jsonError(429, 'M_LIMIT_EXCEEDED', `The mailbox quota (${result.reason}) is full`);
    }
    if (path === '/mailbox' && request.method === 'GET') {
      const limit = Math.min(
        Number(url.searchParams.get('limit') ?? MAX_MAILBOX_BATCH) || 1,
        MAX_MAILBOX_BATCH,
      );
      const items = mailboxes.peek(caller, Math.max(1, limit));
      return ok({
        items: items.map((i) => ({ id: i.id, from: i.from, deposited_at: i.depositedAt, item: i.item })),
      });
    }
    if (path === '/mailbox' && request.method === 'DELETE') {
      const through = Number(url.searchParams.get('through'));
      if (!Number.isSafeInteger(through)) return jsonError(400, 'M_INVALID_PARAM', 'through is an item ID');
      return ok({ removed: mailboxes.ack(caller, through) });
    }
    return jsonError(404, 'M_UNRECOGNIZED', 'Unrecognized request');
  }

  await node.handle(
    RELAY_PROTOCOL,
    (stream, connection) => {
      const caller = serverNameFromPeerId(connection.remotePeer);
      if (!caller) {
        stream.abort(new Error('not a P2P peer'));
        return;
      }
      const callerId = connection.remotePeer.toString();
      void serveExchange(
        stream,
        'https://relay',
        { timeoutMs: RELAY_EXCHANGE_TIMEOUT_MS, maxBodyBytes: MAX_RELAY_REQUEST_BYTES },
        (request) => handle(caller, callerId, request),
      );
    },
    { maxInboundStreams: 8, runOnLimitedConnection: false },
  );

  return {
    node,
    mailboxes,
    addresses: () => node.getMultiaddrs().map(String),
    stats: () => ({
      connectedPeers: node.getPeers().length,
      reservations: relayService.reservations.size,
      announcedPeers: announced.size,
      relayedBytes: counters.relayedBytes,
      sentBytes: counters.sentBytes,
      mailbox: mailboxes.stats(),
    }),
    async close() {
      node.removeEventListener('peer:disconnect', onDisconnect);
      await node.stop();
    },
  };
}
