/**
 * Hostile-input generators and a response check, for fuzz tests of the router and, later, of
 * the whole homeserver (`hs.fetch`): every answer to anything a client can send must be a
 * well-formed Matrix response, never a 500. Test-only (uses fast-check).
 */
import fc from 'fast-check';
import { parseJson } from '../core/json.ts';
import { type Endpoint, fullPaths } from './endpoint.ts';

/** The status each errcode may come with (client-server-api "Common error codes" …). */
export const ERRCODE_STATUS: Readonly<Record<string, readonly number[]>> = {
  M_UNRECOGNIZED: [404, 405],
  M_NOT_JSON: [400],
  // account-data.yaml: 405 M_BAD_JSON for account data types the server controls (m.fully_read).
  M_BAD_JSON: [400, 405],
  M_MISSING_PARAM: [400],
  M_INVALID_PARAM: [400],
  // 414 and 431: a request line or headers over the host's limit (api/http.ts MAX_URL_LENGTH, hosts/node.ts).
  M_TOO_LARGE: [413, 414, 431],
  M_MISSING_TOKEN: [401],
  M_UNKNOWN_TOKEN: [401],
  M_FORBIDDEN: [403],
  M_GUEST_ACCESS_FORBIDDEN: [403],
  M_NOT_FOUND: [404],
  M_LIMIT_EXCEEDED: [429],
  // directory.yaml: 409 M_UNKNOWN for an alias that already exists.
  M_UNKNOWN: [400, 409],
};

export interface Checked {
  status: number;
  /** The body when it is a JSON object. */
  body: Record<string, unknown> | undefined;
  /** The parsed body, whatever it is (an array for `GET /rooms/{roomId}/state`). */
  json: unknown;
  /** A user-interactive authentication challenge (401 with `flows`). */
  uia: boolean;
}

/**
 * Throws unless `res` is a well-formed Matrix answer: CORS headers present; errors are JSON
 * objects with a string `errcode` (of the expected status) and `error`; no 5xx at all.
 * Successes are JSON objects, or arrays where the spec says so (`GET /rooms/{roomId}/state`),
 * or media (a `Content-Disposition`, the sandbox CSP and `nosniff`).
 * A 401 carrying `flows` is a user-interactive authentication challenge
 * (client-server-api "User-interactive authentication API"): its first answer has no
 * `errcode`; later ones may add one.
 */
export async function checkMatrixResponse(res: Response, method: string): Promise<Checked> {
  const fail = (why: string, body?: unknown): never => {
    throw new Error(
      `${method} → ${res.status}: ${why}${body === undefined ? '' : ` — ${JSON.stringify(body)}`}`,
    );
  };
  if (res.headers.get('access-control-allow-origin') === null) fail('no CORS headers');
  if (res.status >= 500) fail('server error', await res.text());
  if (res.status === 204) {
    if (method !== 'OPTIONS') fail('204 for a non-OPTIONS request');
    return { status: 204, body: undefined, json: undefined, uia: false };
  }
  const type = res.headers.get('content-type');
  if (res.status === 200 && type !== 'application/json' && res.headers.has('content-disposition')) {
    // Media (content_repo.md): any content type, served with the spec's disposition and policy.
    if (!/^(inline|attachment)(;|$)/.test(res.headers.get('content-disposition') ?? ''))
      fail('malformed Content-Disposition');
    if (!res.headers.get('content-security-policy')?.includes('sandbox')) fail('media without a sandbox CSP');
    if (res.headers.get('x-content-type-options') !== 'nosniff') fail('media without nosniff');
    await res.arrayBuffer();
    return { status: 200, body: undefined, json: undefined, uia: false };
  }
  if (type !== 'application/json') fail(`content type ${type}`);
  const text = await res.text();
  let body: unknown;
  try {
    body = parseJson(text, { loneSurrogates: 'allow', maxDepth: 1024 });
  } catch {
    fail('body is not JSON', text);
  }
  if (Array.isArray(body) && res.status < 300) {
    return { status: res.status, body: undefined, json: body, uia: false };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    fail('body is not a JSON object', body);
  const obj = body as Record<string, unknown>;
  if (res.status === 401 && obj.flows !== undefined) {
    const flows = obj.flows;
    const wellFormed =
      Array.isArray(flows) &&
      flows.every(
        (f) =>
          typeof f === 'object' &&
          f !== null &&
          Array.isArray((f as { stages?: unknown }).stages) &&
          (f as { stages: unknown[] }).stages.every((stage) => typeof stage === 'string'),
      ) &&
      (obj.session === undefined || typeof obj.session === 'string') &&
      (obj.params === undefined || (typeof obj.params === 'object' && obj.params !== null)) &&
      (obj.completed === undefined || Array.isArray(obj.completed)) &&
      (obj.errcode === undefined || (typeof obj.errcode === 'string' && typeof obj.error === 'string'));
    if (!wellFormed) fail('malformed user-interactive authentication answer', obj);
    return { status: 401, body: obj, json: obj, uia: true };
  }
  if (res.status >= 400) {
    if (typeof obj.errcode !== 'string' || !/^M_[A-Z_]+$/.test(obj.errcode)) fail('bad errcode', obj);
    if (typeof obj.error !== 'string') fail('error is not a string', obj);
    const allowed = ERRCODE_STATUS[obj.errcode as string];
    if (allowed && !allowed.includes(res.status)) fail(`${obj.errcode} with status ${res.status}`, obj);
    if (res.status === 429 && res.headers.get('retry-after') === null) fail('429 without Retry-After');
  }
  return { status: res.status, body: obj, json: obj, uia: false };
}

/** A plausible value for a path parameter, by its name. */
export function placeholder(name: string): string {
  const n = name.toLowerCase();
  if (n.includes('alias')) return '#room:example.org';
  if (n.includes('room')) return '!room:example.org';
  if (n.includes('event')) return n.includes('type') ? 'm.room.message' : '$event';
  if (n.includes('user')) return '@user:example.org';
  if (n.includes('server')) return 'example.org';
  return name === 'stateKey' ? '' : 'x';
}

/** Fill a template's `{params}` with placeholders (percent-encoded as a client would). */
export function fillTemplate(template: string, value: (name: string) => string = placeholder): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\??\}/g, (_, name: string) =>
    encodeURIComponent(value(name)),
  );
}

