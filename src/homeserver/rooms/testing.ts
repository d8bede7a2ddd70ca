/**
 * Test helpers for the room areas: a homeserver with signed-in users, and the room's
 * timeline and state read straight from the store (what was really persisted).
 */
import type { IdentifiedPdu } from '../../core/index.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

export interface TestUser {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export async function roomsTestbed(
  ...localparts: string[]
): Promise<{ hs: TestHomeserver; users: TestUser[] }> {
  const hs = await createTestHomeserver();
  const users: TestUser[] = [];
  for (const localpart of localparts) users.push(await hs.createUser(localpart));
  return { hs, users };
}

/** POST /createRoom as `user`; fails the test unless it answers 200. */
export async function createRoomAs(
  hs: TestHomeserver,
  user: TestUser,
  body: Record<string, unknown> = {},
): Promise<string> {
  const res = await hs.call('POST', '/_matrix/client/v3/createRoom', { token: user.accessToken, body });
  if (res.status !== 200) throw new Error(`createRoom answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.room_id as string;
}

/** Every timeline event of the room in stream order, as stored. */
export async function timelineOf(hs: TestHomeserver, roomId: string): Promise<IdentifiedPdu[]> {
  const page = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 1000 });
  return page.events.map((stored) => stored.event);
}

export async function stateContent(hs: TestHomeserver, roomId: string, type: string, stateKey = '') {
  return (await hs.store.rooms.currentStateEvent(roomId, type, stateKey))?.event.content ?? null;
}
