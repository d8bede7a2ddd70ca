/**
 * Media blobs (client-server-api "Content repository") and the federation side: the
 * per-destination outbox, destination backoff, the remote server keys cache
 * (server-server-api "Retrieving server keys") and secrets such as the signing seed.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { Engine, Row } from '../engine.ts';
import {
  type FederationStore,
  type MediaBody,
  type MediaInfo,
  type MediaStore,
  type OutboxItem,
  type ServerKey,
  StoreError,
} from '../store.ts';
import { invalid, nextPosition, requireString } from './common.ts';

export function toMediaInfo(row: Row): MediaInfo {
  const info: MediaInfo = {
    origin: row.origin as string,
    mediaId: row.media_id as string,
    contentType: row.content_type as string,
    size: row.size as number,
    uploadName: (row.upload_name as string | null) ?? null,
    userId: (row.user_id as string | null) ?? null,
    createdAt: row.created_ts as number,
  };
  if (typeof row.pending_until === 'number') info.pendingUntil = row.pending_until;
  return info;
}

/**
 * The row of media with its bytes, the bytes as this engine keeps them (a Blob for
 * IndexedDB, which stores it without base64 or a copy into the JS heap; bytes for SQLite).
 * Converted before the transaction: nothing but the store may be awaited inside one.
 */
async function mediaRow(
  engine: Engine,
  info: Omit<MediaInfo, 'size' | 'pendingUntil'>,
  body: MediaBody,
): Promise<Row> {
  requireString(info?.origin, 'origin');
  requireString(info.mediaId, 'mediaId');
  if (!(body instanceof Uint8Array) && !(body instanceof Blob) && !(body instanceof ReadableStream))
    throw invalid('media data must be a Uint8Array, a Blob or a ReadableStream');
  // A stream is gathered by the runtime, in the form this engine keeps (a browser may hold a
  // Blob on disk rather than in the JS heap).
  const data =
    body instanceof ReadableStream
      ? engine.bytes === 'blob'
        ? await new Response(body).blob()
        : new Uint8Array(await new Response(body).arrayBuffer())
      : body;
  const stored =
    engine.bytes === 'blob'
      ? data instanceof Blob
        ? data
        : new Blob([data as Uint8Array<ArrayBuffer>], { type: info.contentType })
      : data instanceof Blob
        ? new Uint8Array(await data.arrayBuffer())
        : data;
  return mediaRowOf(info, stored instanceof Blob ? stored.size : stored.byteLength, stored);
}

/** The stored row of media: its description, and its bytes when the row keeps them (else null). */
export function mediaRowOf(
  info: Omit<MediaInfo, 'size' | 'pendingUntil'>,
  size: number,
  data: Blob | Uint8Array | null,
): Row {
  return {
    origin: info.origin,
    media_id: info.mediaId,
    content_type: info.contentType,
    size,
    upload_name: info.uploadName ?? null,
    user_id: info.userId ?? null,
    created_ts: info.createdAt,
    data,
  };
}

export function mediaStore(engine: Engine): MediaStore {
  return {
    keeps: engine.bytes === 'blob' ? 'blob' : 'bytes',

    async putMedia(info, data) {
      const row = await mediaRow(engine, info, data);
      await engine.write(['media'], (tx) => tx.insert('media', row));
      return toMediaInfo(row);
    },

    async reserveMedia(reservation) {
      const row = {
        origin: requireString(reservation?.origin, 'origin'),
        media_id: requireString(reservation.mediaId, 'mediaId'),
        content_type: 'application/octet-stream',
        size: 0,
        upload_name: null,
        user_id: requireString(reservation.userId, 'userId'),
        created_ts: reservation.createdAt,
        pending_until: reservation.pendingUntil,
        data: null,
      };
      await engine.write(['media'], (tx) => tx.insert('media', row));
    },

    async completeMedia(info, data) {
      const row = await mediaRow(engine, info, data);
      await engine.write(['media'], async (tx) => {
        const reserved = await tx.get('media', [info.origin, info.mediaId]);
        if (!reserved) throw new StoreError('NOT_FOUND', `no media ${info.origin}/${info.mediaId}`);
        if (typeof reserved.pending_until !== 'number')
          throw new StoreError('CONFLICT', `media ${info.origin}/${info.mediaId} already has content`);
        await tx.put('media', row);
      });
      return toMediaInfo(row);
    },

    async getMediaAsKept(origin, mediaId) {
      const row = await engine.read(['media'], (tx) => tx.get('media', [origin, mediaId]));
      if (!row || typeof row.pending_until === 'number') return null;
      return { info: toMediaInfo(row), data: row.data as Blob | Uint8Array };
    },

    async getMedia(origin, mediaId) {
      const row = await engine.read(['media'], (tx) => tx.get('media', [origin, mediaId]));
      if (!row || typeof row.pending_until === 'number') return null;
      const info = toMediaInfo(row);
      const data =
        row.data instanceof Blob
          ? row.data
          : new Blob([row.data as Uint8Array<ArrayBuffer>], { type: info.contentType });
      return { info, data };
    },

    async getMediaInfo(origin, mediaId) {
      const row = await engine.read(['media'], (tx) => tx.get('media', [origin, mediaId]));
      return row ? toMediaInfo(row) : null;
    },

    deleteMedia(origin, mediaId) {
      return engine.write(['media'], async (tx) => {
        if (!(await tx.get('media', [origin, mediaId]))) return false;
        await tx.delete('media', [origin, mediaId]);
        return true;
      });
    },
  };
}

