/**
 * The query endpoints between homeservers on one in-memory network, every request signed by
 * A (or C) with X-Matrix, every 200 body checked against the spec's schema (the carried table,
 * test/data/spec/server-server.json), refusals included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWireChecker } from '../../../scripts/spec-schemas.ts';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { SigningKey } from '../../core/crypto.ts';
import { buildFederationRequest } from '../../federation/client.ts';
import { createFederatedServers, type FederatedNetwork } from '../../federation/testing.ts';
import { createTestHomeserver, type TestUser } from '../../testing.ts';

const check = createWireChecker();
let net: FederatedNetwork;
let alice: TestUser;
let space: string;
let lobby: string;
let hidden: string;
let acl: string;

const B = () => net.servers['b.test'] as NonNullable<FederatedNetwork['servers'][string]>;

/** A signed request from `from` to B; the body as parsed JSON. */
async function signed(method: 'GET' | 'POST', target: string, body?: JsonObject, from = 'a.test') {
  const key = net.servers[from]?.services.ctx.signingKey as SigningKey;
  const request = await buildFederationRequest(from, key, 'b.test', { method, target, body });
  const response = await net.network.transport(from).send('b.test', request);
  return { status: response.status, body: (await response.json()) as JsonObject };
}

/** `signed`, expecting 200 and a body the spec's schema accepts for `template`. */
async function ok(method: 'GET' | 'POST', target: string, template: string, body?: JsonObject) {
  const answer = await signed(method, target, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  if (body !== undefined) expect(check(method, template, 'request', body)).toEqual([]);
  expect(check(method, template, '200', answer.body)).toEqual([]);
  return answer.body;
}

async function createRoom(token: string, body: JsonObject): Promise<string> {
  // The network's clock stands still: two v12 rooms made in the same millisecond by the same
  // user with the same create content would be one room (the room ID is the create event's hash).
  net.clock.advance(1000);
  const { status, body: answer } = await B().hs.call('POST', '/_matrix/client/v3/createRoom', {
    token,
    body,
  });
  expect(status).toBe(200);
  return answer.room_id as string;
}

beforeAll(async () => {
  net = await createFederatedServers(['a.test', 'b.test', 'c.test']);
  alice = await B().hs.createUser('alice');
  await B().hs.createUser('nokeys');
  const { store } = B().hs;
  // Alice's phone: device keys, two one-time keys, a fallback key, cross-signing keys.
  const deviceKeys = {
    user_id: alice.userId,
    device_id: alice.deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${alice.deviceId}`]: 'curvekey', [`ed25519:${alice.deviceId}`]: 'edkey' },
    signatures: { [alice.userId]: { [`ed25519:${alice.deviceId}`]: 'selfsig' } },
  };
  await store.e2ee.putDeviceKeys(alice.userId, alice.deviceId, deviceKeys);
  await store.e2ee.addOneTimeKeys(alice.userId, alice.deviceId, [
    { algorithm: 'signed_curve25519', keyId: 'AAAA', key: { key: 'otk1', signatures: {} } },
    { algorithm: 'signed_curve25519', keyId: 'AAAB', key: { key: 'otk2', signatures: {} } },
  ]);
  await store.e2ee.putFallbackKey(alice.userId, alice.deviceId, {
    algorithm: 'signed_curve25519',
    keyId: 'FB',
    key: { key: 'fb', fallback: true, signatures: {} },
  });
  const cross = (usage: string, pub: string) => ({
    user_id: alice.userId,
    usage: [usage],
    keys: { [`ed25519:${pub}`]: pub },
  });
  await store.e2ee.putCrossSigningKey(alice.userId, 'master', cross('master', 'MASTERPUB'));
  await store.e2ee.putCrossSigningKey(alice.userId, 'self_signing', {
    ...cross('self_signing', 'SSPUB'),
    signatures: { [alice.userId]: { 'ed25519:MASTERPUB': 'mastersig' } },
  });
  await store.e2ee.putCrossSigningKey(alice.userId, 'user_signing', cross('user_signing', 'USPUB'));
  await store.e2ee.putSignatures([
    {
      userId: alice.userId,
      keyId: alice.deviceId,
      signerUserId: alice.userId,
      signerKeyId: 'ed25519:SSPUB',
      signature: 'crosssig',
    },
  ]);

  // Rooms: a public lobby (published, aliased), an invite-only room, and a space holding both,
  // plus a child the server does not know.
  const token = alice.accessToken;
  lobby = await createRoom(token, {
    name: 'Lobby',
    topic: 'Say hello',
    room_alias_name: 'lobby',
    visibility: 'public',
    preset: 'public_chat',
  });
  await createRoom(token, { name: 'Quiet corner', visibility: 'public', preset: 'public_chat' });
  hidden = await createRoom(token, { name: 'Hidden', preset: 'private_chat' });
  space = await createRoom(token, {
    name: 'Space',
    preset: 'public_chat',
    creation_content: { type: 'm.space' },
    initial_state: [
      { type: 'm.space.child', state_key: lobby, content: { via: ['b.test'], suggested: true } },
      { type: 'm.space.child', state_key: hidden, content: { via: ['b.test'] } },
      { type: 'm.space.child', state_key: '!unknown:elsewhere.test', content: { via: ['elsewhere.test'] } },
      { type: 'm.space.child', state_key: '!removed:b.test', content: {} },
    ],
  });
  acl = await createRoom(token, {
    name: 'Guarded',
    preset: 'public_chat',
    initial_state: [
      { type: 'm.room.server_acl', state_key: '', content: { allow: ['*'], deny: ['c.test'] } },
    ],
  });
}, 60_000);

afterAll(async () => {
  await net.close();
});

const enc = encodeURIComponent;

describe('GET /query/directory', () => {
  it('resolves our alias', async () => {
    const body = await ok(
      'GET',
      `/_matrix/federation/v1/query/directory?room_alias=${enc('#lobby:b.test')}`,
      '/_matrix/federation/v1/query/directory',
    );
    expect(body).toEqual({ room_id: lobby, servers: ['b.test'] });
  });

  it.each([
    ['an unknown alias of ours', '#nope:b.test'],
    ["another server's alias, without asking it", '#lobby:a.test'],
  ])('answers 404 M_NOT_FOUND for %s', async (_why, alias) => {
    const before = net.network.log.length;
    const { status, body } = await signed(
      'GET',
      `/_matrix/federation/v1/query/directory?room_alias=${enc(alias)}`,
    );
    expect([status, body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    expect(check('GET', '/_matrix/federation/v1/query/directory', '404', body)).toEqual([]);
    expect(net.network.log.slice(before).filter((r) => r.from === 'b.test')).toEqual([]);
  });

  it('refuses a malformed alias or none with 400', async () => {
    const bad = await signed('GET', `/_matrix/federation/v1/query/directory?room_alias=lobby`);
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const none = await signed('GET', '/_matrix/federation/v1/query/directory');
    expect([none.status, none.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
  });
});

describe('GET /query/{queryType}', () => {
  it('answers an unknown query type with 404 M_UNRECOGNIZED, after authentication', async () => {
    const { status, body } = await signed('GET', '/_matrix/federation/v1/query/weather?city=x');
    expect([status, body.errcode]).toEqual([404, 'M_UNRECOGNIZED']);
    const unsigned = await net.network
      .transport('a.test')
      .send('b.test', new Request('https://b.test/_matrix/federation/v1/query/weather'));
    expect(unsigned.status).toBe(401);
  });

  it('still answers profile queries', async () => {
    const body = await ok(
      'GET',
      `/_matrix/federation/v1/query/profile?user_id=${enc(alice.userId)}`,
      '/_matrix/federation/v1/query/profile',
    );
    expect(body).toEqual({ displayname: 'alice' });
  });
});

describe('GET /user/devices/{userId}', () => {
  const T = '/_matrix/federation/v1/user/devices/{userId}';

  it("lists our user's devices with their keys, cross-signing keys and a stream_id", async () => {
    const body = await ok('GET', `/_matrix/federation/v1/user/devices/${enc(alice.userId)}`, T);
    expect(body.user_id).toBe(alice.userId);
    expect(typeof body.stream_id).toBe('number');
    const devices = body.devices as JsonObject[];
    expect(devices.map((d) => d.device_id)).toEqual([alice.deviceId]);
    const keys = devices[0]?.keys as JsonObject;
    expect(keys.keys).toEqual({
      [`curve25519:${alice.deviceId}`]: 'curvekey',
      [`ed25519:${alice.deviceId}`]: 'edkey',
    });
    // The self-signing key's signature, uploaded apart, is merged in beside the device's own.
    expect(keys.signatures).toEqual({
      [alice.userId]: { [`ed25519:${alice.deviceId}`]: 'selfsig', 'ed25519:SSPUB': 'crosssig' },
    });
    expect((body.master_key as JsonObject).usage).toEqual(['master']);
    expect((body.self_signing_key as JsonObject).usage).toEqual(['self_signing']);
    // The user-signing key is private to its owner's own server: never federated.
    expect(JSON.stringify(body)).not.toContain('USPUB');
  });

  it('answers a user of ours without keys with no devices', async () => {
    const body = await ok('GET', `/_matrix/federation/v1/user/devices/${enc('@nokeys:b.test')}`, T);
    expect(body.devices).toEqual([]);
    expect(body.master_key).toBeUndefined();
  });

  it("refuses another server's user (403) and a malformed ID (400)", async () => {
    const remote = await signed('GET', `/_matrix/federation/v1/user/devices/${enc('@bob:a.test')}`);
    expect([remote.status, remote.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const bad = await signed('GET', `/_matrix/federation/v1/user/devices/${enc('alice')}`);
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });
});

describe('POST /user/keys/query and /user/keys/claim', () => {
  it("answers our users' device and cross-signing keys, leaving others out", async () => {
    const request = { device_keys: { [alice.userId]: [], '@bob:a.test': [], '@ghost:b.test': [] } };
    const body = await ok(
      'POST',
      '/_matrix/federation/v1/user/keys/query',
      '/_matrix/federation/v1/user/keys/query',
      request,
    );
    expect(Object.keys(body.device_keys as JsonObject)).toEqual([alice.userId]);
    const device = (body.device_keys as Record<string, JsonObject>)[alice.userId]?.[
      alice.deviceId
    ] as JsonObject;
    expect(device.device_id).toBe(alice.deviceId);
    expect(Object.keys(body.master_keys as JsonObject)).toEqual([alice.userId]);
    expect(Object.keys(body.self_signing_keys as JsonObject)).toEqual([alice.userId]);
    expect(body.user_signing_keys).toBeUndefined();
    // Named devices only.
    const named = await ok(
      'POST',
      '/_matrix/federation/v1/user/keys/query',
      '/_matrix/federation/v1/user/keys/query',
      {
        device_keys: { [alice.userId]: ['NOSUCHDEVICE'] },
      },
    );
    expect(named.device_keys).toEqual({ [alice.userId]: {} });
  });

  it('claims one-time keys lowest first, then the fallback key', async () => {
    const T = '/_matrix/federation/v1/user/keys/claim';
    const request = { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } };
    const claimed: JsonObject[] = [];
    for (let i = 0; i < 3; i++) claimed.push(await ok('POST', T, T, request));
    const ids = claimed.map((c) =>
      Object.keys(
        (c.one_time_keys as Record<string, JsonObject>)[alice.userId]?.[alice.deviceId] as JsonObject,
      ),
    );
    expect(ids).toEqual([['signed_curve25519:AAAA'], ['signed_curve25519:AAAB'], ['signed_curve25519:FB']]);
    const others = await ok('POST', T, T, { one_time_keys: { '@bob:a.test': { DEV: 'signed_curve25519' } } });
    expect(others).toEqual({ one_time_keys: {} });
  });

  it('refuses bodies of the wrong shape with 400 M_BAD_JSON', async () => {
    const a = await signed('POST', '/_matrix/federation/v1/user/keys/query', {
      device_keys: { [alice.userId]: 'all' },
    });
    expect([a.status, a.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    const b = await signed('POST', '/_matrix/federation/v1/user/keys/claim', {});
    expect([b.status, b.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
  });
});

describe('GET/POST /publicRooms', () => {
  const T = '/_matrix/federation/v1/publicRooms';

  it('lists our published rooms, with limit and since', async () => {
    const all = await ok('GET', T, T);
    expect((all.chunk as JsonObject[]).map((r) => r.name).sort()).toEqual(['Lobby', 'Quiet corner']);
    expect(all.total_room_count_estimate).toBe(2);
    const first = await ok('GET', `${T}?limit=1`, T);
    expect((first.chunk as JsonObject[]).length).toBe(1);
    const second = await ok('GET', `${T}?limit=1&since=${enc(first.next_batch as string)}`, T);
    expect((second.chunk as JsonObject[]).length).toBe(1);
    expect(second.next_batch).toBeUndefined();
    expect(second.prev_batch).toBeDefined();
  });

  it('filters by search term (POST)', async () => {
    const body = await ok('POST', T, T, { filter: { generic_search_term: 'hello' }, limit: 10 });
    expect((body.chunk as JsonObject[]).map((r) => r.room_id)).toEqual([lobby]);
  });

  it('refuses a bad since token and a negative limit', async () => {
    const since = await signed('GET', `${T}?since=garbage`);
    expect([since.status, since.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const limit = await signed('POST', T, { limit: -1 });
    expect([limit.status, limit.body.errcode]).toEqual([400, 'M_BAD_JSON']);
  });
});

describe('GET /hierarchy/{roomId}', () => {
  const T = '/_matrix/federation/v1/hierarchy/{roomId}';

  it('describes the space and the children the asking server could join', async () => {
    const body = await ok('GET', `/_matrix/federation/v1/hierarchy/${enc(space)}`, T);
    const room = body.room as JsonObject;
    expect([room.room_id, room.room_type, room.name]).toEqual([space, 'm.space', 'Space']);
    // Children with a `via` only: the empty-content one is a removed child.
    expect((room.children_state as JsonObject[]).map((c) => c.state_key).sort()).toEqual(
      [lobby, hidden, '!unknown:elsewhere.test'].sort(),
    );
    expect((body.children as JsonObject[]).map((c) => c.room_id)).toEqual([lobby]);
    expect(body.inaccessible_children).toEqual([hidden]);
  });

  it('with suggested_only, only suggested children', async () => {
    const body = await ok('GET', `/_matrix/federation/v1/hierarchy/${enc(space)}?suggested_only=true`, T);
    expect((body.children as JsonObject[]).map((c) => c.room_id)).toEqual([lobby]);
    expect(body.inaccessible_children).toEqual([]);
  });

  it('answers 404 for a room it does not know or the asker may not see', async () => {
    for (const roomId of ['!nowhere:b.test', hidden]) {
      const { status, body } = await signed('GET', `/_matrix/federation/v1/hierarchy/${enc(roomId)}`);
      expect([status, body.errcode]).toEqual([404, 'M_NOT_FOUND']);
      expect(check('GET', T, '404', body)).toEqual([]);
    }
    const bad = await signed('GET', `/_matrix/federation/v1/hierarchy/${enc('not-a-room')}`);
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it("refuses a server the room's ACL denies with 403 M_FORBIDDEN", async () => {
    expect((await signed('GET', `/_matrix/federation/v1/hierarchy/${enc(acl)}`)).status).toBe(200);
    const denied = await signed('GET', `/_matrix/federation/v1/hierarchy/${enc(acl)}`, undefined, 'c.test');
    expect([denied.status, denied.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });
});

describe('OpenID: a token from the client API, checked by a third party at /openid/userinfo', () => {
  const userinfo = async (query: string) => {
    const response = await net.network
      .transport('a.test')
      .send('b.test', new Request(`https://b.test/_matrix/federation/v1/openid/userinfo${query}`));
    return { status: response.status, body: (await response.json()) as JsonObject };
  };

  it('names the user of a token until it expires, and 401 M_UNKNOWN_TOKEN for any other', async () => {
    const requested = await B().hs.call(
      'POST',
      `/_matrix/client/v3/user/${enc(alice.userId)}/openid/request_token`,
      { token: alice.accessToken, body: {} },
    );
    expect(requested.status).toBe(200);
    expect(requested.body).toMatchObject({
      token_type: 'Bearer',
      matrix_server_name: 'b.test',
      expires_in: 3600,
    });
    const token = requested.body.access_token as string;
    const answer = await userinfo(`?access_token=${enc(token)}`);
    expect(answer).toEqual({ status: 200, body: { sub: alice.userId } });
    expect(check('GET', '/_matrix/federation/v1/openid/userinfo', '200', answer.body)).toEqual([]);
    // Not for someone else, not without a token.
    const other = await B().hs.call(
      'POST',
      `/_matrix/client/v3/user/${enc('@nokeys:b.test')}/openid/request_token`,
      {
        token: alice.accessToken,
        body: {},
      },
    );
    expect([other.status, other.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const anonymous = await B().hs.call(
      'POST',
      `/_matrix/client/v3/user/${enc(alice.userId)}/openid/request_token`,
      {
        body: {},
      },
    );
    expect(anonymous.status).toBe(401);
    for (const query of ['?access_token=anything', '']) {
      const { status, body } = await userinfo(query);
      expect([status, body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
      expect(check('GET', '/_matrix/federation/v1/openid/userinfo', '401', body)).toEqual([]);
    }
    // An hour later the token is spent.
    const now = net.clock.now();
    net.clock.advance(3600 * 1000);
    try {
      const expired = await userinfo(`?access_token=${enc(token)}`);
      expect([expired.status, expired.body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    } finally {
      net.clock.set(now);
    }
  });
});

describe('GET /.well-known/matrix/server', () => {
  it('is 404 without delegation', async () => {
    const { status, body } = await B().hs.call('GET', '/.well-known/matrix/server');
    expect([status, body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe("outgoing queries: A's clients asking about B's users and aliases", () => {
  const A = () => net.servers['a.test'] as NonNullable<FederatedNetwork['servers'][string]>;

  it('resolves a profile and an alias through a signed request to B', async () => {
    const bob = await A().hs.createUser('bob');
    const profile = await A().hs.call('GET', `/_matrix/client/v3/profile/${enc(alice.userId)}`, {
      token: bob.accessToken,
    });
    expect(profile).toEqual({ status: 200, body: { displayname: 'alice' } });
    const alias = await A().hs.call('GET', `/_matrix/client/v3/directory/room/${enc('#lobby:b.test')}`);
    expect(alias).toEqual({ status: 200, body: { room_id: lobby, servers: ['b.test'] } });
  });

  it("passes B's 404 on, and answers 502 when B cannot be reached", async () => {
    const missing = await A().hs.call('GET', `/_matrix/client/v3/directory/room/${enc('#nope:b.test')}`);
    expect([missing.status, missing.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    net.network.block('a.test', 'b.test');
    try {
      const away = await A().hs.call('GET', `/_matrix/client/v3/directory/room/${enc('#lobby:b.test')}`);
      expect([away.status, away.body.errcode]).toEqual([502, 'M_UNKNOWN']);
    } finally {
      net.network.unblock('a.test', 'b.test');
    }
  });
});

describe('GET /.well-known/matrix/server with delegation', () => {
  it('names the delegated server, in the shape the spec gives', async () => {
    const hs = await createTestHomeserver({
      serverName: 'example.test',
      wellKnownServer: 'matrix.example.test:443',
    });
    try {
      const { status, body } = await hs.call('GET', '/.well-known/matrix/server');
      expect([status, body]).toEqual([200, { 'm.server': 'matrix.example.test:443' }]);
      expect(check('GET', '/.well-known/matrix/server', '200', body)).toEqual([]);
    } finally {
      await hs.close();
    }
  });
});
