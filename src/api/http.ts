/**
 * The HTTP layer: one `(Request) => Promise<Response>` over a table of endpoints.
 * Implements client-server-api/_index.md "API Standards" (JSON object bodies and responses,
 * `Content-Type: application/json`), "Web Browser Clients" (OPTIONS and CORS on every
 * response), "Common error codes" (`M_UNRECOGNIZED` with 404 / 405, `M_NOT_JSON`,
 * `M_BAD_JSON`, `M_TOO_LARGE`) and "Rate limiting".
 *
 * Order of work for a request: route → authenticate → rate limit → path/query parameters →
 * body → handler. Every failure on the way is a `MatrixError`, turned into a response by
 * `toResponse` in one place; a client cannot make this produce a 500.
 */
import { MAX_JSON_DEPTH } from '../core/canonical-json.ts';
import { isJsonDecodeError, JsonRules, parseJson } from '../core/json.ts';
import { type Clock, type Logger, systemClock } from '../homeserver/context.ts';
import { badJson, invalidParam, MatrixError, notJson, tooLarge, unrecognized } from '../homeserver/errors.ts';
import { type Auth, authenticate, type ResolveToken } from './auth.ts';
import { type AnyHandlerRequest, type Endpoint, fullPaths } from './endpoint.ts';
import { createRateLimiter, type RateLimitConfig } from './rate-limit.ts';
import { jsonResponse, toResponse } from './response.ts';
import { describeJsonProblem, isPlainObject } from './validate.ts';

/** What a host knows about the connection that the Request does not carry. */
export interface ConnectionInfo {
  /** The peer's IP address: the rate-limit key for unauthenticated requests. */
  clientAddress?: string;
  /**
   * The method as the client sent it, where a fetch `Request` cannot carry it: the Fetch
   * standard forbids constructing one for CONNECT, TRACE and TRACK, and a host's HTTP parser
   * may refuse unknown methods. The host then passes a bodiless stand-in request and the
   * real method here, so the router still answers 405 (with `Allow`) or 404 as for any method.
   */
  method?: string;
}

/**
 * Longest request URL answered; longer is `414 M_TOO_LARGE`. Node's parser stops at 16 KiB of
 * request line and headers (the host answers that itself); other hosts have larger limits.
 */
export const MAX_URL_LENGTH = 8 * 1024;

export type FetchHandler = (request: Request, info?: ConnectionInfo) => Promise<Response>;

export interface RouterOptions {
  endpoints: readonly Endpoint[];
  resolveToken: ResolveToken;
  /** Rate-limit classes named by endpoints' `rateLimit`. */
  rateLimits?: Readonly<Record<string, RateLimitConfig>>;
  /** Where errors the client must not see are written. */
  logger?: Pick<Logger, 'error'>;
  clock?: Clock;
  /** `Access-Control-Allow-Origin`; the spec recommends `*`. */
  corsOrigin?: string;
  /** Largest JSON body accepted. Default 64 KiB — the spec's cap on a whole event (PDU size). */
  maxJsonBodyBytes?: number;
  /** Largest raw body (`rawBody` endpoints) unless the endpoint says otherwise. Default 50 MiB. */
  maxRawBodyBytes?: number;
  /** Deepest JSON nesting accepted in a body. Default `DEFAULT_MAX_JSON_DEPTH`. */
  maxJsonDepth?: number;
  /** Accept the deprecated `?access_token=` (matrix-nio still sends it). Default true. */
  allowQueryToken?: boolean;
  /** A check on who calls, before rate limits and the body (suspended accounts, admin API logging). */
  checkAuth?: (auth: Auth | null, endpoint: Endpoint, method: string) => void;
}

export const DEFAULT_MAX_JSON_BODY = 64 * 1024;
export const DEFAULT_MAX_RAW_BODY = 50 * 1024 * 1024;
/**
 * Half the core's canonical-JSON bound: a body is later wrapped in envelopes (event content,
 * `unsigned`, a federation transaction), and whatever we accept here the core must still be
 * able to encode and sign.
 */
export const DEFAULT_MAX_JSON_DEPTH = MAX_JSON_DEPTH / 2;

/** The spec's recommended CORS values ("Web Browser Clients"). */
const CORS_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'];
const CORS_ALLOW_HEADERS = 'X-Requested-With, Content-Type, Authorization';

