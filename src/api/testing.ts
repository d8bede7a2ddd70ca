/**
 * Endpoints shaped like real Client-Server ones, echoing what the router handed them, for the
 * router and fuzz tests. Not used by the homeserver.
 */

import { unknownToken } from '../homeserver/errors.ts';
import { manualClock } from '../homeserver/testing.ts';
import type { Auth } from './auth.ts';
import { type Endpoint, endpoint, q, v } from './endpoint.ts';
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

const stateEvent = v.object({
  type: v.string(),
  state_key: v.optional(v.string(), ''),
  content: v.jsonObject(),
});

export const testEndpoints: Endpoint[] = [
  endpoint({
    method: 'GET',
    path: '/rooms/{roomId}/state/{eventType}/{stateKey?}',
    versions: ['r0', 'v3'],
    auth: 'required',
    guest: true,
    handler: async ({ params }) => ({ endpoint: 'getState', params }),
  }),
  endpoint({
    method: 'PUT',
    path: '/rooms/{roomId}/state/{eventType}/{stateKey?}',
    versions: ['r0', 'v3'],
    auth: 'required',
    rateLimit: 'message',
    body: v.jsonObject(),
    handler: async ({ params, body }) => ({ endpoint: 'putState', params, body }),
  }),
  endpoint({
    method: 'GET',
    path: '/rooms/{roomId}/state',
    versions: ['r0', 'v3'],
    auth: 'required',
    handler: async ({ params }) => ({ endpoint: 'allState', params }),
  }),
  endpoint({
    method: 'PUT',
    path: '/rooms/{roomId}/send/{eventType}/{txnId}',
    versions: ['r0', 'v3'],
    auth: 'required',
    rateLimit: 'message',
    body: v.jsonObject(),
    handler: async ({ params, body, auth }) => ({ endpoint: 'send', params, body, user: auth.userId }),
  }),
  endpoint({
    method: 'POST',
    path: '/login',
    versions: ['r0', 'v3'],
    auth: 'none',
    rateLimit: 'login',
    body: v.object({
      type: v.string({ min: 1 }),
      identifier: v.optional(v.object({ type: v.string(), user: v.optional(v.string({ max: 255 })) })),
      password: v.optional(v.string({ max: 512 })),
      refresh_token: v.optional(v.bool(), false),
    }),
    handler: async ({ body, auth, clientAddress }) => ({ endpoint: 'login', body, auth, clientAddress }),
  }),
  endpoint({
    method: 'GET',
    path: '/rooms/{roomId}/messages',
    versions: ['r0', 'v3'],
    auth: 'required',
    query: q.object({
      from: q.optional(q.string()),
      dir: q.enum(['b', 'f']),
      limit: q.optional(q.int({ min: 0, max: 1000 }), 10),
      filter: q.optional(q.json(v.object({ limit: v.optional(v.int({ min: 0 })) }, { unknownKeys: 'keep' }))),
    }),
    handler: async ({ query }) => ({ endpoint: 'messages', query }),
  }),
  endpoint({
    method: 'GET',
    path: '/sync',
    versions: ['r0', 'v3'],
    auth: 'required',
    guest: true,
    query: q.object({
      since: q.optional(q.string()),
      full_state: q.optional(q.bool(), false),
      timeout: q.optional(q.int({ min: 0 }), 0),
      set_presence: q.optional(q.enum(['offline', 'online', 'unavailable'])),
    }),
    handler: async ({ query, auth }) => ({ endpoint: 'sync', query, guest: auth.isGuest }),
  }),
  endpoint({
    method: 'POST',
    path: '/createRoom',
    versions: ['r0', 'v3'],
    auth: 'required',
    body: v.object({
      visibility: v.optional(v.enum(['public', 'private'])),
      name: v.optional(v.string({ maxBytes: 255 })),
      invite: v.optional(v.array(v.string({ min: 1 }), { max: 100 })),
      initial_state: v.optional(v.array(stateEvent)),
      creation_content: v.optional(v.jsonObject()),
      power_level_content_override: v.optional(v.record(v.json())),
      is_direct: v.optional(v.bool()),
    }),
    handler: async ({ body }) => ({ endpoint: 'createRoom', body }),
  }),
  endpoint({
    method: 'POST',
    path: '/join/{roomIdOrAlias}',
    versions: ['r0', 'v3'],
    auth: 'required',
    query: q.object({ server_name: q.list(), via: q.list() }),
    body: v.object({ reason: v.optional(v.string()) }),
    allowEmptyBody: true,
    params: { roomIdOrAlias: v.string({ pattern: /^[!#]/, patternName: 'a room ID or alias' }) },
    handler: async ({ params, query, body }) => ({ endpoint: 'join', params, query, body }),
  }),
  endpoint({
    method: 'POST',
    path: '/logout',
    versions: ['r0', 'v3'],
    auth: 'required',
    handler: async ({ body }) => ({ endpoint: 'logout', body: body ?? null }),
  }),
  endpoint({
    method: 'GET',
    path: '/joined_rooms',
    versions: ['r0', 'v3'],
    auth: 'required',
    handler: async () => ({ joined_rooms: [] }),
  }),
  endpoint({
    method: 'GET',
    path: '/profile/{userId}/displayname',
    versions: ['r0', 'v3'],
    auth: 'optional',
    handler: async ({ params, auth }) => ({ endpoint: 'displayname', params, viewer: auth?.userId ?? null }),
  }),
  endpoint({
    method: 'PUT',
    path: '/profile/{userId}/displayname',
    versions: ['r0', 'v3'],
    auth: 'required',
    body: v.object({ displayname: v.nullable(v.string({ maxBytes: 256 })) }),
    handler: async ({ params, body }) => ({ endpoint: 'setDisplayname', params, body }),
  }),
  endpoint({
    method: 'DELETE',
    path: '/profile/{userId}/{keyName}',
    versions: ['v3'],
    auth: 'required',
    handler: async ({ params }) => ({ endpoint: 'deleteProfileField', params }),
  }),
  endpoint({
    method: 'POST',
    path: '/upload',
    base: '/_matrix/media',
    versions: ['r0', 'v3'],
    auth: 'required',
    rawBody: true,
    maxBodyBytes: 1024,
    handler: async ({ bytes, request }) =>
      new Response(JSON.stringify({ size: bytes?.byteLength, type: request.headers.get('content-type') }), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      }),
  }),
];

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
    rateLimits: { message: { perSecond: 5, burst: 10 }, login: { perSecond: 0.5, burst: 3 } },
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
