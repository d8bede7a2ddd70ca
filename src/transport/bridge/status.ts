/**
 * What the leader tab's node knows, shared with every tab of the origin: this homeserver's
 * P2P name, its relays and its peers with their state (connecting, direct WebRTC, relayed).
 * Only the leader runs the node; it publishes on a BroadcastChannel whenever something
 * changes, and answers a tab that opens and asks. Each tab keeps the last status it heard.
 */

export type PeerState = 'connecting' | 'direct' | 'relayed' | 'disconnected';

export interface SharedPeer {
  peerId: string;
  /** The peer's P2P server name (hex of its key). */
  serverName: string | undefined;
  state: PeerState;
  /** `webrtc`, `tcp`, `websockets` when direct; `circuit` when relayed. */
  via: string | undefined;
  /** One of this node's relays (not a homeserver). */
  relay: boolean;
}

export interface SharedStatus {
  /** This homeserver's P2P server name. */
  serverName: string;
  /** This node's addresses (circuit addresses through its relays once reserved). */
  addresses: string[];
  peers: SharedPeer[];
  /** Set when the leader's node failed to start. */
  error?: string;
}

export interface StatusChannel {
  /** The leader's latest status, `null` until one is heard (or when no tab leads). */
  current(): SharedStatus | null;
  /** Called with each status heard, this tab's own publications included. */
  subscribe(listener: (status: SharedStatus | null) => void): () => void;
  /** The leader publishes (and answers the tabs that ask, with the latest). */
  publish(status: SharedStatus | null): void;
  close(): void;
}

type Message = { type: 'status'; status: SharedStatus | null } | { type: 'ask' };

export function createStatusChannel(name: string): StatusChannel {
  const channel = new BroadcastChannel(name);
  const listeners = new Set<(status: SharedStatus | null) => void>();
  let latest: SharedStatus | null = null;
  /** Whether this tab publishes (it answers the others' questions). */
  let publishing = false;

  const set = (status: SharedStatus | null) => {
    latest = status;
    for (const listener of listeners) listener(status);
  };
  channel.onmessage = (event: MessageEvent<Message>) => {
    const message = event.data;
    if (message?.type === 'status') set(message.status ?? null);
    else if (message?.type === 'ask' && publishing) channel.postMessage({ type: 'status', status: latest });
  };
  channel.postMessage({ type: 'ask' } satisfies Message);

  return {
    current: () => latest,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    publish(status) {
      publishing = status !== null;
      set(status);
      channel.postMessage({ type: 'status', status } satisfies Message);
    },
    close() {
      listeners.clear();
      channel.close();
    },
  };
}
