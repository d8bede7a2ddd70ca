/**
 * Test support: a P2P homeserver on a real libp2p node on loopback (port 0), its name from
 * the seed in its fresh store, federating over `/matrix/federation/1`.
 */
import type { Logger } from '../../homeserver/context.ts';
import { openP2pIdentity } from '../../homeserver/start.ts';
import { openTestStore } from '../../homeserver/testing.ts';
import type { Store } from '../../storage/store.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';
import type { FederationTransport, InboundHandler } from '../transport.ts';
import { createLibp2pTransport, type Libp2pTransport, type Libp2pTransportOptions } from './index.ts';
import { createHearthNode, type HearthNode, type HearthNodeOptions } from './node.ts';
import { createRelay, type Relay, type RelayOptions } from './relay.ts';
import { type NodeTransportChoice, nodeTransports } from './transports-node.ts';

/** A relay on loopback (TCP and WebSockets, port 0). */
export function startTestRelay(options: Partial<RelayOptions> = {}): Promise<Relay> {
  return createRelay({ transports: nodeTransports({ webRTC: false }), ...options });
}

/** The relay's TCP address (what peers are given as a relay / bootstrap). */
export function relayTcpAddress(relay: Relay): string {
  const addr = relay.addresses().find((a) => !a.includes('/ws'));
  if (!addr) throw new Error('the relay has no TCP address');
  return addr;
}

export interface TestP2pPeer {
  hs: TestHomeserver;
  serverName: string;
  seed: Uint8Array;
  node: HearthNode;
  transport: Libp2pTransport;
  /** This node's own (non-relayed) listen addresses. */
  addresses(): string[];
  /** Tells this peer another's own addresses (as a directory lookup would). */
  know(other: TestP2pPeer): Promise<void>;
  close(): Promise<void>;
}

export interface TestP2pPeerOptions {
  relays?: readonly string[];
  /** Default TCP on 127.0.0.1, port 0. */
  listen?: readonly string[];
  transports?: NodeTransportChoice;
  webRTC?: boolean;
  logger?: Logger;
  store?: Store;
  /** Stands in front of the homeserver (a test recording or tampering with requests). */
  inbound?: (handler: InboundHandler) => InboundHandler;
  /** Stands in front of the libp2p transport (e.g. store-and-forward routing). */
  outbound?: (transport: Libp2pTransport) => FederationTransport;
  node?: Partial<HearthNodeOptions>;
  transport?: Partial<Libp2pTransportOptions>;
}

export async function startTestP2pPeer(options: TestP2pPeerOptions = {}): Promise<TestP2pPeer> {
  const store = options.store ?? (await openTestStore());
  const { seed, serverName } = await openP2pIdentity(store);
  const node = await createHearthNode({
    seed,
    transports: nodeTransports(options.transports),
    listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    relays: options.relays,
    webRTC: options.webRTC,
    ...options.node,
  });
  let hs: TestHomeserver | undefined;
  const handler: InboundHandler = (request, info) => {
    if (!hs) return Promise.resolve(Response.json({ errcode: 'M_UNKNOWN' }, { status: 503 }));
    return hs.fetch(request, info);
  };
  const transport = createLibp2pTransport({
    node,
    handler: options.inbound ? options.inbound(handler) : handler,
    relays: options.relays,
    ...options.transport,
  });
  hs = await createTestHomeserver({
    serverName,
    p2p: true,
    store,
    ...(options.logger ? { logger: options.logger } : {}),
    federation: { transport: options.outbound ? options.outbound(transport) : transport },
  });
  const self: TestP2pPeer = {
    hs,
    serverName,
    seed,
    node,
    transport,
    addresses: () =>
      node
        .getMultiaddrs()
        .map(String)
        .filter((a) => !a.includes('/p2p-circuit')),
    async know(other) {
      const { multiaddr } = await import('@multiformats/multiaddr');
      await node.peerStore.merge(other.node.peerId, {
        multiaddrs: other.addresses().map((a) => multiaddr(a)),
      });
    },
    async close() {
      await transport.close();
      await node.stop();
      await hs?.close();
    },
  };
  return self;
}
