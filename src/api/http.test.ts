import { describe, expect, it } from 'vitest';
import { endpoint, q, v } from './endpoint.ts';
import { createRouter, readBody } from './http.ts';
import { ALICE, req, resolveToken, testEndpoints, testRouter } from './testing.ts';

async function call(fetch: (r: Request) => Promise<Response>, r: Request) {
  const res = await fetch(r);
  const text = await res.text();
  const body = text === '' ? undefined : JSON.parse(text);
  return { res, status: res.status, body };
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization',
};

function expectCors(res: Response) {
  for (const [name, value] of Object.entries(CORS)) expect(res.headers.get(name)).toBe(value);
}

describe('routing', () => {
  const { fetch } = testRouter();
  const T = { token: 'alice-token' };

  it('answers on every declared version prefix', async () => {
    for (const prefix of ['/_matrix/client/r0', '/_matrix/client/v3']) {
      const { status, body } = await call(fetch, req('GET', `${prefix}/rooms/!r:x/state`, T));
      expect(status).toBe(200);
      expect(body).toMatchObject({ endpoint: 'GET /rooms/{roomId}/state', params: { roomId: '!r:x' } });
    }
    expect((await call(fetch, req('GET', '/_matrix/client/v1/rooms/!r:x/state', T))).status).toBe(404);
  });

  it('percent-decodes each path parameter exactly once, after splitting', async () => {
    const path = '/_matrix/client/v3/rooms/%21abc%3Aexample.org/state/m.room.member/%40alice%3Aexample.org';
    const { body } = await call(fetch, req('GET', path, T));
    expect(body.params).toEqual({
      roomId: '!abc:example.org',
      eventType: 'm.room.member',
      stateKey: '@alice:example.org',
    });

    const twice = await call(fetch, req('GET', '/_matrix/client/v3/rooms/!r:x/state/t/%2540bob', T));
    expect(twice.body.params.stateKey).toBe('%40bob');

    const slash = await call(fetch, req('GET', '/_matrix/client/v3/rooms/!r:x/state/t/a%2Fb', T));
    expect(slash.body.params.stateKey).toBe('a/b');

    const hash = await call(
      fetch,
      req('POST', '/_matrix/client/v3/join/%23room%3Aexample.org', { ...T, body: {} }),
    );
    expect(hash.body.params.roomIdOrAlias).toBe('#room:example.org');
  });

  it('addresses the empty state key with and without the trailing slash', async () => {
    for (const path of [
      '/_matrix/client/v3/rooms/!r:x/state/m.room.name',
      '/_matrix/client/v3/rooms/!r:x/state/m.room.name/',
    ]) {
      const get = await call(fetch, req('GET', path, T));
      expect(get.status).toBe(200);
      expect(get.body).toMatchObject({
        endpoint: 'GET /rooms/{roomId}/state/{eventType}/{stateKey?}',
        params: { roomId: '!r:x', eventType: 'm.room.name', stateKey: '' },
      });
      const put = await call(fetch, req('PUT', path, { ...T, body: { name: 'n' } }));
      expect(put.status).toBe(200);
      expect(put.body.params.stateKey).toBe('');
      expect(put.body.body).toEqual({ name: 'n' });
    }
  });

  it('does not let a required parameter be empty, nor add trailing slashes elsewhere', async () => {
    for (const path of [
      '/_matrix/client/v3/rooms//state',
      '/_matrix/client/v3/sync/',
      '/_matrix/client/v3/rooms/!r:x/state/',
    ]) {
      const { status, body } = await call(fetch, req('GET', path, T));
      expect(status).toBe(404);
      expect(body.errcode).toBe('M_UNRECOGNIZED');
    }
  });

  it('404 M_UNRECOGNIZED for unknown paths, 405 M_UNRECOGNIZED with Allow for a wrong method', async () => {
    const unknown = await call(fetch, req('GET', '/_matrix/client/v3/nothing/here', T));
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_UNRECOGNIZED');
    expect(typeof unknown.body.error).toBe('string');

    const wrong = await call(fetch, req('DELETE', '/_matrix/client/v3/sync', T));
    expect(wrong.status).toBe(405);
    expect(wrong.body.errcode).toBe('M_UNRECOGNIZED');
    expect(wrong.res.headers.get('allow')).toBe('GET, OPTIONS');

    const state = await call(fetch, req('POST', '/_matrix/client/v3/rooms/!r:x/state/m.room.name/', T));
    expect(state.status).toBe(405);
    expect(state.res.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'OPTIONS', 'PUT']);
  });

  it('prefers literal segments, and falls back to a parameter for the other methods', async () => {
    // A literal and a parameter side by side, declared for the purpose: the real table has none.
    const at = (method: 'GET' | 'PUT' | 'DELETE', path: string) =>
      endpoint({
        method,
        path,
        versions: ['v3'],
        auth: 'optional',
        handler: async ({ params }) => ({ path, params }),
      });
    const { fetch: probe } = testRouter({
      endpoints: [
        at('GET', '/thing/{id}/name'),
        at('DELETE', '/thing/{id}/{key}'),
        at('PUT', '/thing/{id}/{key}'),
      ],
    });
    const get = await call(probe, req('GET', '/_matrix/client/v3/thing/@bob:x/name'));
    expect(get.body).toEqual({ path: '/thing/{id}/name', params: { id: '@bob:x' } });
    const del = await call(probe, req('DELETE', '/_matrix/client/v3/thing/@bob:x/name', T));
    expect(del.body).toEqual({ path: '/thing/{id}/{key}', params: { id: '@bob:x', key: 'name' } });
    const patch = await call(probe, req('PATCH', '/_matrix/client/v3/thing/@bob:x/name', T));
    expect(patch.status).toBe(405);
    expect(patch.res.headers.get('allow')?.split(', ').sort()).toEqual(['DELETE', 'GET', 'OPTIONS', 'PUT']);
  });

  it('rejects invalid percent-encoding in a parameter with M_INVALID_PARAM, and in a literal with 404', async () => {
    const bad = await call(fetch, req('GET', '/_matrix/client/v3/rooms/%E0%A4%A/state', T));
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    expect(bad.body.error).toContain('roomId');
    const lit = await call(fetch, req('GET', '/_matrix/client/v3/sy%zznc', T));
    expect(lit.status).toBe(404);
    expect(lit.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('hands %00 through as a character and runs declared parameter checks', async () => {
    const nul = await call(fetch, req('GET', '/_matrix/client/v3/rooms/!r:x/state/t/a%00b', T));
    expect(nul.status).toBe(200);
    expect(nul.body.params.stateKey).toBe('a\u0000b');
    const join = await call(fetch, req('POST', '/_matrix/client/v3/join/%00room', { ...T, body: {} }));
    expect(join.status).toBe(400);
    expect(join.body.errcode).toBe('M_INVALID_PARAM');
    expect(join.body.error).toBe(
      'Path parameter "roomIdOrAlias": is neither a room ID (!…) nor a room alias (#…)',
    );
  });

  it('answers a template written with a trailing slash both with and without it', async () => {
    const rules = endpoint({
      method: 'GET',
      path: '/pushrules/',
      versions: ['r0', 'v3'],
      auth: 'none',
      handler: async () => ({ global: {} }),
    });
    const global = endpoint({
      method: 'GET',
      path: '/pushrules/global/',
      versions: ['v3'],
      auth: 'none',
      handler: async () => ({ scope: 'global' }),
    });
    const f = createRouter({ endpoints: [rules, global], resolveToken });
    for (const path of [
      '/_matrix/client/v3/pushrules/',
      '/_matrix/client/v3/pushrules',
      '/_matrix/client/r0/pushrules/',
    ]) {
      expect((await call(f, new Request(`http://h${path}`))).body).toEqual({ global: {} });
    }
    expect((await call(f, new Request('http://h/_matrix/client/v3/pushrules/global'))).body).toEqual({
      scope: 'global',
    });
    expect((await call(f, new Request('http://h/_matrix/client/v3/pushrules//'))).status).toBe(404);
  });

  it('refuses ambiguous endpoint tables when it is built', () => {
    const twice = endpoint({
      method: 'GET',
      path: '/a/{x}',
      versions: ['v3'],
      auth: 'none',
      handler: async () => ({}),
    });
    const again = endpoint({
      method: 'GET',
      path: '/a/{y}',
      versions: ['v3'],
      auth: 'none',
      handler: async () => ({}),
    });
    expect(() => createRouter({ endpoints: [twice, again], resolveToken })).toThrow(/two endpoints/);
    const badRate = endpoint({
      method: 'GET',
      path: '/b',
      versions: ['v3'],
      auth: 'none',
      rateLimit: 'nope',
      handler: async () => ({}),
    });
    expect(() => createRouter({ endpoints: [badRate], resolveToken })).toThrow(/unknown rate limit/);
    const partial = endpoint({
      method: 'GET',
      path: '/c/x{y}',
      versions: ['v3'],
      auth: 'none',
      handler: async () => ({}),
    });
    expect(() => createRouter({ endpoints: [partial], resolveToken })).toThrow(/whole segment/);
  });
});

describe('CORS and OPTIONS', () => {
  it('puts the spec CORS headers on every response, errors included', async () => {
    const { fetch } = testRouter();
    const responses = [
      await fetch(req('GET', '/_matrix/client/v3/sync', { token: 'alice-token' })), // 200
      await fetch(req('GET', '/_matrix/client/v3/nope')), // 404
      await fetch(req('DELETE', '/_matrix/client/v3/sync')), // 405
      await fetch(req('GET', '/_matrix/client/v3/sync')), // 401
      await fetch(req('POST', '/_matrix/client/v3/createRoom', { token: 'alice-token', body: '{' })), // 400
      await fetch(req('GET', '/_matrix/client/v3/buggy')), // 500
      await fetch(req('POST', '/_matrix/media/v3/upload', { token: 'alice-token', body: 'x' })), // handler Response
      await fetch(req('GET', '/somewhere/else')), // not a Matrix path
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 404, 405, 401, 400, 500, 200, 404]);
    for (const res of responses) expectCors(res);
  });

  it('answers OPTIONS on any Matrix path with 204 and no endpoint logic', async () => {
    let calls = 0;
    const counted = endpoint({
      method: 'PUT',
      path: '/rooms/{roomId}/send/{eventType}/{txnId}',
      versions: ['v3'],
      auth: 'required',
      rateLimit: 'message',
      body: v.jsonObject(),
      handler: async () => {
        calls++;
        return {};
      },
    });
    const fetch = createRouter({
      endpoints: [counted],
      resolveToken,
      rateLimits: { message: { perSecond: 1, burst: 1 } },
    });
    for (const path of [
      '/_matrix/client/v3/rooms/!r:x/send/m.room.message/1',
      '/_matrix/client/v3/unknown',
      '/.well-known/matrix/client',
    ]) {
      const res = await fetch(new Request(`http://h${path}`, { method: 'OPTIONS' }));
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
      expectCors(res);
    }
    expect(calls).toBe(0);
    // Outside /_matrix: a preflight for a path some endpoint has, a 404 otherwise.
    const other = endpoint({ method: 'GET', path: '/custom/{x}', auth: 'none', handler: async () => ({}) });
    const withOther = createRouter({ endpoints: [other], resolveToken });
    expect((await withOther(new Request('http://h/custom/1', { method: 'OPTIONS' }))).status).toBe(204);
    expect((await withOther(new Request('http://h/elsewhere', { method: 'OPTIONS' }))).status).toBe(404);
    // No token was asked for and no rate-limit token taken: the one real request still passes.
    const put = await fetch(
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/m.room.message/1', { token: 'alice-token', body: {} }),
    );
    expect(put.status).toBe(200);
    expect(calls).toBe(1);
  });

  it('uses the configured origin, and lists extra methods endpoints use', async () => {
    const patch = endpoint({
      method: 'PATCH',
      path: '/_matrix/client/v3/x',
      auth: 'none',
      handler: async () => ({}),
    });
    const fetch = createRouter({ endpoints: [patch], resolveToken, corsOrigin: 'https://app.example' });
    const res = await fetch(new Request('http://h/_matrix/client/v3/x', { method: 'PATCH' }));
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, DELETE, OPTIONS, PATCH');
  });

  it('adds CORS headers to a handler Response whose headers are immutable', async () => {
    const redirect = endpoint({
      method: 'GET',
      path: '/_matrix/client/v3/r',
      auth: 'none',
      handler: async () => Response.redirect('http://elsewhere.example/', 302),
    });
    const fetch = createRouter({ endpoints: [redirect], resolveToken });
    const res = await fetch(new Request('http://h/_matrix/client/v3/r'));
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://elsewhere.example/');
    expectCors(res);
  });
});

describe('authentication', () => {
  const { fetch } = testRouter();
  const sync = '/_matrix/client/v3/sync';

  it('401 M_MISSING_TOKEN without a token on a required endpoint', async () => {
    const { status, body } = await call(fetch, req('GET', sync));
    expect(status).toBe(401);
    expect(body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('401 M_UNKNOWN_TOKEN for an unknown token, with soft_logout only when the resolver says so', async () => {
    const unknown = await call(fetch, req('GET', sync, { token: 'nobody' }));
    expect(unknown.status).toBe(401);
    expect(unknown.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect('soft_logout' in unknown.body).toBe(false);
    const expired = await call(fetch, req('GET', sync, { token: 'expired-token' }));
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({
      errcode: 'M_UNKNOWN_TOKEN',
      error: 'Access token has expired',
      soft_logout: true,
    });
  });

  it('accepts the Bearer header (any case of the scheme) and the deprecated query parameter', async () => {
    expect((await fetch(req('GET', sync, { headers: { Authorization: 'bearer alice-token' } }))).status).toBe(
      200,
    );
    expect((await fetch(req('GET', `${sync}?access_token=alice-token`))).status).toBe(200);
    expect(
      (await fetch(req('GET', `${sync}?access_token=alice-token`, { token: 'alice-token' }))).status,
    ).toBe(200);
    const { fetch: strict } = testRouter({ allowQueryToken: false });
    const refused = await call(strict, req('GET', `${sync}?access_token=alice-token`));
    expect(refused.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('refuses malformed Authorization headers and conflicting tokens', async () => {
    for (const header of ['Basic YWxpY2U6cGFzcw==', 'Bearer', 'Bearer a b', 'alice-token']) {
      const { status, body } = await call(fetch, req('GET', sync, { headers: { Authorization: header } }));
      expect(status).toBe(401);
      expect(body.errcode).toBe('M_MISSING_TOKEN');
    }
    const mixed = await call(fetch, req('GET', `${sync}?access_token=guest-token`, { token: 'alice-token' }));
    expect(mixed.status).toBe(401);
    expect(mixed.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('keeps guests out of endpoints that do not allow them', async () => {
    const denied = await call(fetch, req('GET', '/_matrix/client/v3/joined_rooms', { token: 'guest-token' }));
    expect(denied.status).toBe(403);
    expect(denied.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    const allowed = await call(fetch, req('GET', sync, { token: 'guest-token' }));
    expect(allowed.body.guest).toBe(true);
  });

  it('optional auth: anonymous without a token, the user with one, 401 with a bad one', async () => {
    const path = '/_matrix/client/v3/profile/@bob:x/displayname';
    expect((await call(fetch, req('GET', path))).body.user).toBeNull();
    expect((await call(fetch, req('GET', path, { token: 'alice-token' }))).body.user).toBe(ALICE.userId);
    expect((await call(fetch, req('GET', path, { token: 'nobody' }))).body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('never looks at the token of an auth: none endpoint', async () => {
    const { status, body } = await call(
      fetch,
      req('POST', '/_matrix/client/v3/login', { token: 'nobody', body: { type: 'm.login.password' } }),
    );
    expect(status).toBe(200);
    expect(body.user).toBeNull();
  });
});

describe('rate limiting', () => {
  it('429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After once the bucket is empty, per client address', async () => {
    const { fetch, clock } = testRouter();
    const login = (addr: string) =>
      call(
        (r) => fetch(r, { clientAddress: addr }),
        req('POST', '/_matrix/client/v3/login', { body: { type: 'm.login.password' } }),
      );
    for (let i = 0; i < 3; i++) expect((await login('10.0.0.1')).status).toBe(200);
    const limited = await login('10.0.0.1');
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({
      errcode: 'M_LIMIT_EXCEEDED',
      error: 'Too many requests',
      retry_after_ms: 2000,
    });
    expect(limited.res.headers.get('retry-after')).toBe('2');
    expectCors(limited.res);
    expect((await login('10.0.0.2')).status).toBe(200);
    clock.advance(1999);
    expect((await login('10.0.0.1')).body.retry_after_ms).toBe(1);
    clock.advance(1);
    expect((await login('10.0.0.1')).status).toBe(200);
  });

  it('limits per user after authentication, and exempts callers the resolver marks', async () => {
    const { fetch } = testRouter();
    const send = (token: string, i: number) =>
      fetch(req('PUT', `/_matrix/client/v3/rooms/!r:x/send/m.room.message/${i}`, { token, body: {} }));
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await send('alice-token', i)).status);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
    for (let i = 0; i < 20; i++) expect((await send('as-token', i)).status).toBe(200);
    // A request without a valid token is refused before it can spend anyone's tokens.
    expect((await send('nobody', 99)).status).toBe(401);
  });
});

describe('bodies', () => {
  const { fetch } = testRouter();
  const T = { token: 'alice-token' };
  const create = (body: unknown, headers?: Record<string, string>) =>
    call(fetch, req('POST', '/_matrix/client/v3/createRoom', { ...T, body: body as BodyInit, headers }));

  it('400 M_NOT_JSON for text that is not JSON, not UTF-8, or empty', async () => {
    for (const body of ['{', 'nope', "{'a':1}", '{"a":1}x', new Uint8Array([0x7b, 0xff, 0x7d]), '']) {
      const { status, body: err } = await create(body);
      expect(status).toBe(400);
      expect(err.errcode).toBe('M_NOT_JSON');
    }
  });

  it('400 M_BAD_JSON for JSON that is not an object', async () => {
    for (const body of ['[]', '"s"', 'null', '1', 'true']) {
      const { status, body: err } = await create(body);
      expect(status).toBe(400);
      expect(err).toEqual({ errcode: 'M_BAD_JSON', error: 'Request body must be a JSON object' });
    }
  });

  it('names the offending field: M_BAD_JSON for a wrong value, M_MISSING_PARAM for a missing one', async () => {
    const vis = await create({ visibility: 'secret' });
    expect(vis.body).toEqual({
      errcode: 'M_BAD_JSON',
      error: 'JSON field "visibility": expected one of "public", "private", got "secret"',
    });
    const nested = await create({ initial_state: [{ type: 'm.room.topic', content: {} }, { content: {} }] });
    expect(nested.body).toEqual({
      errcode: 'M_MISSING_PARAM',
      error: 'JSON field "initial_state[1].type" is required',
    });
    const wrongType = await create({ invite: ['@a:x', 5] });
    expect(wrongType.body.error).toBe('JSON field "invite[1]": expected a string, got number 5');
    const nul = await create({ is_direct: null });
    expect(nul.body.errcode).toBe('M_BAD_JSON');
    const ok = await create({ initial_state: [{ type: 't', content: { a: 1 } }], unknown_key: 1 });
    expect(ok.status).toBe(200);
    expect(ok.body.body).toEqual({ initial_state: [{ type: 't', content: { a: 1 } }] });
  });

  it('does not require a Content-Type', async () => {
    const r = new Request('http://h/_matrix/client/v3/createRoom', {
      method: 'POST',
      headers: { Authorization: 'Bearer alice-token' },
      body: '{"name":"x"}',
    });
    expect((await call(fetch, r)).body.body).toEqual({ name: 'x' });
  });

  it('treats an empty body as {} only where the endpoint allows it', async () => {
    const join = await call(fetch, req('POST', '/_matrix/client/v3/join/!r:x', T));
    expect(join.status).toBe(200);
    expect(join.body.body).toEqual({});
    const send = await call(fetch, req('PUT', '/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1', T));
    expect(send.body.errcode).toBe('M_NOT_JSON');
  });

  it('413 M_TOO_LARGE from Content-Length, before reading', async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    const r = req('PUT', '/_matrix/client/v3/rooms/!r:x/send/m.room.message/t', {
      ...T,
      body: stream,
      headers: { 'Content-Length': String(10 * 1024 * 1024) },
    });
    const { status, body } = await call(fetch, r);
    expect(status).toBe(413);
    expect(body.errcode).toBe('M_TOO_LARGE');
    expect(pulled).toBeLessThanOrEqual(2); // the stream's own read-ahead at most
  });

  it('413 M_TOO_LARGE when an endless body without Content-Length passes the limit, reading no further', async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(4096).fill(0x20));
      },
    });
    const { status, body } = await call(
      fetch,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/m.room.message/t', { ...T, body: stream }),
    );
    expect(status).toBe(413);
    expect(body.errcode).toBe('M_TOO_LARGE');
    expect(pulled).toBeLessThan((64 * 1024) / 4096 + 4);
  });

  it('answers a refused token before any body error, and without waiting for the body', async () => {
    const path = '/_matrix/client/v3/rooms/!r:x/send/m.room.message/t';
    const big = { 'Content-Length': String(10 * 1024 * 1024) };
    for (const init of [
      { body: 'not json' },
      {
        body: new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(1024)) }),
        headers: big,
      },
    ]) {
      const unknown = await call(fetch, req('PUT', path, { token: 'nobody', ...init }));
      expect([unknown.status, unknown.body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    }
    // A body that never comes: the token is refused all the same.
    const never = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
    const missing = await call(fetch, req('PUT', path, { body: never }));
    expect([missing.status, missing.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it('accepts a body exactly at the limit, refuses one byte more', async () => {
    const { fetch: small } = testRouter({ maxJsonBodyBytes: 100 });
    const pad = (n: number) => `{"k":"${'a'.repeat(n - 8)}"}`;
    expect(pad(100).length).toBe(100);
    const at = await call(
      small,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/1', { ...T, body: pad(100) }),
    );
    expect(at.status).toBe(200);
    const over = await call(
      small,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/2', { ...T, body: pad(101) }),
    );
    expect(over.status).toBe(413);
  });

  it('refuses deep nesting without crashing, at the configured depth', async () => {
    const deep = `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    const { status, body } = await call(
      fetch,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/1', { ...T, body: deep }),
    );
    expect(status).toBe(400);
    expect(body.errcode).toBe('M_BAD_JSON');
    expect(body.error).toMatch(/nests deeper than 256/);

    const { fetch: shallow } = testRouter({ maxJsonDepth: 3 });
    const ok = await call(
      shallow,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/2', { ...T, body: { a: { b: 1 } } }),
    );
    expect(
      (
        await call(
          shallow,
          req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/4', { ...T, body: { a: { b: [1] } } }),
        )
      ).status,
    ).toBe(200);
    expect(ok.status).toBe(200);
    const tooDeep = await call(
      shallow,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/3', { ...T, body: { a: { b: [[1]] } } }),
    );
    expect(tooDeep.status).toBe(400);
  });

  it('refuses numbers JSON.parse turns into Infinity', async () => {
    const { body } = await call(
      fetch,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/1', { ...T, body: '{"n":1e400}' }),
    );
    expect(body.errcode).toBe('M_BAD_JSON');
  });

  it('keeps "__proto__" a plain key and never touches prototypes', async () => {
    const { body } = await call(
      fetch,
      req('PUT', '/_matrix/client/v3/rooms/!r:x/send/t/1', { ...T, body: '{"__proto__":{"polluted":1}}' }),
    );
    expect(body.body).toEqual(JSON.parse('{"__proto__":{"polluted":1}}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const kept = await create('{"power_level_content_override":{"__proto__":{"x":1}}}');
    expect(Object.keys(kept.body.body.power_level_content_override)).toEqual(['__proto__']);
  });

  it('raw bodies: handed over as bytes, with their own limit; the handler may answer with a Response', async () => {
    const ok = await call(
      fetch,
      req('POST', '/_matrix/media/v3/upload', {
        ...T,
        body: new Uint8Array(1000),
        headers: { 'Content-Type': 'image/png' },
      }),
    );
    expect(ok.body).toEqual({ size: 1000, type: 'image/png' });
    const big = await call(
      fetch,
      req('POST', '/_matrix/media/r0/upload', { ...T, body: new Uint8Array(1025) }),
    );
    expect(big.status).toBe(413);
    // Streamed with no Content-Length: counted as it arrives, stopped past the limit.
    const stream = (sizes: number[]) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const size of sizes) controller.enqueue(new Uint8Array(size));
          controller.close();
        },
      });
    const streamed = await call(
      fetch,
      req('POST', '/_matrix/media/v3/upload', { ...T, body: stream([600, 400]) }),
    );
    expect(streamed.body).toMatchObject({ size: 1000 });
    const over = await call(
      fetch,
      req('POST', '/_matrix/media/v3/upload', { ...T, body: stream([600, 600]) }),
    );
    expect([over.status, over.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
  });

  it('does not read the body of endpoints that take none', async () => {
    const { status, body } = await call(
      fetch,
      req('POST', '/_matrix/client/v3/logout', { ...T, body: 'garbage{' }),
    );
    expect(status).toBe(200);
    expect(body.body).toBeNull();
  });

  it('readBody copes with a stream that errors', async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error('connection reset'));
      },
    });
    const r = new Request('http://h/', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    await expect(readBody(r, 100)).rejects.toMatchObject({ errcode: 'M_UNKNOWN', status: 400 });
  });
});

describe('query parameters', () => {
  // The router's query machinery (defaults, bounds, JSON values), on an endpoint declared for it.
  const probe = endpoint({
    method: 'GET',
    path: '/probe/messages',
    versions: ['v3'],
    auth: 'required',
    query: q.object({
      from: q.optional(q.string()),
      dir: q.enum(['b', 'f']),
      limit: q.optional(q.int({ min: 0, max: 1000 }), 10),
      filter: q.optional(q.json(v.object({ limit: v.optional(v.int({ min: 0 })) }, { unknownKeys: 'keep' }))),
    }),
    handler: async ({ query }) => ({ query }),
  });
  const { fetch } = testRouter({ endpoints: [probe, ...testEndpoints] });
  const T = { token: 'alice-token' };
  const messages = (qs: string) => call(fetch, req('GET', `/_matrix/client/v3/probe/messages?${qs}`, T));

  it('parses typed values and defaults', async () => {
    const { body } = await messages(
      'dir=b&from=s1_2&filter=%7B%22limit%22%3A5%2C%22types%22%3A%5B%22m.room.message%22%5D%7D',
    );
    expect(body.query).toEqual({
      dir: 'b',
      from: 's1_2',
      limit: 10,
      filter: { limit: 5, types: ['m.room.message'] },
    });
    expect((await messages('dir=f&limit=0')).body.query.limit).toBe(0);
  });

  it('M_MISSING_PARAM for a missing required parameter', async () => {
    expect((await messages('limit=5')).body).toEqual({
      errcode: 'M_MISSING_PARAM',
      error: 'Query parameter "dir" is required',
    });
  });

  it('M_INVALID_PARAM for garbage', async () => {
    for (const qs of [
      'dir=x',
      'dir=b&limit=abc',
      'dir=b&limit=-1',
      'dir=b&limit=1e3',
      'dir=b&limit=1.5',
      'dir=b&limit=1001',
      'dir=b&limit=',
      'dir=b&limit=99999999999999999999',
      'dir=b&filter=%7Bbad',
      'dir=b&filter=%7B%22limit%22%3A%22x%22%7D',
    ]) {
      const { status, body } = await messages(qs);
      expect(status, qs).toBe(400);
      expect(body.errcode, qs).toBe('M_INVALID_PARAM');
    }
    const sync = await call(fetch, req('GET', '/_matrix/client/v3/sync?full_state=yes', T));
    expect(sync.body).toEqual({
      errcode: 'M_INVALID_PARAM',
      error: 'Query parameter "full_state": expected true or false, got "yes"',
    });
  });

  it('booleans and repeated parameters', async () => {
    const sync = await call(fetch, req('GET', '/_matrix/client/v3/sync?full_state=true&timeout=30000', T));
    expect(sync.body.query).toEqual({ full_state: true, timeout: 30000 });
    const join = await call(
      fetch,
      req('POST', '/_matrix/client/v3/join/!r:x?via=a.org&via=b.org', { ...T, body: {} }),
    );
    expect(join.body.query).toMatchObject({ via: ['a.org', 'b.org'] });
  });
});

describe('errors', () => {
  it('turns an unexpected exception into a sanitised 500 M_UNKNOWN and logs it', async () => {
    const { fetch, logged } = testRouter();
    const { status, body, res } = await call(fetch, req('GET', '/_matrix/client/v3/buggy'));
    expect(status).toBe(500);
    expect(body).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(logged).toHaveLength(1);
    expect(String(logged[0]?.detail)).toContain('SQLITE_CORRUPT');
  });

  it('sends JSON responses as application/json', async () => {
    const { fetch } = testRouter();
    for (const r of [
      req('GET', '/_matrix/client/v3/sync', { token: 'alice-token' }),
      req('GET', '/_matrix/client/v3/x'),
    ]) {
      expect((await fetch(r)).headers.get('content-type')).toBe('application/json');
    }
  });
});
