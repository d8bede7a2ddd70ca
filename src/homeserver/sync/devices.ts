/**
 * The user-wide sections of one /sync answer: presence, to-device messages and the device's
 * key counts (send_to_device.md, end_to_end_encryption.md "Extensions to /sync"), and
 * `device_lists`.
 */
import { createE2eeSyncData, type E2eeSyncData, keyCountsOf } from '../e2ee/sync-data.ts';
import type { SyncPositions } from '../tokens.ts';
import { limitList, type Pass, type RoomPlan } from './pass.ts';
import type { SyncResponse } from './types.ts';

/** "100 messages is recommended as a reasonable limit" (send_to_device.md "Server behaviour"). */
export const TO_DEVICE_LIMIT = 100;

/** A member event of another user in a room of the answer (device lists follow joins and leaves). */
export interface MemberChange {
  roomId: string;
  userId: string;
  membership: string;
}

/**
 * Fills `presence`, `to_device`, the key counts and `device_lists` of `body`; returns the
 * to-device position the answer's token may name.
 */
export async function fillUserSections(
  pass: Pass,
  body: SyncResponse,
  joinedRoomIds: ReadonlySet<string>,
  memberChanges: readonly MemberChange[],
  plans: readonly RoomPlan[],
  /** The device's key counts as stored, when already read with the user's snapshot. */
  storedKeys?: { oneTimeKeyCounts: Record<string, number>; unusedFallbackKeyTypes: string[] },
): Promise<number> {
  const { userId, since, now, filter, ignored } = pass;
  const { deps, deviceId } = pass.input;
  const e2ee = deps.e2ee ?? createE2eeSyncData(pass.input.ctx);
  const sharesRoom = sharedRoomCheck(pass, joinedRoomIds);
  if (deps.presence) {
    // The presence service shows the user only those who share a room with them.
    const events = (await deps.presence.changesSince(userId, since?.presence ?? 0)).filter((event) => {
      const sender = event.sender as string;
      return !ignored.has(sender) && filter.presence.matches(event as { type: string; sender: string });
    });
    body.presence.events = limitList(events, filter.presence.limit);
  }

  let toDevicePosition = now.toDevice;
  if (deviceId !== null) {
    // The to-device stream unmoved since `since`: no message for any device.
    const after = since?.toDevice ?? 0;
    const toDevice =
      since && after >= now.toDevice
        ? { events: [], position: after }
        : await e2ee.toDeviceMessages(userId, deviceId, after, TO_DEVICE_LIMIT);
    body.to_device.events = toDevice.events;
    // A full page may leave more waiting: the token stops after the last one sent and the
    // rest come in the next answer. A short page emptied the queue: the token names now.
    toDevicePosition =
      toDevice.events.length >= TO_DEVICE_LIMIT
        ? toDevice.position
        : Math.max(now.toDevice, toDevice.position);
    const counts = storedKeys ? keyCountsOf(storedKeys) : await e2ee.keyCounts(userId, deviceId);
    body.device_one_time_keys_count = counts.oneTimeKeyCounts;
    body.device_unused_fallback_key_types = counts.unusedFallbackKeyTypes;
  }
  if (since) body.device_lists = await deviceListChanges(pass, e2ee, since, sharesRoom, memberChanges, plans);
  return toDevicePosition;
}

/** Whether another user is joined to one of the user's joined rooms (cached per answer). */
function sharedRoomCheck(pass: Pass, joined: ReadonlySet<string>): (other: string) => Promise<boolean> {
  const cache = new Map<string, Promise<boolean>>();
  return (other) => {
    let known = cache.get(other);
    if (!known) {
      known = pass.store.rooms
        .roomsForUser(other, 'join')
        .then((rooms) => rooms.some((r) => joined.has(r.roomId)));
      cache.set(other, known);
    }
    return known;
  };
}

/**
 * `device_lists` (end_to_end_encryption.md "Extensions to /sync"): users whose devices or
 * cross-signing keys changed and who share a room with the user, plus users who now share an
 * encrypted room; `left`: users with whom the user no longer shares any room after a leave
 * in an encrypted room.
 */
async function deviceListChanges(
  pass: Pass,
  e2ee: E2eeSyncData,
  since: SyncPositions,
  sharesRoom: (other: string) => Promise<boolean>,
  memberChanges: readonly MemberChange[],
  plans: readonly RoomPlan[],
): Promise<{ changed: string[]; left: string[] }> {
  const { store, userId, now } = pass;
  const changed = new Set<string>();
  const left = new Set<string>();
  const fromStream = await e2ee.deviceListChanges(userId, since.deviceLists, now.deviceLists);
  for (const other of fromStream.changed) changed.add(other);
  for (const other of fromStream.left) left.add(other);
  const encrypted = new Map<string, Promise<boolean>>();
  const isEncrypted = (roomId: string) => {
    let known = encrypted.get(roomId);
    if (!known) {
      known = store.rooms.currentState(roomId, 'm.room.encryption').then((state) => state.size > 0);
      encrypted.set(roomId, known);
    }
    return known;
  };
  for (const change of memberChanges) {
    if (!(await isEncrypted(change.roomId))) continue;
    if (change.membership === 'join') changed.add(change.userId);
    else if (change.membership === 'leave' || change.membership === 'ban') {
      if (!(await sharesRoom(change.userId))) left.add(change.userId);
    }
  }
  for (const p of plans) {
    if (!(p.newlyJoined || p.section === 'leave') || !(await isEncrypted(p.roomId))) continue;
    for (const member of await store.rooms.members(p.roomId, 'join')) {
      if (member.userId === userId) continue;
      if (p.section === 'join') changed.add(member.userId);
      else if (!(await sharesRoom(member.userId))) left.add(member.userId);
    }
  }
  for (const other of left) changed.delete(other);
  return { changed: [...changed].sort(), left: [...left].sort() };
}
