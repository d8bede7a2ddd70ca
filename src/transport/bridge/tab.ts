/**
 * A tab's part in P2P federation, for `hearth/page`: every tab of the origin queues for the
 * lead (election.ts); the leader starts the transport (the libp2p node, which needs a page's
 * WebRTC), connects the bridge to the homeserver's Service Worker (leader.ts), tells the
 * worker when a peer is reachable, and publishes the peers' states to every tab (status.ts).
 * When the leader's tab closes, the browser hands the lock to the next tab, which does the
 * same; the worker's next send finds it.
 */
import type { FederationTransport, InboundHandler } from '../transport.ts';
import { electLeader } from './election.ts';
import { createLeaderBridge, type LeaderBridge } from './leader.ts';
import { createStatusChannel, type SharedStatus } from './status.ts';

/** The transport a leader runs, with what the tabs show of it. */
export interface LeaderTransport {
  readonly transport: FederationTransport;
  status(): SharedStatus;
  /**
   * Calls `listener` whenever the status may have changed, with a server name when that peer
   * has just become reachable. Returns a function removing the listener.
   */
  onChange(listener: (reachable?: string) => void): () => void;
  stop(): Promise<void>;
}

export interface TabOptions {
  locks: LockManager;
  /** Names the lock and the status channel: one per homeserver (its scope). */
  name: string;
  /** Posts to the homeserver's worker (a post wakes a stopped worker). */
  post(message: unknown, transfer: Transferable[]): void;
  /** Starts the transport in this tab, serving peers' requests with `deliver`. */
  startTransport(deliver: InboundHandler): Promise<LeaderTransport>;
  onError?(error: unknown): void;
  /** After a failed start, how long before this tab queues for the lead again; default 5 s. */
  retryMs?: number;
}

export interface TabHandle {
  /** Whether this tab leads (runs the node). */
  readonly leading: boolean;
  /** Resolves when this tab starts leading. */
  readonly elected: Promise<void>;
  /** The leader's latest status, as every tab hears it. */
  status(): SharedStatus | null;
  onStatus(listener: (status: SharedStatus | null) => void): () => void;
  /** A message from the worker (`navigator.serviceWorker`'s message event): true when handled. */
  receive(data: unknown): boolean;
  /** Leaves: stops leading (the node with it) or the queue. */
  close(): Promise<void>;
}

export function joinP2p(options: TabOptions): TabHandle {
  const statuses = createStatusChannel(`hearth:p2p-status:${options.name}`);
  let bridge: LeaderBridge | null = null;

  const leadership = electLeader({
    locks: options.locks,
    name: `hearth:p2p-leader:${options.name}`,
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    async lead() {
      let running: LeaderTransport | undefined;
      const leader = createLeaderBridge({
        post: options.post,
        // The transport is started with the bridge's inbound handler, so it is read lazily.
        transport: {
          send: (destination, request) => (running as LeaderTransport).transport.send(destination, request),
          hold: async (destination, requests) =>
            (await running?.transport.hold?.(destination, requests)) ?? false,
        },
      });
      try {
        running = await options.startTransport(leader.deliver);
      } catch (error) {
        leader.close();
        throw error;
      }
      const started = running;
      const unlisten = started.onChange((reachable) => {
        if (reachable) leader.reachable(reachable);
        statuses.publish(started.status());
      });
      bridge = leader;
      leader.connect();
      statuses.publish(started.status());
      return async () => {
        unlisten();
        bridge = null;
        leader.close();
        statuses.publish(null);
        await started.stop();
      };
    },
  });

  return {
    get leading() {
      return leadership.leading;
    },
    elected: leadership.elected,
    status: () => statuses.current(),
    onStatus: (listener) => statuses.subscribe(listener),
    receive: (data) => bridge?.receive(data) ?? false,
    async close() {
      await leadership.close();
      statuses.close();
    },
  };
}
