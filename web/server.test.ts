import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStaticServer, serveStatic } from './server.ts';

/** A raw GET (fetch would normalise `..` away before it reaches the server). */
function get(
  url: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = request({ hostname, port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the demo static server', () => {
  const parent = mkdtempSync(join(tmpdir(), 'hearth-static-'));
  const root = join(parent, 'web');
  let server: RunningStaticServer;

  beforeAll(async () => {
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><p>app</p>');
    writeFileSync(join(root, 'sw.js'), 'self.x = 1;');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'export {};');
    writeFileSync(join(root, 'assets', 'index-abc123.css'), 'p{}');
    writeFileSync(join(parent, 'secret.txt'), 'not served');
    server = await serveStatic({ root });
  });
  afterAll(async () => {
    await server.close();
    rmSync(parent, { recursive: true, force: true });
  });

  it('listens on loopback', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves files with their MIME types', async () => {
    const index = await get(server.url, '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.body).toContain('<p>app</p>');
    expect((await get(server.url, '/assets/index-abc123.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
    expect((await get(server.url, '/assets/index-abc123.js')).headers['content-type']).toBe(
      'text/javascript; charset=utf-8',
    );
  });

  it('never lets the worker script be cached, and lets it control the whole origin', async () => {
    const sw = await get(server.url, '/sw.js');
    expect(sw.status).toBe(200);
    expect(sw.headers['cache-control']).toBe('no-cache');
    expect(sw.headers['service-worker-allowed']).toBe('/');
    expect((await get(server.url, '/')).headers['cache-control']).toBe('no-cache');
    expect((await get(server.url, '/assets/index-abc123.js')).headers['cache-control']).toContain(
      'immutable',
    );
  });

  it('falls back to index.html for app paths, but not for files or Matrix paths', async () => {
    const app = await get(server.url, '/rooms/abc');
    expect(app.status).toBe(200);
    expect(app.body).toContain('<p>app</p>');
    expect((await get(server.url, '/missing.js')).status).toBe(404);
    const matrix = await get(server.url, '/_matrix/client/versions');
    expect(matrix.status).toBe(404);
    expect(JSON.parse(matrix.body).errcode).toBe('M_UNRECOGNIZED');
    expect((await get(server.url, '/.well-known/matrix/client')).headers['content-type']).toContain(
      'application/json',
    );
  });

  it('serves nothing outside its folder', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const res = await get(server.url, path);
      expect(res.body, path).not.toContain('not served');
    }
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await get(server.url, '/sw.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String('self.x = 1;'.length));
    const post = await get(server.url, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves the relays a P2P page uses as /p2p.json, and nothing there without one', async () => {
    expect((await get(server.url, '/p2p.json')).status).toBe(404);
    const relays = ['/ip4/127.0.0.1/tcp/9091/ws/p2p/12D3KooWExample'];
    const withRelay = await serveStatic({ root, relays });
    try {
      const answer = await get(withRelay.url, '/p2p.json');
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(answer.body)).toEqual({ relays });
    } finally {
      await withRelay.close();
    }
  });
});
