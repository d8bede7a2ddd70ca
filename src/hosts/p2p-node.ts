/**
 * P2P federation for `hearth serve` on Node: the homeserver's libp2p node (TCP, WebSockets,
 * WebRTC through node-datachannel, circuits through the bootstrap relays) and the transport
 * that routes P2P names over it and every other name over HTTPS. Thin: the work is in
 * src/transport/libp2p.
 */
import type { Logger } from '../homeserver/context.ts';
import { createLibp2pTransport, type Libp2pTransport, type PeerStatus } from '../transport/libp2p/index.ts';
import { createHearthNode, type HearthNode } from '../transport/libp2p/node.ts';
import { nodeTransports } from '../transport/libp2p/transports-node.ts';
import { createRoutingTransport } from '../transport/routing.ts';
import type { FederationTransport, InboundHandler } from '../transport/transport.ts';

export interface NodeP2pOptions {
  seed: Uint8Array;
  /** Relay / bootstrap multiaddrs (`…/p2p/<id>`). */
  bootstrap: readonly string[];
  /** Default: TCP and WebSockets on `host`, ports chosen by the system. */
  listen?: readonly string[];
  host?: string;
  /** Inbound federation (`hs.fetch`). */
  handler: InboundHandler;
  /** Where DNS-named servers are reached (HTTPS). */
  dns: FederationTransport;
  logger: Logger;
}

export interface NodeP2p {
  readonly node: HearthNode;
  readonly libp2p: Libp2pTransport;
  /** Routes P2P names to libp2p, others to `dns`. */
  readonly transport: FederationTransport;
  addresses(): string[];
  stop(): Promise<void>;
}

export function defaultP2pListen(host = '127.0.0.1'): string[] {
  const ip = host.includes(':') ? `/ip6/${host}` : `/ip4/${host}`;
  return [`${ip}/tcp/0`, `${ip}/tcp/0/ws`];
}

export async function startNodeP2p(options: NodeP2pOptions): Promise<NodeP2p> {
  const { logger } = options;
  const node = await createHearthNode({
    seed: options.seed,
    transports: nodeTransports(),
    listen: options.listen && options.listen.length > 0 ? options.listen : defaultP2pListen(options.host),
    relays: options.bootstrap,
    webRTC: true,
  });
  const libp2p = createLibp2pTransport({ node, handler: options.handler, relays: options.bootstrap, logger });
  const last = new Map<string, string>();
  libp2p.events.addEventListener('peer', (evt) => {
    const peer = (evt as CustomEvent<PeerStatus>).detail;
    const shown = `${peer.state}${peer.via ? ` (${peer.via})` : ''}`;
    if (last.get(peer.peerId) === shown) return;
    last.set(peer.peerId, shown);
    if (peer.state === 'disconnected') last.delete(peer.peerId);
    logger.info(`p2p: ${peer.relay ? 'relay' : (peer.serverName ?? peer.peerId)} ${shown}`);
  });
  return {
    node,
    libp2p,
    transport: createRoutingTransport({ p2p: libp2p, dns: options.dns }),
    addresses: () => node.getMultiaddrs().map(String),
    async stop() {
      await libp2p.close();
      await node.stop();
    },
  };
}