const weirdSegments = [
  '',
  '.',
  '..',
  '%2e%2e',
  '%00',
  '%',
  '%zz',
  '%E0%A4%A',
  '%FF',
  '%2F',
  '%252F',
  '~',
  'é',
  '%F0%9F%98%80',
  '%ED%A0%80', // an encoded lone surrogate: not valid UTF-8
  '!room:example.org',
  '@user:example.org',
  '#alias:example.org',
  '$event',
  'a'.repeat(5000),
];

const knownSegments = [
  '_matrix',
  'client',
  'media',
  'v1',
  'v3',
  'r0',
  'rooms',
  'state',
  'send',
  'sync',
  'login',
  'join',
  'profile',
  'displayname',
  'messages',
  'createRoom',
  'logout',
  'upload',
  'versions',
  'm.room.name',
];

const deepJson = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;

/** Bodies a hostile or broken client might send. */
export const hostileBody: fc.Arbitrary<BodyInit | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    '',
    '{',
    '[]',
    'null',
    '"str"',
    '1e400',
    '{"n":1e400}',
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{"x":1}}}',
    deepJson(100_000 / 4),
    deepJson(300),
    `{"k":"${'a'.repeat(70 * 1024)}"}`,
  ),
  fc.constant(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc
    .dictionary(
      fc.constantFrom(
        'type',
        'visibility',
        'invite',
        'initial_state',
        'name',
        'displayname',
        'reason',
        'identifier',
        'password',
        'content',
      ),
      fc.jsonValue({ maxDepth: 3 }),
    )
    .map((o) => JSON.stringify(o)),
  fc.string({ maxLength: 200 }),
);

const tokenHeader = fc.constantFrom<string | undefined>(
  undefined,
  'Bearer alice-token',
  'Bearer guest-token',
  'Bearer nobody',
  'Bearer expired-token',
  'Basic YTpi',
  'Bearer',
  'Bearer a b',
);

const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?dir=b',
    '?dir=x&limit=abc',
    '?access_token=alice-token',
    '?access_token=nobody',
    '?filter=%7B',
    '?full_state=maybe',
    '?limit=-1&dir=f',
    '?timeout=1e99',
    '?via=a&via=',
  ),
  fc.string({ maxLength: 40 }).map((s) => `?${encodeURIComponent(s)}=${s}`),
);

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

export interface FuzzRequest {
  method: string;
  path: string;
  auth: string | undefined;
  body: BodyInit | undefined;
}

/**
 * Requests near the given endpoints: their real paths with hostile parameters, and paths
 * assembled from known and weird segments.
 */
export function hostileRequest(endpoints: readonly Endpoint[]): fc.Arbitrary<FuzzRequest> {
  const templates = endpoints.flatMap((e) => fullPaths(e));
  const segment = fc.oneof(
    fc.constantFrom(...knownSegments),
    fc.constantFrom(...weirdSegments),
    fc.string({ maxLength: 12 }),
  );
  const paramValue = fc.oneof(
    fc.constantFrom(...weirdSegments.map((s) => decodeURIComponentSafe(s))),
    fc.string({ maxLength: 30 }),
  );
  const nearEndpoint = templates.length
    ? fc
        .tuple(
          fc.constantFrom(...templates),
          fc.dictionary(
            fc.constantFrom('roomId', 'eventType', 'stateKey', 'txnId', 'userId', 'roomIdOrAlias', 'keyName'),
            paramValue,
          ),
        )
        .map(([t, values]) => fillTemplate(t, (name) => values[name] ?? placeholder(name)))
    : fc.constant('/_matrix/client/versions');
  const assembled = fc
    .tuple(
      fc.constantFrom(
        '/_matrix/client/v3',
        '/_matrix/client/r0',
        '/_matrix/client',
        '/_matrix/media/v3',
        '/.well-known/matrix',
        '/_matrix',
        '',
      ),
      fc.array(segment, { maxLength: 6 }),
    )
    .map(([prefix, segs]) => `${prefix}/${segs.join('/')}`);
  return fc.record({
    method: fc.constantFrom(...methods),
    path: fc.tuple(fc.oneof(nearEndpoint, assembled), query).map(([p, qs]) => p + qs),
    auth: tokenHeader,
    body: hostileBody,
  });
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Build the Request; GET and HEAD cannot carry a body, so theirs is dropped. */
export function toRequest(base: string, r: FuzzRequest): Request {
  const headers = new Headers();
  if (r.auth !== undefined) headers.set('Authorization', r.auth);
  const init: RequestInit = { method: r.method, headers };
  if (r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD') init.body = r.body;
  return new Request(base + r.path, init);
}
