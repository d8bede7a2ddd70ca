/**
 * The leader tab's side of the SW↔page bridge (protocol.ts). The tab that leads (election.ts)
 * runs the transport — the libp2p node, which cannot run in a worker — and carries
 * federation for the homeserver's Service Worker:
 *
 * - outbound: it hands the worker a port exposing `LeaderService` (comlink); the worker's
 *   sends arrive there and go out on this tab's transport;
 * - inbound: `deliver`, the transport's inbound handler, posts each request from a peer to
 *   the worker on its own channel (waking a stopped worker) and returns the worker's answer;
 * - `reachable` tells the worker's sender a peer is back, so its backoff is reset.
 */
import { expose, transfer } from 'comlink';
import { type FederationTransport, type InboundHandler, TransportError } from '../transport.ts';
import {
  bodyTransfer,
  errorResult,
  INBOUND_MESSAGE,
  isWireResponse,
  LEADER_MESSAGE,
  LEADER_WANTED_MESSAGE,
  type LeaderService,
  messageType,
  REACHABLE_MESSAGE,
  requestFromWire,
  requestToWire,
  responseFromWire,
  responseToWire,
  type SendResult,
} from './protocol.ts';

export interface LeaderBridgeOptions {
  /** Posts to the homeserver's worker (the registration's active worker; a post wakes it). */
  post(message: unknown, transfer: Transferable[]): void;
  /** How this tab reaches peers. */
  transport: FederationTransport;
  /** Longest wait for the worker's answer to a peer's request; default 60 s. */
  inboundTimeoutMs?: number;
}

export interface LeaderBridge {
  /** Hands the worker a fresh port to send through: at the start, and whenever it asks. */
  connect(): void;
  /** The transport's inbound handler: a peer's request, answered by the worker's homeserver. */
  readonly deliver: InboundHandler;
  /** Tells the worker `destination` (without one: any destination) may be reachable now. */
  reachable(destination?: string): void;
  /** A message from the worker: true when it was the bridge's (and handled). */
  receive(data: unknown): boolean;
  /** Stops serving the worker: its ports are closed, so its next send asks for a new leader. */
  close(): void;
}

export function createLeaderBridge(options: LeaderBridgeOptions): LeaderBridge {
  const { transport } = options;
  const inboundTimeoutMs = options.inboundTimeoutMs ?? 60_000;
  const ports = new Set<MessagePort>();
  let closed = false;

  const service: LeaderService = {
    async send(destination, wire): Promise<SendResult> {
      if (closed) return { ok: false, code: 'UNREACHABLE', message: 'this tab no longer leads' };
      try {
        const response = await transport.send(destination, requestFromWire(wire));
        const out = await responseToWire(response);
        return transfer({ ok: true, response: out }, bodyTransfer(out));
      } catch (error) {
        return errorResult(error);
      }
    },
    async hold(destination, wires) {
      if (closed || !transport.hold) return false;
      try {
        return await transport.hold(
          destination,
          wires.map((wire) => requestFromWire(wire)),
        );
      } catch {
        return false;
      }
    },
  };

  const deliver: InboundHandler = async (request, info) => {
    if (closed) throw new TransportError('UNREACHABLE', 'this tab no longer leads');
    const wire = await requestToWire(request);
    const { port1, port2 } = new MessageChannel();
    try {
      const answer = new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new TransportError('TIMEOUT', 'the homeserver worker did not answer')),
          inboundTimeoutMs,
        );
        port1.onmessage = (event) => {
          clearTimeout(timer);
          resolve(event.data);
        };
      });
      options.post({ type: INBOUND_MESSAGE, request: wire, info: { ...info } }, [
        port2,
        ...bodyTransfer(wire),
      ]);
      const data = (await answer) as { response?: unknown; error?: unknown };
      if (!isWireResponse(data.response)) {
        throw new TransportError('PROTOCOL', `the homeserver worker failed: ${String(data.error)}`);
      }
      return responseFromWire(data.response);
    } finally {
      port1.close();
    }
  };

  function connect(): void {
    if (closed) return;
    // The worker keeps only the newest port (it lets the others go); so does this tab.
    for (const port of ports) port.close();
    ports.clear();
    const { port1, port2 } = new MessageChannel();
    expose(service, port1);
    ports.add(port1);
    options.post({ type: LEADER_MESSAGE }, [port2]);
  }

  return {
    connect,
    deliver,
    reachable(destination) {
      if (closed) return;
      options.post({ type: REACHABLE_MESSAGE, ...(destination === undefined ? {} : { destination }) }, []);
    },
    receive(data) {
      if (messageType(data) !== LEADER_WANTED_MESSAGE) return false;
      connect();
      return true;
    },
    close() {
      closed = true;
      for (const port of ports) port.close();
      ports.clear();
    },
  };
}
