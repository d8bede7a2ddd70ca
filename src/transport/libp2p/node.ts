/**
 * The libp2p node of a P2P homeserver, for Node and for the browser page alike: the
 * runtime-specific part is the list of transports, passed in (`transports-node.ts`,
 * `transports-browser.ts`). Noise authenticates every connection with the homeserver's own
 * ed25519 key (so the peer ID proves the server name), yamux multiplexes TCP/WebSocket
 * connections (WebRTC brings its own streams), identify tells peers our addresses and
 * protocols, ping measures round trips.
 */
import { type CircuitRelayServerInit, circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { type Identify, identify } from '@libp2p/identify';
import type { Libp2p, Metrics, PrivateKey } from '@libp2p/interface';
import { FaultTolerance, KEEP_ALIVE } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { peerIdFromString } from '@libp2p/peer-id';
import { type Ping, ping } from '@libp2p/ping';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2pInit } from 'libp2p';
import { libp2pKeyFromSeed } from './identity.ts';

export type TransportFactory = NonNullable<Libp2pInit['transports']>[number];

/** The services every Hearth node runs. */
export type HearthServices = { identify: Identify; ping: Ping };
export type HearthNode = Libp2p<HearthServices>;

/**
 * Connection limits. libp2p's defaults are for a node among hundreds of peers; these bound
 * what one host can make a homeserver hold while it refuses a flood.
 */
export const DEFAULT_MAX_CONNECTIONS = 300;
/** New inbound connections accepted per second from one IP address (libp2p's default is 5). */
export const DEFAULT_INBOUND_CONNECTIONS_PER_SECOND = 5;
/** Inbound connections still in their handshake at once. */
export const DEFAULT_MAX_PENDING_INBOUND = 10;

export interface HearthNodeOptions {
  /** The homeserver's 32-byte ed25519 seed: its libp2p key (same key, same identity). */
  seed?: Uint8Array;
  /** Or the libp2p private key itself (a relay that has no homeserver). */
  privateKey?: PrivateKey;
  /** What the node speaks: `nodeTransports()` on Node, `browserTransports()` in a page. */
  transports: TransportFactory[];
  /** Multiaddrs to listen on (`/ip4/127.0.0.1/tcp/0`, `/ip4/0.0.0.0/tcp/0/ws`). None in a browser. */
  listen?: readonly string[];
  /**
   * Relays (full multiaddrs ending in `/p2p/<id>`): dialled at start and redialled when lost;
   * a reservation is held on each, so peers reach this node through them.
   */
  relays?: readonly string[];
  /** Accept WebRTC connections, signalled through the relays. Needs `webRTC()` among the transports. */
  webRTC?: boolean;
  maxConnections?: number;
  inboundConnectionsPerSecond?: number;
  maxPendingInbound?: number;
  /** Default true: start listening at once. */
  start?: boolean;
  /** Be a circuit relay v2 server (a `hearth relay`), with these limits. */
  relayServer?: CircuitRelayServerInit;
  /** libp2p's metrics hook (the relay's byte counters, relay-metrics.ts). */
  metrics?: () => Metrics;
}

/**
 * Only ed25519 peers have a P2P server name; others (RSA, secp256k1) can never be a Hearth
 * peer, so they are refused right after the handshake, before they hold any resource.
 * Loopback and private addresses are allowed: tests and LANs use them.
 */
const gater: Libp2pInit['connectionGater'] = {
  denyDialMultiaddr: () => false,
  denyInboundEncryptedConnection: (peerId) => peerId.type !== 'Ed25519',
  denyOutboundEncryptedConnection: (peerId) => peerId.type !== 'Ed25519',
};

export async function createHearthNode(options: HearthNodeOptions): Promise<HearthNode> {
  const privateKey = options.privateKey ?? (options.seed ? await libp2pKeyFromSeed(options.seed) : undefined);
  if (!privateKey) throw new Error('a Hearth node needs the homeserver seed or a private key');
  const relays = (options.relays ?? []).map((addr) => multiaddr(addr));
  const listen = [
    ...(options.listen ?? []),
    // One reservation per relay: peers dial `<relay>/p2p-circuit/p2p/<us>`. The bare
    // `/p2p-circuit` makes a reservation again on any relay we reconnect to.
    ...relays.map((relay) => `${relay.toString()}/p2p-circuit`),
    ...(relays.length > 0 ? ['/p2p-circuit'] : []),
    ...(options.webRTC ? ['/webrtc'] : []),
  ];
  const node = await createLibp2p({
    privateKey,
    addresses: { listen },
    transports: options.transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: gater,
    // A relay that is down or slow at start-up must not stop the node: it is redialled (and a
    // reservation made) once it answers.
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    connectionManager: {
      maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      inboundConnectionThreshold:
        options.inboundConnectionsPerSecond ?? DEFAULT_INBOUND_CONNECTIONS_PER_SECOND,
      maxIncomingPendingConnections: options.maxPendingInbound ?? DEFAULT_MAX_PENDING_INBOUND,
    },
    services: {
      identify: identify(),
      ping: ping(),
      ...(options.relayServer ? { relay: circuitRelayServer(options.relayServer) } : {}),
    },
    ...(options.metrics ? { metrics: options.metrics } : {}),
    start: false,
  });
  // Relays stay connected: libp2p redials a KEEP_ALIVE-tagged peer when its connection drops.
  for (const relay of relays) {
    const peerId = relay.getComponents().find((c) => c.name === 'p2p')?.value;
    if (!peerId) throw new Error(`a relay address names its peer (/p2p/<id>): ${relay.toString()}`);
    await node.peerStore.merge(peerIdFromString(peerId), {
      multiaddrs: [relay],
      tags: { [KEEP_ALIVE]: { value: 1 } },
    });
  }
  if (options.start ?? true) await node.start();
  return node;
}
