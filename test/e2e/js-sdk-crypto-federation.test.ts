/**
 * End-to-end encryption across two federating homeservers (the in-memory network of
 * src/federation/testing.ts), with matrix-js-sdk's Rust crypto, unmodified, on each: every
 * piece the clients need crosses federation — Bob's keys are queried and his one-time keys
 * claimed on his server (`user/keys/query`, `user/keys/claim`), the room keys travel as
 * `m.direct_to_device` EDUs, and a new device of Bob reaches Alice's client through an
 * `m.device_list_update` (her sync's `device_lists.changed`), so her next message is readable
 * there too. Cross-signing keys travel as `m.signing_key_update`.
 */
import type { MatrixClient } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createFederatedServers, type FederatedNetwork } from '../../src/federation/testing.ts';
import type { TestHomeserver } from '../../src/testing.ts';
import { eventually, startCryptoClient, waitDecrypted } from './js-sdk-crypto-scenario.ts';
import { login, PASSWORD, register } from './js-sdk-scenario.ts';

let net: FederatedNetwork | undefined;
const clients: MatrixClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.stopClient();
  await net?.close();
  net = undefined;
});

function targetOf(network: FederatedNetwork, name: string) {
  const server = network.servers[name]?.hs as TestHomeserver;
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
    server.fetch(new Request(input, init))) as typeof fetch;
  return { baseUrl: `http://${name}`, fetchFn, hs: server };
}

describe('matrix-js-sdk with crypto on two federating homeservers', () => {
  it('exchanges decryptable messages in an encrypted room, and a new remote device gets them', async () => {
    net = await createFederatedServers(['a.test', 'b.test']);
    const a = targetOf(net, 'a.test');
    const b = targetOf(net, 'b.test');
    const aliceCreds = await register(a, 'alice');
    const bobCreds = await register(b, 'bob');
    const alice = await startCryptoClient(a, aliceCreds);
    clients.push(alice);
    const bob = await startCryptoClient(b, bobCreds);
    clients.push(bob);
    const aliceCrypto = alice.getCrypto();
    const bobCrypto = bob.getCrypto();
    if (!aliceCrypto || !bobCrypto) throw new Error('no crypto');
    const uia =
      (userId: string) => async (makeRequest: (auth: Record<string, unknown> | null) => Promise<unknown>) => {
        try {
          await makeRequest(null);
        } catch {
          await makeRequest({
            type: 'm.login.password',
            identifier: { type: 'm.id.user', user: userId },
            password: PASSWORD,
          });
        }
      };
    await bobCrypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: uia(bobCreds.userId) });

    const { room_id: roomId } = await alice.createRoom({
      invite: [bobCreds.userId],
      initial_state: [
        { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
      ],
    });
    await eventually(() => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'the invite reaching b.test');
    await bob.joinRoom(roomId);
    await eventually(
      () => alice.getRoom(roomId)?.getMember(bobCreds.userId)?.membership === 'join',
      'alice seeing bob join',
    );

    // Alice's client asks a.test for Bob's keys, which a.test asks of b.test; the room key goes
    // to Bob's device as an m.direct_to_device EDU.
    await alice.sendTextMessage(roomId, 'hello bob, across servers');
    await waitDecrypted(bob, roomId, 'hello bob, across servers', 'bob decrypting alice');
    await bob.sendTextMessage(roomId, 'hello alice, across servers');
    await waitDecrypted(alice, roomId, 'hello alice, across servers', 'alice decrypting bob');

    // Bob's cross-signing keys reached a.test's answer for his keys (through b.test).
    const query = await a.hs.call('POST', '/_matrix/client/v3/keys/query', {
      token: aliceCreds.accessToken,
      body: { device_keys: { [bobCreds.userId]: [] } },
    });
    expect(Object.keys((query.body.device_keys as Record<string, object>)[bobCreds.userId] ?? {})).toContain(
      bobCreds.deviceId,
    );
    expect((query.body.master_keys as Record<string, unknown>)[bobCreds.userId]).toBeDefined();

    // What a.test stored and sent is ciphertext.
    const messages = await a.hs.call(
      'GET',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
      { token: aliceCreds.accessToken },
    );
    expect(JSON.stringify(messages.body)).not.toContain('across servers');

    // A second device of Bob: b.test sends a.test an m.device_list_update, Alice's sync shows
    // Bob in device_lists.changed, her client asks again and shares the next key with it.
    const bob2Creds = await login(b, bobCreds.userId);
    const bob2 = await startCryptoClient(b, bob2Creds);
    clients.push(bob2);
    await eventually(async () => {
      const devices = await aliceCrypto.getUserDeviceInfo([bobCreds.userId]);
      return devices.get(bobCreds.userId)?.has(bob2Creds.deviceId) === true;
    }, "alice's client learning of bob's second device");
    await alice.sendTextMessage(roomId, 'for both of your devices');
    await waitDecrypted(bob2, roomId, 'for both of your devices', "bob's second device decrypting");
    await waitDecrypted(bob, roomId, 'for both of your devices', "bob's first device decrypting");
  }, 180_000);
});
