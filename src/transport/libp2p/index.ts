/**
 * Federation over libp2p: the `FederationTransport` seam (../transport.ts) on a Hearth libp2p
 * node (node.ts). Each federation request is one stream of `/matrix/federation/1`, framed as
 * in framing.ts; X-Matrix signing is untouched (the federation client signs, the receiving
 * homeserver checks). What the transport adds is the binding of names to keys: a P2P server
 * is dialled by its name (peer ID from the name, identity.ts), and an inbound request whose
 * X-Matrix origin is not the server name of the connection's noise-authenticated key is
 * refused before the homeserver sees it.
 *
 * Dialling a server: an open direct connection if there is one; else the addresses known for
 * it (its own listen addresses, learnt from identify or a relay's directory); else through
 * each relay, first WebRTC (signalled over the relay, then browser to browser / peer to peer),
 * then a relayed circuit.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { isP2pServerName } from '../../core/p2p-identity.ts';
import { parseXMatrix } from '../../core/x-matrix.ts';
import type { Logger } from '../../homeserver/context.ts';
import {
  type FederationTransport,
  type InboundHandler,
  isTransportError,
  requestTarget,
  TransportError,
} from '../transport.ts';
import { exchange, FramingError, jsonError, serveExchange } from './framing.ts';
import { peerIdFromServerName, serverNameFromPeerId } from './identity.ts';
import type { HearthNode } from './node.ts';
import { createRelayClient, type RelayClient } from './relay-client.ts';

/** The stream protocol carrying one federation request and its answer. */
export const FEDERATION_PROTOCOL = '/matrix/federation/1';

/** As over HTTPS (https/index.ts): Synapse gives a federation request 60 s. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** As over HTTPS: a `/state` or `/send_join` answer of a large room runs to tens of MB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024;
/**
 * Largest inbound request body. The biggest federation request is a `/send` of 50 PDUs of at
 * most 64 KiB and 100 EDUs: a few MB. The router applies each endpoint's own limit after this.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Concurrent federation streams one connection may open to us. */
export const DEFAULT_MAX_INBOUND_STREAMS = 64;

export type PeerConnectionState = 'connecting' | 'direct' | 'relayed' | 'disconnected';

export interface PeerStatus {
  peerId: string;
  /** The peer's P2P server name (hex of its key); every ed25519 peer has one. */
  serverName: string | undefined;
  state: PeerConnectionState;
  /** How a direct connection runs: `webrtc`, `tcp`, `websockets`; `circuit` when relayed. */
  via: 'webrtc' | 'tcp' | 'websockets' | 'circuit' | 'other' | undefined;
  /** Remote addresses of the open connections. */
  addresses: string[];
  /** One of this node's relays. */
  relay: boolean;
}

export interface Libp2pTransportOptions {
  node: HearthNode;
  /** Inbound: each request goes here (`hs.fetch`). Without it, nothing is served. */
  handler?: InboundHandler;
  /**
   * Relays to dial peers through (multiaddrs ending in `/p2p/<relay>`). The relays the node
   * holds reservations on are used too.
   */
  relays?: readonly string[];
  /**
   * Where to look up a server's own addresses when none is known. Default: the relays'
   * directories (relay-client.ts).
   */
  lookup?: (serverName: string, signal: AbortSignal) => Promise<readonly string[]>;
  /**
   * Store-and-forward through `relays` (default true when there are relays): `hold` hands
   * requests for an unreachable server to a relay, and what relays hold for this server is
   * collected and given to `handler` on every connection to one.
   */
  storeAndForward?: boolean;
  logger?: Pick<Logger, 'info' | 'warn'>;
  timeoutMs?: number;
  maxResponseBytes?: number;
  maxRequestBytes?: number;
  maxInboundStreams?: number;
}

export interface Libp2pTransport extends FederationTransport {
  readonly node: HearthNode;
  /** This node's server name (hex of its key). */
  readonly serverName: string;
  /** Every peer connected or being dialled, with its state. */
  peers(): PeerStatus[];
  /** One peer's state (`disconnected` when nothing is open). */
  peer(serverName: string): PeerStatus;
  /** `peer` events (`CustomEvent<PeerStatus>`) whenever a peer's state may have changed. */
  readonly events: EventTarget;
  /** A stream of `protocol` to a server by name, dialled as federation requests are. */
  openStream(serverName: string, protocol: string, signal?: AbortSignal): Promise<Stream>;
  /** Directory, lookups and store-and-forward on the relays; undefined without relays. */
  readonly relayClient: RelayClient | undefined;
  /** Stops serving `/matrix/federation/1` (the node is the caller's to stop). */
  close(): Promise<void>;
}

/** The relay part of a circuit address: `/ip4/…/tcp/…/p2p/<relay>` of `…/p2p-circuit/…`. */
function relayOf(addr: string): string | undefined {
  const at = addr.indexOf('/p2p-circuit');
  return at > 0 ? addr.slice(0, at) : undefined;
}

