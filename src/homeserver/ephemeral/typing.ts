/**
 * Typing notifications — client-server-api/modules/typing_notifications.md, typing.yaml.
 *
 * Memory only (QUERIES.md: "Typing and presence are memory-only"): who types where, until
 * when, and a position that moves on every change so /sync can ask "what changed since".
 * A restart forgets everyone's typing, which is what a client would see anyway a few
 * seconds later.
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden } from '../errors.ts';

/**
 * Longest a single request marks a user as typing. Clients re-send every 20–30 s
 * (typing_notifications.md "Client behaviour"); a longer timeout only leaves a stale
 * "is typing" behind a client that vanished.
 */
export const MAX_TYPING_TIMEOUT_MS = 30_000;
/** typing.yaml lets `timeout` be omitted with `typing: true`; clients then expect the usual 30 s. */
export const DEFAULT_TYPING_TIMEOUT_MS = 30_000;

export interface TypingService {
  /** Increases with every change to anyone's typing; the `typing` part of a sync token. */
  readonly position: number;
  /** `PUT /rooms/{roomId}/typing/{userId}`: M_FORBIDDEN unless the user is joined, then `set`. */
  setTyping(roomId: string, userId: string, typing: boolean, timeoutMs?: number): Promise<void>;
  /** Marks `userId` as typing for `timeoutMs` (capped), or as stopped; no membership check. */
  set(roomId: string, userId: string, typing: boolean, timeoutMs?: number): void;
  /** Users typing in the room now, in the order they started. */
  typingIn(roomId: string): string[];
  /**
   * Rooms among `roomIds` whose typing list changed after position `since`, each with its
   * current `m.typing` event. `since` null (a room the client has nothing of) or a position
   * from before a restart gives every room where someone types now. Position 0 is a real
   * position ("before any change"): a client whose token says 0 saw a typer that a pass read
   * after taking its positions, and must hear when that typer stops.
   */
  changesSince(since: number | null, roomIds: Iterable<string>): Map<string, JsonObject>;
  /** Stops the expiry timer (homeserver shutdown). */
  close(): void;
}

interface RoomTyping {
  /** userId → expiry time (ms since epoch). */
  users: Map<string, number>;
  /** Position of the room's last change. */
  changed: number;
}

export function typingEvent(userIds: readonly string[]): JsonObject {
  return { type: 'm.typing', content: { user_ids: [...userIds] } };
}

export function createTypingService(
  ctx: Pick<HomeserverContext, 'clock' | 'notifier' | 'store'>,
): TypingService {
  const { clock, notifier, store } = ctx;
  const rooms = new Map<string, RoomTyping>();
  let position = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Number.POSITIVE_INFINITY;

  const changed = (roomId: string, room: RoomTyping) => {
    // An emptied room keeps its entry: a sync from before this change must hear "nobody types".
    room.changed = ++position;
    notifier.notify({ rooms: [roomId] });
  };

  /** Removes expired typers of one room; true when anyone was removed. */
  const expire = (roomId: string, room: RoomTyping, now: number) => {
    let removed = false;
    for (const [userId, until] of room.users) {
      if (until <= now) {
        room.users.delete(userId);
        removed = true;
      }
    }
    if (removed) changed(roomId, room);
    return removed;
  };

  const sweep = () => {
    timer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    const now = clock.now();
    for (const [roomId, room] of rooms) expire(roomId, room, now);
    schedule();
  };

  /** One timer for the earliest expiry, so waiting /syncs hear that someone stopped typing. */
  const schedule = () => {
    let next = Number.POSITIVE_INFINITY;
    for (const room of rooms.values()) for (const until of room.users.values()) next = Math.min(next, until);
    if (next === Number.POSITIVE_INFINITY) {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      timerAt = next;
      return;
    }
    if (timer !== undefined && timerAt <= next) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = next;
    // A few ms of slack so the sweep sees the entry as expired on the clock it reads.
    timer = setTimeout(sweep, Math.max(0, next - clock.now()) + 5);
    (timer as { unref?: () => void }).unref?.();
  };

  const service: TypingService = {
    get position() {
      return position;
    },

    async setTyping(roomId, userId, typing, timeoutMs) {
      const membership = await store.rooms.membership(roomId, userId);
      if (membership?.membership !== 'join') throw forbidden(`You are not joined to ${roomId}`);
      service.set(roomId, userId, typing, timeoutMs);
    },

    set(roomId, userId, typing, timeoutMs) {
      const now = clock.now();
      let room = rooms.get(roomId);
      if (!typing) {
        if (!room?.users.delete(userId)) return;
        changed(roomId, room);
        schedule();
        return;
      }
      if (!room) {
        room = { users: new Map(), changed: 0 };
        rooms.set(roomId, room);
      }
      const timeout = Math.min(Math.max(timeoutMs ?? DEFAULT_TYPING_TIMEOUT_MS, 0), MAX_TYPING_TIMEOUT_MS);
      const wasTyping = room.users.has(userId) && (room.users.get(userId) as number) > now;
      room.users.set(userId, now + timeout);
      // Extending a typer's timeout changes nothing a client sees: no new position, no wake-up.
      if (!wasTyping) changed(roomId, room);
      schedule();
    },

    typingIn(roomId) {
      const room = rooms.get(roomId);
      if (!room) return [];
      expire(roomId, room, clock.now());
      return [...room.users.keys()];
    },

    changesSince(since, roomIds) {
      const out = new Map<string, JsonObject>();
      const fresh = since === null || since > position;
      const now = clock.now();
      for (const roomId of roomIds) {
        const room = rooms.get(roomId);
        if (!room) continue;
        expire(roomId, room, now);
        if (fresh ? room.users.size > 0 : room.changed > (since as number))
          out.set(roomId, typingEvent([...room.users.keys()]));
      }
      return out;
    },

    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
  return service;
}
