/**
 * The `FederationTransport` seam (DESIGN.md "Seams"): how one homeserver's request reaches
 * another. Federation code builds an ordinary `Request` and hands it over with the
 * destination's server name; the transport decides how to get there (server discovery and
 * TLS for HTTPS, a peer stream for libp2p, a function call in memory). The same federation
 * code runs over every transport.
 *
 * Inbound, a transport delivers each request it receives to an `InboundHandler` — for a
 * homeserver, `(request, info) => hs.fetch(request, info)`.
 */

export interface FederationTransport {
  /**
   * Sends `request` to the server named `destination` (a server name, `example.org:8448`).
   * Only the request's method, path and query, headers and body are used: its URL's scheme
   * and authority are ignored, and the transport sets the `Host` header the spec asks for.
   * Rejects with a `TransportError` when the destination cannot be reached; any HTTP answer,
   * errors included, resolves.
   */
  send(destination: string, request: Request): Promise<Response>;
  /**
   * Where the transport knows when a server comes into reach: `listener` is called with its
   * name (a libp2p peer connected), or with none when the transport itself is back (a
   * browser tab took over carrying federation: any destination may be reachable). The
   * federation sender then resets the backoff and sends what waits. Returns a function that
   * stops the calls.
   */
  onReachable?(listener: (destination?: string) => void): () => void;
  /**
   * Store-and-forward, where the transport has it (libp2p relays): hands signed requests for
   * a destination that cannot be reached now to someone who delivers them, in order, when it
   * is back. Resolves true once they were all taken; false when nobody would hold them.
   */
  hold?(destination: string, requests: readonly Request[]): Promise<boolean>;
}

/** What a transport knows about an inbound request that the Request itself does not carry. */
export interface InboundInfo {
  /** The peer's network address, when there is one (the rate-limit key for anonymous calls). */
  clientAddress?: string;
}

export type InboundHandler = (request: Request, info: InboundInfo) => Promise<Response>;

export type TransportErrorCode =
  /** No such server, no address for it, or the connection was refused. */
  | 'UNREACHABLE'
  /** The TLS handshake failed: untrusted certificate, or one for another name. */
  | 'TLS'
  /** No answer in time. */
  | 'TIMEOUT'
  /** The answer was larger than the transport accepts. */
  | 'TOO_LARGE'
  /** The answer was not valid HTTP. */
  | 'PROTOCOL';

/** A request that got no HTTP answer. Carries a `name` so it survives `postMessage`. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isTransportError(err: unknown): err is TransportError {
  return (
    err instanceof Error && err.name === 'TransportError' && typeof (err as TransportError).code === 'string'
  );
}

/** The request target the spec signs and sends: path plus query, never scheme or host. */
export function requestTarget(request: Request): string {
  const url = new URL(request.url);
  return `${url.pathname}${url.search}`;
}
