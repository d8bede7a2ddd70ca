/**
 * What the leader tab runs in P2P mode: the homeserver's libp2p node (`transport/libp2p`,
 * browser transports: WebSockets to the relays, circuit relay v2 for signalling, WebRTC
 * between browsers) and its federation transport, serving peers' requests through the
 * bridge. Loaded by `hearth/page` only in the tab that leads, so no other tab (and never the
 * Service Worker, which has no WebRTC) carries libp2p.
 */
import { createLibp2pTransport } from '../libp2p/index.ts';
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

export async function startLibp2pLeader(options: Libp2pLeaderOptions): Promise<LeaderTransport> {
  const node = await createHearthNode({
    seed: options.seed,
    transports: browserTransports(),
    relays: options.relays,
    webRTC: true,
  });
  const transport = createLibp2pTransport({ node, handler: options.deliver, relays: options.relays });
  const listeners = new Set<(reachable?: string) => void>();
  const changed = (reachable?: string) => {
    for (const listener of listeners) listener(reachable);
  };
  // A peer's connection opened: the worker's sender resets its backoff for it.
  const unreachable = transport.onReachable?.((serverName) => changed(serverName));
  // Any other change of a peer's state, or of our addresses: only the tabs' status.
  const onChange = () => changed();
  transport.events.addEventListener('peer', onChange);
  node.addEventListener('self:peer:update', onChange);

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
      unreachable?.();
      transport.events.removeEventListener('peer', onChange);
      node.removeEventListener('self:peer:update', onChange);
      listeners.clear();
      await transport.close();
      await node.stop();
    },
  };
}
