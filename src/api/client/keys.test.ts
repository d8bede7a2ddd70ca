import { afterEach, describe, expect, it } from 'vitest';
import { signJson } from '../../core/signing.ts';
import { testCrossSigning, testDevice } from '../../homeserver/e2ee/testing.ts';
import { createTestHomeserver, roomWith, type TestHomeserver } from './testing.ts';

const KEYS = '/_matrix/client/v3/keys';

describe('keys', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  it('uploads device, one-time and fallback keys; a device may publish only its own, signed keys', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const device = await testDevice(alice.userId, alice.deviceId);
    const token = alice.accessToken;

    // Another device's keys, and keys whose signature does not verify, are refused.
    const other = await testDevice(alice.userId, 'OTHERDEVICE');
    const stolen = await hs.call('POST', `${KEYS}/upload`, {
      token,
      body: { device_keys: other.deviceKeys },
    });
    expect([stolen.status, stolen.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const forged = { ...device.deviceKeys, algorithms: ['m.olm.v1.curve25519-aes-sha2'] };
    const bad = await hs.call('POST', `${KEYS}/upload`, { token, body: { device_keys: forged } });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    // Signed one-time keys need the device's keys to check them against.
    const early = await hs.call('POST', `${KEYS}/upload`, {
      token,
      body: { one_time_keys: await device.oneTimeKeys(1) },
    });
    expect(early.status).toBe(400);

    const ok = await hs.call('POST', `${KEYS}/upload`, {
      token,
      body: {
        device_keys: device.deviceKeys,
        one_time_keys: await device.oneTimeKeys(3),
        fallback_keys: await device.fallbackKey('FB1'),
      },
    });
    expect([ok.status, ok.body]).toEqual([200, { one_time_key_counts: { signed_curve25519: 3 } }]);
    // A one-time key signed by someone else is refused, and nothing of that upload is kept.
    const foreign = await other.oneTimeKeys(1, 10);
    const mixed = await hs.call('POST', `${KEYS}/upload`, { token, body: { one_time_keys: foreign } });
    expect([mixed.status, mixed.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    const counts = await hs.call('POST', `${KEYS}/upload`, { token, body: {} });
    expect(counts.body).toEqual({ one_time_key_counts: { signed_curve25519: 3 } });
    const sync = await hs.call('GET', '/_matrix/client/v3/sync', { token });
    expect(sync.body.device_one_time_keys_count).toEqual({ signed_curve25519: 3 });
    expect(sync.body.device_unused_fallback_key_types).toEqual(['signed_curve25519']);
  });

  it('queries keys with display names and claims one-time keys, then the fallback key', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    await hs.call('PUT', `/_matrix/client/v3/devices/${alice.deviceId}`, {
      token: alice.accessToken,
      body: { display_name: 'Phone' },
    });
    const device = await testDevice(alice.userId, alice.deviceId);
    await hs.call('POST', `${KEYS}/upload`, {
      token: alice.accessToken,
      body: {
        device_keys: device.deviceKeys,
        one_time_keys: await device.oneTimeKeys(2),
        fallback_keys: await device.fallbackKey('FB1'),
      },
    });
    const query = await hs.call('POST', `${KEYS}/query`, {
      token: bob.accessToken,
      body: { device_keys: { [alice.userId]: [], '@nobody:test.localhost': [], '@x:remote.example': [] } },
    });
    expect(query.status).toBe(200);
    expect(query.body.device_keys).toEqual({
      [alice.userId]: {
        [alice.deviceId]: { ...device.deviceKeys, unsigned: { device_display_name: 'Phone' } },
      },
      '@nobody:test.localhost': {},
    });
    expect(Object.keys(query.body.failures as object)).toEqual(['remote.example']);

    const claim = (userId: string, deviceId: string) =>
      (hs as TestHomeserver).call('POST', `${KEYS}/claim`, {
        token: bob.accessToken,
        body: { one_time_keys: { [userId]: { [deviceId]: 'signed_curve25519' } } },
      });
    const keyIds = async () => {
      const res = await claim(alice.userId, alice.deviceId);
      const keys = (res.body.one_time_keys as Record<string, Record<string, Record<string, unknown>>>)[
        alice.userId
      ];
      return Object.keys(keys?.[alice.deviceId] ?? {});
    };
    expect(await keyIds()).toEqual(['signed_curve25519:K000000']);
    expect(await keyIds()).toEqual(['signed_curve25519:K000001']);
    // One-time keys gone: the fallback key, again and again, and the device is told it was used.
    expect(await keyIds()).toEqual(['signed_curve25519:FB1']);
    expect(await keyIds()).toEqual(['signed_curve25519:FB1']);
    const sync = await hs.call('GET', '/_matrix/client/v3/sync', { token: alice.accessToken });
    expect(sync.body.device_unused_fallback_key_types).toEqual([]);
    expect((await claim('@nobody:test.localhost', 'X'))?.body).toEqual({ one_time_keys: {}, failures: {} });
  });

  it('cross-signing: the first upload needs no UIA, replacing keys does; signatures are checked and shown', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const roomId = await roomWith(hs, alice, [bob]);
    expect(roomId).toBeTruthy();
    const aliceDevice = await testDevice(alice.userId, alice.deviceId);
    await hs.call('POST', `${KEYS}/upload`, {
      token: alice.accessToken,
      body: { device_keys: aliceDevice.deviceKeys },
    });
    const cs = await testCrossSigning(alice.userId);
    const bobSince = (await hs.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken })).body
      .next_batch as string;

    // A self-signing key not signed by the master key is refused.
    const unsigned = { ...cs.upload, self_signing_key: { ...cs.upload.self_signing_key, signatures: {} } };
    const refused = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: unsigned,
    });
    expect([refused.status, refused.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    const first = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: cs.upload,
    });
    expect([first.status, first.body]).toEqual([200, {}]);
    // The same keys again: idempotent, no UIA. New keys: UIA (the account has no password: dummy).
    const again = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: cs.upload,
    });
    expect(again.status).toBe(200);
    const replacement = await testCrossSigning(alice.userId, 'second');
    const challenged = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: replacement.upload,
    });
    expect(challenged.status).toBe(401);
    expect(challenged.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    const stillFirst = await hs.call('POST', `${KEYS}/query`, {
      token: alice.accessToken,
      body: { device_keys: { [alice.userId]: [] } },
    });
    expect(stillFirst.body.master_keys).toEqual({ [alice.userId]: cs.upload.master_key });
    const confirmed = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: { ...replacement.upload, auth: { type: 'm.login.dummy', session: challenged.body.session } },
    });
    expect(confirmed.status).toBe(200);
    const replaced = await hs.call('POST', `${KEYS}/query`, {
      token: alice.accessToken,
      body: { device_keys: { [alice.userId]: [] } },
    });
    expect(replaced.body.master_keys).toEqual({ [alice.userId]: replacement.upload.master_key });
    // Back to the first keys (the signatures below are made with them).
    const back = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: cs.upload,
    });
    const restored = await hs.call('POST', `${KEYS}/device_signing/upload`, {
      token: alice.accessToken,
      body: { ...cs.upload, auth: { type: 'm.login.dummy', session: back.body.session } },
    });
    expect([back.status, restored.status]).toEqual([401, 200]);

    // The device signed by the self-signing key; a signature that does not verify fails alone.
    const signedDevice = await signJson(aliceDevice.deviceKeys, alice.userId, cs.selfSigning);
    const badMaster = await signJson(cs.upload.master_key, alice.userId, cs.userSigning);
    const sigs = await hs.call('POST', `${KEYS}/signatures/upload`, {
      token: alice.accessToken,
      body: {
        [alice.userId]: {
          [alice.deviceId]: signedDevice,
          [cs.master.publicKeyBase64]: badMaster,
          NOSUCHDEVICE: signedDevice,
        },
      },
    });
    expect(sigs.status).toBe(200);
    const failures = (sigs.body.failures as Record<string, Record<string, { errcode: string }>>)[
      alice.userId
    ];
    expect(Object.keys(failures ?? {}).sort()).toEqual([cs.master.publicKeyBase64, 'NOSUCHDEVICE'].sort());
    expect(failures?.[cs.master.publicKeyBase64]?.errcode).toBe('M_INVALID_SIGNATURE');

    // Bob sees Alice's master and self-signing keys and the signature, not her user-signing key,
    // and his sync says her keys changed.
    const seen = await hs.call('POST', `${KEYS}/query`, {
      token: bob.accessToken,
      body: { device_keys: { [alice.userId]: [alice.deviceId] } },
    });
    const deviceSignatures = (
      seen.body.device_keys as Record<
        string,
        Record<string, { signatures: Record<string, Record<string, string>> }>
      >
    )[alice.userId]?.[alice.deviceId]?.signatures?.[alice.userId];
    expect(Object.keys(deviceSignatures ?? {}).sort()).toEqual(
      [`ed25519:${alice.deviceId}`, cs.selfSigning.keyId].sort(),
    );
    expect(Object.keys(seen.body.master_keys as object)).toEqual([alice.userId]);
    expect(Object.keys(seen.body.self_signing_keys as object)).toEqual([alice.userId]);
    expect(seen.body.user_signing_keys).toEqual({});
    const bobSync = await hs.call('GET', `/_matrix/client/v3/sync?since=${bobSince}`, {
      token: bob.accessToken,
    });
    expect((bobSync.body.device_lists as { changed: string[] }).changed).toContain(alice.userId);
    const changes = await hs.call('GET', `${KEYS}/changes?from=${bobSince}&to=${bobSync.body.next_batch}`, {
      token: bob.accessToken,
    });
    expect(changes.body).toEqual({ changed: [alice.userId], left: [] });
    const badToken = await hs.call('GET', `${KEYS}/changes?from=nope&to=${bobSync.body.next_batch}`, {
      token: bob.accessToken,
    });
    expect(badToken.body.errcode).toBe('M_INVALID_PARAM');
  });

  it("wakes the long-poll of a user sharing a room when another's device is deleted", async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    await roomWith(hs, alice, [bob]);
    await hs.store.accounts.createSession({
      userId: alice.userId,
      deviceId: 'ALICESECOND',
      accessToken: 'alice-second-token',
      now: Date.now(),
    });
    const since = (await hs.call('GET', '/_matrix/client/v3/sync', { token: bob.accessToken })).body
      .next_batch;
    const started = Date.now();
    const waiting = hs.call('GET', `/_matrix/client/v3/sync?since=${since}&timeout=20000`, {
      token: bob.accessToken,
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(
      (await hs.call('POST', '/_matrix/client/v3/logout', { token: 'alice-second-token', body: {} })).status,
    ).toBe(200);
    const woken = await waiting;
    expect((woken.body.device_lists as { changed: string[] }).changed).toEqual([alice.userId]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('does not tell a stranger about key changes', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const carol = await hs.createUser('carol');
    const since = (await hs.call('GET', '/_matrix/client/v3/sync', { token: carol.accessToken })).body
      .next_batch;
    const device = await testDevice(alice.userId, alice.deviceId);
    await hs.call('POST', `${KEYS}/upload`, {
      token: alice.accessToken,
      body: { device_keys: device.deviceKeys },
    });
    const sync = await hs.call('GET', `/_matrix/client/v3/sync?since=${since}`, { token: carol.accessToken });
    expect(sync.body.device_lists).toEqual({ changed: [], left: [] });
  });
});
