/**
 * The operator's side of the store: application services' durable transaction queue
 * (application-service-api "Pushing events"), cursors of background followers of the event
 * stream, content reports (client-server-api "Reporting content"), and the admin views over
 * users and rooms (Synapse's admin API, which operators' tools speak).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Engine, Row } from '../engine.ts';
import type { AppserviceQueueItem, OperatorStore, Report } from '../store.ts';
import { toUser } from './accounts.ts';
import { requireString } from './common.ts';
import { toRoom } from './rooms-read.ts';

/** Queue positions are per application service, kept as the last row's `seq` + 1. */
const QUEUE_TABLES = ['appservice_queue', 'stream_cursors'];

function toReport(row: Row): Report {
  return {
    id: row.id as string,
    userId: row.user_id as string,
    roomId: (row.room_id as string | null) ?? null,
    eventId: (row.event_id as string | null) ?? null,
    targetUserId: (row.target_user_id as string | null) ?? null,
    reason: (row.reason as string | null) ?? null,
    score: (row.score as number | null) ?? null,
    createdAt: row.created_ts as number,
  };
}

/** Tables whose key starts with the room ID: a purge empties the room's range in each. */
const ROOM_KEYED = ['current_state', 'room_members', 'receipts', 'partial_state_rooms'] as const;

export function operatorStore(engine: Engine): OperatorStore {
  return {
    async getCursor(name) {
      const row = await engine.read(['stream_cursors'], (tx) => tx.get('stream_cursors', name));
      return (row?.position as number | undefined) ?? null;
    },

    async enqueueAppservice(items, cursor) {
      await engine.write(QUEUE_TABLES, async (tx) => {
        const next = new Map<string, number>();
        for (const item of items) {
          requireString(item.asId, 'asId');
          let seq = next.get(item.asId);
          if (seq === undefined) {
            const [last] = await tx.query('appservice_queue', {
              prefix: [item.asId],
              reverse: true,
              limit: 1,
            });
            seq = ((last?.seq as number | undefined) ?? 0) + 1;
          }
          await tx.put('appservice_queue', { as_id: item.asId, seq, kind: item.kind, data: item.data });
          next.set(item.asId, seq + 1);
        }
        if (cursor) await tx.put('stream_cursors', { name: cursor.name, position: cursor.position });
      });
    },

    async appserviceQueue(asId, limit, upTo) {
      const rows = await engine.read(['appservice_queue'], (tx) =>
        tx.query('appservice_queue', {
          prefix: [asId],
          ...(upTo !== undefined ? { upper: [upTo] } : {}),
          limit,
        }),
      );
      return rows.map((row) => ({
        seq: row.seq as number,
        kind: row.kind as AppserviceQueueItem['kind'],
        data: row.data as JsonObject,
      }));
    },

    async ackAppservice(asId, upTo) {
      await engine.write(['appservice_queue', 'appservice_state'], async (tx) => {
        await tx.deleteRange('appservice_queue', { prefix: [asId], upper: [upTo] });
        await tx.delete('appservice_state', asId);
      });
    },

    async getAppserviceTxn(asId) {
      const row = await engine.read(['appservice_state'], (tx) => tx.get('appservice_state', asId));
      if (!row) return null;
      return {
        txnId: row.txn_id as string,
        upTo: row.up_to as number,
        retryInterval: (row.retry_interval as number | undefined) ?? 0,
      };
    },

    async setAppserviceTxn(asId, state) {
      await engine.write(['appservice_state'], async (tx) => {
        if (state === null) await tx.delete('appservice_state', asId);
        else
          await tx.put('appservice_state', {
            as_id: asId,
            txn_id: state.txnId,
            up_to: state.upTo,
            retry_interval: state.retryInterval,
          });
      });
    },

    async addReport(report) {
      requireString(report.id, 'id');
      await engine.write(['reports'], (tx) =>
        tx.insert('reports', {
          id: report.id,
          user_id: report.userId,
          room_id: report.roomId,
          event_id: report.eventId,
          target_user_id: report.targetUserId,
          reason: report.reason,
          score: report.score,
          created_ts: report.createdAt,
        }),
      );
    },

    async reports(limit) {
      const rows = await engine.read(['reports'], (tx) =>
        tx.query('reports', { index: 'created_ts', reverse: true, limit }),
      );
      return rows.map(toReport);
    },

    async listUsers({ from, limit, filter }) {
      return engine.read(['users'], async (tx) => {
        const all = (await tx.query('users')).map(toUser).filter((u) => !filter || filter(u));
        const start = from === undefined ? 0 : all.findIndex((u) => u.userId > from);
        const page = start === -1 ? [] : all.slice(start, start + limit);
        return { users: page, total: all.length };
      });
    },

    async listRooms() {
      const rows = await engine.read(['rooms'], (tx) => tx.query('rooms'));
      return rows.map(toRoom);
    },

    async setRoomBlocked(roomId, blocked) {
      await engine.write(['blocked_rooms'], async (tx) => {
        if (blocked === null) await tx.delete('blocked_rooms', roomId);
        else await tx.put('blocked_rooms', { room_id: roomId, by: blocked.by, blocked_ts: blocked.at });
      });
    },

    async roomBlocked(roomId) {
      const row = await engine.read(['blocked_rooms'], (tx) => tx.get('blocked_rooms', roomId));
      return row ? { by: row.by as string, at: row.blocked_ts as number } : null;
    },

    async purgeRoom(roomId) {
      const tables = ['rooms', 'events', 'relations', 'room_aliases', 'notifications', ...ROOM_KEYED];
      await engine.write(tables, async (tx) => {
        const members = await tx.query('room_members', { prefix: [roomId] });
        for (const m of members) {
          await tx.deleteRange('notifications', { prefix: [m.user_id as string, roomId] });
        }
        const events = await tx.query('events', { index: '[room_id+stream]', prefix: [roomId] });
        for (const event of events) {
          const eventId = event.event_id as string;
          await tx.delete('relations', eventId);
          await tx.delete('events', eventId);
        }
        for (const table of ROOM_KEYED) await tx.deleteRange(table, { prefix: [roomId] });
        const aliases = await tx.query('room_aliases', { index: 'room_id', prefix: [roomId] });
        for (const alias of aliases) await tx.delete('room_aliases', alias.alias as string);
        await tx.delete('rooms', roomId);
      });
    },
  };
}
