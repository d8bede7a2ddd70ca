/**
 * Test support for the Client-Server endpoint tests: a whole homeserver (src/testing.ts) with
 * users, and rooms made through the real room service (the pipeline the endpoints use), so a
 * test of one endpoint does not depend on the others.
 */

import { createRoomAs, stateContent, timelineOf } from '../../homeserver/rooms/testing.ts';
import { manualClock } from '../../homeserver/testing.ts';
import { createTestHomeserver, type TestHomeserver, type TestUser } from '../../testing.ts';

/** A homeserver with one signed-in user per localpart. */
export async function roomsTestbed(
  ...localparts: string[]
): Promise<{ hs: TestHomeserver; users: TestUser[] }> {
  const hs = await createTestHomeserver();
  const users: TestUser[] = [];
  for (const localpart of localparts) users.push(await hs.createUser(localpart));
  return { hs, users };
}

export async function roomWith(
  hs: TestHomeserver,
  creator: TestUser,
  joiners: readonly TestUser[] = [],
  body: Record<string, unknown> = { preset: 'public_chat' },
): Promise<string> {
  const { rooms } = hs.internals;
  const { roomId } = await rooms.createRoom(creator.userId, body);
  for (const user of joiners) await rooms.join(user.userId, roomId);
  return roomId;
}

export async function sendText(
  hs: TestHomeserver,
  user: TestUser,
  roomId: string,
  body: string,
  txnId?: string,
): Promise<string> {
  const { rooms } = hs.internals;
  const { eventId } = await rooms.sendEvent({
    sender: user.userId,
    deviceId: user.deviceId,
    roomId,
    type: 'm.room.message',
    content: { msgtype: 'm.text', body },
    ...(txnId ? { txnId } : {}),
  });
  return eventId;
}

export {
  createRoomAs,
  createTestHomeserver,
  manualClock,
  stateContent,
  type TestHomeserver,
  type TestUser,
  timelineOf,
};
