import { afterEach, describe, expect, it } from 'vitest';
import { type AccountsTestHomeserver, accountsHomeserver } from './testing-accounts.ts';

const DEVICES = '/_matrix/client/v3/devices';
const passwordAuth = (session: unknown, password = 'pw') => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user: 'alice' },
  password,
  session,
});

describe('device management', () => {
  let hs: AccountsTestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  const setup = async () => {
    hs = await accountsHomeserver({ registration: 'open' });
    const phone = await hs.register('alice', 'pw', {
      device_id: 'PHONE',
      initial_device_display_name: 'Phone',
    });
    const laptop = await hs.login('alice', 'pw', {
      device_id: 'LAPTOP',
      initial_device_display_name: 'Laptop',
    });
    const tablet = await hs.login('alice', 'pw', { device_id: 'TABLET' });
    return { hs, phone, laptop, tablet };
  };

  it('lists and reads devices, with last-seen times, and 404s for unknown ones', async () => {
    const { hs, phone } = await setup();
    const list = await hs.req('GET', DEVICES, { token: phone.accessToken });
    expect(list.status).toBe(200);
    const devices = list.body.devices as {
      device_id: string;
      display_name?: string;
      last_seen_ts?: number;
    }[];
    expect(devices.map((d) => [d.device_id, d.display_name]).sort()).toEqual([
      ['LAPTOP', 'Laptop'],
      ['PHONE', 'Phone'],
      ['TABLET', undefined],
    ]);
    expect(devices.every((d) => d.last_seen_ts === hs.clock.now())).toBe(true);

    const one = await hs.req('GET', `${DEVICES}/LAPTOP`, { token: phone.accessToken });
    expect(one.body).toEqual({ device_id: 'LAPTOP', display_name: 'Laptop', last_seen_ts: hs.clock.now() });
    const missing = await hs.req('GET', `${DEVICES}/NOPE`, { token: phone.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');

    // Another user's devices are not visible through this API.
    const bob = await hs.register('bob', 'pw');
    expect((await hs.req('GET', `${DEVICES}/LAPTOP`, { token: bob.accessToken })).status).toBe(404);
    expect(
      ((await hs.req('GET', DEVICES, { token: bob.accessToken })).body.devices as unknown[]).length,
    ).toBe(1);
  });

  it('records when a device was last seen, at most every ten minutes', async () => {
    const { hs, phone } = await setup();
    const start = hs.clock.now();
    // One address throughout (the harness gives each request its own): a new address is
    // written at once, whatever the interval.
    const ip = '192.0.2.7';
    hs.clock.advance(11 * 60 * 1000);
    await hs.req('GET', DEVICES, { token: phone.accessToken, ip });
    const seen = (await hs.store.accounts.getDevice(phone.userId, 'PHONE'))?.lastSeenAt;
    expect(seen).toBe(start + 11 * 60 * 1000);
    hs.clock.advance(60 * 1000);
    await hs.req('GET', DEVICES, { token: phone.accessToken, ip });
    expect((await hs.store.accounts.getDevice(phone.userId, 'PHONE'))?.lastSeenAt).toBe(seen);
    await hs.req('GET', DEVICES, { token: phone.accessToken, ip: '192.0.2.8' });
    const moved = await hs.store.accounts.getDevice(phone.userId, 'PHONE');
    expect([moved?.lastSeenAt, moved?.lastSeenIp]).toEqual([start + 12 * 60 * 1000, '192.0.2.8']);
  });

  it('renames a device and 404s for unknown ones', async () => {
    const { hs, phone } = await setup();
    const before = (await hs.store.positions()).deviceLists;
    const r = await hs.req('PUT', `${DEVICES}/TABLET`, {
      token: phone.accessToken,
      body: { display_name: 'Tablet' },
    });
    expect(r).toEqual({ status: 200, body: {} });
    expect((await hs.req('GET', `${DEVICES}/TABLET`, { token: phone.accessToken })).body.display_name).toBe(
      'Tablet',
    );
    // Device names travel in device keys: other users learn of the change through device lists.
    expect((await hs.store.positions()).deviceLists).toBeGreaterThan(before);
    const unknown = await hs.req('PUT', `${DEVICES}/NOPE`, {
      token: phone.accessToken,
      body: { display_name: 'x' },
    });
    expect(unknown.status).toBe(404);
    const bad = await hs.req('PUT', `${DEVICES}/TABLET`, {
      token: phone.accessToken,
      body: { display_name: 7 },
    });
    expect(bad.body.errcode).toBe('M_BAD_JSON');
    const long = await hs.req('PUT', `${DEVICES}/TABLET`, {
      token: phone.accessToken,
      body: { display_name: 'x'.repeat(101) },
    });
    expect(long.body.errcode).toBe('M_INVALID_PARAM');
    expect((await hs.req('PUT', `${DEVICES}/TABLET`, { token: phone.accessToken })).status).toBe(200);
  });

  it('deletes one device with UIA; its token stops working', async () => {
    const { hs, phone, laptop } = await setup();
    const first = await hs.req('DELETE', `${DEVICES}/LAPTOP`, { token: phone.accessToken });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(await hs.store.accounts.getDevice(phone.userId, 'LAPTOP')).not.toBeNull();

    const wrong = await hs.req('DELETE', `${DEVICES}/LAPTOP`, {
      token: phone.accessToken,
      body: { auth: passwordAuth(first.body.session, 'nope') },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(await hs.store.accounts.getDevice(phone.userId, 'LAPTOP')).not.toBeNull();

    const ok = await hs.req('DELETE', `${DEVICES}/LAPTOP`, {
      token: phone.accessToken,
      body: { auth: passwordAuth(first.body.session) },
    });
    expect(ok).toEqual({ status: 200, body: {} });
    expect(await hs.store.accounts.getDevice(phone.userId, 'LAPTOP')).toBeNull();
    const dead = await hs.req('GET', DEVICES, { token: laptop.accessToken });
    expect(dead.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('deletes devices in bulk, and a session authorises only the devices it was started for', async () => {
    const { hs, phone, laptop, tablet } = await setup();
    const first = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: phone.accessToken,
      body: { devices: ['LAPTOP'] },
    });
    expect(first.status).toBe(401);
    // The session was for LAPTOP only: it cannot delete TABLET too.
    const swapped = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: phone.accessToken,
      body: { devices: ['LAPTOP', 'TABLET'], auth: passwordAuth(first.body.session) },
    });
    expect(swapped.status).toBe(403);
    expect(await hs.store.accounts.getDevice(phone.userId, 'TABLET')).not.toBeNull();

    const both = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: phone.accessToken,
      body: { devices: ['TABLET', 'LAPTOP', 'GONE'], auth: passwordAuth(undefined) },
    });
    expect(both.status).toBe(200);
    for (const token of [laptop.accessToken, tablet.accessToken]) {
      expect((await hs.req('GET', DEVICES, { token })).status).toBe(401);
    }
    const left = (await hs.req('GET', DEVICES, { token: phone.accessToken })).body.devices as {
      device_id: string;
    }[];
    expect(left.map((d) => d.device_id)).toEqual(['PHONE']);

    const noList = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: phone.accessToken,
      body: {},
    });
    expect(noList.body.errcode).toBe('M_MISSING_PARAM');
    const badList = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: phone.accessToken,
      body: { devices: 'LAPTOP' },
    });
    expect(badList.body.errcode).toBe('M_BAD_JSON');
  });

  it("cannot delete another user's devices", async () => {
    const { hs, phone } = await setup();
    const bob = await hs.register('bob', 'bob-pw');
    const r = await hs.req('POST', '/_matrix/client/v3/delete_devices', {
      token: bob.accessToken,
      body: {
        devices: ['PHONE'],
        auth: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'bob' },
          password: 'bob-pw',
        },
      },
    });
    // Deleting one's own (non-existent) PHONE succeeds and touches nothing of Alice's.
    expect(r.status).toBe(200);
    expect(await hs.store.accounts.getDevice(phone.userId, 'PHONE')).not.toBeNull();
    // Alice's password does not authorise Bob's request.
    const mixed = await hs.req('DELETE', `${DEVICES}/${bob.deviceId}`, {
      token: bob.accessToken,
      body: { auth: passwordAuth(undefined) },
    });
    expect(mixed.status).toBe(401);
    expect(mixed.body.errcode).toBe('M_FORBIDDEN');
  });
});
