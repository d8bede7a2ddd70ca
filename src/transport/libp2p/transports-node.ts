/**
 * The transports a Node peer speaks (STYLE.md §9: runtime differences by file): TCP and
 * WebSockets (dialled and listened on), WebRTC through node-datachannel (`@libp2p/webrtc`'s
 * Node build), and circuit relay v2 (reservations on relays, and WebRTC signalling through them).
 * The browser's set is in `transports-browser.ts`.
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { tcp } from '@libp2p/tcp';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { TransportFactory } from './node.ts';

export interface NodeTransportChoice {
  /** Default true. */
  tcp?: boolean;
  /** Default true. */
  webSockets?: boolean;
  /** WebRTC through node-datachannel, signalled over relay circuits. Default true. */
  webRTC?: boolean;
}

export function nodeTransports(choice: NodeTransportChoice = {}): TransportFactory[] {
  const out: TransportFactory[] = [];
  if (choice.tcp ?? true) out.push(tcp());
  if (choice.webSockets ?? true) out.push(webSockets());
  if (choice.webRTC ?? true) out.push(webRTC());
  out.push(circuitRelayTransport());
  return out;
}
