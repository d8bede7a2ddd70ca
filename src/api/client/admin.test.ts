/**
 * The admin API: Synapse's shared-secret registration checked against HMACs computed by
 * hand (Synapse's docs/admin_api/register_api.md: HMAC-SHA1 over nonce, user, password,
 * "admin"/"notadmin" and the optional user type, NUL-separated), the user and room admin
 * endpoints, the spec's lock and suspend, and every one of them refused to non-admins.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { sharedSecretMac } from '../../homeserver/admin/index.ts';
import type { Logger } from '../../homeserver/context.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

const SECRET = 'hearth-test-secret';
const enc = encodeURIComponent;

describe('shared-secret MAC', () => {
  it('matches HMAC-SHA1 vectors computed by hand (python hmac, Synapse register_api.md)', async () => {
    // python3: hmac.new(b'hearth-test-secret', b'abcdef\x00alice\x00correct-horse-1\x00admin', sha1).hexdigest()
    expect(await sharedSecretMac(SECRET, ['abcdef', 'alice', 'correct-horse-1', 'admin'])).toBe(
      '6637fbdc2adf4c67e3db6731c0aa622a8031599d',
    );
    expect(await sharedSecretMac(SECRET, ['abcdef', 'bob', 'pw-bob-123', 'notadmin', 'bot'])).toBe(
      '3de5262b4328d53b4e3ccc5da5995a1f22e19ed0',
    );
  });
});

describe('admin API', () => {
  let hs: TestHomeserver;
  const logged: string[] = [];
  const logger: Logger = {
    debug() {},
    info: (message, fields) => logged.push(`${message} ${JSON.stringify(fields ?? {})}`),
    warn() {},
    error() {},
  };
  afterEach(async () => {
    await hs?.close();
    logged.length = 0;
  });

  async function start() {
    hs = await createTestHomeserver({ registrationSharedSecret: SECRET, logger });
    return hs;
  }

  /** Registers through the shared secret with a MAC made here by node:crypto. */
  async function registerWithSecret(username: string, password: string, admin: boolean) {
    const { body: n } = await hs.call('GET', '/_synapse/admin/v1/register');
    const nonce = n.nonce as string;
    const mac = createHmac('sha1', SECRET)
      .update([nonce, username, password, admin ? 'admin' : 'notadmin'].join('\0'))
      .digest('hex');
    return hs.call('POST', '/_synapse/admin/v1/register', {
      body: { nonce, username, password, admin, mac },
    });
  }

  it('registers an admin with the shared secret; a wrong MAC or a spent nonce is refused', async () => {
    await start();
    const ok = await registerWithSecret('root', 'root-password-1', true);
    expect(ok.status).toBe(200);
    expect(ok.body.user_id).toBe('@root:test.localhost');
    const user = await hs.store.accounts.getUser('@root:test.localhost');
    expect(user?.admin).toBe(true);

    const { body: n } = await hs.call('GET', '/_synapse/admin/v1/register');
    const bad = await hs.call('POST', '/_synapse/admin/v1/register', {
      body: { nonce: n.nonce, username: 'eve', password: 'eve-password', admin: true, mac: '00'.repeat(20) },
    });
    expect(bad).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    // The nonce was spent by the failed attempt.
    const mac = createHmac('sha1', SECRET).update(`${n.nonce}\0eve\0eve-password\0admin`).digest('hex');
    const replay = await hs.call('POST', '/_synapse/admin/v1/register', {
      body: { nonce: n.nonce, username: 'eve', password: 'eve-password', admin: true, mac },
    });
    expect(replay.status).toBe(400);
    expect(await hs.store.accounts.getUser('@eve:test.localhost')).toBeNull();
  });

  it('refuses shared-secret registration when no secret is configured', async () => {
    hs = await createTestHomeserver();
    const r = await hs.call('GET', '/_synapse/admin/v1/register');
    expect(r.status).toBe(400);
  });

  it('lists, reads, creates, modifies, resets and deactivates users; logs each call', async () => {
    await start();
    const root = (await registerWithSecret('root', 'root-password-1', true)).body.access_token as string;
    const bob = await hs.createUser('bob');
    await hs.createUser('carol');

    const list = await hs.call('GET', '/_synapse/admin/v2/users?limit=2', { token: root });
    expect(list.status).toBe(200);
    expect(list.body.total).toBe(3);
    expect((list.body.users as { name: string }[]).map((u) => u.name)).toEqual([
      '@bob:test.localhost',
      '@carol:test.localhost',
    ]);
    expect(list.body.next_token).toBe('2');
    const named = await hs.call('GET', '/_synapse/admin/v2/users?name=car', { token: root });
    expect(named.body.total).toBe(1);

    const created = await hs.call('PUT', `/_synapse/admin/v2/users/${enc('@dave:test.localhost')}`, {
      token: root,
      body: { password: 'dave-password-1', displayname: 'Dave', admin: false },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: '@dave:test.localhost', displayname: 'Dave', admin: false });
    const login = await hs.call('POST', '/_matrix/client/v3/login', {
      body: {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'dave' },
        password: 'dave-password-1',
      },
    });
    expect(login.status).toBe(200);

    const modified = await hs.call('PUT', `/_synapse/admin/v2/users/${enc(bob.userId)}`, {
      token: root,
      body: { admin: true, displayname: 'Bobby' },
    });
    expect(modified).toMatchObject({ status: 200, body: { admin: true, displayname: 'Bobby' } });
    expect(
      (await hs.call('GET', `/_synapse/admin/v2/users/${enc(bob.userId)}`, { token: root })).body,
    ).toMatchObject({ name: bob.userId, admin: true, deactivated: false, threepids: [] });

    const reset = await hs.call('POST', `/_synapse/admin/v1/reset_password/${enc('@dave:test.localhost')}`, {
      token: root,
      body: { new_password: 'dave-password-2' },
    });
    expect(reset.status).toBe(200);
    // logout_devices defaults to true: the session from before is gone.
    const whoami = await hs.call('GET', '/_matrix/client/v3/account/whoami', {
      token: login.body.access_token as string,
    });
    expect(whoami.status).toBe(401);

    const deact = await hs.call('POST', `/_synapse/admin/v1/deactivate/${enc('@carol:test.localhost')}`, {
      token: root,
      body: { erase: true },
    });
    expect(deact.status).toBe(200);
    expect((await hs.store.accounts.getUser('@carol:test.localhost'))?.deactivated).toBe(true);
    const active = await hs.call('GET', '/_synapse/admin/v2/users', { token: root });
    expect(active.body.total).toBe(3);
    const withDeactivated = await hs.call('GET', '/_synapse/admin/v2/users?deactivated=true', {
      token: root,
    });
    expect(withDeactivated.body.total).toBe(4);

    const missing = await hs.call('GET', `/_synapse/admin/v2/users/${enc('@nobody:test.localhost')}`, {
      token: root,
    });
    expect(missing).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(logged.some((l) => l.startsWith('admin API call') && l.includes('@root:test.localhost'))).toBe(
      true,
    );
  });

  it('lists, describes, blocks and purges rooms', async () => {
    await start();
    const root = (await registerWithSecret('root', 'root-password-1', true)).body.access_token as string;
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const made = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { name: 'Spam central', preset: 'public_chat', room_alias_name: 'spam' },
    });
    const roomId = made.body.room_id as string;
    await hs.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });

    const rooms = await hs.call('GET', '/_synapse/admin/v1/rooms', { token: root });
    expect(rooms.body).toMatchObject({ total_rooms: 1, offset: 0 });
    const room = await hs.call('GET', `/_synapse/admin/v1/rooms/${enc(roomId)}`, { token: root });
    expect(room.body).toMatchObject({
      room_id: roomId,
      name: 'Spam central',
      canonical_alias: '#spam:test.localhost',
      joined_members: 2,
      joined_local_members: 2,
      creator: alice.userId,
      join_rules: 'public',
    });
    const searched = await hs.call('GET', '/_synapse/admin/v1/rooms?search_term=nothing', { token: root });
    expect(searched.body.total_rooms).toBe(0);

    const del = await hs.call('DELETE', `/_synapse/admin/v2/rooms/${enc(roomId)}`, {
      token: root,
      body: { block: true, purge: true },
    });
    expect(del.status).toBe(200);
    const status = await hs.call('GET', `/_synapse/admin/v2/rooms/delete_status/${del.body.delete_id}`, {
      token: root,
    });
    expect(status.body).toMatchObject({ status: 'complete' });
    expect(((status.body.shutdown_room as { kicked_users: string[] }).kicked_users ?? []).sort()).toEqual(
      [alice.userId, bob.userId].sort(),
    );
    expect(await hs.store.rooms.getRoom(roomId)).toBeNull();
    expect(await hs.store.rooms.getAlias('#spam:test.localhost')).toBeNull();
    const rejoin = await hs.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {
      token: bob.accessToken,
      body: {},
    });
    expect(rejoin.status).toBe(403);
    expect((await hs.call('GET', '/_synapse/admin/v1/rooms', { token: root })).body.total_rooms).toBe(0);
  });

  it('locks and suspends accounts (admin.yaml)', async () => {
    await start();
    const root = (await registerWithSecret('root', 'root-password-1', true)).body.access_token as string;
    const bob = await hs.createUser('bob');
    const path = (what: string) => `/_matrix/client/v1/admin/${what}/${enc(bob.userId)}`;

    expect((await hs.call('GET', path('suspend'), { token: root })).body).toEqual({ suspended: false });
    expect((await hs.call('PUT', path('suspend'), { token: root, body: { suspended: true } })).body).toEqual({
      suspended: true,
    });
    const create = await hs.call('POST', '/_matrix/client/v3/createRoom', {
      token: bob.accessToken,
      body: {},
    });
    expect(create).toMatchObject({ status: 403, body: { errcode: 'M_USER_SUSPENDED' } });
    // Reading still works while suspended.
    expect(
      (await hs.call('GET', '/_matrix/client/v3/account/whoami', { token: bob.accessToken })).status,
    ).toBe(200);
    await hs.call('PUT', path('suspend'), { token: root, body: { suspended: false } });
    expect(
      (await hs.call('POST', '/_matrix/client/v3/createRoom', { token: bob.accessToken, body: {} })).status,
    ).toBe(200);

    expect((await hs.call('PUT', path('lock'), { token: root, body: { locked: true } })).body).toEqual({
      locked: true,
    });
    const locked = await hs.call('GET', '/_matrix/client/v3/account/whoami', { token: bob.accessToken });
    expect(locked).toMatchObject({ status: 401, body: { errcode: 'M_USER_LOCKED', soft_logout: true } });
    expect((await hs.call('GET', path('lock'), { token: root })).body).toEqual({ locked: true });
    expect((await hs.call('PUT', path('lock'), { token: root, body: { locked: 'yes' } })).status).toBe(400);
  });

  it('exempts admins from rate limits when configured (rate_limits.exempt_admins)', async () => {
    hs = await createTestHomeserver({
      rateLimits: { message: { perSecond: 0.001, burst: 1 } },
      rateLimitExemptAdmins: true,
    });
    const root = await hs.createUser('root');
    await hs.admin.setAdmin(root.userId, true);
    const bob = await hs.createUser('bob');
    const roomId = (
      await hs.call('POST', '/_matrix/client/v3/createRoom', {
        token: root.accessToken,
        body: { preset: 'public_chat' },
      })
    ).body.room_id as string;
    await hs.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });
    const send = (token: string, txn: string) =>
      hs.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, {
        token,
        body: { msgtype: 'm.text', body: txn },
      });
    for (const txn of ['a1', 'a2', 'a3']) expect((await send(root.accessToken, txn)).status).toBe(200);
    expect((await send(bob.accessToken, 'b1')).status).toBe(200);
    expect(await send(bob.accessToken, 'b2')).toMatchObject({
      status: 429,
      body: { errcode: 'M_LIMIT_EXCEEDED' },
    });
  });

  it('refuses every admin endpoint to a user who is not an admin', async () => {
    await start();
    const bob = await hs.createUser('bob');
    const alice = await hs.createUser('alice');
    const u = enc(alice.userId);
    const r = enc('!room:test.localhost');
    const calls: [string, string, unknown?][] = [
      ['GET', '/_synapse/admin/v2/users'],
      ['GET', `/_synapse/admin/v2/users/${u}`],
      ['PUT', `/_synapse/admin/v2/users/${u}`, { admin: true }],
      ['POST', `/_synapse/admin/v1/deactivate/${u}`, {}],
      ['POST', `/_synapse/admin/v1/reset_password/${u}`, { new_password: 'x-pass-word' }],
      ['GET', '/_synapse/admin/v1/rooms'],
      ['GET', `/_synapse/admin/v1/rooms/${r}`],
      ['DELETE', `/_synapse/admin/v2/rooms/${r}`, {}],
      ['GET', `/_matrix/client/v1/admin/lock/${u}`],
      ['PUT', `/_matrix/client/v1/admin/lock/${u}`, { locked: true }],
      ['GET', `/_matrix/client/v1/admin/suspend/${u}`],
      ['PUT', `/_matrix/client/v1/admin/suspend/${u}`, { suspended: true }],
    ];
    for (const [method, path, body] of calls) {
      const res = await hs.call(method, path, { token: bob.accessToken, ...(body ? { body } : {}) });
      expect([method, path, res.status, res.body.errcode]).toEqual([method, path, 403, 'M_FORBIDDEN']);
      const anonymous = await hs.call(method, path, body ? { body } : {});
      expect([method, path, anonymous.status]).toEqual([method, path, 401]);
    }
    const after = await hs.store.accounts.getUser(alice.userId);
    expect([after?.admin, after?.locked, after?.suspended, after?.deactivated]).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect((await hs.call('GET', '/_synapse/admin/v1/server_version')).body.server_version).toMatch(
      /^Hearth/,
    );
  });
});