/** Paths the server answers preflights on even when no endpoint matches. */
const PREFLIGHT_PREFIXES = ['/_matrix/', '/.well-known/matrix/'];

// --- route table ----------------------------------------------------------------------------

interface Route {
  endpoint: Endpoint;
  /** Parameter names in path order. */
  paramNames: string[];
  /** Whether the last parameter is `{name?}` (may be empty). */
  optionalTail: boolean;
}

interface Node {
  literals: Map<string, Node>;
  param: Node | undefined;
  /** Routes ending here, by method. */
  routes: Map<string, Route>;
  /** Routes ending here only when the final `{name?}` is absent, by method. */
  tailAbsent: Map<string, Route>;
  /** Some route ending here has an optional final parameter (so it may be empty). */
  optionalTail: boolean;
}

const newNode = (): Node => ({
  literals: new Map(),
  param: undefined,
  routes: new Map(),
  tailAbsent: new Map(),
  optionalTail: false,
});

type Segment = { kind: 'literal'; text: string } | { kind: 'param'; name: string; optional: boolean };

function parseTemplate(template: string): Segment[] {
  if (!template.startsWith('/')) throw new Error(`path template must start with "/": ${template}`);
  const parts = template.slice(1).split('/');
  return parts.map((part, i): Segment => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)(\?)?\}$/.exec(part);
    if (m?.[1] !== undefined) {
      const optional = m[2] === '?';
      if (optional && i !== parts.length - 1)
        throw new Error(`only the last parameter may be optional: ${template}`);
      return { kind: 'param', name: m[1], optional };
    }
    if (part.includes('{') || part.includes('}'))
      throw new Error(`a parameter must be a whole segment: ${template}`);
    if (part === '') throw new Error(`empty segment in path template: ${template}`);
    return { kind: 'literal', text: part };
  });
}

function addRoute(root: Node, template: string, endpoint: Endpoint): void {
  // A template ending in "/" (the spec's `/pushrules/`) answers with and without the slash:
  // matrix-js-sdk sends it, other clients leave it off.
  const slashed = template.length > 1 && template.endsWith('/');
  const segments = parseTemplate(slashed ? template.slice(0, -1) : template);
  const paramNames: string[] = [];
  let node = root;
  let parentOfLast = root;
  for (const seg of segments) {
    parentOfLast = node;
    if (seg.kind === 'literal') {
      let next = node.literals.get(seg.text);
      if (!next) {
        next = newNode();
        node.literals.set(seg.text, next);
      }
      node = next;
    } else {
      if (paramNames.includes(seg.name)) throw new Error(`duplicate parameter {${seg.name}} in ${template}`);
      paramNames.push(seg.name);
      node.param ??= newNode();
      node = node.param;
    }
  }
  const last = segments[segments.length - 1];
  const optionalTail = last?.kind === 'param' && last.optional;
  const route: Route = { endpoint, paramNames, optionalTail };
  const method = endpoint.method;
  if (node.routes.has(method)) throw new Error(`two endpoints for ${method} ${template}`);
  node.routes.set(method, route);
  if (slashed) {
    if (optionalTail) throw new Error(`an optional parameter cannot be followed by "/": ${template}`);
    let withSlash = node.literals.get('');
    if (!withSlash) {
      withSlash = newNode();
      node.literals.set('', withSlash);
    }
    if (withSlash.routes.has(method)) throw new Error(`two endpoints for ${method} ${template}`);
    withSlash.routes.set(method, route);
  }
  if (optionalTail) {
    node.optionalTail = true;
    if (parentOfLast.tailAbsent.has(method) || parentOfLast.routes.has(method)) {
      throw new Error(`${method} ${template} without its optional tail clashes with another endpoint`);
    }
    parentOfLast.tailAbsent.set(method, route);
  }
}

interface Candidate {
  node: Node;
  values: Array<string | null>;
  /** The final segment was consumed by a parameter with an empty value. */
  emptyLast: boolean;
}

/**
 * All nodes the path can end on, literal branches before parameter branches, so `/profile/{u}/
 * displayname` beats `/profile/{u}/{keyName}` for the methods it has, and the generic template
 * still answers the others.
 */
