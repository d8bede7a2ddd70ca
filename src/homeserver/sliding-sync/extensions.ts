/**
 * The extensions of one answer, in the forms matrix-js-sdk and Element X read:
 * - `to_device` (MSC3885): messages after the extension's own `since`, with `next_batch`;
 *   asking with a `since` acknowledges everything up to it (send_to_device.md).
 * - `e2ee` (MSC3884): `device_lists` since `pos`, the device's one-time key counts and
 *   unused fallback key types.
 * - `account_data`: global and per-room account data since `pos` (all of it for rooms sent
 *   whole).
 * - `receipts` (MSC3960), `typing`: per room, the `m.receipt` / `m.typing` event.
 * Receipts, typing and room account data cover the rooms of the answer's lists and
 * subscriptions, narrowed by the extension's `lists` / `rooms`.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Receipt, StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { receiptContent } from '../ephemeral/receipts.ts';
import { accountDataParts } from '../sync/account-data.ts';
import { syncFilterView } from '../sync/filter-view.ts';
import { createPass, type RoomPlan } from '../sync/pass.ts';
import type { SyncDeps } from '../sync/types.ts';
import type { SyncPositions } from '../tokens.ts';
import type { E2eeForSync, ExtensionScope, ExtensionsRequest } from './types.ts';

/** "100 messages is recommended as a reasonable limit" (send_to_device.md "Server behaviour"). */
const TO_DEVICE_LIMIT = 100;

export interface ExtensionInput {
  ctx: HomeserverContext;
  deps: SyncDeps;
  e2ee: E2eeForSync;
  userId: string;
  deviceId: string | null;
  ignored: ReadonlySet<string>;
  /** Positions of `pos`; undefined on a connection's first request. */
  since: SyncPositions | undefined;
  now: SyncPositions;
  /** Rooms each list holds this answer, and the subscribed rooms. */
  listRooms: ReadonlyMap<string, readonly string[]>;
  subscribedRooms: readonly string[];
  /** Rooms sent whole in this answer, with the timeline sent for each. */
  initialRooms: ReadonlyMap<string, readonly StoredEvent[]>;
}

export interface ExtensionsResult {
  body: JsonObject;
  /** Something the client has not seen (a long-poll must not wait). */
  news: boolean;
}

/** The rooms an extension covers (MSC3960's `lists` / `rooms`, the same for every extension). */
function scopedRooms(scope: ExtensionScope, input: ExtensionInput): Set<string> {
  const out = new Set<string>();
  for (const [name, rooms] of input.listRooms) {
    if (scope.lists === undefined || scope.lists.includes('*') || scope.lists.includes(name))
      for (const roomId of rooms) out.add(roomId);
  }
  if (scope.rooms === undefined || scope.rooms.includes('*'))
    for (const r of input.subscribedRooms) out.add(r);
  else for (const r of scope.rooms) if (input.subscribedRooms.includes(r)) out.add(r);
  return out;
}

