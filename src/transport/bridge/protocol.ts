/**
 * The SW↔page bridge's wire (DESIGN.md "Browser facts"): what the homeserver's Service Worker
 * and the leader tab, which runs the libp2p node, post to each other. Kept apart from both
 * sides so the worker bundle carries none of the page's code and the page none of the worker's.
 *
 * - `LEADER` (page → worker, with a port): this tab leads; the port carries comlink calls of
 *   `LeaderService`, by which the worker sends federation requests through the tab.
 * - `LEADER_WANTED` (worker → every window): a worker that has no port to a leader (it was
 *   stopped, and its memory with it) asks; the leader answers with a fresh `LEADER`.
 * - `INBOUND` (page → worker, with a port): one request from a peer, answered on the port.
 *   Each has its own channel: a channel does not survive a stopped worker, a posted message
 *   wakes it.
 * - `REACHABLE` (page → worker): a peer (or, without one, the transport itself) can be
 *   reached again: the worker's sender resets its backoff and sends what waits.
 *
 * Requests and responses cross as plain objects with their bodies as transferred
 * ArrayBuffers (a `Request` is not cloneable); transport errors as tagged results, since an
 * Error posted through comlink loses every property but its name and message.
 */
import { TransportError, type TransportErrorCode } from '../transport.ts';

export const LEADER_MESSAGE = 'hearth:federation-leader';
export const LEADER_WANTED_MESSAGE = 'hearth:federation-leader-wanted';
export const INBOUND_MESSAGE = 'hearth:federation-inbound';
export const REACHABLE_MESSAGE = 'hearth:federation-reachable';

export interface WireRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

/** What a send through the leader ends in: an HTTP answer, or the transport's error. */
export type SendResult =
  | { ok: true; response: WireResponse }
  | { ok: false; code: TransportErrorCode; message: string };

/** The leader tab's service, exposed with comlink on the port of a `LEADER` message. */
export interface LeaderService {
  send(destination: string, request: WireRequest): Promise<SendResult>;
  /** Store-and-forward (`FederationTransport.hold`): false when the transport has none or nobody took them. */
  hold(destination: string, requests: WireRequest[]): Promise<boolean>;
}

/** Statuses whose responses carry no body (the fetch standard's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

export async function requestToWire(request: Request): Promise<WireRequest> {
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  return {
    method: request.method,
    url: request.url,
    headers: [...request.headers],
    body: hasBody ? await request.arrayBuffer() : null,
  };
}

export function requestFromWire(wire: WireRequest, signal?: AbortSignal): Request {
  return new Request(wire.url, {
    method: wire.method,
    headers: wire.headers,
    body: wire.body,
    ...(signal ? { signal } : {}),
  });
}

export async function responseToWire(response: Response): Promise<WireResponse> {
  return {
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers],
    body: NULL_BODY_STATUS.has(response.status) ? null : await response.arrayBuffer(),
  };
}

export function responseFromWire(wire: WireResponse): Response {
  return new Response(NULL_BODY_STATUS.has(wire.status) ? null : wire.body, {
    status: wire.status,
    statusText: wire.statusText,
    headers: wire.headers,
  });
}

/** The buffers to transfer (not copy) with a wire request or response. */
export function bodyTransfer(wire: { body: ArrayBuffer | null }): Transferable[] {
  return wire.body ? [wire.body] : [];
}

export function errorResult(error: unknown): SendResult {
  if (error instanceof Error && error.name === 'TransportError') {
    const { code, message } = error as TransportError;
    return { ok: false, code, message };
  }
  return { ok: false, code: 'UNREACHABLE', message: String(error) };
}

export function errorFromResult(result: { code: TransportErrorCode; message: string }): TransportError {
  return new TransportError(result.code, result.message);
}

function isHeaderList(value: unknown): value is [string, string][] {
  return (
    Array.isArray(value) &&
    value.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === 'string' &&
        typeof pair[1] === 'string',
    )
  );
}

/** A posted value that is a well-formed `WireRequest` (pages are same-origin, but a bug is not). */
export function isWireRequest(value: unknown): value is WireRequest {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.method === 'string' &&
    typeof r.url === 'string' &&
    isHeaderList(r.headers) &&
    (r.body === null || r.body instanceof ArrayBuffer)
  );
}

export function isWireResponse(value: unknown): value is WireResponse {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.status === 'number' &&
    typeof r.statusText === 'string' &&
    isHeaderList(r.headers) &&
    (r.body === null || r.body instanceof ArrayBuffer)
  );
}

/** The `type` of a posted message, if it has one. */
export function messageType(data: unknown): unknown {
  return typeof data === 'object' && data !== null ? (data as { type?: unknown }).type : undefined;
}
