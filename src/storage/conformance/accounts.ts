/** Conformance: accounts, devices, tokens, UIA, registration tokens (QUERIES.md "Accounts"). */
import { describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../core/base64.ts';
import { sha256 } from '../../core/crypto.ts';
import { createStore } from '../create-store.ts';
import type { Engine } from '../engine.ts';
import type { Store } from '../store.ts';
import { ALICE, type ConformanceTarget, dump, faultyEngine, InjectedFault, useStores } from './testing.ts';

const session = (deviceId: string, accessToken: string, extra: object = {}) => ({
  userId: ALICE,
  deviceId,
  accessToken,
  now: 1000,
  ...extra,
});

/** Whether a refresh token is still stored, probed without spending it (a rotation would). */
const refreshKnown = async (engine: Engine, token: string) =>
  (await engine.read(['refresh_tokens'], (tx) =>
    tx.get('refresh_tokens', encodeBase64(sha256(new TextEncoder().encode(token)))),
  )) !== undefined;

const newUser = {
  userId: ALICE,
  passwordHash: '$argon2id$hash',
  createdAt: 1000,
  isGuest: false,
  userType: null,
};

export function accountTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('users', () => {
    it('creates a user with profile and first session at once; a taken ID is a CONFLICT that writes nothing', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, {
        profile: { displayname: 'Alice' },
        session: session('PHONE', 'syt_first', { displayName: 'Phone', refreshToken: 'syr_first' }),
      });
      expect(await store.accounts.getUser(ALICE)).toEqual({
        ...newUser,
        admin: false,
        deactivated: false,
        locked: false,
        suspended: false,
      });
      expect(await store.userData.getProfile(ALICE)).toEqual({ displayname: 'Alice' });
      expect(await store.accounts.getAccessToken('syt_first')).toEqual({
        userId: ALICE,
        deviceId: 'PHONE',
        createdAt: 1000,
        expiresAt: null,
      });
      expect((await store.accounts.getDevice(ALICE, 'PHONE'))?.displayName).toBe('Phone');

      const again = store.accounts.createUser(
        { ...newUser, passwordHash: 'other' },
        { session: session('LAPTOP', 'syt_second') },
      );
      await expect(again).rejects.toMatchObject({ name: 'StoreError', code: 'CONFLICT' });
      expect(await store.accounts.getAccessToken('syt_second')).toBeNull();
      expect(await store.accounts.getDevice(ALICE, 'LAPTOP')).toBeNull();
      expect((await store.accounts.getUser(ALICE))?.passwordHash).toBe('$argon2id$hash');
      expect(await store.accounts.getUser('@nobody:hearth.test')).toBeNull();
    });

    it('updates and deactivates a user, removing every device, token and key', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, { session: session('PHONE', 'syt_a') });
      await store.accounts.createSession(session('LAPTOP', 'syt_b'));
      await store.e2ee.putDeviceKeys(ALICE, 'PHONE', { device_id: 'PHONE' });
      await store.accounts.updateUser(ALICE, { passwordHash: 'new', admin: true });
      expect(await store.accounts.getUser(ALICE)).toMatchObject({ passwordHash: 'new', admin: true });
      await store.accounts.deactivateUser(ALICE);
      expect(await store.accounts.getUser(ALICE)).toMatchObject({ deactivated: true, passwordHash: null });
      expect(await store.accounts.listDevices(ALICE)).toEqual([]);
      expect(await store.accounts.getAccessToken('syt_a')).toBeNull();
      expect(await store.accounts.getAccessToken('syt_b')).toBeNull();
      expect(await store.e2ee.getDeviceKeys([{ userId: ALICE }])).toEqual([]);
      await expect(store.accounts.updateUser('@ghost:hearth.test', { admin: true })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });
  });

  describe('sessions and tokens', () => {
    it('keeps tokens only as sha256 hashes', async () => {
      const { store, engine } = await stores.fresh();
      await store.accounts.createUser(newUser, {
        session: session('PHONE', 'syt_secret_access', { refreshToken: 'syr_secret_refresh' }),
      });
      const everything = JSON.stringify(await dump(engine));
      expect(everything).not.toContain('syt_secret_access');
      expect(everything).not.toContain('syr_secret_refresh');
      const hash = encodeBase64(sha256(new TextEncoder().encode('syt_secret_access')));
      expect(everything).toContain(hash);
      expect(await store.accounts.getAccessToken('syt_secret_acces')).toBeNull();
    });

    it('keeps OpenID tokens hashed until they expire', async () => {
      const { store } = await stores.fresh();
      await store.accounts.putOpenIdToken('oid_one', ALICE, 1_000, 0);
      expect(await store.accounts.openIdTokenUser('oid_one', 999)).toBe(ALICE);
      expect(await store.accounts.openIdTokenUser('oid_one', 1_000)).toBeNull();
      expect(await store.accounts.openIdTokenUser('oid_unknown', 0)).toBeNull();
      // A later token drops those expired by then.
      await store.accounts.putOpenIdToken('oid_two', ALICE, 5_000, 2_000);
      expect(await store.accounts.openIdTokenUser('oid_one', 0)).toBeNull();
      expect(await store.accounts.openIdTokenUser('oid_two', 2_000)).toBe(ALICE);
    });

    it('logs in on a new or existing device, and logs a token out', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser);
      await store.accounts.createSession(session('PHONE', 't1', { displayName: 'Phone', expiresAt: 5000 }));
      await store.accounts.createSession(session('PHONE', 't2'));
      expect((await store.accounts.getDevice(ALICE, 'PHONE'))?.displayName).toBe('Phone');
      expect((await store.accounts.getAccessToken('t1'))?.expiresAt).toBe(5000);
      await store.accounts.deleteAccessToken('t1');
      expect(await store.accounts.getAccessToken('t1')).toBeNull();
      expect(await store.accounts.getAccessToken('t2')).not.toBeNull();
      await expect(store.accounts.createSession(session('OTHER', 't2'))).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect(await store.accounts.getDevice(ALICE, 'OTHER')).toBeNull();
    });

    it('rotates a refresh token: the old one and the device’s old access tokens stop working', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, {
        session: session('PHONE', 'a1', { refreshToken: 'r1', expiresAt: 2000 }),
      });
      await store.accounts.createSession(session('LAPTOP', 'other'));
      const rotated = await store.accounts.rotateRefreshToken('r1', {
        accessToken: 'a2',
        refreshToken: 'r2',
        expiresAt: 9000,
        now: 3000,
      });
      expect(rotated).toEqual({ userId: ALICE, deviceId: 'PHONE' });
      expect(await store.accounts.getAccessToken('a1')).toBeNull();
      expect(await store.accounts.getAccessToken('a2')).toEqual({
        userId: ALICE,
        deviceId: 'PHONE',
        createdAt: 3000,
        expiresAt: 9000,
      });
      expect(await store.accounts.getAccessToken('other')).not.toBeNull();
      expect(
        await store.accounts.rotateRefreshToken('r1', {
          accessToken: 'a3',
          refreshToken: 'r3',
          expiresAt: null,
          now: 4000,
        }),
      ).toBeNull();
      expect(await store.accounts.getAccessToken('a3')).toBeNull();
    });
  });

  describe('re-login on a known device (replaceDeviceTokens)', () => {
    const seed = async (store: Store) => {
      await store.accounts.createUser(newUser, {
        session: session('PHONE', 'a1', { displayName: 'Phone', refreshToken: 'r1' }),
      });
      await store.accounts.createSession(session('PHONE', 'a2', { refreshToken: 'r2' }));
      await store.accounts.createSession(session('LAPTOP', 'other', { refreshToken: 'r_other' }));
      await store.e2ee.putDeviceKeys(ALICE, 'PHONE', { device_id: 'PHONE' });
      await store.e2ee.addOneTimeKeys(ALICE, 'PHONE', [
        { algorithm: 'signed_curve25519', keyId: 'k1', key: { key: 'x' } },
      ]);
      await store.e2ee.sendToDevice([
        { userId: ALICE, deviceId: 'PHONE', sender: ALICE, type: 'm.test', content: { n: 1 } },
      ]);
    };
    const relogin = (store: Store, accessToken = 'a3') =>
      store.accounts.createSession(session('PHONE', accessToken, { refreshToken: 'r3', now: 2000 }), {
        replaceDeviceTokens: true,
      });

    it('revokes every earlier access and refresh token of the device; keeps the device, its keys and inbox', async () => {
      const { store, engine } = await stores.fresh();
      await seed(store);
      const positions = await store.positions();
      await relogin(store);

      expect(await store.accounts.getAccessToken('a1')).toBeNull();
      expect(await store.accounts.getAccessToken('a2')).toBeNull();
      expect(await store.accounts.getAccessToken('a3')).toEqual({
        userId: ALICE,
        deviceId: 'PHONE',
        createdAt: 2000,
        expiresAt: null,
      });
      const spend = (token: string) =>
        store.accounts.rotateRefreshToken(token, {
          accessToken: `${token}-a`,
          refreshToken: `${token}-r`,
          expiresAt: null,
          now: 3000,
        });
      expect(await spend('r1')).toBeNull();
      expect(await spend('r2')).toBeNull();
      expect(await store.accounts.getAccessToken('r1-a')).toBeNull();

      // Other devices are untouched.
      expect(await store.accounts.getAccessToken('other')).not.toBeNull();
      expect(await refreshKnown(engine, 'r_other')).toBe(true);

      // The device is the same one: name, creation time, keys and inbox kept, no device-list change.
      expect(await store.accounts.getDevice(ALICE, 'PHONE')).toMatchObject({
        displayName: 'Phone',
        createdAt: 1000,
      });
      expect(
        (await store.e2ee.getDeviceKeys([{ userId: ALICE, deviceIds: ['PHONE'] }])).map((k) => k.deviceId),
      ).toEqual(['PHONE']);
      expect(await store.e2ee.countOneTimeKeys(ALICE, 'PHONE')).toEqual({ signed_curve25519: 1 });
      expect((await store.e2ee.toDeviceMessages(ALICE, 'PHONE', 0, 10)).messages).toHaveLength(1);
      expect((await store.positions()).deviceLists).toBe(positions.deviceLists);

      // The new refresh token is the one that works.
      expect(await spend('r3')).toEqual({ userId: ALICE, deviceId: 'PHONE' });
    });

    it('creates the device when it is new', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser);
      await store.accounts.createSession(session('NEW', 'n1', { displayName: 'New' }), {
        replaceDeviceTokens: true,
      });
      expect((await store.accounts.getDevice(ALICE, 'NEW'))?.displayName).toBe('New');
      expect((await store.accounts.getAccessToken('n1'))?.deviceId).toBe('NEW');
    });

    it('is one transaction: a failure at any write step leaves the old tokens working', async () => {
      const { store, engine } = await stores.fresh();
      await seed(store);
      const before = await dump(engine);
      let steps = 0;
      for (let failAt = 1; ; failAt++) {
        const error = await relogin(createStore(faultyEngine(engine, failAt))).then(
          () => null,
          (e: unknown) => e,
        );
        if (error === null) break;
        expect(error).toBeInstanceOf(InjectedFault);
        steps = failAt;
        expect(await dump(engine)).toEqual(before);
        expect(await store.accounts.getAccessToken('a1')).not.toBeNull();
        expect(await refreshKnown(engine, 'r1')).toBe(true);
      }
      // Failures were injected after the revocation, not only before it.
      expect(steps).toBeGreaterThanOrEqual(3);
      expect(await store.accounts.getAccessToken('a1')).toBeNull();
      expect(await refreshKnown(engine, 'r1')).toBe(false);
    });

    it('a re-login failing on its own (new token taken by another device) keeps the old tokens', async () => {
      const { store, engine } = await stores.fresh();
      await seed(store);
      const before = await dump(engine);
      await expect(relogin(store, 'other')).rejects.toMatchObject({ name: 'StoreError', code: 'CONFLICT' });
      expect(await dump(engine)).toEqual(before);
      expect(await store.accounts.getAccessToken('a1')).not.toBeNull();
      expect(await store.accounts.getAccessToken('a2')).not.toBeNull();
      expect(await refreshKnown(engine, 'r1')).toBe(true);
      expect(await refreshKnown(engine, 'r2')).toBe(true);
    });
  });

  describe('devices', () => {
    it('lists, renames and records last seen', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, { session: session('B', 'tb') });
      await store.accounts.createSession(session('A', 'ta', { displayName: 'A' }));
      expect((await store.accounts.listDevices(ALICE)).map((d) => d.deviceId)).toEqual(['A', 'B']);
      expect(
        await store.accounts.updateDevice(ALICE, 'B', {
          displayName: 'Tablet',
          lastSeenAt: 7000,
          lastSeenIp: '127.0.0.1',
        }),
      ).toBe(true);
      expect(await store.accounts.getDevice(ALICE, 'B')).toEqual({
        userId: ALICE,
        deviceId: 'B',
        displayName: 'Tablet',
        createdAt: 1000,
        lastSeenAt: 7000,
        lastSeenIp: '127.0.0.1',
      });
      expect(await store.accounts.updateDevice(ALICE, 'Z', { displayName: 'x' })).toBe(false);
    });

    it('deletes devices with their tokens, keys and to-device inbox, and notes a device-list change', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, { session: session('A', 'ta', { refreshToken: 'ra' }) });
      await store.accounts.createSession(session('B', 'tb'));
      await store.e2ee.putDeviceKeys(ALICE, 'A', { device_id: 'A' });
      await store.e2ee.putDeviceKeys(ALICE, 'B', { device_id: 'B' });
      await store.e2ee.addOneTimeKeys(ALICE, 'A', [
        { algorithm: 'signed_curve25519', keyId: 'k1', key: { key: 'x' } },
      ]);
      await store.e2ee.putFallbackKey(ALICE, 'A', {
        algorithm: 'signed_curve25519',
        keyId: 'f1',
        key: { key: 'f' },
      });
      await store.e2ee.sendToDevice([
        { userId: ALICE, deviceId: 'A', sender: ALICE, type: 'm.test', content: {} },
      ]);
      const before = (await store.positions()).deviceLists;
      await store.accounts.deleteDevices(ALICE, ['A']);
      expect((await store.accounts.listDevices(ALICE)).map((d) => d.deviceId)).toEqual(['B']);
      expect(await store.accounts.getAccessToken('ta')).toBeNull();
      expect(await store.accounts.getAccessToken('tb')).not.toBeNull();
      expect(
        await store.accounts.rotateRefreshToken('ra', {
          accessToken: 'x',
          refreshToken: 'y',
          expiresAt: null,
          now: 1,
        }),
      ).toBeNull();
      expect((await store.e2ee.getDeviceKeys([{ userId: ALICE }])).map((k) => k.deviceId)).toEqual(['B']);
      expect(await store.e2ee.countOneTimeKeys(ALICE, 'A')).toEqual({});
      expect(await store.e2ee.unusedFallbackKeyTypes(ALICE, 'A')).toEqual([]);
      expect((await store.e2ee.toDeviceMessages(ALICE, 'A', 0, 10)).messages).toEqual([]);
      const after = (await store.positions()).deviceLists;
      expect(after).toBe(before + 1);
      expect(await store.e2ee.deviceListChanges(before, after)).toEqual([ALICE]);
    });
  });

  describe('dehydrated devices (MSC3814)', () => {
    it('keeps one per user, a device without tokens; a new one replaces the old with its keys and inbox', async () => {
      const { store } = await stores.fresh();
      await store.accounts.createUser(newUser, { session: session('A', 'ta') });
      expect(await store.accounts.getDehydratedDevice(ALICE)).toBeNull();
      await store.accounts.putDehydratedDevice(
        {
          userId: ALICE,
          deviceId: 'D1',
          deviceData: { algorithm: 'x', pickle: 'p1' },
          displayName: 'Dehydrated',
        },
        2000,
      );
      expect(await store.accounts.getDehydratedDevice(ALICE)).toEqual({
        deviceId: 'D1',
        deviceData: { algorithm: 'x', pickle: 'p1' },
      });
      expect((await store.accounts.getDevice(ALICE, 'D1'))?.displayName).toBe('Dehydrated');
      await store.e2ee.putDeviceKeys(ALICE, 'D1', { device_id: 'D1' });
      await store.e2ee.sendToDevice([
        { userId: ALICE, deviceId: 'D1', sender: ALICE, type: 'm.test', content: {} },
      ]);

      // An ordinary device cannot be made the dehydrated one.
      await expect(
        store.accounts.putDehydratedDevice(
          { userId: ALICE, deviceId: 'A', deviceData: {}, displayName: null },
          1,
        ),
      ).rejects.toMatchObject({ code: 'CONFLICT' });

      await store.accounts.putDehydratedDevice(
        { userId: ALICE, deviceId: 'D2', deviceData: { pickle: 'p2' }, displayName: null },
        3000,
      );
      expect((await store.accounts.getDehydratedDevice(ALICE))?.deviceId).toBe('D2');
      expect((await store.accounts.listDevices(ALICE)).map((d) => d.deviceId)).toEqual(['A', 'D2']);
      expect((await store.e2ee.getDeviceKeys([{ userId: ALICE }])).map((k) => k.deviceId)).toEqual([]);
      expect((await store.e2ee.toDeviceMessages(ALICE, 'D1', 0, 10)).messages).toEqual([]);

      expect(await store.accounts.deleteDehydratedDevice(ALICE)).toBe('D2');
      expect(await store.accounts.deleteDehydratedDevice(ALICE)).toBeNull();
      expect((await store.accounts.listDevices(ALICE)).map((d) => d.deviceId)).toEqual(['A']);
    });
  });

  describe('user-interactive auth and registration tokens', () => {
    it('keeps UIA sessions until they expire or are deleted', async () => {
      const { store } = await stores.fresh();
      await store.accounts.putUiaSession('s1', { completed: ['m.login.dummy'] }, 5000);
      expect(await store.accounts.getUiaSession('s1', 4999)).toEqual({ completed: ['m.login.dummy'] });
      expect(await store.accounts.getUiaSession('s1', 5000)).toBeNull();
      await store.accounts.putUiaSession('s1', { completed: ['m.login.password'] }, 9000);
      expect(await store.accounts.getUiaSession('s1', 6000)).toEqual({ completed: ['m.login.password'] });
      await store.accounts.deleteUiaSession('s1');
      expect(await store.accounts.getUiaSession('s1', 6000)).toBeNull();
    });

    it('counts registration token uses up to the allowance and honours expiry', async () => {
      const { store } = await stores.fresh();
      await store.accounts.putRegistrationToken({
        token: 'invite',
        usesAllowed: 2,
        completed: 0,
        expiresAt: 10_000,
      });
      expect(await store.accounts.useRegistrationToken('invite', 1)).toBe(true);
      expect(await store.accounts.useRegistrationToken('invite', 2)).toBe(true);
      expect(await store.accounts.useRegistrationToken('invite', 3)).toBe(false);
      expect(await store.accounts.getRegistrationToken('invite')).toEqual({
        token: 'invite',
        usesAllowed: 2,
        completed: 2,
        expiresAt: 10_000,
      });
      await store.accounts.putRegistrationToken({
        token: 'open',
        usesAllowed: null,
        completed: 0,
        expiresAt: 100,
      });
      expect(await store.accounts.useRegistrationToken('open', 99)).toBe(true);
      expect(await store.accounts.useRegistrationToken('open', 100)).toBe(false);
      expect(await store.accounts.useRegistrationToken('unknown', 1)).toBe(false);
      const concurrent = await Promise.all(
        [...Array(6)].map(() => store.accounts.useRegistrationToken('limited', 1)),
      );
      expect(concurrent.every((used) => used === false)).toBe(true);
      await store.accounts.putRegistrationToken({
        token: 'limited',
        usesAllowed: 3,
        completed: 0,
        expiresAt: null,
      });
      const race = await Promise.all(
        [...Array(6)].map(() => store.accounts.useRegistrationToken('limited', 1)),
      );
      expect(race.filter(Boolean)).toHaveLength(3);
    });
  });
}
