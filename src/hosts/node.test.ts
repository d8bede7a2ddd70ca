/**
 * The Node host answers what Node's own HTTP server would drop or answer bare: methods a
 * fetch `Request` cannot carry (TRACE, TRACK, CONNECT), methods Node's parser refuses, and
 * request lines or headers over Node's limit — each with a Matrix error body over raw sockets.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../core/json.ts';
import { createTestHomeserver, type TestHomeserver } from '../testing.ts';
import { type RunningServer, serveHttp } from './node.ts';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** Sends `head` (and nothing else) on a fresh connection; resolves with the parsed answer. */
function raw(url: string, head: string): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('error', reject);
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`no answer to ${head.slice(0, 40)}`));
    });
    socket.on('close', () => {
      const split = data.indexOf('\r\n\r\n');
      const lines = data.slice(0, split).split('\r\n');
      const status = Number((lines[0] ?? '').split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      let text = data.slice(split + 4);
      // A chunked answer (the normal path) holds one chunk here.
      if (headers['transfer-encoding'] === 'chunked') text = text.split('\r\n')[1] ?? '';
      resolve({ status, headers, body: (text ? parseJson(text) : {}) as Record<string, unknown> });
    });
  });
}

const request = (method: string, path: string, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`;

describe('the Node host at the edges of HTTP', () => {
  let hs: TestHomeserver;
  let server: RunningServer;
  beforeAll(async () => {
    hs = await createTestHomeserver();
    server = await serveHttp(hs.fetch, { port: 0 });
  });
  afterAll(async () => {
    await server.close();
    await hs.close();
  });

  it.each(['TRACE', 'TRACK', 'CONNECT', 'FOO', 'PATCH'])(
    'answers %s on a known path with 405 and Allow',
    async (method) => {
      const answer = await raw(server.url, request(method, '/_matrix/client/v3/sync'));
      expect(answer.status).toBe(405);
      expect(answer.body.errcode).toBe('M_UNRECOGNIZED');
      expect(answer.headers.allow?.split(/,\s*/)).toContain('GET');
    },
  );

  it.each(['TRACE', 'TRACK', 'CONNECT'])(
    'answers %s on an unknown path with 404 M_UNRECOGNIZED',
    async (method) => {
      const answer = await raw(server.url, request(method, '/_matrix/client/v3/no/such/thing'));
      expect(answer.status).toBe(404);
      expect(answer.body.errcode).toBe('M_UNRECOGNIZED');
    },
  );

  it('answers a URL over Node’s limit with 414 M_TOO_LARGE', async () => {
    const answer = await raw(server.url, request('GET', `/_matrix/client/v3/profile/${'a'.repeat(100_000)}`));
    expect(answer.status).toBe(414);
    expect(answer.body.errcode).toBe('M_TOO_LARGE');
  });

  it('answers a URL over the router’s limit with 414 M_TOO_LARGE', async () => {
    const answer = await raw(server.url, request('GET', `/_matrix/client/v3/profile/${'a'.repeat(10_000)}`));
    expect(answer.status).toBe(414);
    expect(answer.body.errcode).toBe('M_TOO_LARGE');
  });

  it('answers headers over Node’s limit with 431 M_TOO_LARGE', async () => {
    const answer = await raw(
      server.url,
      request('GET', '/_matrix/client/versions', `X-Big: ${'b'.repeat(20_000)}\r\n`),
    );
    expect(answer.status).toBe(431);
    expect(answer.body.errcode).toBe('M_TOO_LARGE');
  });

  it('answers broken framing with a Matrix error', async () => {
    const answer = await raw(
      server.url,
      'GET /_matrix/client/versions HTTP/1.1\r\nContent-Length: x\r\n\r\n',
    );
    expect(answer.status).toBe(400);
    expect(answer.body.errcode).toBe('M_UNKNOWN');
  });

  it('reads a small declared body whole and answers a one-piece body with its length, unchunked', async () => {
    const body = '{"not json';
    const answer = await raw(
      server.url,
      request(
        'POST',
        '/_matrix/client/v3/login',
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`,
      ) + body,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.errcode).toBe('M_NOT_JSON');
    expect(answer.headers['transfer-encoding']).toBeUndefined();
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(answer.body)));
  });

  it('answers a request whose client left before its declared body came as a broken body (400), and goes on', async () => {
    const logged: { path: string; status: number }[] = [];
    let seen = () => {};
    const answered = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const logging = await serveHttp(hs.fetch, {
      port: 0,
      onRequest: (entry) => {
        logged.push(entry);
        seen();
      },
    });
    try {
      const { hostname, port } = new URL(logging.url);
      const socket = connect(Number(port), hostname, () => {
        socket.write(`${request('POST', '/_matrix/client/v3/login', 'Content-Length: 100\r\n')}{"type":`);
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('error', () => {});
      await answered;
      expect(logged).toMatchObject([{ path: '/_matrix/client/v3/login', status: 400 }]);
      const answer = await raw(logging.url, request('GET', '/_matrix/client/versions'));
      expect(answer.status).toBe(200);
    } finally {
      await logging.close();
    }
  });

  it('still answers ordinary requests', async () => {
    const answer = await raw(server.url, request('GET', '/_matrix/client/versions'));
    expect(answer.status).toBe(200);
    expect(answer.body.versions).toContain('v1.11');
  });
});
