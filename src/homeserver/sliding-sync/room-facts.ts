/**
 * What the room list sorts and filters by, per room: the position of its latest "proper"
 * event (its `bump_stamp`), whether it is encrypted, and its `m.room.create` type.
 *
 * Kept in memory between requests, because a list over 500 rooms needs all 500 every time
 * and they rarely change: facts are good as of a stream position, and each request first
 * drops the facts of rooms with events since then (`roomsWithEvents`, usually a handful).
 * Only a cache — a restarted host recomputes it from the store.
 */
import type { Store, StoredEvent } from '../../storage/store.ts';

/**
 * Events that move a room up the list (MSC4186 `bump_stamp`: "proper" activity); state and
 * reactions do not.
 */
export const BUMP_TYPES: ReadonlySet<string> = new Set([
  'm.room.create',
  'm.room.message',
  'm.room.encrypted',
  'm.sticker',
  'm.call.invite',
  'm.poll.start',
  'm.beacon_info',
  'org.matrix.msc3381.poll.start',
]);

/** Past this many new events since the cache's position, reading them costs more than starting over. */
const MAX_CATCH_UP = 5000;

interface Facts {
  bump?: number;
  encrypted?: boolean;
  roomType?: string | null;
}

export interface RoomFacts {
  /** Brings the cache to `now` (the events position the answer covers). */
  advance(now: number): Promise<void>;
  /** The latest bump event's position at or before `now`, per room (0 when none). */
  bumpStamps(roomIds: readonly string[], now: number): Promise<Map<string, number>>;
  encrypted(roomIds: readonly string[]): Promise<Map<string, boolean>>;
  roomTypes(roomIds: readonly string[]): Promise<Map<string, string | null>>;
}

export function createRoomFacts(store: Store): RoomFacts {
  const facts = new Map<string, Facts>();
  /** Every entry in `facts` holds as of this events position. */
  let upTo = 0;
  let advancing: Promise<void> | undefined;

  const entry = (roomId: string) => {
    let f = facts.get(roomId);
    if (!f) {
      f = {};
      facts.set(roomId, f);
    }
    return f;
  };

  async function catchUp(now: number) {
    if (facts.size === 0 || now - upTo > MAX_CATCH_UP) facts.clear();
    else {
      // The create type never changes; the rest may have.
      for (const roomId of await store.rooms.roomsWithEvents(upTo, now)) {
        const f = facts.get(roomId);
        if (f) facts.set(roomId, { roomType: f.roomType });
      }
    }
    upTo = Math.max(upTo, now);
  }

  return {
    async advance(now) {
      while (now > upTo) {
        // One catch-up at a time: two overlapping ones could each skip the other's range.
        if (!advancing) advancing = catchUp(now).finally(() => (advancing = undefined));
        await advancing;
      }
    },

    async bumpStamps(roomIds, now) {
      const out = new Map<string, number>();
      const missing: string[] = [];
      for (const roomId of roomIds) {
        const bump = facts.get(roomId)?.bump;
        if (bump === undefined || now < upTo) missing.push(roomId);
        else out.set(roomId, bump);
      }
      if (missing.length === 0) return out;
      const pages = await store.rooms.timelines(
        missing.map((roomId) => ({
          roomId,
          dir: 'b' as const,
          from: now,
          limit: 1,
          filter: (e: StoredEvent) => BUMP_TYPES.has(e.event.type),
        })),
      );
      missing.forEach((roomId, i) => {
        const bump = pages[i]?.events[0]?.stream ?? 0;
        out.set(roomId, bump);
        // Computed as of `now`: only kept if no catch-up has moved past it meanwhile.
        if (now === upTo) entry(roomId).bump = bump;
      });
      return out;
    },

    async encrypted(roomIds) {
      const out = new Map<string, boolean>();
      const at = upTo;
      await Promise.all(
        roomIds.map(async (roomId) => {
          let known = facts.get(roomId)?.encrypted;
          if (known === undefined) {
            known = (await store.rooms.currentStateEvent(roomId, 'm.room.encryption', '')) !== null;
            if (at === upTo) entry(roomId).encrypted = known;
          }
          out.set(roomId, known);
        }),
      );
      return out;
    },

    async roomTypes(roomIds) {
      const out = new Map<string, string | null>();
      await Promise.all(
        roomIds.map(async (roomId) => {
          let known = facts.get(roomId)?.roomType;
          if (known === undefined) {
            const create = await store.rooms.currentStateEvent(roomId, 'm.room.create', '');
            const type = create?.event.content.type;
            known = typeof type === 'string' ? type : null;
            // A room this server does not hold yet (an invite) has no create event to read.
            if (create) entry(roomId).roomType = known;
          }
          out.set(roomId, known);
        }),
      );
      return out;
    },
  };
}
