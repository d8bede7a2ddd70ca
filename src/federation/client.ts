/**
 * Outgoing federation requests: build the `Request`, sign it with X-Matrix, send it through
 * the `FederationTransport`, read the JSON answer with a size limit. Everything that talks to
 * another server (key fetches, and next the outbox, joins, backfill) goes through here.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { SigningKey } from '../core/crypto.ts';
import { JsonRules, parseJson } from '../core/json.ts';
import { xMatrixAuthorization } from '../core/x-matrix.ts';
import type { FederationTransport } from '../transport/transport.ts';

/**
 * Largest JSON answer read by default. A `/send` answer, a key response or a state response
 * is far smaller; `/state` of a large room is not, so those callers pass their own limit.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** An answer that was not a 2xx JSON object: carries the status and Matrix error, if any. */
export class FederationRequestError extends Error {
  override readonly name = 'FederationRequestError';
  readonly status: number;
  readonly errcode: string | undefined;

  constructor(status: number, errcode: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.errcode = errcode;
  }
}

export interface FederationRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The request target: path and query, `/_matrix/federation/v1/version`. */
  target: string;
  /** The JSON body (POST and PUT must have one; `{}` when there is nothing to say). */
  body?: JsonObject;
  /** Sign with X-Matrix. Default true; the key endpoints are the unauthenticated exception. */
  sign?: boolean;
  maxResponseBytes?: number;
}

export interface FederationClientOptions {
  /** This server's name: the `origin` of every request. */
  serverName: string;
  signingKey: SigningKey;
  transport: FederationTransport;
}

export interface FederationClient {
  /** Sends a request to `destination` and returns its JSON object answer; throws otherwise. */
  request(destination: string, request: FederationRequest): Promise<JsonObject>;
  /**
   * Signs the requests and hands them to the transport's store-and-forward (`hold`) for a
   * destination that cannot be reached; false when the transport has none or nobody took them.
   */
  hold?(destination: string, requests: readonly FederationRequest[]): Promise<boolean>;
}

/**
 * The `Request` a server sends: addressed to `https://<destination><target>` (transports use
 * only the target), with a JSON body and, unless `sign` is false, an X-Matrix signature.
 */
export async function buildFederationRequest(
  origin: string,
  signingKey: SigningKey,
  destination: string,
  request: FederationRequest,
): Promise<Request> {
  if (!request.target.startsWith('/')) throw new Error(`a request target starts with "/": ${request.target}`);
  const headers = new Headers({ Accept: 'application/json' });
  const url = new URL(`https://${destination}${request.target}`);
  // The signed `uri` must be the target exactly as sent: take it back from the URL, which
  // percent-encodes whatever a caller left raw, as the Request will.
  const uri = `${url.pathname}${url.search}`;
  if (request.sign !== false) {
    headers.set(
      'Authorization',
      await xMatrixAuthorization({
        method: request.method,
        uri,
        origin,
        destination,
        content: request.body,
        key: signingKey,
      }),
    );
  }
  let body: string | undefined;
  if (request.body !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(request.body);
  }
  return new Request(url, { method: request.method, headers, body });
}

/** Reads at most `limit` bytes of a response body; throws past that. */
export async function readLimited(response: Response, limit: number): Promise<Uint8Array> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new FederationRequestError(response.status, undefined, `answer is larger than ${limit} bytes`);
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new FederationRequestError(response.status, undefined, `answer is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const RESPONSE_JSON = new JsonRules({ fromUtf8: true });

/** The body as a JSON object, or undefined when it is not one. */
function parseObject(bytes: Uint8Array): JsonObject | undefined {
  try {
    const value: unknown = parseJson(utf8.decode(bytes), RESPONSE_JSON);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as JsonObject)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A signed request whose answer is not JSON (federation media): the transport's `Response`
 * as it came, for the caller to read within its own limits.
 */
export type FederationFetch = (destination: string, request: FederationRequest) => Promise<Response>;

export function createFederationFetch(options: FederationClientOptions): FederationFetch {
  return async (destination, request) =>
    options.transport.send(
      destination,
      await buildFederationRequest(options.serverName, options.signingKey, destination, request),
    );
}

export function createFederationClient(options: FederationClientOptions): FederationClient {
  const send = createFederationFetch(options);
  return {
    async hold(destination, requests) {
      const { transport } = options;
      if (!transport.hold) return false;
      const built = await Promise.all(
        requests.map((r) => buildFederationRequest(options.serverName, options.signingKey, destination, r)),
      );
      return transport.hold(destination, built);
    },
    async request(destination, request) {
      const response = await send(destination, request);
      const bytes = await readLimited(response, request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
      const json = parseObject(bytes);
      if (response.status < 200 || response.status >= 300) {
        const errcode = typeof json?.errcode === 'string' ? json.errcode : undefined;
        const error = typeof json?.error === 'string' ? json.error : response.statusText;
        throw new FederationRequestError(
          response.status,
          errcode,
          `${request.method} ${request.target} on ${destination}: ${response.status} ${errcode ?? ''} ${error}`.trim(),
        );
      }
      if (!json) {
        throw new FederationRequestError(
          response.status,
          undefined,
          `${request.method} ${request.target} on ${destination}: the answer is not a JSON object`,
        );
      }
      return json;
    },
  };
}