function collect(
  node: Node,
  segs: string[],
  decoded: Array<string | null>,
  i: number,
  values: Array<string | null>,
  out: Candidate[],
): void {
  if (i === segs.length) {
    if (node.routes.size > 0 || node.tailAbsent.size > 0)
      out.push({ node, values: [...values], emptyLast: false });
    return;
  }
  const text = decoded[i];
  if (text != null) {
    const lit = node.literals.get(text);
    if (lit) collect(lit, segs, decoded, i + 1, values, out);
  }
  if (node.param) {
    const raw = segs[i] as string;
    if (raw !== '') {
      values.push(text ?? null);
      collect(node.param, segs, decoded, i + 1, values, out);
      values.pop();
    } else if (i === segs.length - 1 && node.param.optionalTail) {
      // An empty final segment (trailing slash) only fills an optional tail parameter.
      values.push('');
      out.push({ node: node.param, values: [...values], emptyLast: true });
      values.pop();
    }
  }
}

interface Match {
  route: Route;
  params: Record<string, string>;
}

function safeDecode(segment: string): string | null {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function methodsAt(c: Candidate): string[] {
  const out: string[] = [];
  if (!c.emptyLast) out.push(...c.node.routes.keys());
  else for (const [m, r] of c.node.routes) if (r.optionalTail) out.push(m);
  out.push(...c.node.tailAbsent.keys());
  return out;
}

function routeAt(c: Candidate, method: string): { route: Route; absentTail: boolean } | undefined {
  const r = c.node.routes.get(method);
  if (r && (!c.emptyLast || r.optionalTail)) return { route: r, absentTail: false };
  const t = c.emptyLast ? undefined : c.node.tailAbsent.get(method);
  return t ? { route: t, absentTail: true } : undefined;
}

function candidatesFor(root: Node, pathname: string): Candidate[] {
  // Split before decoding: `%2F` inside a room alias or state key must not become a separator.
  const segs = pathname.slice(1).split('/');
  const decoded = segs.map(safeDecode);
  const candidates: Candidate[] = [];
  collect(root, segs, decoded, 0, [], candidates);
  return candidates;
}

function match(root: Node, pathname: string, method: string): Match {
  const candidates = candidatesFor(root, pathname);
  for (const c of candidates) {
    const found = routeAt(c, method);
    if (!found) continue;
    const { route, absentTail } = found;
    const values = absentTail ? [...c.values, ''] : c.values;
    const params: Record<string, string> = {};
    for (let i = 0; i < route.paramNames.length; i++) {
      const value = values[i];
      const name = route.paramNames[i] as string;
      if (value === null || value === undefined) {
        throw invalidParam(`Path parameter "${name}" is not valid percent-encoding`);
      }
      Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
    }
    return { route, params };
  }
  if (candidates.length > 0) {
    const allowed = [...new Set(candidates.flatMap(methodsAt))];
    allowed.push('OPTIONS');
    throw unrecognized(`Method ${method} is not allowed on this endpoint`, 405, allowed);
  }
  throw unrecognized('Unrecognized request');
}

// --- bodies ---------------------------------------------------------------------------------

/** The declared Content-Length, if any; M_TOO_LARGE at once when it is over `limit`. */
function declaredLength(request: Request, limit: number): number | null {
  const declared = request.headers.get('content-length');
  if (declared === null || !/^\s*\d+\s*$/.test(declared)) return null;
  if (Number(declared) > limit) throw tooLarge(`Request body is larger than ${limit} bytes`);
  return Number(declared);
}

/** The body's pieces, stopping with M_TOO_LARGE past `limit` bytes and a 400 on a broken stream. */
async function readChunks(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>[]> {
  const reader = body.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return chunks;
      total += value.byteLength;
      if (total > limit) {
        reader.cancel().catch(() => {});
        throw tooLarge(`Request body is larger than ${limit} bytes`);
      }
      chunks.push(value as Uint8Array<ArrayBuffer>);
    }
  } catch (err) {
    if (err instanceof MatrixError) throw err;
    // The client went away or sent a broken stream: its fault, not ours.
    throw new MatrixError(400, 'M_UNKNOWN', 'Could not read the request body');
  }
}

