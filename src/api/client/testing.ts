/**
 * Test set-up shared by the ephemeral and room-read tests: a homeserver with users and a
 * room made through the real room service (the same pipeline the endpoints use).
 */

import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';
import type { Clock } from '../context.ts';

export interface TestUser {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** A clock tests move by hand. */
export function manualClock(
  start = 1_700_000_000_000,
): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
    set(ms) {
      now = ms;
    },
  };
}

export async function roomWith(
  hs: TestHomeserver,
  creator: TestUser,
  joiners: readonly TestUser[] = [],
  body: Record<string, unknown> = { preset: 'public_chat' },
): Promise<string> {
  const { rooms } = await hs.ready;
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
  const { rooms } = await hs.ready;
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

export { createTestHomeserver, type TestHomeserver };
