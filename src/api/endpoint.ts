/**
 * Endpoints as data (STYLE.md §1): each Client-Server operation is declared once — method, path
 * template, every version prefix the spec has given it, authentication, rate-limit class,
 * request validation — with a small typed handler. The router (`http.ts`) does all parsing,
 * authentication and limits before the handler runs, so a handler only sees checked input.
 *
 * ```ts
 * export const getAlias = endpoint({
 *   // GET /_matrix/client/v3/directory/room/{roomAlias}
 *   method: 'GET',
 *   path: '/directory/room/{roomAlias}',
 *   versions: ['r0', 'v3'],
 *   auth: 'none',
 *   handler: async ({ params }) => ({ room_id: …, servers: […] }),
 * });
 * ```
 */

import type { Auth, AuthMode } from './auth.ts';
import type { QueryValidator, Validator } from './validate.ts';

export type { Auth, AuthMode } from './auth.ts';
export { q, v } from './validate.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD';

/**
 * A version segment of the path. Client-Server endpoints have lived under `r0` (until v1.0),
 * `v3` (from v1.1) and `v1` (endpoints added after v1.1); some under `unstable` first.
 */
export type ApiVersion = 'r0' | 'v1' | 'v3' | 'unstable' | (string & {});

/** The names in a path template: `/rooms/{roomId}/state/{eventType}/{stateKey?}`. */
type ParamNames<T extends string> = T extends `${string}{${infer P}}${infer Rest}`
  ? (P extends `${infer N}?` ? N : P) | ParamNames<Rest>
  : never;

/** Percent-decoded path parameters, by name. */
export type PathParams<T extends string> = { [K in ParamNames<T>]: string };

/** What `auth` resolves to in the handler for each mode. */
export type AuthFor<A extends AuthMode> = A extends 'required'
  ? Auth
  : A extends 'optional'
    ? Auth | null
    : null;

export interface HandlerRequest<Path extends string, Q, B, A extends AuthMode> {
  params: PathParams<Path>;
  query: Q;
  /** The validated JSON body (`undefined` when the endpoint declares no `body`). */
  body: B;
  /** The raw body for `rawBody: true` endpoints, already size-checked. */
  bytes: Uint8Array | undefined;
  /** The raw body for `rawBody: 'blob'` endpoints (media uploads), already size-checked. */
  blob: Blob | undefined;
  /** The raw body for `rawBody: 'stream'` endpoints, failing with M_TOO_LARGE past the limit. */
  stream: ReadableStream<Uint8Array> | undefined;
  auth: AuthFor<A>;
  /** The original request (headers such as Content-Type for uploads). Its body is consumed. */
  request: Request;
  url: URL;
  /** The client's address as the host reported it, if it did. */
  clientAddress: string | undefined;
}

/** A JSON object (sent as `200 application/json`) or a ready Response (media, other statuses). */
export type HandlerResult = object;

export interface EndpointDef<Path extends string, Q, B, A extends AuthMode> {
  method: Method;
  /**
   * The path template. With `versions`, it follows `{base}/{version}`; without, it is the whole
   * path (`/_matrix/client/versions`, `/.well-known/matrix/client`). Each `{name}` is one whole
   * segment; the last may be `{name?}`: it may then be empty or absent, and `/state/{type}/`
   * and `/state/{type}` both give `''` (room_state.yaml: "the trailing slash … is optional").
   * A template ending in `/` (`/pushrules/`) answers both with and without the slash.
   */
  path: Path;
  /** Every version prefix the spec has given this endpoint, e.g. `['r0', 'v3']`. */
  versions?: readonly ApiVersion[];
  /** Default `/_matrix/client`; `/_matrix/media` for the old media API. */
  base?: string;
  auth: A;
  /** Whether guest accounts may call it (client-server-api "Guest access"). Default false. */
  guest?: boolean;
  /** A rate-limit class configured on the router (`login`, `register`, `message` …). */
  rateLimit?: string;
  /** Extra checks on path parameters (they are already decoded, non-empty strings). */
  params?: { [K in ParamNames<Path>]?: Validator<string> };
  query?: QueryValidator<Q>;
  /** The JSON body: the request must carry a JSON object, checked by this validator. */
  body?: Validator<B>;
  /** Treat an empty body as `{}` (some clients send none where the spec wants `{}`). */
  allowEmptyBody?: boolean;
  /**
   * Hand the body over as bytes instead of JSON; `'blob'` as a Blob, streamed into it by the
   * runtime (a browser may keep a large one on disk rather than in the JS heap; IndexedDB then
   * stores it without a copy), for media uploads; `'stream'` as a size-limited stream the
   * handler reads itself (media written to files as they arrive).
   */
  rawBody?: boolean | 'blob' | 'stream';
  /** Overrides the router's limit for this endpoint's body. */
  maxBodyBytes?: number;
  /** The spec anchor, e.g. `client-server-api/#get_matrixclientv3directoryroomroomalias`. */
  spec?: string;
  handler: (req: HandlerRequest<Path, Q, B, A>) => Promise<HandlerResult>;
}

/** Any request, as the router passes it; handlers see the precise `HandlerRequest`. */
export interface AnyHandlerRequest {
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  bytes: Uint8Array | undefined;
  blob: Blob | undefined;
  stream: ReadableStream<Uint8Array> | undefined;
  auth: Auth | null;
  request: Request;
  url: URL;
  clientAddress: string | undefined;
}

/** An endpoint with its types erased, as the router's table holds it. */
export interface Endpoint {
  readonly method: Method;
  readonly path: string;
  readonly versions?: readonly ApiVersion[];
  readonly base?: string;
  readonly auth: AuthMode;
  readonly guest?: boolean;
  readonly rateLimit?: string;
  readonly params?: Readonly<Record<string, Validator<string> | undefined>>;
  readonly query?: QueryValidator<unknown>;
  readonly body?: Validator<unknown>;
  readonly allowEmptyBody?: boolean;
  readonly rawBody?: boolean | 'blob' | 'stream';
  readonly maxBodyBytes?: number;
  readonly spec?: string;
  handler(req: AnyHandlerRequest): Promise<HandlerResult>;
}

/** Declare an endpoint; the types of `params`, `query`, `body` and `auth` follow from the data. */
export function endpoint<
  const Path extends string,
  Q = undefined,
  B = undefined,
  A extends AuthMode = AuthMode,
>(def: EndpointDef<Path, Q, B, A>): Endpoint {
  return def as unknown as Endpoint;
}

export const DEFAULT_BASE = '/_matrix/client';

/** Every full path template an endpoint answers on, one per version prefix. */
export function fullPaths(e: Pick<Endpoint, 'path' | 'versions' | 'base'>): string[] {
  if (!e.versions || e.versions.length === 0) return [e.path];
  const base = e.base ?? DEFAULT_BASE;
  return e.versions.map((version) => `${base}/${version}${e.path}`);
}
