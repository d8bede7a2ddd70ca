import { afterEach, describe, expect, it } from 'vitest';
import type { TestServices } from '../testing.ts';
import { roomsTestbed, type TestUser } from './testing.ts';

let hs: TestServices | undefined;
afterEach(async () => {
  await hs?.close();
  hs = undefined;
});

/**
 * Alice's room with the given history visibility: a message, Bob's invite, a message, Bob's
 * join, a message, Bob's leave, a message. Eve never takes part.
 */
async function scenario(historyVisibility: string, bobLeaves = true) {
  const t = await roomsTestbed('alice', 'bob', 'eve');
  hs = t.hs;
  const server = t.hs;
  const [alice, bob, eve] = t.users as [TestUser, TestUser, TestUser];
  const { rooms } = server.internals;
  const { roomId } = await rooms.createRoom(alice.userId, {
    preset: 'public_chat',
    initial_state: [
      { type: 'm.room.history_visibility', content: { history_visibility: historyVisibility } },
    ],
  });
  const say = async (body: string) =>
    (await rooms.sendEvent({ sender: alice.userId, roomId, type: 'm.room.message', content: { body } }))
      .eventId;
  const ids: Record<string, string> = {};
  ids.before = await say('before the invite');
  ids.invite = (await rooms.invite(alice.userId, roomId, bob.userId)).eventId;
  ids.invited = await say('while invited');
  await rooms.join(bob.userId, roomId);
  ids.join = (await server.store.rooms.membership(roomId, bob.userId))?.eventId as string;
  ids.joined = await say('while joined');
  if (bobLeaves) {
    ids.leave = (await rooms.leave(bob.userId, roomId)).eventId;
    ids.after = await say('after leaving');
  }
  /** Which of the scenario's events `userId` may see, by name. */
  const seenBy = async (userId: string) => {
    const stored = [...(await server.store.rooms.getEvents(Object.values(ids))).values()];
    const visible = new Set((await rooms.filterVisible(userId, roomId, stored)).map((e) => e.event.event_id));
    // The single-event form answers the same, for bare PDUs too.
    for (const event of stored) {
      expect(await rooms.visibleToUser(userId, roomId, event.event)).toBe(visible.has(event.event.event_id));
    }
    return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, visible.has(id)]));
  };
  return { bob, eve, alice, seenBy, roomId, rooms };
}

describe('history visibility', () => {
  it('joined: only while joined, plus his own membership changes', async () => {
    const s = await scenario('joined');
    expect(await s.seenBy(s.bob.userId)).toEqual({
      before: false,
      invite: false,
      invited: false,
      join: true,
      joined: true,
      leave: true,
      after: false,
    });
    expect(Object.values(await s.seenBy(s.eve.userId)).some(Boolean)).toBe(false);
  });

  it('invited: from the invite on, until he leaves', async () => {
    const s = await scenario('invited');
    expect(await s.seenBy(s.bob.userId)).toEqual({
      before: false,
      invite: true,
      invited: true,
      join: true,
      joined: true,
      leave: true,
      after: false,
    });
  });

  it('shared: everything before he left, since he joined after it', async () => {
    const s = await scenario('shared');
    expect(await s.seenBy(s.bob.userId)).toEqual({
      before: true,
      invite: true,
      invited: true,
      join: true,
      joined: true,
      leave: true,
      after: false,
    });
    expect(Object.values(await s.seenBy(s.eve.userId)).some(Boolean)).toBe(false);
    expect(Object.values(await s.seenBy(s.alice.userId)).every(Boolean)).toBe(true);
  });

  it('shared while still joined: the whole history', async () => {
    const s = await scenario('shared', false);
    expect(Object.values(await s.seenBy(s.bob.userId)).every(Boolean)).toBe(true);
  });

  it('world_readable: anyone, members or not', async () => {
    const s = await scenario('world_readable');
    expect(Object.values(await s.seenBy(s.eve.userId)).every(Boolean)).toBe(true);
  });

  it('sees a change of visibility from both sides', async () => {
    const s = await scenario('joined', false);
    const { eventId } = await s.rooms.sendEvent({
      sender: s.alice.userId,
      roomId: s.roomId,
      type: 'm.room.history_visibility',
      stateKey: '',
      content: { history_visibility: 'world_readable' },
    });
    const event = (await hs?.store.rooms.getEvent(eventId))?.event;
    expect(event).toBeDefined();
    // Eve was never in the room, but the state after the event is world-readable.
    expect(await s.rooms.visibleToUser(s.eve.userId, s.roomId, event as NonNullable<typeof event>)).toBe(
      true,
    );
  });
});
