/**
 * Typing, read receipts and presence of this server's users, for the other servers of their
 * rooms — server-server-api.md "Typing Notifications", "Receipts", "Presence": each change
 * becomes an EDU in the durable outbox of every remote server with a joined member in the
 * room (for presence: in any room the user is in), and the sender is told.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import { serverOf } from '../rooms/accept.ts';
import type { PresenceStatus } from './presence.ts';

export interface EduOutbox {
  typing(roomId: string, userId: string, typing: boolean, timeoutMs?: number): Promise<void>;
  receipt(roomId: string, userId: string, eventId: string, threadId?: string): Promise<void>;
  presence(userId: string, status: PresenceStatus): Promise<void>;
}

export function createEduOutbox(ctx: HomeserverContext): EduOutbox {
  const { store, config, clock, logger } = ctx;

  async function remoteServersOf(roomIds: readonly string[]): Promise<string[]> {
    const servers = new Set<string>();
    for (const roomId of roomIds) {
      for (const member of await store.rooms.members(roomId, 'join')) {
        const server = serverOf(member.userId);
        if (server && server !== config.serverName) servers.add(server);
      }
    }
    return [...servers];
  }

  /** Queues `edu` for the rooms' remote servers; a failure is logged, never the client's. */
  async function enqueue(userId: string, roomIds: readonly string[], edu: JsonObject): Promise<void> {
    if (!isLocalId(config, userId)) return;
    try {
      const destinations = await remoteServersOf(roomIds);
      if (destinations.length === 0) return;
      await store.federation.enqueueEdu(destinations, edu);
      ctx.federation.outboxWritten?.(destinations);
    } catch (err) {
      logger.warn('could not queue an EDU for other servers', {
        type: String(edu.edu_type),
        error: String(err),
      });
    }
  }

  return {
    typing(roomId, userId, typing, timeoutMs) {
      const content: JsonObject = { room_id: roomId, user_id: userId, typing };
      if (typing && timeoutMs !== undefined) content.timeout = timeoutMs;
      return enqueue(userId, [roomId], { edu_type: 'm.typing', content });
    },
    receipt(roomId, userId, eventId, threadId) {
      const data: JsonObject = { ts: clock.now() };
      if (threadId !== undefined) data.thread_id = threadId;
      return enqueue(userId, [roomId], {
        edu_type: 'm.receipt',
        content: { [roomId]: { 'm.read': { [userId]: { event_ids: [eventId], data } } } },
      });
    },
    async presence(userId, status) {
      const rooms = (await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId);
      const update: JsonObject = {
        user_id: userId,
        presence: status.presence,
        last_active_ago: status.last_active_ago ?? 0,
      };
      if (status.currently_active !== undefined) update.currently_active = status.currently_active;
      if (typeof status.status_msg === 'string') update.status_msg = status.status_msg;
      return enqueue(userId, rooms, { edu_type: 'm.presence', content: { push: [update] } });
    },
  };
}