/**
 * Read at most `limit` bytes of the body. A declared Content-Length over the limit is refused
 * before reading; otherwise bytes are counted as they arrive and reading stops at the limit,
 * so a lying or absent Content-Length cannot make us buffer an unbounded body.
 */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  declaredLength(request, limit);
  if (request.body === null) return new Uint8Array(0);
  const chunks = await readChunks(request.body, limit);
  let total = 0;
  for (const chunk of chunks) total += chunk.byteLength;
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * `readBody` into a Blob. With a declared length the runtime collects it itself
 * (`Request.blob()`), so a browser can back a large body by disk instead of the JS heap;
 * without one it is counted piece by piece and stopped at `limit`.
 */
export async function readBodyBlob(request: Request, limit: number): Promise<Blob> {
  const declared = declaredLength(request, limit);
  if (request.body === null) return new Blob([]);
  if (declared !== null) {
    // A declared length bounds the body: HTTP framing (Node's parser) or the browser itself
    // (a page's request to its Service Worker) delivers no more than it. Then the runtime
    // reads it natively, with no JavaScript per chunk; the size is checked again after.
    let blob: Blob;
    try {
      blob = await request.blob();
    } catch {
      throw new MatrixError(400, 'M_UNKNOWN', 'Could not read the request body');
    }
    if (blob.size > limit) throw tooLarge(`Request body is larger than ${limit} bytes`);
    return blob;
  }
  // Counted as it arrives; the pieces become the Blob directly (one copy, where collecting
  // them through a Response first costs two).
  return new Blob(await readChunks(request.body, limit));
}

/**
 * The body as a stream that fails with M_TOO_LARGE past `limit` bytes (a declared
 * Content-Length over it is refused at once) and with a 400 when the client's stream breaks:
 * for media uploads written to disk as they arrive, never whole in memory.
 */
export function limitedBody(request: Request, limit: number): ReadableStream<Uint8Array> {
  declaredLength(request, limit);
  if (request.body === null) return new Blob([]).stream();
  const reader = request.body.getReader();
  let total = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        // The client went away or sent a broken stream: its fault, not ours.
        controller.error(new MatrixError(400, 'M_UNKNOWN', 'Could not read the request body'));
        return;
      }
      if (next.done) {
        controller.close();
        return;
      }
      total += next.value.byteLength;
      if (total > limit) {
        reader.cancel().catch(() => {});
        controller.error(tooLarge(`Request body is larger than ${limit} bytes`));
        return;
      }
      controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The rules a request body is read under, made once per depth limit (a router has one). */
const bodyRules = new Map<number, JsonRules>();
function bodyRulesFor(maxDepth: number): JsonRules {
  let rules = bodyRules.get(maxDepth);
  if (!rules) {
    rules = new JsonRules({ maxDepth, fromUtf8: true });
    bodyRules.set(maxDepth, rules);
  }
  return rules;
}

