/**
 * End-to-end encryption key distribution (client-server-api "End-to-End Encryption": device
 * keys, one-time and fallback keys, cross-signing), send-to-device messaging ("Send-to-Device
 * messaging") and server-side key backups ("Server-side key backups").
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import type { BackupVersion, E2eeStore } from '../store.ts';
import { StoreError } from '../store.ts';
import { markDeviceListChanged } from './accounts.ts';
import { nextPosition, requirePosition, requireString } from './common.ts';

/** Prefix of a to-device transaction's key in `txn_ids` (room sends use the bare ID). */
const TO_DEVICE_TXN_PREFIX = 'm.send_to_device\u0001';

/** Backup versions are decimal strings on the wire and integers in the key, so the latest sorts last. */
function versionNumber(version: string): number | null {
  return /^[1-9][0-9]{0,14}$/.test(version) ? Number(version) : null;
}

/** A device's one-time keys left, by algorithm, within a transaction. */
export async function oneTimeKeyCountsIn(
  tx: Tx,
  userId: string,
  deviceId: string,
): Promise<Record<string, number>> {
  const rows = await tx.query('one_time_keys', { prefix: [userId, deviceId] });
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.algorithm as string] = (counts[row.algorithm as string] ?? 0) + 1;
  return counts;
}

/** The algorithms of a device's fallback keys not handed out yet, within a transaction. */
export async function unusedFallbackKeyTypesIn(tx: Tx, userId: string, deviceId: string): Promise<string[]> {
  const rows = await tx.query('fallback_keys', { prefix: [userId, deviceId] });
  return rows.filter((row) => row.used !== true).map((row) => row.algorithm as string);
}

