import { afterEach, describe, expect, it } from 'vitest';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

const PASSWORD = '/_matrix/client/v3/account/password';
const DEACTIVATE = '/_matrix/client/v3/account/deactivate';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const passwordAuth = (user: string, password: string, session?: unknown) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...(session !== undefined ? { session } : {}),
});

describe('account management', () => {
  let hs: AccountsTestHomeserver | undefined;
  const open = async () => {
    hs = await accountsHomeserver({ registration: 'open' });
    return hs;
  };
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('changes the password with UIA and logs the other devices out, keeping the current one', async () => {
    const hs = await open();
    const current = await hs.register('alice', 'old-pw');
    const other = await hs.login('alice', 'old-pw');

    const first = await hs.req('POST', PASSWORD, {
      token: current.accessToken,
      body: { new_password: 'new-pw' },
    });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const session = first.body.session;

    const wrong = await hs.req('POST', PASSWORD, {
      token: current.accessToken,
      body: { new_password: 'new-pw', auth: passwordAuth('alice', 'guess', session) },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(wrong.body.session).toBe(session);

    const ok = await hs.req('POST', PASSWORD, {
      token: current.accessToken,
      body: { new_password: 'new-pw', auth: passwordAuth('alice', 'old-pw', session) },
    });
    expect(ok).toEqual({ status: 200, body: {} });
    expect((await hs.req('GET', WHOAMI, { token: current.accessToken })).status).toBe(200);
    expect((await hs.req('GET', WHOAMI, { token: other.accessToken })).body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await hs.store.accounts.listDevices(current.userId)).map((d) => d.deviceId)).toEqual([
      current.deviceId,
    ]);

    const oldLogin = await hs.req('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.password', user: 'alice', password: 'old-pw' },
    });
    expect(oldLogin.status).toBe(403);
    expect((await hs.login('alice', 'new-pw')).userId).toBe(current.userId);
  });

  it('keeps other devices with logout_devices: false', async () => {
    const hs = await open();
    const current = await hs.register('alice', 'old-pw');
    const other = await hs.login('alice', 'old-pw');
    const r = await hs.req('POST', PASSWORD, {
      token: current.accessToken,
      body: { new_password: 'new-pw', logout_devices: false, auth: passwordAuth('alice', 'old-pw') },
    });
    expect(r.status).toBe(200);
    expect((await hs.req('GET', WHOAMI, { token: other.accessToken })).status).toBe(200);
  });

  it("refuses another user's password as proof", async () => {
    const hs = await open();
    const alice = await hs.register('alice', 'alice-pw');
    await hs.register('bob', 'bob-pw');
    const r = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: { new_password: 'x', auth: passwordAuth('bob', 'bob-pw') },
    });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
    expect((await hs.login('bob', 'bob-pw')).userId).toBe('@bob:test.localhost');
  });

  it('changes a password without an access token, the password stage naming the user', async () => {
    const hs = await open();
    const alice = await hs.register('alice', 'old-pw');
    const r = await hs.req('POST', PASSWORD, {
      body: { new_password: 'new-pw', auth: passwordAuth('alice', 'old-pw') },
    });
    expect(r.status).toBe(200);
    // No current device to keep: every session ends.
    expect((await hs.req('GET', WHOAMI, { token: alice.accessToken })).status).toBe(401);
    expect((await hs.login('alice', 'new-pw')).userId).toBe(alice.userId);
  });

  it('does not let a UIA session of one request authorise another', async () => {
    const hs = await open();
    const alice = await hs.register('alice', 'pw');
    const register = await hs.req('POST', '/_matrix/client/v3/register', {
      body: { username: 'zed', password: 'pw' },
    });
    const r = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: { new_password: 'x', auth: passwordAuth('alice', 'pw', register.body.session) },
    });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
  });

  it('offers the dummy stage to accounts without a password', async () => {
    const hs = await open();
    const alice = await hs.createUser('alice');
    const first = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: { new_password: 'first-pw' },
    });
    expect(first.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    const r = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: { new_password: 'first-pw', auth: { type: 'm.login.dummy', session: first.body.session } },
    });
    expect(r.status).toBe(200);
    expect((await hs.login('alice', 'first-pw')).userId).toBe(alice.userId);
  });

  it('validates password-change bodies', async () => {
    const hs = await open();
    const alice = await hs.register('alice', 'pw');
    const missing = await hs.req('POST', PASSWORD, { token: alice.accessToken, body: {} });
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const wrong = await hs.req('POST', PASSWORD, { token: alice.accessToken, body: { new_password: 1 } });
    expect(wrong.body.errcode).toBe('M_BAD_JSON');
    const empty = await hs.req('POST', PASSWORD, { token: alice.accessToken, body: { new_password: '' } });
    expect(empty.body.errcode).toBe('M_INVALID_PARAM');
    const noStage = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: {
        new_password: 'x',
        auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' } },
      },
    });
    expect(noStage.status).toBe(400);
    expect(noStage.body.errcode).toBe('M_MISSING_PARAM');
    const badIdentifier = await hs.req('POST', PASSWORD, {
      token: alice.accessToken,
      body: { new_password: 'x', auth: { type: 'm.login.password', identifier: 'alice', password: 'pw' } },
    });
    expect(badIdentifier.status).toBe(400);
    expect(badIdentifier.body.errcode).toBe('M_BAD_JSON');
  });

  it('deactivates: tokens die, login answers M_USER_DEACTIVATED, the name stays taken, rooms are left', async () => {
    const hs = await open();
    const services = hs.internals;
    const alice = await hs.register('alice', 'pw');
    const bob = await hs.register('bob', 'pw');
    const { roomId } = await services.rooms.createRoom(bob.userId, { preset: 'public_chat' });
    await services.rooms.join(alice.userId, roomId);
    // v12 room IDs hash the create event: a frozen clock would give both rooms one ID.
    hs.clock.advance(1);
    const { roomId: invitedTo } = await services.rooms.createRoom(bob.userId, { preset: 'private_chat' });
    await services.rooms.invite(bob.userId, invitedTo, alice.userId);

    const first = await hs.req('POST', DEACTIVATE, { token: alice.accessToken, body: {} });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const r = await hs.req('POST', DEACTIVATE, {
      token: alice.accessToken,
      body: { auth: passwordAuth('alice', 'pw', first.body.session), erase: true },
    });
    expect(r).toEqual({ status: 200, body: { id_server_unbind_result: 'success' } });

    expect((await hs.req('GET', WHOAMI, { token: alice.accessToken })).body.errcode).toBe('M_UNKNOWN_TOKEN');
    const login = await hs.req('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.password', user: 'alice', password: 'pw' },
    });
    expect(login.status).toBe(403);
    expect(login.body.errcode).toBe('M_USER_DEACTIVATED');
    const again = await hs.req('POST', '/_matrix/client/v3/register', {
      body: { username: 'alice', password: 'pw' },
    });
    expect(again.body.errcode).toBe('M_USER_IN_USE');
    expect((await hs.store.rooms.membership(roomId, alice.userId))?.membership).toBe('leave');
    expect((await hs.store.rooms.membership(invitedTo, alice.userId))?.membership).toBe('leave');
    expect(await hs.store.userData.getProfile(alice.userId)).toEqual({});
    expect((await hs.req('GET', WHOAMI, { token: bob.accessToken })).status).toBe(200);
  });

  it('answers the third-party identifier endpoints without pretending to bind anything', async () => {
    const hs = await open();
    const { accessToken: token } = await hs.register('alice', 'pw');
    expect(await hs.req('GET', '/_matrix/client/v3/account/3pid', { token })).toEqual({
      status: 200,
      body: { threepids: [] },
    });
    const add = await hs.req('POST', '/_matrix/client/v3/account/3pid/add', {
      token,
      body: { client_secret: 'c', sid: 's' },
    });
    expect(add.status).toBe(403);
    expect(add.body.errcode).toBe('M_THREEPID_AUTH_FAILED');
    const bind = await hs.req('POST', '/_matrix/client/v3/account/3pid/bind', {
      token,
      body: { client_secret: 'c', id_server: 'id.example.org', id_access_token: 't', sid: 's' },
    });
    expect(bind.body.errcode).toBe('M_SERVER_NOT_TRUSTED');
    const del = await hs.req('POST', '/_matrix/client/v3/account/3pid/delete', {
      token,
      body: { medium: 'email', address: 'a@example.org' },
    });
    expect(del.body).toEqual({ id_server_unbind_result: 'success' });
    const badMedium = await hs.req('POST', '/_matrix/client/v3/account/3pid/delete', {
      token,
      body: { medium: 'fax', address: 'a' },
    });
    expect(badMedium.body.errcode).toBe('M_BAD_JSON');
    const email = await hs.req('POST', '/_matrix/client/v3/account/3pid/email/requestToken', {
      body: { client_secret: 'c', email: 'a@example.org', send_attempt: 1 },
    });
    expect(email.body.errcode).toBe('M_THREEPID_MEDIUM_NOT_SUPPORTED');
    const reset = await hs.req('POST', '/_matrix/client/v3/account/password/email/requestToken', {
      body: { client_secret: 'c', email: 'a@example.org', send_attempt: 1 },
    });
    expect(reset.body.errcode).toBe('M_THREEPID_NOT_FOUND');
    const reg = await hs.req('POST', '/_matrix/client/v3/register/email/requestToken', {
      body: { client_secret: 'c', email: 'a@example.org', send_attempt: 1 },
    });
    expect(reg.status).toBe(403);
    expect(reg.body.errcode).toBe('M_THREEPID_DENIED');
  });

  it('answers whois for oneself and refuses it for others', async () => {
    const hs = await open();
    const alice = await hs.register('alice', 'pw', { device_id: 'ALICEDEV' });
    await hs.register('bob', 'pw');
    const self = await hs.req('GET', `/_matrix/client/v3/admin/whois/${encodeURIComponent(alice.userId)}`, {
      token: alice.accessToken,
    });
    expect(self.status).toBe(200);
    expect(self.body.user_id).toBe(alice.userId);
    expect(Object.keys(self.body.devices as object)).toEqual(['ALICEDEV']);
    const other = await hs.req(
      'GET',
      `/_matrix/client/v3/admin/whois/${encodeURIComponent('@bob:test.localhost')}`,
      {
        token: alice.accessToken,
      },
    );
    expect(other.status).toBe(403);
  });
});
