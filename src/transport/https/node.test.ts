/**
 * Federation over real HTTPS on loopback: certificates from a CA made for this run, a
 * node:https server on 127.0.0.1 (ephemeral ports), names mapped to 127.0.0.1 by an injected
 * lookup, SRV answers injected. Nothing leaves the machine.
 */
import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import { createFederation } from '../../federation/index.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';
import type { SrvRecord } from './discovery.ts';
import { createNodeHttpsTransport, type HttpsListener, listenHttps } from './node.ts';
import { createTestCa, type TestCa } from './testing-tls.ts';

const LOOPBACK_NAMES = [
  'localhost',
  'example.test',
  'delegated.test',
  'srv.test',
  'target.test',
  'loop.test',
];

/** Every test name is 127.0.0.1; anything else does not exist. */
const lookup = ((hostname: string, options: unknown, callback?: unknown) => {
  const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
  const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
  if (!LOOPBACK_NAMES.includes(hostname) && hostname !== '127.0.0.1') {
    const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    cb(err);
    return;
  }
  if (all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}) as LookupFunction;

let trusted: TestCa;
let main: HttpsListener;
let wrongName: HttpsListener;
let untrusted: HttpsListener;
let stranger: TestCa;
/** The Host header and path of every request the main server received. */
const seen: string[] = [];
let b: TestHomeserver;
const transports: Array<{ close(): void }> = [];

function transport(options: Parameters<typeof createNodeHttpsTransport>[0] = {}) {
  const t = createNodeHttpsTransport({
    ca: trusted.cert,
    lookup,
    wellKnownPort: main.port,
    srv: {
      async resolveSrv(name): Promise<SrvRecord[]> {
        return name === '_matrix-fed._tcp.srv.test'
          ? [{ name: 'target.test', port: main.port, priority: 0, weight: 0 }]
          : [];
      },
    },
    ...options,
  });
  transports.push(t);
  return t;
}

beforeAll(async () => {
  trusted = createTestCa();
  const leaf = trusted.issue([...LOOPBACK_NAMES.map((n) => `DNS:${n}`), 'IP:127.0.0.1']);
  let hs: TestHomeserver | undefined;
  main = await listenHttps(
    async (request) => {
      const url = new URL(request.url);
      const host = request.headers.get('host') ?? '';
      seen.push(`${host} ${url.pathname}`);
      if (url.pathname === '/.well-known/matrix/server') {
        if (host === 'example.test') return Response.json({ 'm.server': `delegated.test:${main.port}` });
        if (host === 'loop.test')
          return Response.redirect('https://loop.test/.well-known/matrix/server', 302);
        return Response.json({ errcode: 'M_NOT_FOUND', error: 'no delegation' }, { status: 404 });
      }
      if (url.pathname === '/slow') return new Promise<Response>(() => {});
      if (!hs) return new Response('not ready', { status: 503 });
      return hs.fetch(request);
    },
    { ...leaf },
  );
  // B reaches others over HTTPS too: it fetches the key of whoever signs a request to it.
  b = await createTestHomeserver({
    serverName: `localhost:${main.port}`,
    federation: { transport: transport() },
  });
  hs = b;
  wrongName = await listenHttps(async () => Response.json({}), trusted.issue(['DNS:wrong.test']));
  stranger = createTestCa('Someone else');
  untrusted = await listenHttps(
    async () => Response.json({}),
    stranger.issue(['DNS:localhost', 'IP:127.0.0.1']),
  );
});

afterAll(async () => {
  for (const t of transports) t.close();
  await Promise.all([main?.close(), wrongName?.close(), untrusted?.close()]);
  await b?.close();
});

const VERSION = '/_matrix/federation/v1/version';
const get = (path: string) => new Request(`https://placeholder${path}`);

describe('HTTPS federation transport on loopback', () => {
  it("fetches a server's keys by its name with an explicit port (Host with the port, certificate for the hostname)", async () => {
    const a = await createTestHomeserver({
      serverName: 'a.test',
      federation: { transport: transport() },
    });
    try {
      const bKey = b.internals.ctx.signingKey;
      const { keys } = createFederation(a.internals.ctx, { transport: transport() });
      seen.length = 0;
      const found = await keys.verifyKeys(`localhost:${main.port}`, [bKey.keyId], Date.now());
      expect(found.get(bKey.keyId)).toEqual(bKey.publicKey);
      expect(seen).toEqual([`localhost:${main.port} /_matrix/key/v2/server`]);
      expect((await a.store.federation.getServerKeys(`localhost:${main.port}`)).length).toBe(1);
    } finally {
      await a.close();
    }
  });

  it("carries a signed request between two homeservers, each fetching the other's key over HTTPS", async () => {
    let aHs: TestHomeserver | undefined;
    const aListener = await listenHttps(
      async (request) => aHs?.fetch(request) ?? new Response('not ready', { status: 503 }),
      trusted.issue(['DNS:localhost']),
    );
    try {
      const aName = `localhost:${aListener.port}`;
      const aTransport = transport();
      aHs = await createTestHomeserver({ serverName: aName, federation: { transport: aTransport } });
      await b.createUser('carol');
      const { client } = createFederation(aHs.internals.ctx, { transport: aTransport });
      const profile = await client.request(`localhost:${main.port}`, {
        method: 'GET',
        target: `/_matrix/federation/v1/query/profile?user_id=${encodeURIComponent(`@carol:localhost:${main.port}`)}`,
      });
      expect(profile).toEqual({ displayname: 'carol' });
      // B fetched A's key from A's own HTTPS listener to check the signature.
      expect((await b.store.federation.getServerKeys(aName)).map((k) => k.keyId)).toEqual([
        aHs.internals.ctx.signingKey.keyId,
      ]);
    } finally {
      await aHs?.close();
      await aListener.close();
    }
  });

  it('reaches an IP literal with its port, the certificate checked for the IP', async () => {
    seen.length = 0;
    const response = await transport().send(`127.0.0.1:${main.port}`, get(VERSION));
    expect(response.status).toBe(200);
    expect(seen).toEqual([`127.0.0.1:${main.port} ${VERSION}`]);
  });

  it('follows .well-known delegation to the delegated name and port', async () => {
    seen.length = 0;
    const response = await transport().send('example.test', get(VERSION));
    expect(((await response.json()) as JsonObject).server).toMatchObject({ name: 'Hearth' });
    expect(seen).toEqual([
      `example.test /.well-known/matrix/server`,
      `delegated.test:${main.port} ${VERSION}`,
    ]);
  });

  it('falls back to SRV when .well-known fails: SRV target connected, Host and certificate the server name', async () => {
    seen.length = 0;
    const response = await transport().send('srv.test', get(VERSION));
    expect(response.status).toBe(200);
    expect(seen).toEqual(['srv.test /.well-known/matrix/server', `srv.test ${VERSION}`]);
  });

  it('gives up on a .well-known redirect loop and goes on to SRV and port 8448', async () => {
    seen.length = 0;
    // loop.test has no SRV record, so the last step is port 8448, where nothing listens.
    await expect(transport().send('loop.test', get(VERSION))).rejects.toMatchObject({
      name: 'TransportError',
      code: 'UNREACHABLE',
    });
    // The redirect back to the same URL is seen for a loop without following it.
    expect(seen).toEqual(['loop.test /.well-known/matrix/server']);
  });

  it('refuses a certificate for another name', async () => {
    await expect(transport().send(`localhost:${wrongName.port}`, get(VERSION))).rejects.toMatchObject({
      name: 'TransportError',
      code: 'TLS',
    });
  });

  it('refuses a certificate from an untrusted CA', async () => {
    await expect(transport().send(`localhost:${untrusted.port}`, get(VERSION))).rejects.toMatchObject({
      name: 'TransportError',
      code: 'TLS',
    });
    // Trusted once the operator adds that CA (`ca`, on top of the system's).
    const withCa = transport({ ca: [trusted.cert, stranger.cert] });
    expect((await withCa.send(`localhost:${untrusted.port}`, get(VERSION))).status).toBe(200);
  });

  it('stops reading an answer over the size limit', async () => {
    await expect(
      transport({ maxResponseBytes: 100 }).send(`localhost:${main.port}`, get('/_matrix/key/v2/server')),
    ).rejects.toMatchObject({ name: 'TransportError', code: 'TOO_LARGE' });
  });

  it('times out a server that does not answer', async () => {
    await expect(
      transport({ timeoutMs: 200 }).send(`localhost:${main.port}`, get('/slow')),
    ).rejects.toMatchObject({
      name: 'TransportError',
      code: 'TIMEOUT',
    });
  });

  it('sends a signed POST with its body', async () => {
    const response = await transport().send(
      `localhost:${main.port}`,
      new Request(`https://x/_matrix/key/v2/query`, {
        method: 'POST',
        body: JSON.stringify({ server_keys: { [`localhost:${main.port}`]: {} } }),
      }),
    );
    const body = (await response.json()) as { server_keys: JsonObject[] };
    expect(body.server_keys.map((k) => k.server_name)).toEqual([`localhost:${main.port}`]);
  });
});
