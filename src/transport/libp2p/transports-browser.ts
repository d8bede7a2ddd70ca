/**
 * The transports a browser page speaks: WebSockets to relays, circuit relay v2 (reservations
 * and WebRTC signalling), and WebRTC between browsers (the browser's own RTCPeerConnection:
 * `@libp2p/webrtc` maps its Node build away in a bundler). A browser cannot listen on TCP or
 * WebSockets; it is reached through its relay reservations. Never in a worker: no WebRTC there.
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { TransportFactory } from './node.ts';

export function browserTransports(): TransportFactory[] {
  return [webSockets(), webRTC(), circuitRelayTransport()];
}
