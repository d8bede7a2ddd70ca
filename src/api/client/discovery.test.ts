import { describe, expect, it } from 'vitest';
import { createRouter } from '../http.ts';
import { DEFAULT_VERSIONS, type DiscoveryConfig, discoveryEndpoints, SPEC_VERSIONS } from './discovery.ts';

const router = (config: DiscoveryConfig = {}) =>
  createRouter({
    endpoints: discoveryEndpoints(config),
    resolveToken: async (t) => (t === 'good' ? { userId: '@a:x', deviceId: 'D', isGuest: false } : null),
  });

describe('GET /_matrix/client/versions', () => {
  it('claims r0.0.0 … v1.16 by default, in order, never v1.0', async () => {
    const res = await router()(new Request('http://h/_matrix/client/versions'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = await res.json();
    expect(body.versions[0]).toBe('r0.0.0');
    expect(body.versions.at(-1)).toBe('v1.16');
    expect(body.versions).toContain('r0.6.1');
    expect(body.versions).toContain('v1.1');
    expect(body.versions).not.toContain('v1.0');
    expect(body.versions).toHaveLength(9 + 16);
    expect(body.versions).toEqual(DEFAULT_VERSIONS);
    expect(body.unstable_features).toEqual({});
  });

  it('is configurable', async () => {
    const res = await router({
      versions: ['v1.11', 'v1.12'],
      unstableFeatures: { 'org.matrix.msc3916.stable': true },
    })(new Request('http://h/_matrix/client/versions'));
    expect(await res.json()).toEqual({
      versions: ['v1.11', 'v1.12'],
      unstable_features: { 'org.matrix.msc3916.stable': true },
    });
    expect(SPEC_VERSIONS.at(-1)).toBe('v1.19');
  });

  it('takes an optional token, refusing an unknown one', async () => {
    const fetch = router();
    const ok = await fetch(
      new Request('http://h/_matrix/client/versions', { headers: { Authorization: 'Bearer good' } }),
    );
    expect(ok.status).toBe(200);
    const bad = await fetch(
      new Request('http://h/_matrix/client/versions', { headers: { Authorization: 'Bearer bad' } }),
    );
    expect(bad.status).toBe(401);
    expect((await bad.json()).errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('has no versioned or trailing-slash variants', async () => {
    const fetch = router();
    for (const path of [
      '/_matrix/client/v3/versions',
      '/_matrix/client/r0/versions',
      '/_matrix/client/versions/',
    ]) {
      expect((await fetch(new Request(`http://h${path}`))).status).toBe(404);
    }
  });
});

describe('GET /.well-known/matrix/client', () => {
  it('gives the configured base URL and identity server, with CORS', async () => {
    const res = await router({
      baseUrl: 'https://matrix.example.org',
      identityServer: 'https://id.example.org',
      wellKnownExtra: { 'org.example.app': { x: 1 } },
    })(new Request('https://example.org/.well-known/matrix/client'));
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({
      'm.homeserver': { base_url: 'https://matrix.example.org' },
      'm.identity_server': { base_url: 'https://id.example.org' },
      'org.example.app': { x: 1 },
    });
  });

  it('defaults to the origin the request came to; null publishes nothing (404)', async () => {
    const res = await router()(new Request('http://localhost:8008/.well-known/matrix/client'));
    expect(await res.json()).toEqual({ 'm.homeserver': { base_url: 'http://localhost:8008' } });
    const none = await router({ baseUrl: null })(
      new Request('http://localhost:8008/.well-known/matrix/client'),
    );
    expect(none.status).toBe(404);
    expect((await none.json()).errcode).toBe('M_NOT_FOUND');
  });

  it('answers the preflight and refuses other methods with 405', async () => {
    const fetch = router();
    const pre = await fetch(new Request('http://h/.well-known/matrix/client', { method: 'OPTIONS' }));
    expect(pre.status).toBe(204);
    const post = await fetch(
      new Request('http://h/.well-known/matrix/client', { method: 'POST', body: '{}' }),
    );
    expect(post.status).toBe(405);
  });
});