export function e2eeStore(engine: Engine): E2eeStore {
  return {
    putDeviceKeys(userId, deviceId, keys) {
      return engine.write(['device_keys', 'device_list_changes', 'streams'], async (tx) => {
        await tx.put('device_keys', { user_id: userId, device_id: deviceId, keys });
        return markDeviceListChanged(tx, userId);
      });
    },

    getDeviceKeys(query) {
      return engine.read(['device_keys'], async (tx) => {
        const found: { userId: string; deviceId: string; keys: JsonObject }[] = [];
        for (const { userId, deviceIds } of query) {
          const rows =
            deviceIds && deviceIds.length > 0
              ? await tx.getMany(
                  'device_keys',
                  deviceIds.map((deviceId) => [userId, deviceId]),
                )
              : await tx.query('device_keys', { prefix: [userId] });
          for (const row of rows) {
            if (row) found.push({ userId, deviceId: row.device_id as string, keys: row.keys as JsonObject });
          }
        }
        return found;
      });
    },

    markDeviceListChanged(userId) {
      return engine.write(['device_list_changes', 'streams'], (tx) => markDeviceListChanged(tx, userId));
    },

    async deviceListChanges(from, to) {
      const rows = await engine.read(['device_list_changes'], (tx) =>
        tx.query('device_list_changes', {
          lower: [requirePosition(from, 'from')],
          lowerOpen: true,
          upper: [requirePosition(to, 'to')],
        }),
      );
      return [...new Set(rows.map((row) => row.user_id as string))];
    },

    async addOneTimeKeys(userId, deviceId, keys) {
      for (const key of keys) {
        requireString(key?.algorithm, 'algorithm');
        requireString(key.keyId, 'keyId');
      }
      await engine.write(['one_time_keys'], (tx) =>
        tx.putMany(
          'one_time_keys',
          keys.map((k) => ({
            user_id: userId,
            device_id: deviceId,
            algorithm: k.algorithm,
            key_id: k.keyId,
            key: k.key,
          })),
        ),
      );
    },

    countOneTimeKeys(userId, deviceId) {
      return engine.read(['one_time_keys'], (tx) => oneTimeKeyCountsIn(tx, userId, deviceId));
    },

    claimKeys(claims) {
      return engine.write(['one_time_keys', 'fallback_keys'], async (tx) => {
        const claimed: {
          userId: string;
          deviceId: string;
          keyId: string;
          key: JsonValue;
          fallback: boolean;
        }[] = [];
        for (const { userId, deviceId, algorithm } of claims) {
          const [key] = await tx.query('one_time_keys', { prefix: [userId, deviceId, algorithm], limit: 1 });
          if (key) {
            await tx.delete('one_time_keys', [userId, deviceId, algorithm, key.key_id as string]);
            claimed.push({
              userId,
              deviceId,
              keyId: key.key_id as string,
              key: key.key as JsonValue,
              fallback: false,
            });
            continue;
          }
          const fallback = await tx.get('fallback_keys', [userId, deviceId, algorithm]);
          if (fallback) {
            // A fallback key is handed out until replaced; `used` tells the client to upload a new one.
            await tx.put('fallback_keys', { ...fallback, used: true });
            claimed.push({
              userId,
              deviceId,
              keyId: fallback.key_id as string,
              key: fallback.key as JsonValue,
              fallback: true,
            });
          }
        }
        return claimed;
      });
    },

    async putFallbackKey(userId, deviceId, key) {
      requireString(key?.algorithm, 'algorithm');
      requireString(key.keyId, 'keyId');
      await engine.write(['fallback_keys'], (tx) =>
        tx.put('fallback_keys', {
          user_id: userId,
          device_id: deviceId,
          algorithm: key.algorithm,
          key_id: key.keyId,
          key: key.key,
          used: false,
        }),
      );
    },

    unusedFallbackKeyTypes(userId, deviceId) {
      return engine.read(['fallback_keys'], (tx) => unusedFallbackKeyTypesIn(tx, userId, deviceId));
    },

    async putCrossSigningKey(userId, keyType, key) {
      requireString(keyType, 'keyType');
      return engine.write(['cross_signing_keys', 'device_list_changes', 'streams'], async (tx) => {
        await tx.put('cross_signing_keys', { user_id: userId, key_type: keyType, key });
        return markDeviceListChanged(tx, userId);
      });
    },

    async getCrossSigningKeys(userId) {
      const rows = await engine.read(['cross_signing_keys'], (tx) =>
        tx.query('cross_signing_keys', { prefix: [userId] }),
      );
      return Object.fromEntries(rows.map((row) => [row.key_type as string, row.key as JsonObject]));
    },

    async putSignatures(signatures) {
      await engine.write(['key_signatures'], (tx) =>
        tx.putMany(
          'key_signatures',
          signatures.map((s) => ({
            user_id: s.userId,
            key_id: s.keyId,
            signer_user_id: s.signerUserId,
            signer_key_id: s.signerKeyId,
            signature: s.signature,
          })),
        ),
      );
    },

    async getSignatures(userId) {
      const rows = await engine.read(['key_signatures'], (tx) =>
        tx.query('key_signatures', { prefix: [userId] }),
      );
      return rows.map((row) => ({
        keyId: row.key_id as string,
        signerUserId: row.signer_user_id as string,
        signerKeyId: row.signer_key_id as string,
        signature: row.signature as string,
      }));
    },

    sendToDevice(messages, txn) {
      return engine.write(['to_device', 'streams', 'txn_ids'], async (tx) => {
        if (txn) {
          // The room send's txn_ids table, under a key of its own: a to-device transaction ID
          // is scoped to its endpoint, and checked and recorded in the same transaction as
          // the messages, so a retried request queues nothing twice and a lost one nothing.
          const key = [txn.userId, txn.deviceId, `${TO_DEVICE_TXN_PREFIX}${txn.txnId}`];
          if (await tx.get('txn_ids', key)) return 0;
          await tx.put('txn_ids', { user_id: key[0], device_id: key[1], txn_id: key[2], to_device: true });
        }
        let last = 0;
        for (const m of messages) {
          last = await nextPosition(tx, 'to_device');
          await tx.put('to_device', {
            user_id: m.userId,
            device_id: m.deviceId,
            stream: last,
            sender: m.sender,
            type: m.type,
            content: m.content,
            message_id: m.messageId ?? null,
          });
        }
        return last;
      });
    },

    async toDeviceMessages(userId, deviceId, from, limit) {
      const rows = await engine.read(['to_device'], (tx) =>
        tx.query('to_device', {
          prefix: [userId, deviceId],
          lower: [requirePosition(from, 'from')],
          lowerOpen: true,
          limit: limit + 1,
        }),
      );
      const messages = rows.slice(0, limit).map((row) => ({
        sender: row.sender as string,
        type: row.type as string,
        content: row.content as JsonObject,
        ...(row.message_id ? { messageId: row.message_id as string } : {}),
        stream: row.stream as number,
      }));
      const last = messages[messages.length - 1];
      return { messages, next: rows.length > limit && last ? last.stream : null };
    },

    async deleteToDeviceMessages(userId, deviceId, upTo) {
      await engine.write(['to_device'], (tx) =>
        tx.deleteRange('to_device', { prefix: [userId, deviceId], upper: [requirePosition(upTo, 'upTo')] }),
      );
    },

    async createBackupVersion(userId, algorithm, authData) {
      requireString(algorithm, 'algorithm');
      return engine.write(['backup_versions'], async (tx) => {
        const [latest] = await tx.query('backup_versions', { prefix: [userId], reverse: true, limit: 1 });
        const version = ((latest?.version as number | undefined) ?? 0) + 1;
        await tx.insert('backup_versions', {
          user_id: userId,
          version,
          algorithm,
          auth_data: authData,
          etag: 0,
          deleted: false,
        });
        return String(version);
      });
    },

    getBackupVersion(userId, version) {
      return engine.read(
        ['backup_versions', 'backup_sessions'],
        async (tx): Promise<BackupVersion | null> => {
          let row: Row | undefined;
          if (version === undefined) {
            [row] = await tx.query('backup_versions', {
              prefix: [userId],
              reverse: true,
              filter: (r) => r.deleted !== true,
              limit: 1,
            });
          } else {
            const n = versionNumber(version);
            row = n === null ? undefined : await tx.get('backup_versions', [userId, n]);
          }
          if (!row || row.deleted === true) return null;
          return {
            version: String(row.version),
            algorithm: row.algorithm as string,
            authData: row.auth_data as JsonObject,
            etag: row.etag as number,
            count: await tx.count('backup_sessions', { prefix: [userId, row.version as number] }),
          };
        },
      );
    },

    updateBackupVersion(userId, version, authData) {
      const n = versionNumber(version);
      return engine.write(['backup_versions'], async (tx) => {
        const row = n === null ? undefined : await tx.get('backup_versions', [userId, n]);
        if (!row || row.deleted === true) return false;
        await tx.put('backup_versions', { ...row, auth_data: authData });
        return true;
      });
    },

    deleteBackupVersion(userId, version) {
      const n = versionNumber(version);
      return engine.write(['backup_versions', 'backup_sessions'], async (tx) => {
        const row = n === null ? undefined : await tx.get('backup_versions', [userId, n]);
        if (!row || row.deleted === true) return false;
        // The row stays (deleted) so the version number is never handed out again.
        await tx.put('backup_versions', { ...row, deleted: true });
        await tx.deleteRange('backup_sessions', { prefix: [userId, n as number] });
        return true;
      });
    },

    putBackupSessions(userId, version, sessions, replace) {
      const n = versionNumber(version);
      return engine.write(['backup_versions', 'backup_sessions'], async (tx) => {
        const row = n === null ? undefined : await tx.get('backup_versions', [userId, n]);
        if (!row || row.deleted === true)
          throw new StoreError('NOT_FOUND', `backup version ${version} is not stored`);
        const rows = sessions.map((s) => ({
          user_id: userId,
          version: n as number,
          room_id: requireString(s.roomId, 'roomId'),
          session_id: requireString(s.sessionId, 'sessionId'),
          data: s.data,
        }));
        let kept = rows;
        if (replace) {
          // Compared with what is stored inside this transaction, so two uploads racing for
          // one session cannot both win.
          const existing = await tx.getMany(
            'backup_sessions',
            rows.map((r) => [userId, r.version, r.room_id, r.session_id]),
          );
          kept = rows.filter((r, i) => {
            const old = existing[i];
            return !old || replace(old.data as JsonObject, r.data);
          });
        }
        await tx.putMany('backup_sessions', kept);
        const etag = (row.etag as number) + 1;
        await tx.put('backup_versions', { ...row, etag });
        return etag;
      });
    },

    async getBackupSessions(userId, version, roomId, sessionId) {
      const n = versionNumber(version);
      if (n === null) return [];
      const prefix = [
        userId,
        n,
        ...(roomId === undefined ? [] : [roomId]),
        ...(roomId !== undefined && sessionId !== undefined ? [sessionId] : []),
      ];
      const rows = await engine.read(['backup_sessions'], (tx) => tx.query('backup_sessions', { prefix }));
      return rows.map((row) => ({
        roomId: row.room_id as string,
        sessionId: row.session_id as string,
        data: row.data as JsonObject,
      }));
    },

    deleteBackupSessions(userId, version, roomId, sessionId) {
      const n = versionNumber(version);
      return engine.write(['backup_versions', 'backup_sessions'], async (tx) => {
        const row = n === null ? undefined : await tx.get('backup_versions', [userId, n]);
        if (!row || row.deleted === true) return 0;
        const prefix = [
          userId,
          n as number,
          ...(roomId === undefined ? [] : [roomId]),
          ...(roomId !== undefined && sessionId !== undefined ? [sessionId] : []),
        ];
        const count = await tx.count('backup_sessions', { prefix });
        await tx.deleteRange('backup_sessions', { prefix });
        if (count > 0) await tx.put('backup_versions', { ...row, etag: (row.etag as number) + 1 });
        return count;
      });
    },
  };
}
