/**
 * Dehydrated devices (MSC3814) as Element uses them: matrix-js-sdk, unmodified, with its Rust
 * crypto against `hs.fetch`. Alice sets up cross-signing and secret storage and starts
 * dehydration (the SDK uploads a dehydrated device); with every device of hers offline, Bob
 * writes in their encrypted room, so the room key goes to the dehydrated device alone; a new
 * login of Alice rehydrates it (the SDK pages through its to-device messages) and reads
 * Bob's message, which no live device of hers was sent a key for.
 */

import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { CryptoEvent } from 'matrix-js-sdk/lib/crypto-api/index.js';
import type { SecretStorageKeyDescription } from 'matrix-js-sdk/lib/secret-storage.js';
import { afterEach, describe, expect, it } from 'vitest';
import { type Homeserver, startHomeserver } from '../../src/server.ts';
import { openIndexedDbStore } from '../../src/storage/indexeddb/index.ts';
import { encryptedRoom, eventually, passwordUia } from './js-sdk-crypto-scenario.ts';
import { login, register } from './js-sdk-scenario.ts';

const quiet = { debug() {}, info() {}, log() {}, warn() {}, error() {}, trace() {}, getChild: () => quiet };
const BASE = 'http://dehydration.test';

describe('matrix-js-sdk Rust crypto: device dehydration', () => {
  const running: MatrixClient[] = [];
  let hs: Homeserver | undefined;
  afterEach(async () => {
    for (const client of running.splice(0)) client.stopClient();
    await hs?.close();
  });

  it('a new login rehydrates the dehydrated device and reads what was sent while no device was online', async () => {
    hs = startHomeserver({
      serverName: 'dehydration.test',
      registration: 'open',
      passwordIterations: 1000,
      store: () => openIndexedDbStore({ indexedDB: new IDBFactory(), IDBKeyRange, name: 'dehydration' }),
    }).homeserver;
    const server = hs;
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
      server.fetch(new Request(input, init))) as typeof fetch;
    const target = { baseUrl: BASE, fetchFn };

    // Alice's secret storage key, as a user would keep it (a recovery key).
    let secretKey: [string, Uint8Array<ArrayBuffer>] | undefined;
    const start = async (creds: { userId: string; accessToken: string; deviceId: string }) => {
      const client = createClient({
        baseUrl: BASE,
        fetchFn,
        userId: creds.userId,
        accessToken: creds.accessToken,
        deviceId: creds.deviceId,
        logger: quiet as never,
        cryptoCallbacks: {
          getSecretStorageKey: async ({ keys }: { keys: Record<string, SecretStorageKeyDescription> }) =>
            secretKey && keys[secretKey[0]] ? secretKey : null,
          cacheSecretStorageKey: (keyId: string, _info: SecretStorageKeyDescription, key: Uint8Array) => {
            secretKey = [keyId, key as Uint8Array<ArrayBuffer>];
          },
        },
      });
      await client.initRustCrypto({ useIndexedDB: false });
      await client.startClient({ initialSyncLimit: 30 });
      running.push(client);
      await eventually(() => client.isInitialSyncComplete(), `${creds.userId}'s first sync`);
      return client;
    };
    const aliceCreds = await register(target, 'alice');
    const bobCreds = await register(target, 'bob');
    const alice = await start(aliceCreds);
    const bob = await start(bobCreds);
    const aliceCrypto = alice.getCrypto();
    if (!aliceCrypto) throw new Error('no crypto');
    const authUpload = passwordUia(aliceCreds.userId);
    await aliceCrypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: authUpload });
    await aliceCrypto.bootstrapSecretStorage({
      setupNewSecretStorage: true,
      createSecretStorageKey: () => aliceCrypto.createRecoveryKeyFromPassphrase(),
    });
    expect(await aliceCrypto.isDehydrationSupported()).toBe(true);
    await aliceCrypto.startDehydration({ createNewKey: true });
    const dehydrated = (await (
      await fetchFn(`${BASE}/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device`, {
        headers: { authorization: `Bearer ${aliceCreds.accessToken}` },
      })
    ).json()) as { device_id: string; device_data: Record<string, unknown> };
    expect(typeof dehydrated.device_id).toBe('string');
    expect(dehydrated.device_data).toBeTypeOf('object');

    const roomId = await encryptedRoom(alice, bob);

    await eventually(
      async () => (await bob.getCrypto()?.isEncryptionEnabledInRoom(roomId)) === true,
      "bob's client knowing the room is encrypted",
    );
    // Alice's only device logs out: her dehydrated device is the one left.
    alice.stopClient();
    await alice.logout(true);
    await bob.sendTextMessage(roomId, 'sent while alice was away');

    const later = await start(await login(target, aliceCreds.userId));
    const laterCrypto = later.getCrypto();
    if (!laterCrypto) throw new Error('no crypto');
    // Cross-signing keys come back from secret storage (once the public ones are fetched),
    // then the dehydrated device is rehydrated.
    expect(await laterCrypto.userHasCrossSigningKeys(aliceCreds.userId, true)).toBe(true);
    await laterCrypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: authUpload });
    let rehydrated = false;
    later.on(CryptoEvent.RehydrationCompleted, () => {
      rehydrated = true;
    });
    await laterCrypto.startDehydration({ rehydrate: true });
    expect(rehydrated).toBe(true);
    await eventually(
      () =>
        later
          .getRoom(roomId)
          ?.getLiveTimeline()
          .getEvents()
          .some(
            (e) =>
              e.getWireType() === 'm.room.encrypted' && e.getContent().body === 'sent while alice was away',
          ) === true,
      'the new login decrypting what only the dehydrated device was sent',
    );
  }, 120_000);
});