/** Parse a JSON object body: M_NOT_JSON if it is not JSON, M_BAD_JSON if it is not an object. */
export function parseJsonObject(
  bytes: Uint8Array,
  maxDepth: number,
  allowEmpty: boolean,
): Record<string, unknown> {
  if (bytes.byteLength === 0) {
    if (allowEmpty) return {};
    throw notJson('Request body is empty; this endpoint expects a JSON object');
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw notJson('Request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = parseJson(text, bodyRulesFor(maxDepth));
  } catch (err) {
    if (!isJsonDecodeError(err)) throw err;
    if (err.reason === 'syntax') throw notJson('Request body is not valid JSON');
    throw badJson(`Request body ${describeJsonProblem(err.reason, maxDepth)}`);
  }
  if (!isPlainObject(value)) throw badJson('Request body must be a JSON object');
  return value;
}

// --- the router -----------------------------------------------------------------------------

/** Build the homeserver's fetch function over a table of endpoints. */
export function createRouter(opts: RouterOptions): FetchHandler {
  const root = newNode();
  const methods = new Set(CORS_METHODS);
  const rateLimits = opts.rateLimits ?? {};
  for (const endpoint of opts.endpoints) {
    if (endpoint.rateLimit !== undefined && !rateLimits[endpoint.rateLimit]) {
      throw new Error(
        `endpoint ${endpoint.method} ${endpoint.path} names unknown rate limit "${endpoint.rateLimit}"`,
      );
    }
    for (const template of fullPaths(endpoint)) addRoute(root, template, endpoint);
    methods.add(endpoint.method);
  }
  const limiter = createRateLimiter(rateLimits, opts.clock ?? systemClock);
  const maxJson = opts.maxJsonBodyBytes ?? DEFAULT_MAX_JSON_BODY;
  const maxRaw = opts.maxRawBodyBytes ?? DEFAULT_MAX_RAW_BODY;
  const maxDepth = opts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const tokenOptions = { allowQueryToken: opts.allowQueryToken ?? true };
  const logger = opts.logger;
  const cors: Record<string, string> = {
    'Access-Control-Allow-Origin': opts.corsOrigin ?? '*',
    'Access-Control-Allow-Methods': [...methods].join(', '),
    'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
  };

  function withCors(response: Response): Response {
    try {
      for (const [name, value] of Object.entries(cors)) response.headers.set(name, value);
      return response;
    } catch {
      // Immutable headers (a Response from fetch() or Response.redirect): copy it.
      const copy = new Response(response.body, response);
      for (const [name, value] of Object.entries(cors)) copy.headers.set(name, value);
      return copy;
    }
  }

  async function handle(request: Request, info: ConnectionInfo | undefined): Promise<Response> {
    if (request.url.length > MAX_URL_LENGTH) {
      throw new MatrixError(
        414,
        'M_TOO_LARGE',
        `The request URL is longer than ${MAX_URL_LENGTH} characters`,
      );
    }
    const url = new URL(request.url);
    const method = (info?.method ?? request.method).toUpperCase();

    // "MUST NOT perform any logic defined for the endpoints when approached with OPTIONS".
    if (
      method === 'OPTIONS' &&
      (PREFLIGHT_PREFIXES.some((p) => url.pathname.startsWith(p)) ||
        candidatesFor(root, url.pathname).length > 0)
    ) {
      return new Response(null, { status: 204 });
    }

    const { route, params } = match(root, url.pathname, method);
    const e = route.endpoint;

    // A JSON body is read while the token is resolved (each waits on another thread: the
    // client's upload, the store), and looked at only where it was before: a refused request
    // answers with the same error, whatever its body.
    const jsonBody = e.body && !e.rawBody ? readBody(request, e.maxBodyBytes ?? maxJson) : undefined;
    jsonBody?.catch(() => undefined);

    const auth: Auth | null = await authenticate(
      request,
      url,
      e.auth,
      e.guest === true,
      opts.resolveToken,
      tokenOptions,
      info?.clientAddress,
    );
    opts.checkAuth?.(auth, e, method);

    if (e.rateLimit !== undefined && auth?.rateLimited !== false) {
      limiter.take(e.rateLimit, auth ? `user:${auth.userId}` : `ip:${info?.clientAddress ?? 'unknown'}`);
    }

    if (e.params) {
      for (const [name, validator] of Object.entries(e.params)) {
        if (validator && Object.hasOwn(params, name)) {
          params[name] = validator.parse(params[name], name, 'path');
        }
      }
    }

    const query = e.query ? e.query.parse(url.searchParams) : undefined;

    let body: unknown;
    let bytes: Uint8Array | undefined;
    let blob: Blob | undefined;
    let stream: ReadableStream<Uint8Array> | undefined;
    if (e.rawBody === 'stream') {
      stream = limitedBody(request, e.maxBodyBytes ?? maxRaw);
    } else if (e.rawBody === 'blob') {
      blob = await readBodyBlob(request, e.maxBodyBytes ?? maxRaw);
    } else if (e.rawBody) {
      bytes = await readBody(request, e.maxBodyBytes ?? maxRaw);
    } else if (jsonBody && e.body) {
      const raw = await jsonBody;
      body = e.body.parse(parseJsonObject(raw, maxDepth, e.allowEmptyBody === true), '', 'body');
    }

    const req: AnyHandlerRequest = {
      params,
      query,
      body,
      bytes,
      blob,
      stream,
      auth,
      request,
      url,
      clientAddress: info?.clientAddress,
    };
    const result = await e.handler(req);
    return result instanceof Response ? result : jsonResponse(result);
  }

  return async (request, info) => {
    let response: Response;
    try {
      response = await handle(request, info);
    } catch (err) {
      response = toResponse(err, logger);
    }
    return withCors(response);
  };
}
