/**
 * Test support for the router and fuzz tests: the real endpoint table with handlers that echo
 * what the router handed them, tokens, and a router over them with a manual clock.
 */

import type { HomeserverConfig } from '../homeserver/context.ts';
import { unknownToken } from '../homeserver/errors.ts';
import type { Services } from '../homeserver/services.ts';
import { manualClock } from '../homeserver/testing.ts';
import type { Auth } from './auth.ts';
import { clientEndpoints, RATE_LIMITS } from './client/index.ts';
import { type Endpoint, endpoint } from './endpoint.ts';
import { createRouter, type RouterOptions } from './http.ts';

export const ALICE: Auth = { userId: '@alice:example.org', deviceId: 'ALICEDEVICE', isGuest: false };
export const GUEST: Auth = { userId: '@123:example.org', deviceId: 'GUESTDEVICE', isGuest: true };
export const APPSERVICE: Auth = {
  userId: '@bridge:example.org',
  deviceId: null,
  isGuest: false,
  rateLimited: false,
};

export const TOKENS: Record<string, Auth> = {
  'alice-token': ALICE,
  'guest-token': GUEST,
  'as-token': APPSERVICE,
};

export async function resolveToken(token: string): Promise<Auth | null> {
  if (token === 'expired-token') throw unknownToken('Access token has expired', { softLogout: true });
  return Object.hasOwn(TOKENS, token) ? (TOKENS[token] as Auth) : null;
}

/** Server configuration the endpoint factories read when they are built (login flows, capabilities). */
const CONFIG: HomeserverConfig = {
  serverName: 'example.org',
  registration: 'open',
  guestAccess: true,
  defaultRoomVersion: '12',
  passwordIterations: 1000,
  maxSyncTimeoutMs: 25_000,
  accessTokenLifetimeMs: null,
  /** Small, so the raw-body limit is easy to cross. */
  maxUploadBytes: 1024,
};

/**
 * Services no handler here calls: every echoing handler replaces the real one, so a service
 * reached anyway is a fixture bug, said loudly.
 */
const unreachable = new Proxy(
  {},
  {
    get: (_target, name) => () => {
      throw new Error(`router tests call no service (${String(name)})`);
    },
  },
);
const noServices = new Proxy({ config: CONFIG } as Record<string, unknown>, {
  get: (target, name) => (typeof name === 'string' && name in target ? target[name] : unreachable),
}) as unknown as Services;

/**
 * The handler every test endpoint gets: it answers with what the router handed it, so a test
 * sees the routing, parsing and validation of the real endpoint table and nothing else.
 */
function echo(e: Endpoint): Endpoint {
  return {
    ...e,
    handler: async ({ params, query, body, auth, clientAddress }) => ({
      endpoint: `${e.method} ${e.path}`,
      params,
      query: query ?? null,
      body: body ?? null,
      user: auth?.userId ?? null,
      guest: auth?.isGuest ?? null,
      clientAddress: clientAddress ?? null,
    }),
  };
}

/**
 * The real Client-Server endpoints (`clientEndpoints`), each answering with an echo — derived,
 * not re-declared, so they cannot drift from what the homeserver serves. Raw-body endpoints
 * (media uploads) echo the size and type of the bytes they were handed, as a ready Response.
 */
export const testEndpoints: Endpoint[] = clientEndpoints(noServices).map((e) =>
  e.rawBody
    ? {
        ...e,
        handler: async ({ bytes, blob, request }) =>
          new Response(
            JSON.stringify({
              size: blob?.size ?? bytes?.byteLength,
              type: request.headers.get('content-type'),
            }),
            {
              status: 200,
              headers: { 'Content-Type': 'application/json' },
            },
          ),
      }
    : echo(e),
);

/** An endpoint with a bug, to see that the router hides internals and logs them. */
export const buggyEndpoint = endpoint({
  method: 'GET',
  path: '/_matrix/client/v3/buggy',
  auth: 'none',
  handler: async () => {
    throw new Error('SQLITE_CORRUPT at /var/lib/hearth/db.sqlite');
  },
});

export interface LoggedError {
  message: string;
  detail: unknown;
}

/** A router over the fixtures, with a manual clock and a logger that records errors. */
export function testRouter(extra: Partial<RouterOptions> = {}) {
  const clock = manualClock(1_000_000);
  const logged: LoggedError[] = [];
  const fetch = createRouter({
    endpoints: [...testEndpoints, buggyEndpoint],
    resolveToken,
    rateLimits: { ...RATE_LIMITS, message: { perSecond: 5, burst: 10 }, login: { perSecond: 0.5, burst: 3 } },
    logger: { error: (message, fields) => logged.push({ message, detail: fields?.error }) },
    clock,
    ...extra,
  });
  return { fetch, clock, logged };
}

export const BASE = 'http://localhost:8008';

/** A request to the test server: `req('GET', '/_matrix/…', { token, body })`. */
export function req(
  method: string,
  path: string,
  opts: { token?: string; body?: BodyInit | object; headers?: Record<string, string> } = {},
): Request {
  const headers = new Headers(opts.headers);
  if (opts.token !== undefined) headers.set('Authorization', `Bearer ${opts.token}`);
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    const isRaw =
      typeof opts.body === 'string' ||
      opts.body instanceof Uint8Array ||
      opts.body instanceof ReadableStream ||
      opts.body instanceof ArrayBuffer;
    body = isRaw ? (opts.body as BodyInit) : JSON.stringify(opts.body);
    if (!isRaw && !headers.has('content-type')) headers.set('Content-Type', 'application/json');
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (body !== undefined) {
    init.body = body;
    if (body instanceof ReadableStream) init.duplex = 'half';
  }
  return new Request(BASE + path, init);
}

export { manualClock };
