/**
 * Test support for the room areas: services with signed-in users, rooms made through the
 * room service (the pipeline the endpoints use), and the room's timeline and state read
 * straight from the store (what was really persisted).
 */
import type { IdentifiedPdu } from '../../core/index.ts';
import type { Store } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { createTestServices, type TestServices, type TestUser } from '../testing.ts';

export type { TestServices, TestUser };

export async function roomsTestbed(
  ...localparts: string[]
): Promise<{ hs: TestServices; users: TestUser[] }> {
  const hs = await createTestServices();
  const users: TestUser[] = [];
  for (const localpart of localparts) users.push(await hs.createUser(localpart));
  return { hs, users };
}

/** Creates a room as `user` through the room service, as `POST /createRoom` does. */
export async function createRoomAs(
  hs: { internals: Pick<Services, 'rooms'> },
  user: TestUser,
  body: Parameters<Services['rooms']['createRoom']>[1] = {},
): Promise<string> {
  return (await hs.internals.rooms.createRoom(user.userId, body)).roomId;
}

/** Every timeline event of the room in stream order, as stored. */
export async function timelineOf(hs: { store: Store }, roomId: string): Promise<IdentifiedPdu[]> {
  const page = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 1000 });
  return page.events.map((stored) => stored.event);
}

export async function stateContent(hs: { store: Store }, roomId: string, type: string, stateKey = '') {
  return (await hs.store.rooms.currentStateEvent(roomId, type, stateKey))?.event.content ?? null;
}
