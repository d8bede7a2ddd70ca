/**
 * A joined room's `ephemeral` section: typing (memory only) and read receipts, without other
 * users' private receipts (receipts.md) or ignored users' typing ("Ignoring Users").
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Receipt } from '../../storage/store.ts';
import { receiptContent } from '../ephemeral/receipts.ts';
import { limitList, type Pass, type RoomPlan } from './pass.ts';

export interface EphemeralParts {
  /** Receipts per joined room: all of them for rooms sent whole, the new ones otherwise. */
  receiptsByRoom: Map<string, Receipt[]>;
  ephemeralFor(roomId: string): JsonObject[];
}

/** `newReceipts`: receipts since `since` (undefined on an initial sync). */
export async function ephemeralParts(
  pass: Pass,
  plans: readonly RoomPlan[],
  newReceipts: readonly Receipt[] | undefined,
): Promise<EphemeralParts> {
  const { store, since, now, filter, ignored, userId } = pass;
  const { deps } = pass.input;
  const joinPlans = plans.filter((p) => p.section === 'join');
  const fullRooms = joinPlans.filter((p) => p.fullState).map((p) => p.roomId);
  const deltaRooms = joinPlans.filter((p) => !p.fullState).map((p) => p.roomId);
  const typing = new Map<string, JsonObject>([
    ...(deps.typing?.changesSince(null, fullRooms) ?? []),
    ...(deps.typing?.changesSince(since?.typing ?? null, deltaRooms) ?? []),
  ]);
  const receiptsByRoom = new Map<string, Receipt[]>();
  // All receipts of the rooms sent whole: one read of the receipt stream rather than one per room.
  if (fullRooms.length > 0) {
    for (const roomId of fullRooms) receiptsByRoom.set(roomId, []);
    for (const r of await store.receipts.receiptsSince(0, now.receipts, fullRooms))
      receiptsByRoom.get(r.roomId)?.push(r);
  }
  const deltaSet = new Set(deltaRooms);
  for (const r of newReceipts ?? []) {
    if (!deltaSet.has(r.roomId)) continue;
    const list = receiptsByRoom.get(r.roomId) ?? [];
    list.push(r);
    receiptsByRoom.set(r.roomId, list);
  }
  const ephemeralFilter = filter.room.ephemeral;
  const ephemeralFor = (roomId: string): JsonObject[] => {
    if (!ephemeralFilter.includesRoom(roomId)) return [];
    const out: JsonObject[] = [];
    const typingEvent = typing.get(roomId);
    if (typingEvent) {
      const typers = (typingEvent.content as { user_ids?: unknown }).user_ids;
      const shown = Array.isArray(typers)
        ? typers.filter((u) => typeof u === 'string' && !ignored.has(u))
        : [];
      out.push({ type: 'm.typing', content: { user_ids: shown } });
    }
    const receipts = visibleReceipts(receiptsByRoom.get(roomId) ?? [], userId);
    if (receipts) out.push({ type: 'm.receipt', content: receipts });
    return limitList(
      out.filter((e) => ephemeralFilter.matches({ type: e.type as string })),
      ephemeralFilter.limit,
    );
  };
  return { receiptsByRoom, ephemeralFor };
}

/** The `m.receipt` content of a room's receipts, without other users' private ones (receipts.md). */
function visibleReceipts(receipts: readonly Receipt[], userId: string): JsonObject | null {
  const shown = receipts.filter((r) => r.receiptType !== 'm.read.private' || r.userId === userId);
  return shown.length > 0 ? receiptContent(shown) : null;
}
