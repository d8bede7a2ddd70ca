import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/canonical-json.ts';
import { type SigningKey, signingKeyFromSeed } from '../core/crypto.ts';
import { signJson, verifyJson } from '../core/signing.ts';
import { createFederation } from './index.ts';
import { MAX_KEY_VALIDITY_MS, OWN_KEY_VALIDITY_MS } from './server-keys.ts';
import { createFederatedServers, type FederatedNetwork } from './testing.ts';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const keyOf = (net: FederatedNetwork, name: string): SigningKey =>
  net.servers[name]?.services.ctx.signingKey as SigningKey;

async function getJson(net: FederatedNetwork, server: string, path: string, init?: RequestInit) {
  const hs = net.servers[server]?.hs;
  if (!hs) throw new Error(`no ${server}`);
  const response = await hs.fetch(new Request(`https://${server}${path}`, init));
  return { status: response.status, body: (await response.json()) as JsonObject };
}

describe('GET /_matrix/key/v2/server', () => {
  it("publishes this server's key, self-signed, valid for a day", async () => {
    net = await createFederatedServers(['b.test']);
    const { status, body } = await getJson(net, 'b.test', '/_matrix/key/v2/server');
    expect(status).toBe(200);
    const key = keyOf(net, 'b.test');
    expect(body).toMatchObject({
      server_name: 'b.test',
      verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
      old_verify_keys: {},
      valid_until_ts: net.clock.now() + OWN_KEY_VALIDITY_MS,
    });
    await verifyJson(body, 'b.test', { [key.keyId]: key.publicKey });
  });
});

