/**
 * The Service Worker's side of the SW↔page bridge (protocol.ts): a `FederationTransport`
 * that sends through the leader tab's libp2p node, and the delivery of requests from peers,
 * which the leader posts here, to the homeserver.
 *
 * The worker may be stopped whenever it is idle, and its port to the leader with it. So the
 * port is only a cache: a send that finds none asks every window for the leader
 * (`LEADER_WANTED`) and waits a moment for its `LEADER`; with no leader (no tab open) the
 * send fails as unreachable, the outbox row stays, and the sender backs off — until a tab
 * takes the lead and posts `LEADER` (or `REACHABLE`), which resets the backoff at once.
 */
import { type Remote, releaseProxy, transfer, wrap } from 'comlink';
import {
  type FederationTransport,
  type InboundHandler,
  type InboundInfo,
  TransportError,
} from '../transport.ts';
import {
  bodyTransfer,
  errorFromResult,
  INBOUND_MESSAGE,
  isWireRequest,
  LEADER_MESSAGE,
  LEADER_WANTED_MESSAGE,
  type LeaderService,
  messageType,
  REACHABLE_MESSAGE,
  requestFromWire,
  requestToWire,
  responseFromWire,
  responseToWire,
} from './protocol.ts';

export interface WorkerBridgeOptions {
  /** Posts `message` to every window of this origin (the worker's `clients.matchAll`). */
  broadcast(message: unknown): Promise<void>;
  /** This homeserver, for requests from peers: `(request, info) => hs.fetch(request, info)`. */
  inbound: InboundHandler;
  /** How long a send waits for a leader to answer `LEADER_WANTED`; default 3 s. */
  leaderWaitMs?: number;
  /**
   * Longest wait for one answer through the leader; default 60 s. A leader tab closed
   * mid-request never answers: its port gives no sign of it.
   */
  requestTimeoutMs?: number;
  /** Longest wait for the homeserver's answer to a peer; default 60 s. */
  inboundTimeoutMs?: number;
}

/** The worker's transport: sends through the leader, and tells the sender when it is back. */
export interface BridgeTransport extends FederationTransport {
  onReachable(listener: (destination?: string) => void): () => void;
  /** Store-and-forward through the leader's transport (its relays). */
  hold(destination: string, requests: readonly Request[]): Promise<boolean>;
}

export interface WorkerBridge {
  readonly transport: BridgeTransport;
  /**
   * A message posted to the worker: handled when it is the bridge's, with the work to keep
   * the worker alive for (`event.waitUntil`); `undefined` when it is not the bridge's.
   */
  receive(data: unknown, ports: readonly MessagePort[]): Promise<void> | undefined;
  /** Whether a leader's port is held (tests, status). */
  readonly hasLeader: boolean;
}

interface Leader {
  remote: Remote<LeaderService>;
  port: MessagePort;
  /** Rejected when another leader replaces this one: calls still waiting on it end. */
  replaced: Promise<never>;
  replace(): void;
}

