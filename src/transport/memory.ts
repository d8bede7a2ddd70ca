/**
 * An in-memory federation network: several homeservers in one process, each registered by
 * server name, reaching each other through `FederationTransport` exactly as they would over
 * HTTPS — a request is copied (method, target, headers, body bytes) into a fresh `Request`
 * addressed to the destination, so no stream or object is shared between servers. Used by
 * tests and examples; `block` simulates a server that cannot be reached.
 */
import { type FederationTransport, type InboundHandler, requestTarget, TransportError } from './transport.ts';

export interface MemoryNetwork {
  /** Makes `serverName` reachable; returns a function that takes it off the network. */
  serve(serverName: string, handler: InboundHandler): () => void;
  /** The transport `serverName` sends with (its requests arrive from `memory:<serverName>`). */
  transport(serverName: string): FederationTransport;
  /** From now on, requests from `from` to `to` fail as unreachable (both directions with `both`). */
  block(from: string, to: string, both?: boolean): void;
  unblock(from: string, to: string, both?: boolean): void;
  /** Every request sent so far, in order (for tests that count fetches). */
  readonly log: ReadonlyArray<{ from: string; to: string; method: string; target: string }>;
}

/** Statuses whose responses carry no body (the fetch standard's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

export function createMemoryNetwork(): MemoryNetwork {
  const servers = new Map<string, InboundHandler>();
  const blocked = new Set<string>();
  const log: Array<{ from: string; to: string; method: string; target: string }> = [];
  const link = (from: string, to: string) => JSON.stringify([from, to]);

  return {
    serve(serverName, handler) {
      if (servers.has(serverName)) throw new Error(`${serverName} is already on this network`);
      servers.set(serverName, handler);
      return () => {
        if (servers.get(serverName) === handler) servers.delete(serverName);
      };
    },

    transport(from) {
      return {
        async send(destination, request) {
          const target = requestTarget(request);
          log.push({ from, to: destination, method: request.method, target });
          const handler = servers.get(destination);
          if (!handler || blocked.has(link(from, destination))) {
            throw new TransportError('UNREACHABLE', `${destination} is not reachable from ${from}`);
          }
          const headers = new Headers(request.headers);
          headers.set('Host', destination);
          const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
          const copy = new Request(`https://${destination}${target}`, {
            method: request.method,
            headers,
            body: hasBody ? await request.arrayBuffer() : undefined,
          });
          const response = await handler(copy, { clientAddress: `memory:${from}` });
          // Buffered, as a network would deliver it: the receiver's objects stay its own.
          const body = NULL_BODY_STATUS.has(response.status) ? null : await response.arrayBuffer();
          return new Response(body, {
            status: response.status,
            statusText: response.statusText,
            headers: response.headers,
          });
        },
      };
    },

    block(from, to, both = false) {
      blocked.add(link(from, to));
      if (both) blocked.add(link(to, from));
    },

    unblock(from, to, both = false) {
      blocked.delete(link(from, to));
      if (both) blocked.delete(link(to, from));
    },

    log,
  };
}