describe('server keys (KeyStore)', () => {
  it("fetches a server's keys directly, caches them, and answers later lookups from the store", async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test'];
    const bKey = keyOf(net, 'b.test');
    const found = await a?.federation.keys.verifyKeys('b.test', [bKey.keyId], net.clock.now());
    expect(found?.get(bKey.keyId)).toEqual(bKey.publicKey);
    const cached = await a?.hs.store.federation.getServerKeys('b.test');
    expect(cached?.map((k) => [k.keyId, k.key, k.expiredAt])).toEqual([
      [bKey.keyId, bKey.publicKeyBase64, null],
    ]);
    expect(cached?.[0]?.response?.server_name).toBe('b.test');

    const fetches = net.network.log.length;
    net.network.block('a.test', 'b.test');
    // A fresh KeyStore over the same store: the answer comes from the cache, not the network.
    const again = createFederation(a?.services.ctx as never, { transport: net.network.transport('a.test') });
    expect((await again.keys.verifyKeys('b.test', [bKey.keyId], net.clock.now())).has(bKey.keyId)).toBe(true);
    expect(net.network.log.length).toBe(fetches);
  });

  it("keeps a server's key rows read from the store for a minute, answering only for valid keys it holds", async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test'];
    if (!a) throw new Error('no a.test');
    const bKey = keyOf(net, 'b.test');
    const federation = a.hs.store.federation;
    let reads = 0;
    const counted = {
      ...a.services.ctx,
      store: {
        federation: {
          ...federation,
          getServerKeys: (...args: Parameters<typeof federation.getServerKeys>) => {
            reads++;
            return federation.getServerKeys(...args);
          },
          putServerKeys: federation.putServerKeys.bind(federation),
        },
      },
    };
    const { keys } = createFederation(counted as never, { transport: net.network.transport('a.test') });
    const lookup = () => keys.verifyKeys('b.test', [bKey.keyId], net?.clock.now() ?? 0);
    expect((await lookup()).get(bKey.keyId)).toEqual(bKey.publicKey);
    const afterFetch = reads;
    // A transaction's worth of events from b.test: no read of the store for any of them.
    for (let i = 0; i < 50; i++) expect((await lookup()).has(bKey.keyId)).toBe(true);
    expect(reads).toBe(afterFetch);
    // A key ID not kept reads the store; a minute later the kept rows are read again.
    expect((await keys.verifyKeys('b.test', ['ed25519:new'], net.clock.now())).size).toBe(0);
    expect(reads).toBeGreaterThan(afterFetch);
    const before = reads;
    net.clock.advance(61_000);
    expect((await lookup()).has(bKey.keyId)).toBe(true);
    expect(reads).toBe(before + 1);
    // Past the key's validity the kept row does not answer: the store is asked.
    expect((await keys.verifyKeys('b.test', [bKey.keyId], net.clock.now() + 30 * DAY)).size).toBe(0);
    expect(reads).toBeGreaterThan(before + 1);
  });

  it("answers this server's own key without a fetch, and unknown key IDs with nothing", async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = net.servers['a.test'];
    const aKey = keyOf(net, 'a.test');
    const own = await a?.federation.keys.verifyKeys('a.test', [aKey.keyId, 'ed25519:other'], 0);
    expect([...(own?.keys() ?? [])]).toEqual([aKey.keyId]);
    expect((await a?.federation.keys.verifyKeys('b.test', ['ed25519:nope'], net.clock.now()))?.size).toBe(0);
    expect((await a?.federation.keys.verifyKeys('nowhere.test', ['ed25519:x'], net.clock.now()))?.size).toBe(
      0,
    );
    expect(net.network.log.filter((r) => r.from === 'a.test').map((r) => r.to)).toEqual([
      'b.test',
      'nowhere.test',
    ]);
  });

  it('does not ask a silent server again within the refetch interval', async () => {
    net = await createFederatedServers(['a.test']);
    const keys = net.servers['a.test']?.federation.keys;
    await keys?.verifyKeys('gone.test', ['ed25519:x'], net.clock.now());
    await keys?.verifyKeys('gone.test', ['ed25519:x'], net.clock.now());
    expect(net.network.log.length).toBe(1);
    net.clock.advance(61_000);
    await keys?.verifyKeys('gone.test', ['ed25519:x'], net.clock.now());
    expect(net.network.log.length).toBe(2);
  });

  it('falls back to a notary when the server does not answer, and keeps only the origin signature', async () => {
    net = await createFederatedServers(['a.test', 'b.test', 'c.test'], {
      notaries: [{ serverName: 'c.test' }],
    });
    net.network.block('a.test', 'b.test');
    const bKey = keyOf(net, 'b.test');
    const a = net.servers['a.test'];
    const found = await a?.federation.keys.verifyKeys('b.test', [bKey.keyId], net.clock.now());
    expect(found?.get(bKey.keyId)).toEqual(bKey.publicKey);
    expect(net.network.log.map((r) => `${r.from}→${r.to} ${r.method} ${r.target}`)).toEqual([
      'a.test→b.test GET /_matrix/key/v2/server',
      'a.test→c.test POST /_matrix/key/v2/query',
      'c.test→b.test GET /_matrix/key/v2/server',
      // C's own key, to check C's signature on its answer.
      'a.test→c.test GET /_matrix/key/v2/server',
    ]);
    const [stored] = (await a?.hs.store.federation.getServerKeys('b.test')) ?? [];
    expect(Object.keys(stored?.response?.signatures as object)).toEqual(['b.test']);
  });

  it("refuses a notary's answer not signed with the notary's pinned key", async () => {
    const wrong = await signingKeyFromSeed(new Uint8Array(32).fill(9), 'c1');
    net = await createFederatedServers(['a.test', 'b.test', 'c.test']);
    net.network.block('a.test', 'b.test');
    const a = net.servers['a.test'];
    const cKey = keyOf(net, 'c.test');
    const pinned = (key: SigningKey) =>
      createFederation(a?.services.ctx as never, {
        transport: net?.network.transport('a.test'),
        notaries: [{ serverName: 'c.test', verifyKeys: { [cKey.keyId]: key.publicKeyBase64 } }],
      }).keys;
    const bKey = keyOf(net, 'b.test');
    expect((await pinned(wrong).verifyKeys('b.test', [bKey.keyId], net.clock.now())).size).toBe(0);
    expect((await pinned(cKey).verifyKeys('b.test', [bKey.keyId], net.clock.now())).size).toBe(1);
  });

  describe('validity', () => {
    /** A key server on the network publishing `publish(now, its key)`, self-signed. */
    async function keyServer(
      net: FederatedNetwork,
      name: string,
      publish: (now: number, key: SigningKey) => JsonObject,
    ): Promise<SigningKey> {
      const key = await signingKeyFromSeed(new Uint8Array(32).fill(3), 'current');
      net.network.serve(name, async () =>
        Response.json(await signJson({ server_name: name, ...publish(net.clock.now(), key) }, name, key)),
      );
      return key;
    }

    it('honours valid_until_ts, capped at 7 days after the fetch, and expired_ts of old keys', async () => {
      net = await createFederatedServers(['a.test']);
      const fetchedAt = net.clock.now();
      const old = await signingKeyFromSeed(new Uint8Array(32).fill(4), 'old');
      await keyServer(net, 'k.test', (now, key) => ({
        verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
        old_verify_keys: { [old.keyId]: { key: old.publicKeyBase64, expired_ts: now - DAY } },
        valid_until_ts: now + 30 * DAY,
      }));
      const keys = net.servers['a.test']?.federation.keys;
      if (!keys) throw new Error('no keys');
      const ids = ['ed25519:current', old.keyId];
      const at = async (t: number) => [...(await keys.verifyKeys('k.test', ids, t)).keys()].sort();

      expect(await at(fetchedAt - 2 * DAY)).toEqual(['ed25519:current', 'ed25519:old']);
      expect(await at(fetchedAt - DAY)).toEqual(['ed25519:current']);
      // The server may not answer again: what follows is judged from the cache alone.
      net.network.block('a.test', 'k.test');
      net.clock.advance(MAX_KEY_VALIDITY_MS);
      expect(await at(fetchedAt + MAX_KEY_VALIDITY_MS)).toEqual(['ed25519:current']);
      net.clock.advance(1);
      expect(await at(fetchedAt + MAX_KEY_VALIDITY_MS + 1)).toEqual([]);
      // An old event is still checked with the keys valid when it was sent.
      expect(await at(fetchedAt)).toEqual(['ed25519:current']);
    });

    it('refetches a key past its valid_until_ts and takes the new validity', async () => {
      net = await createFederatedServers(['a.test']);
      await keyServer(net, 'k.test', (now, key) => ({
        verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } },
        valid_until_ts: now + HOUR,
      }));
      const keys = net.servers['a.test']?.federation.keys;
      expect((await keys?.verifyKeys('k.test', ['ed25519:current'], net.clock.now()))?.size).toBe(1);
      net.clock.advance(2 * HOUR);
      expect((await keys?.verifyKeys('k.test', ['ed25519:current'], net.clock.now()))?.size).toBe(1);
      expect(net.network.log.length).toBe(2);
    });

    it.each([
      [
        'another server name',
        (now: number, key: SigningKey) => ({ server_name: 'evil.test', ...base(now, key) }),
      ],
      ['no valid_until_ts', (_now: number, key: SigningKey) => ({ verify_keys: base(0, key).verify_keys })],
      [
        'no usable verify key',
        (now: number) => ({ verify_keys: { 'ed25519:x': { key: 'AAAA' } }, valid_until_ts: now }),
      ],
    ])('refuses a response with %s', async (_why, publish) => {
      net = await createFederatedServers(['a.test']);
      await keyServer(net, 'k.test', publish as (now: number, key: SigningKey) => JsonObject);
      const keys = net.servers['a.test']?.federation.keys;
      expect((await keys?.verifyKeys('k.test', ['ed25519:current'], net.clock.now()))?.size).toBe(0);
    });

    it('refuses a response whose self-signature does not verify', async () => {
      net = await createFederatedServers(['a.test']);
      const other = await signingKeyFromSeed(new Uint8Array(32).fill(5), 'current');
      // Signed by a different key under the listed key ID.
      net.network.serve('k.test', async () =>
        Response.json(
          await signJson(
            {
              server_name: 'k.test',
              ...base(net?.clock.now() ?? 0, await signingKeyFromSeed(new Uint8Array(32).fill(6), 'current')),
            },
            'k.test',
            other,
          ),
        ),
      );
      const keys = net.servers['a.test']?.federation.keys;
      expect((await keys?.verifyKeys('k.test', ['ed25519:current'], net.clock.now()))?.size).toBe(0);
    });
  });
});

