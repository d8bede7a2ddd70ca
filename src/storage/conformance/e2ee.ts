/** Conformance: device keys, one-time/fallback keys, cross-signing, to-device, key backup; media; federation. */
import { describe, expect, it } from 'vitest';
import { ALICE, BOB, type ConformanceTarget, useStores } from './testing.ts';

export function e2eeTests(target: ConformanceTarget): void {
  const stores = useStores(target);

  describe('device and cross-signing keys', () => {
    it('stores device keys and reports device-list changes by position', async () => {
      const { store } = await stores.fresh();
      const p1 = await store.e2ee.putDeviceKeys(ALICE, 'A', { device_id: 'A', keys: { 'ed25519:A': 'x' } });
      const p2 = await store.e2ee.putDeviceKeys(ALICE, 'B', { device_id: 'B' });
      const p3 = await store.e2ee.putDeviceKeys(BOB, 'C', { device_id: 'C' });
      expect([p1, p2, p3]).toEqual([1, 2, 3]);
      expect((await store.e2ee.getDeviceKeys([{ userId: ALICE }])).map((k) => k.deviceId)).toEqual([
        'A',
        'B',
      ]);
      expect(
        await store.e2ee.getDeviceKeys([{ userId: ALICE, deviceIds: ['B', 'Z'] }, { userId: BOB }]),
      ).toEqual([
        { userId: ALICE, deviceId: 'B', keys: { device_id: 'B' } },
        { userId: BOB, deviceId: 'C', keys: { device_id: 'C' } },
      ]);
      expect((await store.e2ee.deviceListChanges(0, 3)).sort()).toEqual([ALICE, BOB].sort());
      expect(await store.e2ee.deviceListChanges(2, 3)).toEqual([BOB]);
      expect(await store.e2ee.markDeviceListChanged('@remote:remote.test')).toBe(4);
      expect(await store.e2ee.deviceListChanges(3, 4)).toEqual(['@remote:remote.test']);
      expect(await store.e2ee.putCrossSigningKey(ALICE, 'master', { usage: ['master'] })).toBe(5);
      await store.e2ee.putCrossSigningKey(ALICE, 'self_signing', { usage: ['self_signing'] });
      expect(await store.e2ee.getCrossSigningKeys(ALICE)).toEqual({
        master: { usage: ['master'] },
        self_signing: { usage: ['self_signing'] },
      });
      expect(await store.e2ee.deviceListChanges(4, 6)).toEqual([ALICE]);
      expect((await store.positions()).deviceLists).toBe(6);
    });

    it('stores signatures on keys', async () => {
      const { store } = await stores.fresh();
      const sig = {
        userId: ALICE,
        keyId: 'A',
        signerUserId: ALICE,
        signerKeyId: 'ed25519:SSK',
        signature: 'sig1',
      };
      await store.e2ee.putSignatures([sig, { ...sig, keyId: 'B', signature: 'sig2' }]);
      await store.e2ee.putSignatures([{ ...sig, signature: 'sig1b' }]);
      expect(await store.e2ee.getSignatures(ALICE)).toEqual([
        { keyId: 'A', signerUserId: ALICE, signerKeyId: 'ed25519:SSK', signature: 'sig1b' },
        { keyId: 'B', signerUserId: ALICE, signerKeyId: 'ed25519:SSK', signature: 'sig2' },
      ]);
      expect(await store.e2ee.getSignatures(BOB)).toEqual([]);
    });
  });

  describe('one-time and fallback keys', () => {
    it('counts by algorithm, claims lowest key first, then falls back to the fallback key', async () => {
      const { store } = await stores.fresh();
      const alg = 'signed_curve25519';
      await store.e2ee.addOneTimeKeys(ALICE, 'A', [
        { algorithm: alg, keyId: 'AAAB', key: { key: '2' } },
        { algorithm: alg, keyId: 'AAAA', key: { key: '1' } },
        { algorithm: 'curve25519', keyId: 'X', key: 'raw' },
      ]);
      await store.e2ee.putFallbackKey(ALICE, 'A', {
        algorithm: alg,
        keyId: 'FB',
        key: { key: 'f', fallback: true },
      });
      expect(await store.e2ee.countOneTimeKeys(ALICE, 'A')).toEqual({ [alg]: 2, curve25519: 1 });
      expect(await store.e2ee.unusedFallbackKeyTypes(ALICE, 'A')).toEqual([alg]);
      // /sync's snapshot reads both counts in its one transaction; none without a device.
      expect((await store.syncSnapshot(ALICE, { deviceId: 'A', unreadRooms: [] })).keys).toEqual({
        oneTimeKeyCounts: { [alg]: 2, curve25519: 1 },
        unusedFallbackKeyTypes: [alg],
      });
      expect((await store.syncSnapshot(ALICE, { deviceId: 'B', unreadRooms: [] })).keys).toEqual({
        oneTimeKeyCounts: {},
        unusedFallbackKeyTypes: [],
      });
      expect((await store.syncSnapshot(ALICE, { deviceId: null, unreadRooms: [] })).keys).toBeUndefined();
      const claim = { userId: ALICE, deviceId: 'A', algorithm: alg };
      const first = await store.e2ee.claimKeys([claim, claim]);
      expect(first.map((k) => [k.keyId, k.fallback])).toEqual([
        ['AAAA', false],
        ['AAAB', false],
      ]);
      const concurrent = await Promise.all([store.e2ee.claimKeys([claim]), store.e2ee.claimKeys([claim])]);
      expect(concurrent.flat().map((k) => [k.keyId, k.fallback])).toEqual([
        ['FB', true],
        ['FB', true],
      ]);
      expect(await store.e2ee.unusedFallbackKeyTypes(ALICE, 'A')).toEqual([]);
      expect(await store.e2ee.claimKeys([{ userId: BOB, deviceId: 'Z', algorithm: alg }])).toEqual([]);
      expect(await store.e2ee.countOneTimeKeys(ALICE, 'A')).toEqual({ curve25519: 1 });
    });
  });

  describe('to-device messages', () => {
    it('queues per device in order, pages after a position and deletes up to one', async () => {
      const { store } = await stores.fresh();
      const messages = [...Array(5).keys()].map((i) => ({
        userId: ALICE,
        deviceId: 'A',
        sender: BOB,
        type: 'm.room_key',
        content: { i },
      }));
      const last = await store.e2ee.sendToDevice([
        ...messages,
        { userId: ALICE, deviceId: 'B', sender: BOB, type: 'm.x', content: {}, messageId: 'm1' },
      ]);
      expect(last).toBe(6);
      const page = await store.e2ee.toDeviceMessages(ALICE, 'A', 0, 3);
      expect(page.messages.map((m) => m.content.i)).toEqual([0, 1, 2]);
      expect(page.next).toBe(3);
      const rest = await store.e2ee.toDeviceMessages(ALICE, 'A', page.next as number, 10);
      expect(rest.messages.map((m) => m.stream)).toEqual([4, 5]);
      expect(rest.next).toBeNull();
      expect((await store.e2ee.toDeviceMessages(ALICE, 'B', 0, 10)).messages).toEqual([
        { sender: BOB, type: 'm.x', content: {}, messageId: 'm1', stream: 6 },
      ]);
      await store.e2ee.deleteToDeviceMessages(ALICE, 'A', 3);
      expect((await store.e2ee.toDeviceMessages(ALICE, 'A', 0, 10)).messages.map((m) => m.stream)).toEqual([
        4, 5,
      ]);
      expect((await store.positions()).toDevice).toBe(6);
    });

    it('queues a transaction once: a retried one queues nothing, another device or ID does', async () => {
      const { store } = await stores.fresh();
      const message = { userId: ALICE, deviceId: 'A', sender: BOB, type: 'm.x', content: {} };
      const txn = { userId: BOB, deviceId: 'B1', txnId: 't1' };
      expect(await store.e2ee.sendToDevice([message], txn)).toBe(1);
      expect(await store.e2ee.sendToDevice([message], txn)).toBe(0);
      expect(await store.e2ee.sendToDevice([message], { ...txn, deviceId: 'B2' })).toBe(2);
      expect(await store.e2ee.sendToDevice([message], { ...txn, txnId: 't2' })).toBe(3);
      // A room send's transaction of the same ID is another transaction.
      expect(await store.rooms.eventForTransaction(BOB, 'B1', 't1')).toBeNull();
      expect((await store.e2ee.toDeviceMessages(ALICE, 'A', 0, 10)).messages).toHaveLength(3);
    });
  });

  describe('key backup', () => {
    it('creates versions, stores sessions with etags, and deletes', async () => {
      const { store } = await stores.fresh();
      expect(await store.e2ee.getBackupVersion(ALICE)).toBeNull();
      const v1 = await store.e2ee.createBackupVersion(ALICE, 'm.megolm_backup.v1.curve25519-aes-sha2', {
        public_key: 'a',
      });
      const v2 = await store.e2ee.createBackupVersion(ALICE, 'm.megolm_backup.v1.curve25519-aes-sha2', {
        public_key: 'b',
      });
      expect([v1, v2]).toEqual(['1', '2']);
      expect(await store.e2ee.getBackupVersion(ALICE)).toMatchObject({
        version: '2',
        authData: { public_key: 'b' },
        etag: 0,
        count: 0,
      });
      const etag = await store.e2ee.putBackupSessions(ALICE, v2, [
        { roomId: '!r1:x', sessionId: 's1', data: { first_message_index: 0 } },
        { roomId: '!r1:x', sessionId: 's2', data: { first_message_index: 1 } },
        { roomId: '!r2:x', sessionId: 's3', data: { first_message_index: 2 } },
      ]);
      expect(etag).toBe(1);
      expect(await store.e2ee.getBackupVersion(ALICE, v2)).toMatchObject({ etag: 1, count: 3 });
      expect((await store.e2ee.getBackupSessions(ALICE, v2, '!r1:x')).map((s) => s.sessionId)).toEqual([
        's1',
        's2',
      ]);
      expect(await store.e2ee.getBackupSessions(ALICE, v2, '!r1:x', 's2')).toEqual([
        { roomId: '!r1:x', sessionId: 's2', data: { first_message_index: 1 } },
      ]);
      expect(await store.e2ee.deleteBackupSessions(ALICE, v2, '!r1:x')).toBe(2);
      expect(await store.e2ee.getBackupVersion(ALICE, v2)).toMatchObject({ etag: 2, count: 1 });
      expect(await store.e2ee.updateBackupVersion(ALICE, v1, { public_key: 'a2' })).toBe(true);
      expect((await store.e2ee.getBackupVersion(ALICE, v1))?.authData).toEqual({ public_key: 'a2' });
      expect(await store.e2ee.deleteBackupVersion(ALICE, v2)).toBe(true);
      expect(await store.e2ee.getBackupVersion(ALICE, v2)).toBeNull();
      expect((await store.e2ee.getBackupVersion(ALICE))?.version).toBe('1');
      await expect(store.e2ee.putBackupSessions(ALICE, v2, [])).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await store.e2ee.createBackupVersion(ALICE, 'alg', {})).toBe('3');
      expect(await store.e2ee.getBackupVersion(ALICE, 'not-a-number')).toBeNull();
      expect(await store.e2ee.getBackupVersion(BOB)).toBeNull();
    });

    it('replaces a stored session only when the given rule says so', async () => {
      const { store } = await stores.fresh();
      const v = await store.e2ee.createBackupVersion(ALICE, 'alg', {});
      await store.e2ee.putBackupSessions(ALICE, v, [{ roomId: '!r:x', sessionId: 's', data: { i: 5 } }]);
      const lower = (old: { i?: unknown }, next: { i?: unknown }) => (next.i as number) < (old.i as number);
      await store.e2ee.putBackupSessions(
        ALICE,
        v,
        [
          { roomId: '!r:x', sessionId: 's', data: { i: 7 } },
          { roomId: '!r:x', sessionId: 't', data: { i: 9 } },
        ],
        lower,
      );
      expect((await store.e2ee.getBackupSessions(ALICE, v)).map((s) => s.data.i)).toEqual([5, 9]);
      await store.e2ee.putBackupSessions(
        ALICE,
        v,
        [{ roomId: '!r:x', sessionId: 's', data: { i: 2 } }],
        lower,
      );
      expect((await store.e2ee.getBackupSessions(ALICE, v, '!r:x', 's'))[0]?.data).toEqual({ i: 2 });
    });
  });

  describe('media', () => {
    it('keeps bytes with their type and size, from a Uint8Array or a Blob', async () => {
      const { store } = await stores.fresh();
      const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
      const info = {
        origin: 'hearth.test',
        mediaId: 'abc',
        contentType: 'image/png',
        uploadName: 'cat.png',
        userId: ALICE,
        createdAt: 5,
      };
      expect(await store.media.putMedia(info, bytes)).toEqual({ ...info, size: 70_000 });
      await store.media.putMedia(
        { ...info, mediaId: 'blob', uploadName: null, userId: null },
        new Blob([new Uint8Array([1, 2, 3])]),
      );
      const got = await store.media.getMedia('hearth.test', 'abc');
      expect(got?.info).toEqual({ ...info, size: 70_000 });
      expect(got?.data.type).toBe('image/png');
      if (!got) throw new Error('media not found');
      expect(new Uint8Array(await got.data.arrayBuffer())).toEqual(bytes);
      const kept = await store.media.getMediaAsKept('hearth.test', 'abc');
      expect(kept?.info).toEqual({ ...info, size: 70_000 });
      const keptData = kept?.data;
      expect(keptData instanceof (store.media.keeps === 'bytes' ? Uint8Array : Blob)).toBe(true);
      expect(keptData instanceof Blob ? new Uint8Array(await keptData.arrayBuffer()) : keptData).toEqual(
        bytes,
      );
      const small = await store.media.getMedia('hearth.test', 'blob');
      if (!small) throw new Error('media not found');
      expect(new Uint8Array(await small.data.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
      expect(await store.media.getMediaInfo('hearth.test', 'blob')).toMatchObject({
        size: 3,
        uploadName: null,
      });
      await expect(store.media.putMedia(info, bytes)).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await store.media.deleteMedia('hearth.test', 'abc')).toBe(true);
      expect(await store.media.getMedia('hearth.test', 'abc')).toBeNull();
      expect(await store.media.deleteMedia('hearth.test', 'abc')).toBe(false);
    });

    it('reserves an ID whose bytes come later, filled once', async () => {
      const { store } = await stores.fresh();
      const reservation = {
        origin: 'hearth.test',
        mediaId: 'later',
        userId: ALICE,
        createdAt: 5,
        pendingUntil: 1_000,
      };
      await store.media.reserveMedia(reservation);
      await expect(store.media.reserveMedia(reservation)).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await store.media.getMedia('hearth.test', 'later')).toBeNull();
      expect(await store.media.getMediaAsKept('hearth.test', 'later')).toBeNull();
      expect(await store.media.getMediaInfo('hearth.test', 'later')).toMatchObject({
        userId: ALICE,
        pendingUntil: 1_000,
        size: 0,
      });
      const info = {
        origin: 'hearth.test',
        mediaId: 'later',
        contentType: 'text/plain',
        uploadName: 'a.txt',
        userId: ALICE,
        createdAt: 9,
      };
      expect(await store.media.completeMedia(info, new Uint8Array([104, 105]))).toEqual({ ...info, size: 2 });
      const got = await store.media.getMedia('hearth.test', 'later');
      expect(got?.info).toEqual({ ...info, size: 2 });
      expect(await got?.data.text()).toBe('hi');
      await expect(store.media.completeMedia(info, new Uint8Array([1]))).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      await expect(
        store.media.completeMedia({ ...info, mediaId: 'never' }, new Uint8Array([1])),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await got?.data.text()).toBe('hi');
    });
  });

  describe('federation state', () => {
    it('stages a received transaction once, answers a replay with the first answer, and lists what waits', async () => {
      const { store } = await stores.fresh();
      const fed = store.federation;
      const txn = { origin: 'a.test', origin_server_ts: 1, pdus: [{ type: 'x' }] };
      const staged = { origin: 'a.test', txnId: 't1', txn, receivedAt: 10 };
      expect(await fed.stageTransaction(staged)).toEqual({ status: 'new' });
      // The same txnId again while it waits: nothing new is written.
      expect(await fed.stageTransaction({ ...staged, txn: { other: true }, receivedAt: 11 })).toEqual({
        status: 'staged',
      });
      // Another origin's t1 is another transaction.
      expect(await fed.stageTransaction({ ...staged, origin: 'b.test', receivedAt: 12 })).toEqual({
        status: 'new',
      });
      expect(await fed.stagedTransactions(10)).toEqual([
        staged,
        { ...staged, origin: 'b.test', receivedAt: 12 },
      ]);
      await fed.finishTransaction('a.test', 't1', { pdus: { $e: {} } }, 20);
      expect(await fed.stageTransaction(staged)).toEqual({
        status: 'answered',
        response: { pdus: { $e: {} } },
      });
      expect((await fed.stagedTransactions(10)).map((t) => t.origin)).toEqual(['b.test']);
      await fed.finishTransaction('b.test', 't1', { pdus: {} }, 30);
      expect(await fed.pruneTransactions(25)).toBe(1);
      expect(await fed.stageTransaction(staged)).toEqual({ status: 'new' });
      expect(await fed.stageTransaction({ ...staged, origin: 'b.test' })).toEqual({
        status: 'answered',
        response: { pdus: {} },
      });
    });

    it('caches server keys, destination backoff and a signing seed that is created once', async () => {
      const { store } = await stores.fresh();
      const key = {
        serverName: 'remote.test',
        keyId: 'ed25519:a',
        key: 'AAAA',
        validUntil: 100,
        expiredAt: null,
        fetchedAt: 1,
      };
      await store.federation.putServerKeys([key, { ...key, keyId: 'ed25519:old', expiredAt: 50 }]);
      expect((await store.federation.getServerKeys('remote.test')).map((k) => k.keyId)).toEqual([
        'ed25519:a',
        'ed25519:old',
      ]);
      expect(await store.federation.getServerKeys('remote.test', ['ed25519:a', 'ed25519:none'])).toEqual([
        key,
      ]);
      await store.federation.putServerKeys([{ ...key, validUntil: 200 }]);
      expect((await store.federation.getServerKeys('remote.test', ['ed25519:a']))[0]?.validUntil).toBe(200);
      // The signed response that carried a key comes back as stored (a notary serves it again).
      const response = {
        server_name: 'remote.test',
        valid_until_ts: 300,
        verify_keys: { 'ed25519:b': { key: 'BBBB' } },
      };
      await store.federation.putServerKeys([{ ...key, keyId: 'ed25519:b', key: 'BBBB', response }]);
      expect((await store.federation.getServerKeys('remote.test', ['ed25519:b']))[0]?.response).toEqual(
        response,
      );
      expect(
        (await store.federation.getServerKeys('remote.test', ['ed25519:a']))[0]?.response,
      ).toBeUndefined();

      expect(await store.federation.getDestination('remote.test')).toBeNull();
      await store.federation.setDestination('remote.test', {
        retryAt: 10,
        retryInterval: 5,
        lastSuccessAt: null,
      });
      expect(await store.federation.getDestination('remote.test')).toEqual({
        retryAt: 10,
        retryInterval: 5,
        lastSuccessAt: null,
      });
      await store.federation.setDestination('remote.test', null);
      expect(await store.federation.getDestination('remote.test')).toBeNull();

      const seedA = new Uint8Array(32).fill(7);
      const seedB = new Uint8Array(32).fill(9);
      expect(await store.federation.getSecret('signing_seed')).toBeNull();
      const [kept1, kept2] = await Promise.all([
        store.federation.putSecretOnce('signing_seed', seedA),
        store.federation.putSecretOnce('signing_seed', seedB),
      ]);
      expect(kept1).toEqual(kept2);
      expect(await store.federation.getSecret('signing_seed')).toEqual(kept1);
      expect(new Uint8Array(await store.federation.putSecretOnce('signing_seed', seedB))).toEqual(
        new Uint8Array(kept1 as Uint8Array),
      );
    });
  });
}