function connectionVia(conn: Connection): PeerStatus['via'] {
  const addr = conn.remoteAddr.toString();
  if (addr.includes('/webrtc')) return 'webrtc';
  if (addr.includes('/p2p-circuit')) return 'circuit';
  if (addr.includes('/ws') || addr.includes('/wss')) return 'websockets';
  if (addr.includes('/tcp/')) return 'tcp';
  return 'other';
}

export function createLibp2pTransport(options: Libp2pTransportOptions): Libp2pTransport {
  const { node } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const serverName = serverNameFromPeerId(node.peerId);
  if (!serverName) throw new Error('a Hearth node has an ed25519 key');
  const events = new EventTarget();
  const relayClient =
    (options.relays?.length ?? 0) > 0
      ? createRelayClient({
          node,
          relays: options.relays ?? [],
          serverName,
          handler: options.storeAndForward === false ? undefined : options.handler,
          logger: options.logger,
        })
      : undefined;
  const lookup = options.lookup ?? relayClient?.lookup;
  /** Dials in progress per peer ID. */
  const connecting = new Map<string, number>();

  const relayAddrs = (): string[] => {
    const out = new Set<string>(options.relays ?? []);
    for (const addr of node.getMultiaddrs()) {
      const relay = relayOf(addr.toString());
      if (relay) out.add(relay);
    }
    return [...out];
  };
  const relayIds = (): Set<string> =>
    new Set(relayAddrs().map((addr) => addr.slice(addr.lastIndexOf('/p2p/') + 5)));

  function statusOf(peerId: string, relays = relayIds()): PeerStatus {
    const conns = node
      .getConnections()
      .filter((c) => c.remotePeer.toString() === peerId && c.status === 'open');
    const vias = conns.map(connectionVia);
    const direct = vias.find((v) => v !== 'circuit');
    const state: PeerConnectionState = direct
      ? 'direct'
      : conns.length > 0
        ? 'relayed'
        : connecting.has(peerId)
          ? 'connecting'
          : 'disconnected';
    return {
      peerId,
      serverName: serverNameFromPeerId(peerId),
      state,
      via: direct ?? (conns.length > 0 ? 'circuit' : undefined),
      addresses: conns.map((c) => c.remoteAddr.toString()),
      relay: relays.has(peerId),
    };
  }

  const announce = (peerId: string) =>
    events.dispatchEvent(new CustomEvent<PeerStatus>('peer', { detail: statusOf(peerId) }));
  const reachable = new Set<(serverName: string) => void>();
  const onConnection = (evt: CustomEvent<Connection>) => {
    announce(evt.detail.remotePeer.toString());
    const name = serverNameFromPeerId(evt.detail.remotePeer);
    if (evt.type === 'connection:open' && name) for (const listener of reachable) listener(name);
  };
  node.addEventListener('connection:open', onConnection);
  node.addEventListener('connection:close', onConnection);

  async function dialStream(destination: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    const peerId = peerIdFromServerName(destination);
    const open = node
      .getConnections(peerId)
      .filter((c) => c.status === 'open' && connectionVia(c) !== 'circuit');
    for (const conn of open) {
      try {
        return await conn.newStream(protocol, { signal });
      } catch {
        // A connection closing under us: try the next way.
      }
    }
    const failures: string[] = [];
    const attempt = async (target: Multiaddr | typeof peerId, limited: boolean) => {
      try {
        return await node.dialProtocol(target, protocol, { signal, runOnLimitedConnection: limited });
      } catch (err) {
        if (signal.aborted) throw err;
        failures.push(`${target.toString()}: ${(err as Error).message}`);
        return undefined;
      }
    };
    // Its own addresses: known already (identify, an earlier lookup), or from the directory.
    let known = (await node.peerStore.get(peerId).catch(() => undefined))?.addresses ?? [];
    known = known.filter((a) => !a.multiaddr.toString().includes('/p2p-circuit'));
    if (known.length === 0 && lookup) {
      const found = await lookup(destination, signal).catch(() => []);
      const addrs = found
        .filter((a) => !a.includes('/p2p-circuit'))
        .flatMap((a) => {
          try {
            return [multiaddr(a)];
          } catch {
            return [];
          }
        });
      if (addrs.length > 0) {
        await node.peerStore.merge(peerId, { multiaddrs: addrs });
        known = addrs.map((m) => ({ multiaddr: m, isCertified: false }));
      }
    }
    if (known.length > 0) {
      const stream = await attempt(peerId, false);
      if (stream) return stream;
    }
    const webRTC = node.getMultiaddrs().some((a) => a.toString().includes('/webrtc'));
    for (const relay of relayAddrs()) {
      if (relay.endsWith(`/p2p/${peerId.toString()}`)) continue;
      if (webRTC) {
        const stream = await attempt(
          multiaddr(`${relay}/p2p-circuit/webrtc/p2p/${peerId.toString()}`),
          false,
        );
        if (stream) return stream;
      }
      const stream = await attempt(multiaddr(`${relay}/p2p-circuit/p2p/${peerId.toString()}`), true);
      if (stream) return stream;
    }
    throw new TransportError(
      'UNREACHABLE',
      failures.length > 0
        ? `${destination} is not reachable: ${failures.join('; ')}`
        : `no address or relay to reach ${destination}`,
    );
  }

  async function openStream(destination: string, protocol: string, signal?: AbortSignal): Promise<Stream> {
    if (!isP2pServerName(destination)) {
      throw new TransportError('UNREACHABLE', `${destination} is not a P2P server name`);
    }
    const peerId = peerIdFromServerName(destination).toString();
    connecting.set(peerId, (connecting.get(peerId) ?? 0) + 1);
    if (connecting.get(peerId) === 1) announce(peerId);
    const bounded = signal ?? AbortSignal.timeout(timeoutMs);
    try {
      return await dialStream(destination, protocol, bounded);
    } catch (err) {
      if (isTransportError(err)) throw err;
      if (bounded.aborted) throw new TransportError('TIMEOUT', `no connection to ${destination} in time`);
      throw new TransportError('UNREACHABLE', `${destination}: ${(err as Error).message}`, { cause: err });
    } finally {
      const left = (connecting.get(peerId) ?? 1) - 1;
      if (left === 0) connecting.delete(peerId);
      else connecting.set(peerId, left);
      announce(peerId);
    }
  }

  async function send(destination: string, request: Request): Promise<Response> {
    const stream = await openStream(destination, FEDERATION_PROTOCOL, AbortSignal.timeout(timeoutMs));
    const headers = new Headers(request.headers);
    headers.set('host', destination);
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    try {
      return await exchange(
        stream,
        {
          method: request.method,
          target: requestTarget(request),
          headers,
          body: hasBody ? request.body : null,
        },
        { timeoutMs, maxBodyBytes: maxResponseBytes },
      );
    } catch (err) {
      const code = err instanceof FramingError ? err.code : 'CLOSED';
      throw new TransportError(
        code === 'CLOSED' ? 'UNREACHABLE' : code,
        `${destination}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** One inbound exchange: the request's X-Matrix origin must be the peer noise authenticated. */
  function serve(handler: InboundHandler, stream: Stream, connection: Connection): Promise<void> {
    const peer = serverNameFromPeerId(connection.remotePeer);
    if (!peer) {
      stream.abort(new Error('not a P2P peer'));
      return Promise.resolve();
    }
    return serveExchange(
      stream,
      `https://${serverName}`,
      { timeoutMs, maxBodyBytes: maxRequestBytes },
      async (request) => {
        const authorization = request.headers.get('authorization');
        if (authorization !== null && /^x-matrix\s/i.test(authorization)) {
          let origin: string | undefined;
          try {
            origin = parseXMatrix(authorization).origin;
          } catch {
            // Unreadable: the homeserver answers it as any malformed X-Matrix header.
          }
          // The handshake proved the peer holds the key of `peer`: a request from another
          // origin is someone else's, whatever its signature.
          if (origin !== undefined && origin !== peer) {
            return jsonError(
              401,
              'M_UNAUTHORIZED',
              `The request's origin ${origin} is not the server whose key this connection proved`,
            );
          }
        }
        request.headers.set('host', serverName as string);
        return handler(request, { clientAddress: `libp2p:${peer}` });
      },
    );
  }

  let serving: Promise<void> = Promise.resolve();
  if (options.handler) {
    const handler = options.handler;
    serving = node.handle(
      FEDERATION_PROTOCOL,
      (stream, connection) => {
        void serve(handler, stream, connection);
      },
      {
        maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS,
        // Relayed circuits carry federation too until WebRTC replaces them.
        runOnLimitedConnection: true,
      },
    );
  }

  return {
    node,
    serverName,
    events,
    send: async (destination, request) => {
      await serving;
      return send(destination, request);
    },
    openStream,
    relayClient,
    onReachable(listener) {
      reachable.add(listener);
      return () => reachable.delete(listener);
    },
    ...(relayClient && options.storeAndForward !== false
      ? {
          hold: (destination: string, requests: readonly Request[]) =>
            relayClient.hold(destination, requests),
        }
      : {}),
    peers() {
      const relays = relayIds();
      const ids = new Set([
        ...node.getConnections().map((c) => c.remotePeer.toString()),
        ...connecting.keys(),
      ]);
      return [...ids].map((id) => statusOf(id, relays));
    },
    peer(name) {
      return statusOf(peerIdFromServerName(name).toString());
    },
    async close() {
      relayClient?.close();
      node.removeEventListener('connection:open', onConnection);
      node.removeEventListener('connection:close', onConnection);
      if (options.handler) await node.unhandle(FEDERATION_PROTOCOL).catch(() => undefined);
    },
  };
}