function toServerKey(row: Row): ServerKey {
  const key: ServerKey = {
    serverName: row.server_name as string,
    keyId: row.key_id as string,
    key: row.key as string,
    validUntil: row.valid_until_ts as number,
    expiredAt: (row.expired_ts as number | null) ?? null,
    fetchedAt: row.fetched_ts as number,
  };
  if (row.response != null) key.response = row.response as JsonObject;
  return key;
}

export function federationStore(engine: Engine): FederationStore {
  return {
    async enqueueEdu(destinations, edu) {
      await engine.write(['outbox', 'streams'], async (tx) => {
        for (const destination of new Set(destinations)) {
          const seq = await nextPosition(tx, 'outbox');
          await tx.put('outbox', { destination, seq, kind: 'edu', edu });
        }
      });
    },

    async stageTransaction(staged) {
      requireString(staged.origin, 'origin');
      requireString(staged.txnId, 'txnId');
      return engine.write(['inbound_staged', 'inbound_txns'], async (tx) => {
        const key = [staged.origin, staged.txnId];
        const [answered, waiting] = await Promise.all([
          tx.get('inbound_txns', key),
          tx.get('inbound_staged', key),
        ]);
        if (answered) return { status: 'answered' as const, response: answered.response as JsonObject };
        if (waiting) return { status: 'staged' as const };
        await tx.put('inbound_staged', {
          origin: staged.origin,
          txn_id: staged.txnId,
          txn: staged.txn,
          received_ts: staged.receivedAt,
        });
        return { status: 'new' as const };
      });
    },

    async finishTransaction(origin, txnId, response, now) {
      await engine.write(['inbound_staged', 'inbound_txns'], async (tx) => {
        await tx.put('inbound_txns', { origin, txn_id: txnId, response, answered_ts: now });
        await tx.delete('inbound_staged', [origin, txnId]);
      });
    },

    async stagedTransactions(limit) {
      const rows = await engine.read(['inbound_staged'], (tx) =>
        tx.query('inbound_staged', { index: 'received_ts', limit }),
      );
      return rows.map((row) => ({
        origin: row.origin as string,
        txnId: row.txn_id as string,
        txn: row.txn as JsonObject,
        receivedAt: row.received_ts as number,
      }));
    },

    async pruneTransactions(before) {
      return engine.write(['inbound_txns'], async (tx) => {
        const old = await tx.query('inbound_txns', {
          index: 'answered_ts',
          upper: [before],
          upperOpen: true,
        });
        for (const row of old) await tx.delete('inbound_txns', [row.origin as string, row.txn_id as string]);
        return old.length;
      });
    },

    async outbox(destination, limit) {
      const rows = await engine.read(['outbox'], (tx) =>
        tx.query('outbox', { prefix: [destination], limit }),
      );
      return rows.map(
        (row): OutboxItem =>
          row.kind === 'pdu'
            ? { seq: row.seq as number, kind: 'pdu', eventId: row.event_id as string }
            : { seq: row.seq as number, kind: 'edu', edu: row.edu as JsonObject },
      );
    },

    async ackOutbox(destination, seq) {
      await engine.write(['outbox'], (tx) =>
        tx.deleteRange('outbox', { prefix: [destination], upper: [seq] }),
      );
    },

    destinationsWithOutbox() {
      // A skip scan: one keyed read per destination, whatever the length of its queue.
      return engine.read(['outbox'], async (tx) => {
        const destinations: string[] = [];
        for (;;) {
          const last = destinations[destinations.length - 1];
          const [row] = await tx.query(
            'outbox',
            last === undefined ? { limit: 1 } : { lower: [last], lowerOpen: true, limit: 1 },
          );
          if (!row) return destinations;
          destinations.push(row.destination as string);
        }
      });
    },

    async getDestination(destination) {
      const row = await engine.read(['destinations'], (tx) => tx.get('destinations', destination));
      if (!row) return null;
      return {
        retryAt: row.retry_at as number,
        retryInterval: row.retry_interval as number,
        lastSuccessAt: (row.last_success_ts as number | null) ?? null,
      };
    },

    async setDestination(destination, state) {
      await engine.write(['destinations'], (tx) =>
        state === null
          ? tx.delete('destinations', destination)
          : tx.put('destinations', {
              destination,
              retry_at: state.retryAt,
              retry_interval: state.retryInterval,
              last_success_ts: state.lastSuccessAt,
            }),
      );
    },

    async putServerKeys(keys) {
      await engine.write(['server_keys'], (tx) =>
        tx.putMany(
          'server_keys',
          keys.map((k) => ({
            server_name: requireString(k.serverName, 'serverName'),
            key_id: requireString(k.keyId, 'keyId'),
            key: k.key,
            valid_until_ts: k.validUntil,
            expired_ts: k.expiredAt,
            fetched_ts: k.fetchedAt,
            response: k.response ?? null,
          })),
        ),
      );
    },

    async getServerKeys(serverName, keyIds) {
      const rows = await engine.read(['server_keys'], async (tx) =>
        keyIds === undefined
          ? tx.query('server_keys', { prefix: [serverName] })
          : (
              await tx.getMany(
                'server_keys',
                keyIds.map((keyId) => [serverName, keyId]),
              )
            ).filter((row): row is Row => row !== undefined),
      );
      return rows.map(toServerKey);
    },

    async getSecret(name) {
      const row = await engine.read(['secrets'], (tx) => tx.get('secrets', name));
      return row ? (row.value as Uint8Array) : null;
    },

    async putSecretOnce(name, value) {
      if (!(value instanceof Uint8Array)) throw invalid('a secret is a Uint8Array');
      return engine.write(['secrets'], async (tx) => {
        const row = await tx.get('secrets', name);
        if (row) return row.value as Uint8Array;
        await tx.insert('secrets', { name, value });
        return value;
      });
    },
  };
}
