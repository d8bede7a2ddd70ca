/**
 * A hostile peer against what federation answers today: forged, misaddressed, impersonating,
 * tampered and oversized requests. Each is refused with the spec's error (401 M_UNAUTHORIZED,
 * 413 M_TOO_LARGE), authentication failures are logged, and nothing is disturbed: B's whole
 * store (its backup, byte for byte) is the same after the attack as before it, and an honest
 * request still works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/canonical-json.ts';
import { type SigningKey, signingKeyFromSeed } from '../../src/core/crypto.ts';
import { buildFederationRequest } from '../../src/federation/client.ts';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { Logger } from '../../src/homeserver/context.ts';
import type { TestUser } from '../../src/testing.ts';

let net: FederatedNetwork;
let alice: TestUser;
const warnings: { message: string; fields?: Record<string, unknown> }[] = [];

const CLAIM = '/_matrix/federation/v1/user/keys/claim';
const keyOf = (name: string) => net.servers[name]?.services.ctx.signingKey as SigningKey;
const b = () => net.servers['b.test'] as NonNullable<FederatedNetwork['servers'][string]>;

/** B's whole store as its backup, at a fixed time: equal text means nothing changed. */
async function snapshot(): Promise<string> {
  return (await b().hs.store.exportBackup({ serverName: 'b.test', now: 0 })).text();
}

async function send(request: Request, from = 'a.test') {
  const response = await net.network.transport(from).send('b.test', request);
  return { status: response.status, body: (await response.json()) as JsonObject };
}

const claimBody = () => ({ one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });

beforeAll(async () => {
  const logger = (name: string): Logger => ({
    debug() {},
    info() {},
    warn(message, fields) {
      if (name === 'b.test') warnings.push({ message, fields });
    },
    error() {},
  });
  net = await createFederatedServers(['a.test', 'b.test', 'c.test'], { logger });
  alice = await b().hs.createUser('alice');
  await b().hs.store.e2ee.addOneTimeKeys(alice.userId, alice.deviceId, [
    { algorithm: 'signed_curve25519', keyId: 'AAAA', key: { key: 'otk', signatures: {} } },
  ]);
  // B learns A's and C's keys through honest requests first: what follows must change nothing.
  for (const from of ['a.test', 'c.test']) {
    const ok = await buildFederationRequest(from, keyOf(from), 'b.test', {
      method: 'GET',
      target: '/_matrix/federation/v1/query/directory?room_alias=%23x%3Ab.test',
    });
    expect((await send(ok, from)).status).toBe(404);
  }
}, 60_000);

afterAll(async () => {
  await net.close();
});

