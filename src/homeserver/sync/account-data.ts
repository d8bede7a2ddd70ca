/**
 * The account data of one /sync answer: global (with `m.push_rules`, which lives with the push
 * rules) and per room; a room new to the client gets all of its own.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { AccountDataEntry } from '../../storage/store.ts';
import { PUSHERS_ACCOUNT_DATA_TYPE } from '../push/service.ts';
import type { Pass, RoomPlan } from './pass.ts';

/** Account data the server keeps for itself (pushers, until they have a table): not the client's to sync. */
const HIDDEN_ACCOUNT_DATA: ReadonlySet<string> = new Set([PUSHERS_ACCOUNT_DATA_TYPE]);

export interface AccountDataParts {
  global: JsonObject[];
  byRoom: Map<string, JsonObject[]>;
}

/** `changed`: the user's account data since `since` (all of it on an initial sync). */
export async function accountDataParts(
  pass: Pass,
  plans: readonly RoomPlan[],
  changed: readonly AccountDataEntry[],
): Promise<AccountDataParts> {
  const { store, since, now, filter, userId } = pass;
  const { deps } = pass.input;
  const byRoom = new Map<string, JsonObject[]>();
  const global: JsonObject[] = [];
  const roomDataFilter = filter.room.accountData;
  const addRoomData = (roomId: string, event: JsonObject & { type: string }) => {
    if (!roomDataFilter.includesRoom(roomId) || !roomDataFilter.matches(event)) return;
    const list = byRoom.get(roomId) ?? [];
    list.push(event);
    byRoom.set(roomId, list);
  };
  for (const entry of changed) {
    if (HIDDEN_ACCOUNT_DATA.has(entry.type)) continue;
    const event = { type: entry.type, content: entry.content };
    if (entry.roomId === null) {
      if (filter.accountData.matches(event)) global.push(event);
    } else addRoomData(entry.roomId, event);
  }
  // A room new to the client gets all its account data, not only what changed since `since`.
  const newRooms = new Set(plans.filter((p) => since && p.lower === undefined).map((p) => p.roomId));
  if (newRooms.size > 0) {
    for (const roomId of newRooms) byRoom.delete(roomId);
    for (const entry of await store.userData.accountDataSince(userId, 0, now.accountData)) {
      if (entry.roomId !== null && newRooms.has(entry.roomId))
        addRoomData(entry.roomId, { type: entry.type, content: entry.content });
    }
  }
  if (deps.pushRules && filter.accountData.matches({ type: 'm.push_rules' })) {
    // Push rule changes move the account data stream: unmoved, the rules are unchanged.
    const rulesChanged =
      since === undefined ||
      (since.accountData < now.accountData &&
        (await store.userData.pushRules(userId)).stream > since.accountData);
    if (rulesChanged) global.push({ type: 'm.push_rules', content: await deps.pushRules(userId) });
  }
  return { global, byRoom };
}
