import { afterEach, describe, expect, it } from 'vitest';
import type { HomeserverOptions } from '../../server.ts';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';

describe('login, logout, refresh', () => {
  let hs: AccountsTestHomeserver | undefined;
  const open = async (options: Partial<HomeserverOptions> = {}) => {
    hs = await accountsHomeserver({ registration: 'open', ...options });
    await hs.register('alice', 'secret');
    return hs;
  };
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('lists the password and token flows', async () => {
    const hs = await open();
    for (const prefix of ['r0', 'v3']) {
      const r = await hs.req('GET', `/_matrix/client/${prefix}/login`);
      expect(r).toEqual({
        status: 200,
        body: { flows: [{ type: 'm.login.password' }, { type: 'm.login.token', get_login_token: true }] },
      });
    }
  });

  it('logs in by localpart, full user ID, upper case and the legacy user field', async () => {
    const hs = await open();
    const bodies = [
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'secret' },
      {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: '@alice:test.localhost' },
        password: 'secret',
      },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'ALICE' }, password: 'secret' },
      { type: 'm.login.password', user: 'alice', password: 'secret' },
      { type: 'm.login.password', user: '@alice:test.localhost', password: 'secret' },
    ];
    const tokens = new Set<string>();
    for (const body of bodies) {
      const r = await hs.req('POST', LOGIN, { body });
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(r.body.user_id).toBe('@alice:test.localhost');
      expect(r.body.home_server).toBe('test.localhost');
      const token = r.body.access_token as string;
      tokens.add(token);
      const who = await hs.req('GET', WHOAMI, { token });
      expect(who.body).toEqual({
        user_id: '@alice:test.localhost',
        device_id: r.body.device_id,
        is_guest: false,
      });
    }
    expect(tokens.size).toBe(bodies.length);
    // Registration made one device; each login another.
    expect(await hs.store.accounts.listDevices('@alice:test.localhost')).toHaveLength(bodies.length + 1);
  });

  it('refuses wrong passwords, unknown users, other servers and third-party IDs with 403', async () => {
    const hs = await open();
    for (const body of [
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'wrong' },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody' }, password: 'secret' },
      {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: '@alice:elsewhere.org' },
        password: 'secret',
      },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@bad id' }, password: 'secret' },
      {
        type: 'm.login.password',
        identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' },
        password: 'secret',
      },
      {
        type: 'm.login.password',
        identifier: { type: 'm.id.phone', country: 'GB', phone: '123' },
        password: 'secret',
      },
      { type: 'm.login.password', medium: 'email', address: 'a@b.c', password: 'secret' },
    ]) {
      const r = await hs.req('POST', LOGIN, { body });
      expect(r.status, JSON.stringify(body)).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
  });

  it('refuses malformed login requests with 400', async () => {
    const hs = await open();
    const cases: [unknown, string][] = [
      ['{"type":', 'M_NOT_JSON'],
      [{ identifier: { type: 'm.id.user', user: 'alice' }, password: 'secret' }, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' } }, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', password: 'secret' }, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', identifier: { user: 'alice' }, password: 'secret' }, 'M_MISSING_PARAM'],
      [
        { type: 'm.login.password', identifier: { type: 'm.id.user' }, password: 'secret' },
        'M_MISSING_PARAM',
      ],
      [
        { type: 'm.login.password', identifier: { type: 'm.id.thirdparty' }, password: 'secret' },
        'M_MISSING_PARAM',
      ],
      [
        { type: 'm.login.password', identifier: { type: 'm.id.pigeon', user: 'alice' }, password: 'secret' },
        'M_UNKNOWN',
      ],
      [{ type: 'm.login.password', identifier: 'alice', password: 'secret' }, 'M_BAD_JSON'],
      [{ type: 'm.login.password', user: 'alice', password: 42 }, 'M_BAD_JSON'],
      [{ type: 'm.login.pigeon', token: 'abc' }, 'M_UNKNOWN'],
      [{ type: 'm.login.token' }, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', user: 'alice', password: 'secret', device_id: '' }, 'M_INVALID_PARAM'],
    ];
    for (const [body, errcode] of cases) {
      const r = await hs.req('POST', LOGIN, { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errcode, JSON.stringify(body)).toBe(errcode);
    }
  });

  it('reuses a known device: same device, new token, the old token revoked, the name kept', async () => {
    const hs = await open();
    const first = await hs.login('alice', 'secret', {
      device_id: 'LAPTOP',
      initial_device_display_name: 'Laptop',
    });
    expect(first.deviceId).toBe('LAPTOP');
    const second = await hs.login('alice', 'secret', {
      device_id: 'LAPTOP',
      initial_device_display_name: 'Ignored',
    });
    expect(second.deviceId).toBe('LAPTOP');
    expect(second.accessToken).not.toBe(first.accessToken);
    const old = await hs.req('GET', WHOAMI, { token: first.accessToken });
    expect(old.status).toBe(401);
    expect(old.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await hs.req('GET', WHOAMI, { token: second.accessToken })).body.device_id).toBe('LAPTOP');
    const laptops = (await hs.store.accounts.listDevices('@alice:test.localhost')).filter(
      (d) => d.deviceId === 'LAPTOP',
    );
    expect(laptops.map((d) => d.displayName)).toEqual(['Laptop']);
  });

  it('re-login on a known device revokes its earlier refresh tokens too, keeping the device and its keys', async () => {
    const hs = await open({ accessTokenLifetimeMs: 60_000 });
    const login = (extra: Record<string, unknown> = {}) =>
      hs.req('POST', LOGIN, {
        body: { type: 'm.login.password', user: 'alice', password: 'secret', device_id: 'TABLET', ...extra },
      });
    const first = await login({ refresh_token: true });
    expect(first.status).toBe(200);
    const oldRefreshes = [first.body.refresh_token as string];
    expect(typeof oldRefreshes[0]).toBe('string');
    await hs.store.e2ee.putDeviceKeys('@alice:test.localhost', 'TABLET', { device_id: 'TABLET', keys: {} });

    for (const extra of [{ refresh_token: true }, {}]) {
      const again = await login(extra);
      expect(again.status).toBe(200);
      expect(again.body.device_id).toBe('TABLET');
      expect(again.body.refresh_token !== undefined).toBe(extra.refresh_token === true);
      if (again.body.refresh_token !== undefined) oldRefreshes.push(again.body.refresh_token as string);
    }
    // Both refresh tokens handed out before the last login are gone, not just the access tokens.
    expect(oldRefreshes).toHaveLength(2);
    for (const refresh_token of oldRefreshes) {
      const refused = await hs.req('POST', '/_matrix/client/v3/refresh', { body: { refresh_token } });
      expect(refused.status).toBe(401);
      expect(refused.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    expect((await hs.req('GET', WHOAMI, { token: first.body.access_token as string })).body.errcode).toBe(
      'M_UNKNOWN_TOKEN',
    );
    expect(await hs.store.accounts.getDevice('@alice:test.localhost', 'TABLET')).not.toBeNull();
    const keys = await hs.store.e2ee.getDeviceKeys([
      { userId: '@alice:test.localhost', deviceIds: ['TABLET'] },
    ]);
    expect(keys).toHaveLength(1);
  });

  it('keeps device keys across a re-login on the same device (soft logout recovery)', async () => {
    const hs = await open();
    const first = await hs.login('alice', 'secret', { device_id: 'PHONE' });
    await hs.store.e2ee.putDeviceKeys(first.userId, 'PHONE', {
      device_id: 'PHONE',
      user_id: first.userId,
      keys: {},
    });
    await hs.login('alice', 'secret', { device_id: 'PHONE' });
    const keys = await hs.store.e2ee.getDeviceKeys([{ userId: first.userId, deviceIds: ['PHONE'] }]);
    expect(keys).toHaveLength(1);
  });

  it('refuses a device ID equal to a cross-signing key ID', async () => {
    const hs = await open();
    await hs.store.e2ee.putCrossSigningKey('@alice:test.localhost', 'master', {
      user_id: '@alice:test.localhost',
      usage: ['master'],
      keys: { 'ed25519:MASTERKEY': 'MASTERKEY' },
    });
    const r = await hs.req('POST', LOGIN, {
      body: { type: 'm.login.password', user: 'alice', password: 'secret', device_id: 'MASTERKEY' },
    });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
  });

  it('logout deletes the device: its token is then 401 M_UNKNOWN_TOKEN without soft_logout', async () => {
    const hs = await open();
    const a = await hs.login('alice', 'secret');
    const b = await hs.login('alice', 'secret');
    const out = await hs.req('POST', '/_matrix/client/v3/logout', { token: a.accessToken });
    expect(out).toEqual({ status: 200, body: {} });
    const after = await hs.req('GET', WHOAMI, { token: a.accessToken });
    expect(after.status).toBe(401);
    expect(after.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect(after.body.soft_logout).toBeUndefined();
    expect(await hs.store.accounts.getDevice(a.userId, a.deviceId)).toBeNull();
    expect((await hs.req('GET', WHOAMI, { token: b.accessToken })).status).toBe(200);
    const again = await hs.req('POST', '/_matrix/client/r0/logout', { token: a.accessToken });
    expect(again.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const none = await hs.req('POST', '/_matrix/client/v3/logout');
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('logout/all ends every session of the user and no one else’s', async () => {
    const hs = await open();
    const a = await hs.login('alice', 'secret');
    const b = await hs.login('alice', 'secret');
    const bob = await hs.register('bob', 'pw');
    expect((await hs.req('POST', '/_matrix/client/v3/logout/all', { token: a.accessToken })).status).toBe(
      200,
    );
    for (const token of [a.accessToken, b.accessToken]) {
      expect((await hs.req('GET', WHOAMI, { token })).body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    expect(await hs.store.accounts.listDevices('@alice:test.localhost')).toEqual([]);
    expect((await hs.req('GET', WHOAMI, { token: bob.accessToken })).status).toBe(200);
    expect((await hs.login('alice', 'secret')).userId).toBe('@alice:test.localhost');
  });

  it('expires access tokens into a soft logout, and refresh rotates both tokens', async () => {
    const hs = await open({ accessTokenLifetimeMs: 60_000 });
    const r = await hs.req('POST', LOGIN, {
      body: { type: 'm.login.password', user: 'alice', password: 'secret', refresh_token: true },
    });
    expect(r.body.expires_in_ms).toBe(60_000);
    const access = r.body.access_token as string;
    const refresh = r.body.refresh_token as string;
    expect(typeof refresh).toBe('string');
    expect((await hs.req('GET', WHOAMI, { token: access })).status).toBe(200);

    hs.clock.advance(60_000);
    const expired = await hs.req('GET', WHOAMI, { token: access });
    expect(expired.status).toBe(401);
    expect(expired.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect(expired.body.soft_logout).toBe(true);

    const refreshed = await hs.req('POST', '/_matrix/client/v3/refresh', {
      body: { refresh_token: refresh },
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.expires_in_ms).toBe(60_000);
    const access2 = refreshed.body.access_token as string;
    const refresh2 = refreshed.body.refresh_token as string;
    expect(access2).not.toBe(access);
    expect(refresh2).not.toBe(refresh);
    const who = await hs.req('GET', WHOAMI, { token: access2 });
    expect(who.body.device_id).toBe(r.body.device_id);

    // The old refresh token is spent.
    const reused = await hs.req('POST', '/_matrix/client/v3/refresh', { body: { refresh_token: refresh } });
    expect(reused.status).toBe(401);
    expect(reused.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const unknown = await hs.req('POST', '/_matrix/client/v3/refresh', {
      body: { refresh_token: 'made-up' },
    });
    expect(unknown.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const missing = await hs.req('POST', '/_matrix/client/v3/refresh', { body: {} });
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');

    // The new one works once more; logging out deletes the device and its refresh token.
    const third = await hs.req('POST', '/_matrix/client/v3/refresh', { body: { refresh_token: refresh2 } });
    expect(third.status).toBe(200);
    await hs.req('POST', '/_matrix/client/v3/logout', { token: third.body.access_token as string });
    const afterLogout = await hs.req('POST', '/_matrix/client/v3/refresh', {
      body: { refresh_token: third.body.refresh_token },
    });
    expect(afterLogout.status).toBe(401);
    expect(afterLogout.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('rate-limits login attempts per client address with M_LIMIT_EXCEEDED and retry_after_ms', async () => {
    const hs = await open();
    const attempt = (ip: string) =>
      hs.req('POST', LOGIN, { body: { type: 'm.login.password', user: 'alice', password: 'guess' }, ip });
    const statuses: number[] = [];
    let limited: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++) {
      const r = await attempt('198.51.100.7');
      statuses.push(r.status);
      limited = r.body;
    }
    expect(statuses).toEqual([403, 403, 403, 403, 403, 429]);
    expect(limited.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(limited.retry_after_ms).toBe(5000);
    expect((await attempt('198.51.100.8')).status).toBe(403);
    // The bucket refills with time.
    hs.clock.advance(5000);
    expect((await attempt('198.51.100.7')).status).toBe(403);
  });

  it('upgrades old password hashes on login', async () => {
    const hs = await open();
    const before = (await hs.store.accounts.getUser('@alice:test.localhost'))?.passwordHash;
    // A second homeserver on the same store with more iterations configured: login re-hashes.
    // (Not closed here: closing it would close the shared store under the first one.)
    const { createHomeserver } = await import('../../server.ts');
    const again = createHomeserver({
      serverName: 'test.localhost',
      store: hs.store,
      passwordIterations: 2000,
    });
    const r = await again.fetch(
      new Request('http://test.localhost/_matrix/client/v3/login', {
        method: 'POST',
        body: JSON.stringify({ type: 'm.login.password', user: 'alice', password: 'secret' }),
      }),
    );
    expect(r.status).toBe(200);
    const after = (await hs.store.accounts.getUser('@alice:test.localhost'))?.passwordHash;
    expect(before).toMatch(/^pbkdf2-sha512\$1000\$/);
    expect(after).toMatch(/^pbkdf2-sha512\$2000\$/);
  });
});
