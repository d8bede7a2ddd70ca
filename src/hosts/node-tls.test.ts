/**
 * `serveHttp` with a certificate: the same host over HTTPS (what `hearth serve --tls-cert`
 * runs), answering through `hs.fetch` with https:// request URLs, refusing clients that do not
 * trust the certificate at the TLS layer.
 */
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../core/json.ts';
import { createTestHomeserver, type TestHomeserver } from '../testing.ts';
import { createTestCa } from '../transport/https/testing-tls.ts';
import { type RunningServer, serveHttp } from './node.ts';

let hs: TestHomeserver;
let running: RunningServer;
const ca = createTestCa();

beforeAll(async () => {
  hs = await createTestHomeserver();
  running = await serveHttp(hs.fetch, { port: 0, tls: ca.issue(['DNS:localhost', 'IP:127.0.0.1']) });
});

afterAll(async () => {
  await running.close();
  await hs.close();
});

function get(path: string, trusted: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const { port } = new URL(running.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: trusted }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: parseJson(text) as Record<string, unknown> }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveHttp over TLS', () => {
  it('serves https:// and answers through hs.fetch', async () => {
    expect(running.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { status, body } = await get('/_matrix/client/versions', ca.cert);
    expect(status).toBe(200);
    expect(Array.isArray(body.versions)).toBe(true);
    const unknown = await get('/_matrix/federation/v1/nothing', ca.cert);
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_UNRECOGNIZED']);
  });

  it('is refused by a client that does not trust its CA', async () => {
    await expect(get('/_matrix/client/versions', createTestCa('Other CA').cert)).rejects.toThrow(
      /certificate/i,
    );
  });
});
