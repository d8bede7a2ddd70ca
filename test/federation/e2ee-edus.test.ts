/**
 * E2EE's EDUs received over `/send` (server-server-api.md "Send-to-device messaging",
 * "Device Management", "End-to-End Encryption"): to-device messages reach the devices they
 * name once however often the transaction is replayed; a remote user's device-list and
 * signing-key updates show in their room-mates' `device_lists.changed`; an EDU about a user of
 * another server than its origin changes nothing. The sending side's EDUs are shown by
 * test/e2e/js-sdk-crypto-federation.test.ts with real clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FederatedNetwork, FederatedServer } from '../../src/federation/testing.ts';
import { twoServerRoom } from '../../src/federation/testing-rooms.ts';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

async function sharedRoom() {
  const room = await twoServerRoom();
  net = room.net;
  return room;
}

async function sync(server: FederatedServer, token: string, since?: string) {
  const query = since ? `?timeout=0&since=${encodeURIComponent(since)}` : '?timeout=0';
  const { status, body } = await server.hs.call('GET', `/_matrix/client/v3/sync${query}`, { token });
  expect(status).toBe(200);
  return body as {
    next_batch: string;
    to_device?: { events: { sender: string; type: string; content: unknown }[] };
    device_lists?: { changed?: string[] };
  };
}

describe('E2EE EDUs received over federation', () => {
  it('queues an m.direct_to_device once, for the named device, and drops one from a forged sender', async () => {
    const { b, alice, bob } = await sharedRoom();
    const edu = (sender: string, messageId: string) => ({
      edu_type: 'm.direct_to_device',
      content: {
        sender,
        type: 'm.room_key_request',
        message_id: messageId,
        messages: { [bob.userId]: { [bob.deviceId]: { n: 1 }, NOSUCHDEVICE: { n: 2 } } },
      },
    });
    await b.services.transactions.receive('a.test', 't1', { edus: [edu(alice.userId, 'm1')] });
    // The same message again in another transaction (a sender retrying after a lost answer).
    await b.services.transactions.receive('a.test', 't2', { edus: [edu(alice.userId, 'm1')] });
    // a.test speaking for a user of c.test.
    await b.services.transactions.receive('a.test', 't3', { edus: [edu('@eve:c.test', 'm2')] });
    const first = await sync(b, bob.accessToken);
    expect(first.to_device?.events).toEqual([
      { sender: alice.userId, type: 'm.room_key_request', content: { n: 1 } },
    ]);
  });

  it("shows a remote user's device-list and signing-key updates to room-mates, and no forged one", async () => {
    const { b, alice, bob } = await sharedRoom();
    const before = await sync(b, bob.accessToken);
    await b.services.transactions.receive('a.test', 'd1', {
      edus: [
        // About a user of c.test: not a.test's to tell.
        {
          edu_type: 'm.device_list_update',
          content: { user_id: '@carol:c.test', device_id: 'X', stream_id: 1 },
        },
      ],
    });
    const unchanged = await sync(b, bob.accessToken, before.next_batch);
    expect(unchanged.device_lists?.changed ?? []).toEqual([]);

    await b.services.transactions.receive('a.test', 'd2', {
      edus: [
        {
          edu_type: 'm.device_list_update',
          content: { user_id: alice.userId, device_id: alice.deviceId, stream_id: 2, prev_id: [] },
        },
      ],
    });
    const changed = await sync(b, bob.accessToken, unchanged.next_batch);
    expect(changed.device_lists?.changed).toEqual([alice.userId]);

    await b.services.transactions.receive('a.test', 'd3', {
      edus: [{ edu_type: 'm.signing_key_update', content: { user_id: alice.userId } }],
    });
    const again = await sync(b, bob.accessToken, changed.next_batch);
    expect(again.device_lists?.changed).toEqual([alice.userId]);
  });
});
