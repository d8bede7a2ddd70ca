import { afterEach, describe, expect, it } from 'vitest';
import type { HomeserverOptions } from '../../server.ts';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

const REGISTER = '/_matrix/client/v3/register';

describe('POST /register', () => {
  let hs: AccountsTestHomeserver | undefined;
  const open = async (options: Partial<HomeserverOptions> = {}) => {
    hs = await accountsHomeserver(options);
    return hs;
  };
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('runs user-interactive auth: 401 with flows and a stored session, then m.login.dummy → 200', async () => {
    const hs = await open({ registration: 'open' });
    const first = await hs.req('POST', REGISTER, { body: { username: 'alice', password: 'pw1' } });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(first.body.params).toEqual({});
    // A plain challenge carries no error: the spec's first 401 is "here is what to do".
    expect(first.body.errcode).toBeUndefined();
    expect(first.body.completed).toBeUndefined();
    const session = first.body.session as string;
    expect(session).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(await hs.store.accounts.getUiaSession(session, hs.clock.now())).not.toBeNull();
    expect(await hs.store.accounts.getUser('@alice:test.localhost')).toBeNull();

    const second = await hs.req('POST', REGISTER, {
      body: { username: 'alice', password: 'pw1', auth: { type: 'm.login.dummy', session } },
    });
    expect(second.status).toBe(200);
    expect(second.body.user_id).toBe('@alice:test.localhost');
    expect(second.body.home_server).toBe('test.localhost');
    expect(second.body.device_id).toMatch(/^[A-Z]{10}$/);
    expect(typeof second.body.access_token).toBe('string');
    expect(second.body.refresh_token).toBeUndefined();
    expect(second.body.expires_in_ms).toBeUndefined();
    // The completed session cannot authorise another registration.
    expect(await hs.store.accounts.getUiaSession(session, hs.clock.now())).toBeNull();

    const who = await hs.req('GET', '/_matrix/client/v3/account/whoami', {
      token: second.body.access_token as string,
    });
    expect(who.body).toEqual({
      user_id: '@alice:test.localhost',
      device_id: second.body.device_id,
      is_guest: false,
    });
    expect(await hs.store.userData.getProfile('@alice:test.localhost')).toEqual({ displayname: 'alice' });
    // The password was stored as a PBKDF2 hash, never in clear.
    const user = await hs.store.accounts.getUser('@alice:test.localhost');
    expect(user?.passwordHash).toMatch(/^pbkdf2-sha512\$1000\$/);
    expect(user?.passwordHash).not.toContain('pw1');
  });

  it('answers on the r0 prefix too, and accepts an auth dict without a prior session', async () => {
    const hs = await open({ registration: 'open' });
    const r = await hs.req('POST', '/_matrix/client/r0/register', {
      body: { username: 'old', password: 'pw', auth: { type: 'm.login.dummy' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.user_id).toBe('@old:test.localhost');
  });

  it('refuses stages out of order and unknown sessions', async () => {
    const hs = await open({ registration: 'open' });
    const first = await hs.req('POST', REGISTER, { body: { username: 'bob', password: 'pw' } });
    const wrong = await hs.req('POST', REGISTER, {
      body: {
        username: 'bob',
        password: 'pw',
        auth: { type: 'm.login.registration_token', token: 'x', session: first.body.session },
      },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(wrong.body.session).toBe(first.body.session);
    expect(wrong.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);

    const unknown = await hs.req('POST', REGISTER, {
      body: { username: 'bob', password: 'pw', auth: { type: 'm.login.dummy', session: 'nope' } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errcode).toBe('M_UNKNOWN');

    const expired = await hs.req('POST', REGISTER, { body: { username: 'bob', password: 'pw' } });
    hs.clock.advance(31 * 60 * 1000);
    const late = await hs.req('POST', REGISTER, {
      body: {
        username: 'bob',
        password: 'pw',
        auth: { type: 'm.login.dummy', session: expired.body.session },
      },
    });
    expect(late.status).toBe(400);
    expect(await hs.store.accounts.getUser('@bob:test.localhost')).toBeNull();
  });

  it('with the token policy: offers m.login.registration_token, refuses bad tokens, counts uses', async () => {
    const hs = await open({ registration: 'token' });
    const services = hs.internals;
    const token = await services.accounts.createRegistrationToken({ usesAllowed: 1 });
    const validity = (t: string) =>
      hs.req(
        'GET',
        `/_matrix/client/v1/register/m.login.registration_token/validity?token=${encodeURIComponent(t)}`,
      );
    expect((await validity(token)).body).toEqual({ valid: true });
    expect((await validity('unknown')).body).toEqual({ valid: false });
    expect((await validity('not a token!')).body).toEqual({ valid: false });

    const first = await hs.req('POST', REGISTER, { body: { username: 'carol', password: 'pw' } });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.registration_token'] }]);
    const session = first.body.session;

    const dummy = await hs.req('POST', REGISTER, {
      body: { username: 'carol', password: 'pw', auth: { type: 'm.login.dummy', session } },
    });
    expect(dummy.status).toBe(401);
    expect(dummy.body.errcode).toBe('M_FORBIDDEN');

    const bad = await hs.req('POST', REGISTER, {
      body: {
        username: 'carol',
        password: 'pw',
        auth: { type: 'm.login.registration_token', token: 'wrong', session },
      },
    });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNAUTHORIZED');
    expect(bad.body.session).toBe(session);
    expect(await hs.store.accounts.getUser('@carol:test.localhost')).toBeNull();

    const good = await hs.req('POST', REGISTER, {
      body: {
        username: 'carol',
        password: 'pw',
        auth: { type: 'm.login.registration_token', token, session },
      },
    });
    expect(good.status).toBe(200);
    expect(good.body.user_id).toBe('@carol:test.localhost');
    expect((await hs.store.accounts.getRegistrationToken(token))?.completed).toBe(1);
    expect((await validity(token)).body).toEqual({ valid: false });

    // Used up: the next registration with it fails at the stage.
    const again = await hs.req('POST', REGISTER, {
      body: { username: 'dave', password: 'pw', auth: { type: 'm.login.registration_token', token } },
    });
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await hs.store.accounts.getUser('@dave:test.localhost')).toBeNull();
  });

  it('honours token expiry', async () => {
    const hs = await open({ registration: 'token' });
    const token = await hs.internals.accounts.createRegistrationToken({
      expiresAt: hs.clock.now() + 1000,
    });
    hs.clock.advance(1000);
    const r = await hs.req('POST', REGISTER, {
      body: { username: 'erin', password: 'pw', auth: { type: 'm.login.registration_token', token } },
    });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_UNAUTHORIZED');
  });

  it('with the closed policy: 403 M_FORBIDDEN for registration, availability and token validity', async () => {
    const hs = await open({ registration: 'closed' });
    for (const [method, path, body] of [
      ['POST', REGISTER, { username: 'x', password: 'pw' }],
      ['POST', REGISTER, { username: 'x', password: 'pw', auth: { type: 'm.login.dummy' } }],
      ['GET', '/_matrix/client/v3/register/available?username=x', undefined],
      ['GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=abc', undefined],
    ] as const) {
      const r = await hs.req(method, path, { body });
      expect(r.status, path).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(await hs.store.accounts.getUser('@x:test.localhost')).toBeNull();
  });

  it('maps usernames to lower case, refuses invalid ones and taken ones before auth', async () => {
    const hs = await open({ registration: 'open' });
    const { userId } = await hs.register('Frank', 'pw');
    expect(userId).toBe('@frank:test.localhost');

    for (const username of ['bad name', 'é', 'a:b', '', '12345', 'x'.repeat(250)]) {
      const r = await hs.req('POST', REGISTER, { body: { username, password: 'pw' } });
      expect(r.status, username).toBe(400);
      expect(r.body.errcode, username).toBe('M_INVALID_USERNAME');
    }
    const taken = await hs.req('POST', REGISTER, { body: { username: 'FRANK', password: 'pw' } });
    expect(taken.status).toBe(400);
    expect(taken.body.errcode).toBe('M_USER_IN_USE');
    // Also after auth, if the name was taken between the two requests.
    const first = await hs.req('POST', REGISTER, { body: { username: 'gina', password: 'pw' } });
    await hs.register('gina', 'other');
    const late = await hs.req('POST', REGISTER, {
      body: {
        username: 'gina',
        password: 'pw',
        auth: { type: 'm.login.dummy', session: first.body.session },
      },
    });
    expect(late.status).toBe(400);
    expect(late.body.errcode).toBe('M_USER_IN_USE');
  });

  it('answers GET /register/available', async () => {
    const hs = await open({ registration: 'open' });
    const available = (u: string) =>
      hs.req('GET', `/_matrix/client/v3/register/available?username=${encodeURIComponent(u)}`);
    expect(await available('henry')).toEqual({ status: 200, body: { available: true } });
    await hs.register('henry', 'pw');
    const taken = await available('Henry');
    expect(taken.status).toBe(400);
    expect(taken.body.errcode).toBe('M_USER_IN_USE');
    const invalid = await available('no way');
    expect(invalid.body.errcode).toBe('M_INVALID_USERNAME');
    const missing = await hs.req('GET', '/_matrix/client/v3/register/available');
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('generates a user ID when no username is given', async () => {
    const hs = await open({ registration: 'open' });
    const r = await hs.req('POST', REGISTER, { body: { password: 'pw', auth: { type: 'm.login.dummy' } } });
    expect(r.status).toBe(200);
    expect(r.body.user_id).toMatch(/^@[1-9][0-9]{11}:test\.localhost$/);
  });

  it('inhibit_login: the account exists, no device or token is made', async () => {
    const hs = await open({ registration: 'open' });
    const r = await hs.req('POST', REGISTER, {
      body: { username: 'ivan', password: 'pw', inhibit_login: true, auth: { type: 'm.login.dummy' } },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ user_id: '@ivan:test.localhost', home_server: 'test.localhost' });
    expect(await hs.store.accounts.listDevices('@ivan:test.localhost')).toEqual([]);
    expect((await hs.login('ivan', 'pw')).userId).toBe('@ivan:test.localhost');
  });

  it('keeps the client device_id and initial_device_display_name', async () => {
    const hs = await open({ registration: 'open' });
    const r = await hs.register('judy', 'pw', {
      device_id: 'MYPHONE',
      initial_device_display_name: 'Judy phone',
    });
    expect(r.deviceId).toBe('MYPHONE');
    const devices = await hs.store.accounts.listDevices('@judy:test.localhost');
    expect(devices.map((d) => [d.deviceId, d.displayName])).toEqual([['MYPHONE', 'Judy phone']]);
    const bad = await hs.req('POST', REGISTER, {
      body: { username: 'k', password: 'pw', device_id: 'a\u0000b' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('issues a refresh token and an expiring access token when asked and configured', async () => {
    const hs = await open({ registration: 'open', accessTokenLifetimeMs: 60_000 });
    const r = await hs.req('POST', REGISTER, {
      body: { username: 'kim', password: 'pw', refresh_token: true, auth: { type: 'm.login.dummy' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.expires_in_ms).toBe(60_000);
    expect(typeof r.body.refresh_token).toBe('string');
    // Without refresh support the client gets a token that does not expire.
    const plain = await hs.register('lee', 'pw');
    hs.clock.advance(120_000);
    expect(
      (await hs.req('GET', '/_matrix/client/v3/account/whoami', { token: plain.accessToken })).status,
    ).toBe(200);
  });

  it('registers guests only when guest access is on', async () => {
    const off = await open({ registration: 'open', guestAccess: false });
    const refused = await off.req('POST', `${REGISTER}?kind=guest`, { body: {} });
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    await off.close();

    const hs = await open({ registration: 'closed', guestAccess: true });
    // No user-interactive auth for guests; every body key but the device name is ignored.
    const r = await hs.req('POST', `${REGISTER}?kind=guest`, {
      body: { username: 'ignored', device_id: 'IGNORED', initial_device_display_name: 'Guest tab' },
    });
    expect(r.status).toBe(200);
    expect(r.body.user_id).toMatch(/^@[0-9]+:test\.localhost$/);
    expect(r.body.device_id).not.toBe('IGNORED');
    const token = r.body.access_token as string;
    const who = await hs.req('GET', '/_matrix/client/v3/account/whoami', { token });
    expect(who.body.is_guest).toBe(true);
    const device = await hs.req('GET', `/_matrix/client/v3/devices/${r.body.device_id}`, { token });
    expect(device.body.display_name).toBe('Guest tab');
    // Endpoints outside the guest list refuse guests.
    const threepids = await hs.req('GET', '/_matrix/client/v3/account/3pid', { token });
    expect(threepids.status).toBe(403);
    expect(threepids.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    // A guest has no password: it cannot log in.
    const login = await hs.req('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.password', user: r.body.user_id, password: '' },
    });
    expect(login.status).toBe(403);
    const kind = await hs.req('POST', `${REGISTER}?kind=robot`, { body: {} });
    expect(kind.status).toBe(400);
    expect(kind.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('refuses malformed bodies with the right error', async () => {
    const hs = await open({ registration: 'open' });
    const notJson = await hs.req('POST', REGISTER, { body: '{"username": ' });
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const wrongType = await hs.req('POST', REGISTER, { body: { username: 5 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errcode).toBe('M_BAD_JSON');
    const badAuth = await hs.req('POST', REGISTER, { body: { username: 'x', auth: 'dummy' } });
    expect(badAuth.body.errcode).toBe('M_BAD_JSON');
    const badSession = await hs.req('POST', REGISTER, {
      body: { username: 'x', auth: { type: 'm.login.dummy', session: 3 } },
    });
    expect(badSession.body.errcode).toBe('M_BAD_JSON');
    const noPassword = await hs.req('POST', REGISTER, {
      body: { username: 'x', auth: { type: 'm.login.dummy' } },
    });
    expect(noPassword.status).toBe(400);
    expect(noPassword.body.errcode).toBe('M_MISSING_PARAM');
    expect(await hs.store.accounts.getUser('@x:test.localhost')).toBeNull();
    const long = await hs.req('POST', REGISTER, { body: { username: 'x', password: 'p'.repeat(513) } });
    expect(long.body.errcode).toBe('M_INVALID_PARAM');
    const upgrade = await hs.req('POST', REGISTER, {
      body: { username: 'x', password: 'pw', guest_access_token: 't' },
    });
    expect(upgrade.status).toBe(403);
  });

  it('rate-limits registration per client address', async () => {
    const hs = await open({ registration: 'open' });
    const statuses: number[] = [];
    let last: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++) {
      const r = await hs.req('POST', REGISTER, {
        body: { username: `r${i}`, password: 'pw' },
        ip: '192.0.2.9',
      });
      statuses.push(r.status);
      last = r.body;
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(last.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(last.retry_after_ms).toBeGreaterThan(0);
    // Another address is not affected.
    expect(
      (await hs.req('POST', REGISTER, { body: { username: 'r9', password: 'pw' }, ip: '192.0.2.10' })).status,
    ).toBe(401);
  });
});
