/**
 * What the leader tab runs in P2P mode: the homeserver's libp2p node (`transport/libp2p`,
 * browser transports: WebSockets to the relays, circuit relay v2 for signalling, WebRTC
 * between browsers) and its federation transport, serving peers' requests through the
 * bridge. Loaded by `hearth/page` only in the tab that leads, so no other tab (and never the
 * Service Worker, which has no WebRTC) carries libp2p.
 */
import { createLibp2pTransport, type PeerStatus } from '../libp2p/index.ts';
import { createHearthNode } from '../libp2p/node.ts';
import { browserTransports } from '../libp2p/transports-browser.ts';
import type { InboundHandler } from '../transport.ts';
import type { SharedPeer } from './status.ts';
import type { LeaderTransport } from './tab.ts';

export interface Libp2pLeaderOptions {
  /** The homeserver's seed: the node's key, so its peer ID is the server name's. */
  seed: Uint8Array;
  /** Relay multiaddrs (ending in `/p2p/<id>`): reservations are held on each. */
  relays: readonly string[];
  /** Peers' requests: the bridge's `deliver`, answered by the worker's homeserver. */
  deliver: InboundHandler;
}

const isUp = (state: PeerStatus['state'] | undefined) => state === 'direct' || state === 'relayed';

export async function startLibp2pLeader(options: Libp2pLeaderOptions): Promise<LeaderTransport> {
  const node = await createHearthNode({
    seed: options.seed,
    transports: browserTransports(),
    relays: options.relays,
    webRTC: true,
  });
  const transport = createLibp2pTransport({ node, handler: options.deliver, relays: options.relays });
  const listeners = new Set<(reachable?: string) => void>();
  /** Each peer's last state, to tell the worker only when one comes up. */
  const states = new Map<string, PeerStatus['state']>();

  const onPeer = (event: Event) => {
    const peer = (event as CustomEvent<PeerStatus>).detail;
    const before = states.get(peer.peerId);
    states.set(peer.peerId, peer.state);
    const cameUp = isUp(peer.state) && !isUp(before) && !peer.relay ? peer.serverName : undefined;
    for (const listener of listeners) listener(cameUp);
  };
  const onAddresses = () => {
    for (const listener of listeners) listener();
  };
  transport.events.addEventListener('peer', onPeer);
  node.addEventListener('self:peer:update', onAddresses);

  return {
    transport,
    status() {
      const peers: SharedPeer[] = transport.peers().map((p) => ({
        peerId: p.peerId,
        serverName: p.serverName,
        state: p.state,
        via: p.via,
        relay: p.relay,
      }));
      return {
        serverName: transport.serverName,
        addresses: node.getMultiaddrs().map((a) => a.toString()),
        peers,
      };
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      transport.events.removeEventListener('peer', onPeer);
      node.removeEventListener('self:peer:update', onAddresses);
      listeners.clear();
      await transport.close();
      await node.stop();
    },
  };
}