describe('a hostile peer', () => {
  const refusals: [string, () => Promise<{ request: Request; from?: string }>, number, string][] = [
    [
      'a request signed with the wrong key (under the right key ID)',
      async () => {
        const forger = await signingKeyFromSeed(new Uint8Array(32).fill(7), keyOf('a.test').keyId.slice(8));
        return {
          request: await buildFederationRequest('a.test', forger, 'b.test', {
            method: 'POST',
            target: CLAIM,
            body: claimBody(),
          }),
        };
      },
      401,
      'M_UNAUTHORIZED',
    ],
    [
      'a request for another destination',
      async () => ({
        request: await buildFederationRequest('a.test', keyOf('a.test'), 'c.test', {
          method: 'POST',
          target: CLAIM,
          body: claimBody(),
        }),
      }),
      401,
      'M_UNAUTHORIZED',
    ],
    [
      "C claiming to be A, signing with its own key under A's name",
      async () => ({
        request: await buildFederationRequest('a.test', keyOf('c.test'), 'b.test', {
          method: 'POST',
          target: CLAIM,
          body: claimBody(),
        }),
        from: 'c.test',
      }),
      401,
      'M_UNAUTHORIZED',
    ],
    [
      'a body tampered with after signing',
      async () => {
        const signed = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
          method: 'POST',
          target: CLAIM,
          body: { one_time_keys: {} },
        });
        return {
          request: new Request(signed.url, {
            method: 'POST',
            headers: signed.headers,
            body: JSON.stringify(claimBody()),
          }),
        };
      },
      401,
      'M_UNAUTHORIZED',
    ],
    [
      'a signed body over the 64 KiB limit',
      async () => ({
        request: await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
          method: 'POST',
          target: CLAIM,
          body: { ...claimBody(), padding: 'x'.repeat(70 * 1024) },
        }),
      }),
      413,
      'M_TOO_LARGE',
    ],
    [
      'an unsigned body of 10 MB',
      async () => ({
        request: new Request(`https://b.test${CLAIM}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: `{"x":"${'y'.repeat(10 * 1024 * 1024)}"}`,
        }),
      }),
      413,
      'M_TOO_LARGE',
    ],
    [
      'a body that is no JSON, validly signed headers aside',
      async () => {
        const signed = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
          method: 'POST',
          target: CLAIM,
          body: claimBody(),
        });
        return {
          request: new Request(signed.url, {
            method: 'POST',
            headers: signed.headers,
            body: '{"one_time_keys":',
          }),
        };
      },
      400,
      'M_NOT_JSON',
    ],
  ];

  it.each(refusals)(
    'refuses %s with the spec error, and changes nothing',
    async (_what, make, status, errcode) => {
      const before = await snapshot();
      const logged = warnings.length;
      const { request, from } = await make();
      const answer = await send(request, from);
      expect([answer.status, answer.body.errcode]).toEqual([status, errcode]);
      expect(await snapshot()).toBe(before);
      if (status === 401) {
        // The operator sees who was refused, and why.
        const entry = warnings.slice(logged).find((w) => w.message === 'federation request refused');
        expect(entry?.fields).toMatchObject({ path: CLAIM, errcode: 'M_UNAUTHORIZED', status: 401 });
      }
    },
  );

  it('refuses a replay of a signed GET to another path (target is signed)', async () => {
    const signed = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
      method: 'GET',
      target: `/_matrix/federation/v1/user/devices/${encodeURIComponent(alice.userId)}`,
    });
    const moved = new Request(
      signed.url.replace('/user/devices/', '/query/directory?room_alias=%23x%3Ab.test&u='),
      {
        headers: signed.headers,
      },
    );
    expect((await send(moved)).body.errcode).toBe('M_UNAUTHORIZED');
  });

  it('leaves honest requests working: the one-time key is still there to claim', async () => {
    const honest = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
      method: 'POST',
      target: CLAIM,
      body: claimBody(),
    });
    const before = await snapshot();
    const { status, body } = await send(honest);
    expect(status).toBe(200);
    // The snapshot sees a change when there is one: the claim used the key up.
    expect(await snapshot()).not.toBe(before);
    expect(body).toEqual({
      one_time_keys: {
        [alice.userId]: { [alice.deviceId]: { 'signed_curve25519:AAAA': { key: 'otk', signatures: {} } } },
      },
    });
  });
});

describe('hostile input, properly signed', () => {
  const e = encodeURIComponent;
  const odd = [
    '',
    '@',
    ':',
    '@a:',
    '@:b.test',
    `@${'x'.repeat(300)}:b.test`,
    '@é:b.test',
    '!',
    '#',
    '\u0000',
    '%',
    '@a:b.test/../x',
  ];
  const gets = [
    ...odd.map((x) => `/_matrix/federation/v1/user/devices/${e(x)}`),
    ...odd.map((x) => `/_matrix/federation/v1/query/directory?room_alias=${e(x)}`),
    ...odd.map((x) => `/_matrix/federation/v1/query/profile?user_id=${e(x)}`),
    ...odd.map((x) => `/_matrix/federation/v1/hierarchy/${e(x)}`),
    ...odd.map((x) => `/_matrix/federation/v1/query/${e(x) || 'x'}`),
    '/_matrix/federation/v1/publicRooms?limit=99999999999999999999',
    '/_matrix/federation/v1/publicRooms?limit=-1',
    '/_matrix/federation/v1/publicRooms?since=p999999999',
    '/_matrix/federation/v1/publicRooms?since=p-1',
    '/_matrix/federation/v1/publicRooms?include_all_networks=maybe',
    '/_matrix/federation/v1/hierarchy/!x:b.test?suggested_only=perhaps',
  ];
  const posts: [string, JsonObject][] = [
    ['/_matrix/federation/v1/user/keys/query', { device_keys: [] as unknown as JsonObject }],
    [
      '/_matrix/federation/v1/user/keys/query',
      { device_keys: { '@a:b.test': [1, 2] } as unknown as JsonObject },
    ],
    [
      '/_matrix/federation/v1/user/keys/query',
      { device_keys: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`@u${i}:b.test`, []])) },
    ],
    [
      '/_matrix/federation/v1/user/keys/query',
      { device_keys: { '': [], '@': ['x'], [`@${'y'.repeat(300)}:b.test`]: [] } },
    ],
    [
      '/_matrix/federation/v1/user/keys/claim',
      { one_time_keys: { '@a:b.test': 'x' } as unknown as JsonObject },
    ],
    ['/_matrix/federation/v1/user/keys/claim', { one_time_keys: { '@alice:b.test': { '': '' } } }],
    ['/_matrix/federation/v1/publicRooms', { filter: 'x' } as unknown as JsonObject],
    ['/_matrix/federation/v1/publicRooms', { filter: { room_types: [1] } } as unknown as JsonObject],
    ['/_matrix/federation/v1/publicRooms', { limit: 1e300, since: 'p1' }],
    ['/_matrix/federation/v1/publicRooms', { third_party_instance_id: 'irc', include_all_networks: false }],
  ];

  it('answers every one with a Matrix error or a 200, never a 5xx, and changes nothing', async () => {
    const before = await snapshot();
    const answers: string[] = [];
    for (const target of gets) {
      const request = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
        method: 'GET',
        target,
      });
      const { status, body } = await send(request);
      answers.push(`${status} ${body.errcode ?? ''} GET ${target.slice(0, 60)}`);
      expect(status, target).toBeLessThan(500);
      if (status !== 200) expect(typeof body.errcode, target).toBe('string');
    }
    for (const [target, payload] of posts) {
      const request = await buildFederationRequest('a.test', keyOf('a.test'), 'b.test', {
        method: 'POST',
        target,
        body: payload,
      });
      const { status, body } = await send(request);
      answers.push(`${status} ${body.errcode ?? ''} POST ${target}`);
      expect(status, target).toBeLessThan(500);
      if (status !== 200) expect(typeof body.errcode, target).toBe('string');
    }
    expect(await snapshot()).toBe(before);
    expect(answers.length).toBe(gets.length + posts.length);
  });
});
