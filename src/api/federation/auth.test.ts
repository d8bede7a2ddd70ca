import { afterEach, describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../core/base64.ts';
import type { JsonObject } from '../../core/canonical-json.ts';
import { type SigningKey, signingKeyFromSeed } from '../../core/crypto.ts';
import { signedBytes } from '../../core/signing.ts';
import { buildFederationRequest, createFederationClient } from '../../federation/client.ts';
import { createFederatedServers, type FederatedNetwork } from '../../federation/testing.ts';
import { v } from '../endpoint.ts';
import { createRouter } from '../http.ts';
import { federationEndpoint } from './auth.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const PROFILE = '/_matrix/federation/v1/query/profile?user_id=%40alice%3Ab.test';

/** A, B and C on one network; alice is a user of B. */
async function setUp(): Promise<FederatedNetwork> {
  const n = await createFederatedServers(['a.test', 'b.test', 'c.test']);
  await n.servers['b.test']?.hs.createUser('alice');
  return n;
}

const keyOf = (net: FederatedNetwork, name: string) =>
  net.servers[name]?.services.ctx.signingKey as SigningKey;

/** Sends `request` from A to B over the network; returns status and body. */
async function send(net: FederatedNetwork, request: Request) {
  const response = await net.network.transport('a.test').send('b.test', request);
  return { status: response.status, body: (await response.json()) as JsonObject };
}

/** A signed GET from A to B with the Authorization header replaced by `header(signed)`. */
async function withHeader(
  net: FederatedNetwork,
  header: (signed: string) => string | null,
  target = PROFILE,
) {
  const signed = await buildFederationRequest('a.test', keyOf(net, 'a.test'), 'b.test', {
    method: 'GET',
    target,
  });
  const headers = new Headers(signed.headers);
  const value = header(signed.headers.get('authorization') as string);
  if (value === null) headers.delete('authorization');
  else headers.set('authorization', value);
  return send(net, new Request(signed.url, { headers }));
}

const UNAUTHORIZED = [401, 'M_UNAUTHORIZED'];

describe('X-Matrix authentication of incoming requests', () => {
  it("accepts a request signed by A, fetching and caching A's key", async () => {
    net = await setUp();
    const client = createFederationClient({
      serverName: 'a.test',
      signingKey: keyOf(net, 'a.test'),
      transport: net.network.transport('a.test'),
    });
    const answer = await client.request('b.test', { method: 'GET', target: PROFILE });
    expect(answer).toEqual({ displayname: 'alice' });
    const field = await client.request('b.test', { method: 'GET', target: `${PROFILE}&field=displayname` });
    expect(field).toEqual({ displayname: 'alice' });
    // B fetched A's key once and answered the second request from its cache.
    expect(net.network.log.filter((r) => r.from === 'b.test').map((r) => `${r.to} ${r.target}`)).toEqual([
      'a.test /_matrix/key/v2/server',
    ]);
    const cached = await net.servers['b.test']?.hs.store.federation.getServerKeys('a.test');
    expect(cached?.map((k) => k.keyId)).toEqual([keyOf(net, 'a.test').keyId]);
  });

  it('accepts the header without destination, as older servers send it', async () => {
    net = await setUp();
    const aKey = keyOf(net, 'a.test');
    // Without destination in the header, the signed JSON has none either.
    const sig = encodeBase64(await aKey.sign(signedBytes({ method: 'GET', uri: PROFILE, origin: 'a.test' })));
    const { status } = await withHeader(net, () => `X-Matrix origin=a.test,key="${aKey.keyId}",sig="${sig}"`);
    expect(status).toBe(200);
  });

  it('refuses a request for another destination', async () => {
    net = await setUp();
    const signed = await buildFederationRequest('a.test', keyOf(net, 'a.test'), 'c.test', {
      method: 'GET',
      target: PROFILE,
    });
    const { status, body } = await send(net, signed);
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('refuses a key the origin does not have', async () => {
    net = await setUp();
    const { status, body } = await withHeader(net, (h) => h.replace(/key="[^"]+"/, 'key="ed25519:nope"'));
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('refuses a signature made with another key under the right key ID', async () => {
    net = await setUp();
    const forger = await signingKeyFromSeed(new Uint8Array(32).fill(1), keyOf(net, 'a.test').keyId.slice(8));
    const forged = await buildFederationRequest('a.test', forger, 'b.test', {
      method: 'GET',
      target: PROFILE,
    });
    const { status, body } = await send(net, forged);
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('refuses a request whose target was changed after signing', async () => {
    net = await setUp();
    await net.servers['b.test']?.hs.createUser('bob');
    const signed = await buildFederationRequest('a.test', keyOf(net, 'a.test'), 'b.test', {
      method: 'GET',
      target: PROFILE,
    });
    const tampered = new Request(signed.url.replace('alice', 'bob'), { headers: signed.headers });
    const { status, body } = await send(net, tampered);
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('refuses an origin whose keys cannot be found', async () => {
    net = await setUp();
    const stranger = await signingKeyFromSeed(new Uint8Array(32).fill(2), 'x');
    const signed = await buildFederationRequest('nowhere.test', stranger, 'b.test', {
      method: 'GET',
      target: PROFILE,
    });
    const { status, body } = await send(net, signed);
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it.each([
    ['no Authorization header', () => null],
    ['a bearer token', () => 'Bearer abc'],
    ['a header cut short', (h: string) => h.slice(0, h.indexOf(',sig='))],
    ['an unterminated quote', (h: string) => h.slice(0, -1)],
    ['a signature that is not base64', (h: string) => h.replace(/sig="[^"]+"/, 'sig="!!!"')],
    ['an origin that is no server name', (h: string) => h.replace('origin="a.test"', 'origin="a test"')],
  ])('refuses %s', async (_why, header) => {
    net = await setUp();
    const { status, body } = await withHeader(net, header);
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('refuses a signature once the origin key is past its validity', async () => {
    net = await setUp();
    const { status } = await withHeader(net, (h) => h);
    expect(status).toBe(200);
    // A is now gone; B's cached key of A expires a day after it was fetched.
    net.network.block('b.test', 'a.test');
    net.clock.advance(24 * 60 * 60 * 1000 + 1);
    const later = await withHeader(net, (h) => h);
    expect([later.status, later.body.errcode]).toEqual(UNAUTHORIZED);
  });
});

describe('federationEndpoint with a body', () => {
  /** A router on B holding one signed POST endpoint that echoes the body it was given. */
  async function echoRouter(net: FederatedNetwork) {
    const b = net.servers['b.test'];
    if (!b) throw new Error('no b');
    return createRouter({
      endpoints: [
        federationEndpoint(
          { serverName: 'b.test', keys: b.federation.keys, clock: net.clock },
          {
            method: 'POST',
            path: '/echo/{thing}',
            versions: ['unstable'],
            body: v.object({ n: v.int() }),
            handler: async ({ body, origin, params }) => ({ origin, n: body.n, thing: params.thing }),
          },
        ),
      ],
      resolveToken: async () => null,
    });
  }

  async function post(net: FederatedNetwork, body: JsonObject, sentBody = JSON.stringify(body)) {
    const signed = await buildFederationRequest('a.test', keyOf(net, 'a.test'), 'b.test', {
      method: 'POST',
      target: '/_matrix/federation/unstable/echo/x',
      body,
    });
    const router = await echoRouter(net);
    const response = await router(
      new Request(signed.url, { method: 'POST', headers: signed.headers, body: sentBody }),
    );
    return { status: response.status, body: (await response.json()) as JsonObject };
  }

  it('hands the handler the checked body and the origin', async () => {
    net = await setUp();
    expect(await post(net, { n: 1 })).toEqual({ status: 200, body: { origin: 'a.test', n: 1, thing: 'x' } });
  });

  it('accepts a body holding numbers strict canonical JSON refuses (old room versions, client content)', async () => {
    net = await setUp();
    const { status, body } = await post(net, { n: 1, f: 0.5, big: 2 ** 60 } as unknown as JsonObject);
    expect([status, body.origin]).toEqual([200, 'a.test']);
  });

  it('refuses a body changed after signing', async () => {
    net = await setUp();
    const { status, body } = await post(net, { n: 1 }, JSON.stringify({ n: 2 }));
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });

  it('checks the signature before the shape of the body', async () => {
    net = await setUp();
    expect((await post(net, { n: 'one' })).body.errcode).toBe('M_BAD_JSON');
    const { status, body } = await post(net, { n: 1 }, JSON.stringify({ n: 'one' }));
    expect([status, body.errcode]).toEqual(UNAUTHORIZED);
  });
});