export async function computeExtensions(
  request: ExtensionsRequest,
  input: ExtensionInput,
): Promise<ExtensionsResult> {
  const body: JsonObject = {};
  let news = false;
  const { userId, deviceId, since, now } = input;
  const { store } = input.ctx;

  if (request.toDevice?.enabled && deviceId !== null) {
    // Never past what exists: acknowledging a position from the future would delete messages unseen.
    const after = Math.min(parseToDeviceSince(request.toDevice.since), now.toDevice);
    if (after > 0) await input.e2ee.acknowledgeToDevice(userId, deviceId, after);
    const limit = Math.min(request.toDevice.limit ?? TO_DEVICE_LIMIT, TO_DEVICE_LIMIT);
    const { events, position } = await input.e2ee.toDeviceMessages(
      userId,
      deviceId,
      after,
      Math.max(1, limit),
    );
    body.to_device = { next_batch: String(Math.max(position, after)), events };
    if (events.length > 0) news = true;
  }

  if (request.e2ee?.enabled && deviceId !== null) {
    const [lists, keys] = await Promise.all([
      since
        ? input.e2ee.deviceListChanges(userId, since.deviceLists, now.deviceLists)
        : { changed: [], left: [] },
      input.e2ee.keyCounts(userId, deviceId),
    ]);
    body.e2ee = {
      device_lists: lists,
      // Some clients read a missing count as "unknown" and upload again: say 0, as /sync does.
      device_one_time_keys_count: { signed_curve25519: 0, ...keys.oneTimeKeyCounts },
      device_unused_fallback_key_types: keys.unusedFallbackKeyTypes,
    };
    if (lists.changed.length + lists.left.length > 0) news = true;
  }

  if (request.accountData?.enabled) {
    const rooms = scopedRooms(request.accountData, input);
    const pass = createPass(
      {
        ctx: input.ctx,
        deps: input.deps,
        userId,
        deviceId,
        filter: syncFilterView({}),
        since,
        fullState: false,
        stateField: 'state_after',
      },
      now,
      input.ignored,
    );
    const changed = await store.userData.accountDataSince(userId, since?.accountData ?? 0, now.accountData);
    // Rooms sent whole get all their account data: plans without a lower bound say so.
    const plans = [...input.initialRooms.keys()].map((roomId) => ({ roomId, lower: undefined }) as RoomPlan);
    const parts = await accountDataParts(pass, plans, changed);
    const byRoom: Record<string, JsonObject[]> = {};
    for (const [roomId, events] of parts.byRoom)
      if (rooms.has(roomId) && events.length > 0) byRoom[roomId] = events;
    body.account_data = { global: parts.global, rooms: byRoom };
    if (parts.global.length > 0 || Object.keys(byRoom).length > 0) news = true;
  }

  if (request.receipts?.enabled) {
    const rooms = scopedRooms(request.receipts, input);
    const byRoom = new Map<string, Receipt[]>();
    const add = (r: Receipt) => {
      const list = byRoom.get(r.roomId) ?? [];
      list.push(r);
      byRoom.set(r.roomId, list);
    };
    const initial = [...input.initialRooms.keys()].filter((r) => rooms.has(r));
    if (initial.length > 0) {
      // A room sent whole: the receipts on the events sent, and the user's own.
      for (const r of await store.receipts.receiptsSince(0, now.receipts, initial)) {
        const shown = input.initialRooms.get(r.roomId)?.some((e) => e.event.event_id === r.eventId);
        if (shown || r.userId === userId) add(r);
      }
    }
    if (since) {
      const initialSet = new Set(initial);
      for (const r of await store.receipts.receiptsSince(since.receipts, now.receipts)) {
        if (rooms.has(r.roomId) && !initialSet.has(r.roomId)) add(r);
      }
    }
    const out: JsonObject = {};
    for (const [roomId, receipts] of byRoom) {
      // Other users' private receipts stay private (receipts.md).
      const shown = receipts.filter((r) => r.receiptType !== 'm.read.private' || r.userId === userId);
      if (shown.length > 0) out[roomId] = { type: 'm.receipt', content: receiptContent(shown) };
    }
    body.receipts = { rooms: out };
    if (Object.keys(out).length > 0) news = true;
  }

  if (request.typing?.enabled && input.deps.typing) {
    const rooms = scopedRooms(request.typing, input);
    const initial = [...rooms].filter((r) => input.initialRooms.has(r));
    const others = [...rooms].filter((r) => !input.initialRooms.has(r));
    const typing = new Map<string, JsonObject>([
      ...input.deps.typing.changesSince(null, initial),
      ...(since ? input.deps.typing.changesSince(since.typing, others) : []),
    ]);
    const out: JsonObject = {};
    for (const [roomId, event] of typing) {
      const typers = (event.content as { user_ids?: unknown }).user_ids;
      const shown = Array.isArray(typers)
        ? typers.filter((u) => typeof u === 'string' && !input.ignored.has(u))
        : [];
      // A room sent whole with nobody typing needs no event.
      if (shown.length === 0 && input.initialRooms.has(roomId)) continue;
      out[roomId] = { type: 'm.typing', content: { user_ids: shown } };
    }
    body.typing = { rooms: out };
    if (Object.keys(out).length > 0) news = true;
  }
  return { body, news };
}

/** The to-device `since` is a to-device stream position we gave as `next_batch`; anything else reads as 0. */
function parseToDeviceSince(since: string | undefined): number {
  return since !== undefined && /^(0|[1-9][0-9]{0,15})$/.test(since) ? Number(since) : 0;
}
