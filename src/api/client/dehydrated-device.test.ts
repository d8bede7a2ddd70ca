/**
 * Dehydrated devices (MSC3814) through `hs.fetch`, driven with the calls matrix-js-sdk's
 * `DehydratedDeviceManager` makes: support probed by GET (M_NOT_FOUND = supported), PUT of
 * the device with its signed keys, the device in `keys/query` and claimable, to-device
 * messages for it read in pages (GET with `from`, and POST with `next_batch`) and deleted once
 * acknowledged, a replacement, DELETE — and bad input answered with Matrix errors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEHYDRATED_EVENTS_PAGE } from '../../homeserver/e2ee/dehydrated.ts';
import { testDevice } from '../../homeserver/e2ee/testing.ts';
import { createTestHomeserver, type TestHomeserver } from './testing.ts';

const BASE = '/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device';

describe('dehydrated devices (MSC3814)', () => {
  let hs: TestHomeserver | undefined;
  afterEach(async () => {
    await hs?.close();
    hs = undefined;
  });

  async function upload(
    server: TestHomeserver,
    token: string,
    userId: string,
    deviceId: string,
    pickle: string,
  ) {
    const device = await testDevice(userId, deviceId);
    return server.call('PUT', BASE, {
      token,
      body: {
        device_id: deviceId,
        device_data: { algorithm: 'org.matrix.msc3814.v1.olm', device_pickle: pickle, nonce: 'n' },
        initial_device_display_name: 'Dehydrated device',
        device_keys: { ...device.deviceKeys },
        one_time_keys: await device.oneTimeKeys(2),
        fallback_keys: await device.fallbackKey('F1'),
      },
    });
  }

  it('stores one per user with its keys, delivers its to-device messages in pages, and deletes it', async () => {
    // More than a page of messages is sent below, faster than a client would be allowed to.
    const unlimited = { perSecond: 1e9, burst: 1e9 };
    hs = await createTestHomeserver({ rateLimits: { message: unlimited, default: unlimited } });
    const alice = await hs.createUser('alice');
    const bob = await hs.createUser('bob');
    const token = alice.accessToken;

    // What the SDK's isSupported() reads: M_NOT_FOUND means supported, with none yet.
    const none = await hs.call('GET', BASE, { token });
    expect([none.status, none.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const versions = await hs.call('GET', '/_matrix/client/versions');
    expect((versions.body.unstable_features as Record<string, boolean>)['org.matrix.msc3814']).toBe(true);

    const put = await upload(hs, token, alice.userId, 'DEHYDRATED1', 'pickle-1');
    expect([put.status, put.body]).toEqual([200, { device_id: 'DEHYDRATED1' }]);
    const got = await hs.call('GET', BASE, { token });
    expect(got.body).toEqual({
      device_id: 'DEHYDRATED1',
      device_data: { algorithm: 'org.matrix.msc3814.v1.olm', device_pickle: 'pickle-1', nonce: 'n' },
    });

    // Others see it as one of alice's devices, and can claim its keys to encrypt to it.
    const query = await hs.call('POST', '/_matrix/client/v3/keys/query', {
      token: bob.accessToken,
      body: { device_keys: { [alice.userId]: [] } },
    });
    // (Alice's own device has uploaded no keys here, so it is not listed.)
    expect(Object.keys((query.body.device_keys as Record<string, object>)[alice.userId] ?? {})).toEqual([
      'DEHYDRATED1',
    ]);
    const claim = await hs.call('POST', '/_matrix/client/v3/keys/claim', {
      token: bob.accessToken,
      body: { one_time_keys: { [alice.userId]: { DEHYDRATED1: 'signed_curve25519' } } },
    });
    expect(
      Object.keys(
        (claim.body.one_time_keys as Record<string, Record<string, object>>)[alice.userId]?.DEHYDRATED1 ?? {},
      ),
    ).toHaveLength(1);

    // Bob sends it more than a page of to-device messages (and one to every device of alice).
    const total = DEHYDRATED_EVENTS_PAGE + 5;
    const messages: Record<string, object> = {};
    for (let i = 0; i < total; i++) {
      const sent = await hs.call('PUT', `/_matrix/client/v3/sendToDevice/m.room_key_test/t${i}`, {
        token: bob.accessToken,
        body: { messages: { [alice.userId]: { DEHYDRATED1: { i } } } },
      });
      expect(sent.status).toBe(200);
      messages[i] = { i };
    }
    await hs.call('PUT', '/_matrix/client/v3/sendToDevice/m.room_key_test/all', {
      token: bob.accessToken,
      body: { messages: { [alice.userId]: { '*': { all: true } } } },
    });

    // A new login reads them as the SDK does: GET …/events, then again with `from` until no
    // next_batch comes.
    const read: object[] = [];
    let from: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await hs.call('GET', `${BASE}/DEHYDRATED1/events${from ? `?from=${from}` : ''}`, {
        token,
      });
      expect(page.status).toBe(200);
      const events = page.body.events as { sender: string; type: string; content: object }[];
      read.push(...events.map((e) => e.content));
      if (events.length > 0) expect(events[0]).toMatchObject({ sender: bob.userId, type: 'm.room_key_test' });
      from = page.body.next_batch as string | undefined;
      if (from === undefined) break;
    }
    expect(read).toEqual([...Object.values(messages), { all: true }]);
    // Acknowledged as it paged: asked again from the start, nothing is left.
    const again = await hs.call('POST', `${BASE}/DEHYDRATED1/events`, { token, body: {} });
    expect(again.body).toEqual({ events: [] });

    // The POST form pages too.
    await hs.call('PUT', '/_matrix/client/v3/sendToDevice/m.room_key_test/later', {
      token: bob.accessToken,
      body: { messages: { [alice.userId]: { DEHYDRATED1: { later: true } } } },
    });
    const posted = await hs.call('POST', `${BASE}/DEHYDRATED1/events`, { token, body: {} });
    expect((posted.body.events as { content: object }[]).map((e) => e.content)).toEqual([{ later: true }]);
    const done = await hs.call('POST', `${BASE}/DEHYDRATED1/events`, {
      token,
      body: { next_batch: posted.body.next_batch },
    });
    expect(done.body).toEqual({ events: [] });

    // A new dehydrated device replaces the old one, keys and all.
    expect((await upload(hs, token, alice.userId, 'DEHYDRATED2', 'pickle-2')).status).toBe(200);
    expect((await hs.call('GET', BASE, { token })).body.device_id).toBe('DEHYDRATED2');
    const old = await hs.call('GET', `${BASE}/DEHYDRATED1/events`, { token });
    expect([old.status, old.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const devices = await hs.call('GET', '/_matrix/client/v3/devices', { token });
    expect((devices.body.devices as { device_id: string }[]).map((d) => d.device_id).sort()).toEqual(
      [alice.deviceId, 'DEHYDRATED2'].sort(),
    );
    // Bob cannot read alice's.
    const foreign = await hs.call('GET', `${BASE}/DEHYDRATED2/events`, { token: bob.accessToken });
    expect([foreign.status, foreign.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    const deleted = await hs.call('DELETE', BASE, { token });
    expect([deleted.status, deleted.body]).toEqual([200, { device_id: 'DEHYDRATED2' }]);
    const gone = await hs.call('DELETE', BASE, { token });
    expect([gone.status, gone.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it('refuses what is not a dehydrated device of the caller: bad keys, an ordinary device, no token', async () => {
    hs = await createTestHomeserver();
    const alice = await hs.createUser('alice');
    const token = alice.accessToken;
    // Keys of another device ID than the one named: refused, and no device left behind.
    const device = await testDevice(alice.userId, 'OTHER');
    const mismatch = await hs.call('PUT', BASE, {
      token,
      body: { device_id: 'DEHYDRATED', device_data: {}, device_keys: device.deviceKeys },
    });
    expect([mismatch.status, mismatch.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect((await hs.call('GET', BASE, { token })).status).toBe(404);
    // Forged signature.
    const forged = await testDevice(alice.userId, 'DEHYDRATED');
    const bad = await hs.call('PUT', BASE, {
      token,
      body: {
        device_id: 'DEHYDRATED',
        device_data: {},
        device_keys: { ...forged.deviceKeys, algorithms: ['x'] },
      },
    });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    // The caller's own ordinary device cannot be turned into one.
    const own = await testDevice(alice.userId, alice.deviceId);
    const ordinary = await hs.call('PUT', BASE, {
      token,
      body: { device_id: alice.deviceId, device_data: {}, device_keys: own.deviceKeys },
    });
    expect([ordinary.status, ordinary.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    // Malformed bodies and batches, and no token.
    const shapeless = await hs.call('PUT', BASE, { token, body: { device_id: 5 } });
    expect([shapeless.status, shapeless.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    expect((await upload(hs, token, alice.userId, 'DEHYDRATED', 'p')).status).toBe(200);
    const batch = await hs.call('GET', `${BASE}/DEHYDRATED/events?from=nonsense`, { token });
    expect([batch.status, batch.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const anonymous = await hs.call('GET', BASE);
    expect([anonymous.status, anonymous.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });
});
