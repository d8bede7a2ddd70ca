/**
 * Test support for P2P federation tests: the peers and relays a test starts (closed after
 * it), a room shared by two P2P homeservers through the client API (create, invite, join),
 * and reading its messages back.
 */
import { afterEach, expect } from 'vitest';
import type { TestHomeserver, TestUser } from '../../src/testing.ts';
import type { Relay, RelayOptions } from '../../src/transport/libp2p/relay.ts';
import {
  startTestP2pPeer,
  startTestRelay,
  type TestP2pPeer,
  type TestP2pPeerOptions,
} from '../../src/transport/libp2p/testing.ts';

/** Starts peers and relays for a test file's tests; each is closed after the test that started it. */
export function p2pTestNetwork() {
  const peers: TestP2pPeer[] = [];
  const relays: Relay[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.close()));
    await Promise.all(relays.splice(0).map((r) => r.close()));
  });
  const peer = async (options?: TestP2pPeerOptions) => {
    const started = await startTestP2pPeer(options);
    peers.push(started);
    return started;
  };
  return {
    peer,
    async relay(options?: Partial<RelayOptions>) {
      const started = await startTestRelay(options);
      relays.push(started);
      return started;
    },
    /** Two peers started with `options`; `know: true` tells each the other's address. */
    async pair(options?: TestP2pPeerOptions & { know?: boolean }) {
      const { know = false, ...rest } = options ?? {};
      const a = await peer(rest);
      const b = await peer(rest);
      if (know) {
        await a.know(b);
        await b.know(a);
      }
      return { a, b };
    },
  };
}

/** Alice of `a` and Bob of `b`, in a room Alice made and Bob joined (`sharedRoom`). */
export async function aliceAndBob(a: TestP2pPeer, b: TestP2pPeer) {
  const alice = await a.hs.createUser('alice');
  const bob = await b.hs.createUser('bob');
  const roomId = await sharedRoom(a.hs, alice, b.hs, bob);
  return { alice, bob, roomId };
}

const enc = encodeURIComponent;

export async function sendText(
  server: TestHomeserver,
  user: TestUser,
  roomId: string,
  body: string,
  txn: string,
) {
  const res = await server.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, {
    token: user.accessToken,
    body: { msgtype: 'm.text', body },
  });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

/** The text messages of a room as `user` sees them, oldest first. */
export async function texts(
  server: TestHomeserver,
  user: TestUser,
  roomId: string,
  limit = 100,
): Promise<string[]> {
  const res = await server.call(
    'GET',
    `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=${limit}`,
    {
      token: user.accessToken,
    },
  );
  return ((res.body.chunk ?? []) as { type: string; content: { body?: string } }[])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => e.content.body as string)
    .reverse();
}

/** `owner` on `a` creates a room, invites `guest` of `b`, and the guest joins over federation. */
export async function sharedRoom(a: TestHomeserver, owner: TestUser, b: TestHomeserver, guest: TestUser) {
  const created = await a.call('POST', '/_matrix/client/v3/createRoom', {
    token: owner.accessToken,
    body: { preset: 'private_chat', name: 'P2P' },
  });
  expect(created.status).toBe(200);
  const roomId = created.body.room_id as string;
  const invite = await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, {
    token: owner.accessToken,
    body: { user_id: guest.userId },
  });
  expect(invite.body).toEqual({});
  expect((await b.store.rooms.membership(roomId, guest.userId))?.membership).toBe('invite');
  const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {
    token: guest.accessToken,
    body: {},
  });
  expect(joined.body).toEqual({ room_id: roomId });
  return roomId;
}
