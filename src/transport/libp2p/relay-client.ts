/**
 * A peer's side of its relays' `/hearth/relay/1` (relay.ts): announcing itself in their
 * directories, looking other servers up, and store-and-forward — handing signed requests for
 * an offline server to a relay (`hold`), and collecting what relays hold for this server
 * (`collect`) each time it connects to one. Collected requests go to the homeserver exactly as
 * if their origin had sent them: the homeserver checks each X-Matrix signature (with the key
 * read from the origin's P2P name) and each PDU's signatures and hashes, so an item the relay
 * altered is refused and the others are applied.
 */
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { parseJson } from '../../core/json.ts';
import type { Logger } from '../../homeserver/context.ts';
import { type InboundHandler, requestTarget } from '../transport.ts';
import { exchange } from './framing.ts';
import type { HearthNode } from './node.ts';
import { type DirectoryEntry, MAX_MAILBOX_BATCH, RELAY_PROTOCOL } from './relay.ts';

const RELAY_TIMEOUT_MS = 15_000;
const MAX_RELAY_ANSWER_BYTES = 32 * 1024 * 1024;

export interface RelayClientOptions {
  node: HearthNode;
  /** The relays' full addresses (`…/p2p/<relay>`). */
  relays: readonly string[];
  /** This server's name: the authority of delivered requests. */
  serverName: string;
  /** Where collected requests are delivered (`hs.fetch`). Without it nothing is collected. */
  handler?: InboundHandler;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

export interface RelayClient {
  /** Lists this server in every connected relay's directory. */
  announce(): Promise<void>;
  /** Every connected relay's directory, merged. */
  directory(): Promise<DirectoryEntry[]>;
  /** A server's own addresses, from the first relay that lists it. */
  lookup(serverName: string, signal?: AbortSignal): Promise<string[]>;
  /** Hands signed requests for `destination` to a relay, in order; true once one took them all. */
  hold(destination: string, requests: readonly Request[]): Promise<boolean>;
  /** Fetches and delivers what the relays hold for this server; resolves how many were delivered. */
  collect(): Promise<number>;
  close(): void;
}

/** A held request as it travels and waits: the exact text its origin signed and sent. */
interface HeldRequest {
  method: string;
  target: string;
  authorization: string;
  body: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function readObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value = parseJson(decoder.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function createRelayClient(options: RelayClientOptions): RelayClient {
  const { node, serverName, logger } = options;
  const relays = options.relays.map((addr) => {
    const id = multiaddr(addr)
      .getComponents()
      .find((c) => c.name === 'p2p')?.value;
    if (!id) throw new Error(`a relay address names its peer (/p2p/<id>): ${addr}`);
    return peerIdFromString(id);
  });
  const isRelay = (peer: PeerId) => relays.some((r) => r.equals(peer));
  const connected = () => relays.filter((r) => node.getConnections(r).some((c) => c.status === 'open'));

  async function call(relay: PeerId, method: string, target: string, body?: string) {
    const stream = await node.dialProtocol(relay, RELAY_PROTOCOL, {
      signal: AbortSignal.timeout(RELAY_TIMEOUT_MS),
    });
    const response = await exchange(
      stream,
      {
        method,
        target,
        headers: new Headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? null : new Blob([body]).stream(),
      },
      { timeoutMs: RELAY_TIMEOUT_MS, maxBodyBytes: MAX_RELAY_ANSWER_BYTES },
    );
    return { status: response.status, body: readObject(new Uint8Array(await response.arrayBuffer())) };
  }

  /** Delivers one relay's items in order, acknowledging each batch once it has been handled. */
  async function collectFrom(relay: PeerId, handler: InboundHandler): Promise<number> {
    let delivered = 0;
    for (;;) {
      const answer = await call(relay, 'GET', `/mailbox?limit=${MAX_MAILBOX_BATCH}`);
      const items = Array.isArray(answer.body?.items) ? (answer.body.items as Record<string, unknown>[]) : [];
      if (answer.status !== 200 || items.length === 0) return delivered;
      let through = 0;
      for (const entry of items) {
        if (typeof entry.id !== 'number') continue;
        through = Math.max(through, entry.id);
        const held =
          typeof entry.item === 'string' ? readObject(new TextEncoder().encode(entry.item)) : undefined;
        if (
          !held ||
          typeof held.method !== 'string' ||
          typeof held.target !== 'string' ||
          !held.target.startsWith('/_matrix/federation/') ||
          typeof held.authorization !== 'string' ||
          typeof held.body !== 'string'
        ) {
          logger?.warn('relay: a held item is malformed, dropped', { from: String(entry.from) });
          continue;
        }
        const request = new Request(`https://${serverName}${held.target}`, {
          method: held.method,
          headers: { authorization: held.authorization, 'content-type': 'application/json' },
          body: held.method === 'GET' ? undefined : held.body,
        });
        const response = await handler(request, { clientAddress: `relay-mailbox:${relay.toString()}` });
        await response.body?.cancel();
        if (response.ok) delivered++;
        else {
          logger?.warn('relay: a held request was refused', {
            from: String(entry.from),
            target: held.target,
            status: response.status,
          });
        }
      }
      await call(relay, 'DELETE', `/mailbox?through=${through}`);
    }
  }

  let collecting: Promise<number> | undefined;
  function collect(): Promise<number> {
    const handler = options.handler;
    if (!handler) return Promise.resolve(0);
    // One collection at a time, so items are applied in the order the relay holds them.
    const run = (async () => {
      await collecting?.catch(() => 0);
      let total = 0;
      for (const relay of connected()) {
        try {
          total += await collectFrom(relay, handler);
        } catch (err) {
          logger?.warn('relay: collecting held requests failed', {
            relay: relay.toString(),
            error: String(err),
          });
        }
      }
      return total;
    })();
    collecting = run;
    return run;
  }

  async function announce(): Promise<void> {
    await Promise.all(
      connected().map((relay) =>
        call(relay, 'POST', '/announce', '{}').catch((err) =>
          logger?.warn('relay: announcing failed', { relay: relay.toString(), error: String(err) }),
        ),
      ),
    );
  }

  const onConnect = (evt: CustomEvent<PeerId>) => {
    if (!isRelay(evt.detail)) return;
    void announce().then(() => collect());
  };
  node.addEventListener('peer:connect', onConnect);
  // Relays reached before this client existed (the node dials them as it starts).
  if (connected().length > 0) void announce().then(() => collect());

  return {
    announce,
    collect,
    async directory() {
      const lists = await Promise.all(
        connected().map((relay) =>
          call(relay, 'GET', '/peers').catch(() => ({ status: 0, body: undefined })),
        ),
      );
      const byName = new Map<string, DirectoryEntry>();
      for (const list of lists) {
        const peers = Array.isArray(list.body?.peers) ? (list.body.peers as DirectoryEntry[]) : [];
        for (const peer of peers) if (!byName.has(peer.server_name)) byName.set(peer.server_name, peer);
      }
      return [...byName.values()];
    },
    async lookup(name) {
      for (const relay of connected()) {
        const found = await call(relay, 'GET', `/peers/${encodeURIComponent(name)}`).catch(() => undefined);
        const addresses = found?.status === 200 ? found.body?.addresses : undefined;
        if (Array.isArray(addresses)) return addresses.filter((a): a is string => typeof a === 'string');
      }
      return [];
    },
    async hold(destination, requests) {
      const items: string[] = [];
      for (const request of requests) {
        const authorization = request.headers.get('authorization');
        if (authorization === null) return false;
        const held: HeldRequest = {
          method: request.method,
          target: requestTarget(request),
          authorization,
          body: request.method === 'GET' ? '' : await request.text(),
        };
        items.push(JSON.stringify(held));
      }
      for (const relay of connected()) {
        try {
          let all = true;
          for (const item of items) {
            const answer = await call(relay, 'PUT', `/mailbox/${encodeURIComponent(destination)}`, item);
            if (answer.status !== 200) {
              logger?.warn('relay: a relay refused to hold a request', {
                relay: relay.toString(),
                destination,
                status: answer.status,
                errcode: String(answer.body?.errcode),
              });
              all = false;
              break;
            }
          }
          if (all) return true;
        } catch (err) {
          logger?.warn('relay: holding requests failed', { relay: relay.toString(), error: String(err) });
        }
      }
      return false;
    },
    close() {
      node.removeEventListener('peer:connect', onConnect);
    },
  };
}
