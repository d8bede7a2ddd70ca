/**
 * One transport for a server that federates both ways at once: P2P server names (64 hex
 * digits, which no DNS name can be) go over libp2p, every other name over HTTPS. A Node
 * instance so bridges P2P peers and DNS-named servers in the same room.
 */
import { isP2pServerName } from '../core/p2p-identity.ts';
import type { FederationTransport } from './transport.ts';

export function createRoutingTransport(routes: {
  p2p: FederationTransport;
  dns: FederationTransport;
}): FederationTransport {
  const { p2p, dns } = routes;
  return {
    send: (destination, request) => (isP2pServerName(destination) ? p2p : dns).send(destination, request),
    async hold(destination, requests) {
      const route = isP2pServerName(destination) ? p2p : dns;
      return route.hold ? route.hold(destination, requests) : false;
    },
    onReachable(listener) {
      const stops = [p2p, dns].map((route) => route.onReachable?.(listener));
      return () => {
        for (const stop of stops) stop?.();
      };
    },
  };
}