function base(now: number, key: SigningKey): JsonObject {
  return { verify_keys: { [key.keyId]: { key: key.publicKeyBase64 } }, valid_until_ts: now + DAY };
}

describe('notary endpoints', () => {
  it('GET /query/{serverName} serves the origin response countersigned, and the cached one when the origin is gone', async () => {
    net = await createFederatedServers(['b.test', 'c.test']);
    const bKey = keyOf(net, 'b.test');
    const cKey = keyOf(net, 'c.test');
    const first = await getJson(net, 'c.test', '/_matrix/key/v2/query/b.test');
    expect(first.status).toBe(200);
    const [response] = first.body.server_keys as JsonObject[];
    expect(response?.verify_keys).toEqual({ [bKey.keyId]: { key: bKey.publicKeyBase64 } });
    await verifyJson(response as JsonObject, 'b.test', { [bKey.keyId]: bKey.publicKey });
    await verifyJson(response as JsonObject, 'c.test', { [cKey.keyId]: cKey.publicKey });

    // Fresh for half its lifetime: no second fetch.
    await getJson(net, 'c.test', '/_matrix/key/v2/query/b.test');
    expect(net.network.log.length).toBe(1);

    // Asked for more than the cached response promises, with B gone: the last response still.
    net.network.block('c.test', 'b.test');
    net.clock.advance(2 * 60 * 1000);
    const later = net.clock.now() + 10 * DAY;
    const stale = await getJson(
      net,
      'c.test',
      `/_matrix/key/v2/query/b.test?minimum_valid_until_ts=${later}`,
    );
    expect(net.network.log.length).toBe(2);
    expect((stale.body.server_keys as JsonObject[])[0]?.valid_until_ts).toBe(response?.valid_until_ts);
  });

  it('POST /query answers for several servers, itself included, and leaves out the unreachable', async () => {
    net = await createFederatedServers(['b.test', 'c.test']);
    const { status, body } = await getJson(net, 'c.test', '/_matrix/key/v2/query', {
      method: 'POST',
      body: JSON.stringify({
        server_keys: {
          'b.test': { 'ed25519:whatever': { minimum_valid_until_ts: net.clock.now() } },
          'c.test': {},
          'gone.test': {},
          'not a name': {},
        },
      }),
    });
    expect(status).toBe(200);
    expect((body.server_keys as JsonObject[]).map((r) => r.server_name).sort()).toEqual(['b.test', 'c.test']);
  });

  it('POST /query refuses a malformed body', async () => {
    net = await createFederatedServers(['c.test']);
    for (const bad of [{}, { server_keys: [] }, { server_keys: { 'b.test': 1 } }]) {
      const { status, body } = await getJson(net, 'c.test', '/_matrix/key/v2/query', {
        method: 'POST',
        body: JSON.stringify(bad),
      });
      expect([status, body.errcode]).toEqual([400, 'M_BAD_JSON']);
    }
  });
});

describe('server keys of a P2P server name', () => {
  it('reads the verify key from the name: no fetch, no notary, nothing cached', async () => {
    net = await createFederatedServers(['a.test']);
    const a = net.servers['a.test'];
    const { p2pSigningKey } = await import('../core/p2p-identity.ts');
    const { serverName, signingKey } = await p2pSigningKey(crypto.getRandomValues(new Uint8Array(32)));
    const fetches = net.network.log.length;
    const found = await a?.federation.keys.verifyKeys(
      serverName,
      ['ed25519:p2p', 'ed25519:other'],
      net.clock.now(),
    );
    expect([...(found?.entries() ?? [])]).toEqual([['ed25519:p2p', signingKey.publicKey]]);
    expect(await a?.federation.keys.verifyKeys(serverName, ['ed25519:other'], net.clock.now())).toEqual(
      new Map(),
    );
    expect(await a?.federation.keys.notaryResponses(serverName, net.clock.now())).toEqual([]);
    expect(net.network.log.length).toBe(fetches);
    expect(await a?.hs.store.federation.getServerKeys(serverName)).toEqual([]);
  });
});
