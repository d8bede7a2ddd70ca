/**
 * Test support for P2P federation tests: a room shared by two P2P homeservers through the
 * client API (create, invite, join), and reading its messages back.
 */
import { expect } from 'vitest';
import type { TestHomeserver, TestUser } from '../../src/testing.ts';

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