export function createWorkerBridge(options: WorkerBridgeOptions): WorkerBridge {
  const leaderWaitMs = options.leaderWaitMs ?? 3_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const inboundTimeoutMs = options.inboundTimeoutMs ?? 60_000;
  const listeners = new Set<(destination?: string) => void>();
  let leader: Leader | null = null;
  /** Sends waiting for a leader to answer `LEADER_WANTED`. */
  const waiting = new Set<(leader: Leader) => void>();
  let asking: Promise<Leader | null> | null = null;

  const notify = (destination?: string) => {
    for (const listener of listeners) listener(destination);
  };

  function adopt(port: MessagePort): void {
    leader?.replace();
    let replace!: () => void;
    const replaced = new Promise<never>((_, reject) => {
      replace = () => reject(new TransportError('UNREACHABLE', 'the leader tab was replaced'));
    });
    replaced.catch(() => undefined);
    const next: Leader = {
      remote: wrap<LeaderService>(port),
      port,
      replaced,
      replace() {
        replace();
        next.remote[releaseProxy]();
        port.close();
      },
    };
    leader = next;
    for (const resolve of waiting) resolve(next);
    waiting.clear();
  }

  /** The leader's port, asking the windows for it when there is none. */
  function findLeader(): Promise<Leader | null> {
    if (leader) return Promise.resolve(leader);
    if (asking) return asking;
    const found = new Promise<Leader | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(take);
        resolve(null);
      }, leaderWaitMs);
      const take = (l: Leader) => {
        clearTimeout(timer);
        resolve(l);
      };
      waiting.add(take);
    });
    options.broadcast({ type: LEADER_WANTED_MESSAGE }).catch(() => undefined);
    asking = found.finally(() => {
      asking = null;
    });
    return asking;
  }

  const transport: BridgeTransport = {
    async send(destination, request) {
      const current = await findLeader();
      if (!current) {
        throw new TransportError('UNREACHABLE', `no tab is open to carry federation to ${destination}`);
      }
      const wire = await requestToWire(request);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TransportError('TIMEOUT', `no answer from ${destination} through the leader tab`)),
          requestTimeoutMs,
        );
      });
      try {
        const result = await Promise.race([
          current.remote.send(destination, transfer(wire, bodyTransfer(wire))),
          current.replaced,
          timeout,
        ]);
        if (!result.ok) throw errorFromResult(result);
        return responseFromWire(result.response);
      } catch (error) {
        // A leader that stops answering is let go: the next send asks for a live one.
        if (error instanceof TransportError && error.code === 'TIMEOUT' && leader === current) {
          current.replace();
          leader = null;
        }
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    async hold(destination, requests) {
      // Without a tab there is no relay to hand them to: the outbox keeps them.
      const current = await findLeader();
      if (!current) return false;
      const wires = await Promise.all(requests.map(requestToWire));
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const taken = await Promise.race([
          current.remote.hold(destination, transfer(wires, wires.flatMap(bodyTransfer))),
          current.replaced,
          new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), requestTimeoutMs);
          }),
        ]);
        return taken === true;
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    onReachable(listener) {
      listeners.add(listener);
      // A stopped worker is started by the leader's `LEADER` message, before its homeserver
      // (and sender) is up to listen: what subscribes later still hears that a leader is here.
      if (leader) queueMicrotask(() => listener());
      return () => listeners.delete(listener);
    },
  };

  async function answerInbound(wire: unknown, info: unknown, port: MessagePort): Promise<void> {
    try {
      if (!isWireRequest(wire)) {
        port.postMessage({ error: 'malformed request' });
        return;
      }
      const signal = AbortSignal.timeout(inboundTimeoutMs);
      const clientAddress =
        typeof info === 'object' && info !== null && typeof (info as InboundInfo).clientAddress === 'string'
          ? (info as InboundInfo).clientAddress
          : undefined;
      const response = await options.inbound(
        requestFromWire(wire, signal),
        clientAddress ? { clientAddress } : {},
      );
      const out = await responseToWire(response);
      port.postMessage({ response: out }, bodyTransfer(out));
    } catch (error) {
      port.postMessage({ error: String(error) });
    } finally {
      port.close();
    }
  }

  return {
    transport,
    get hasLeader() {
      return leader !== null;
    },
    receive(data, ports) {
      const type = messageType(data);
      const port = ports[0];
      if (type === LEADER_MESSAGE && port) {
        adopt(port);
        // A new leader may reach what the last one (or none) could not.
        notify();
        return Promise.resolve();
      }
      if (type === INBOUND_MESSAGE && port) {
        const { request, info } = data as { request?: unknown; info?: unknown };
        return answerInbound(request, info, port);
      }
      if (type === REACHABLE_MESSAGE) {
        const { destination } = data as { destination?: unknown };
        notify(typeof destination === 'string' ? destination : undefined);
        return Promise.resolve();
      }
      return undefined;
    },
  };
}
