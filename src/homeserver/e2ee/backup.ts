/**
 * Server-side key backups — end_to_end_encryption.md "Server-side key backups",
 * data/api/client-server/key_backup.yaml. The server keeps what it is given (the session
 * data is encrypted for a key it never sees); it only decides which of two copies of one
 * session to keep, by the spec's rule (`keepsNew`), inside the store's write.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { StoreError } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { invalidParam, MatrixError, notFound } from '../errors.ts';

export interface BackupVersionInfo {
  algorithm: string;
  auth_data: JsonObject;
  count: number;
  etag: string;
  version: string;
}

export interface BackupSession {
  roomId: string;
  sessionId: string;
  data: JsonObject;
}

export interface BackupService {
  createVersion(userId: string, algorithm: string, authData: JsonObject): Promise<string>;
  /** The given version, or the latest; M_NOT_FOUND when none. */
  getVersion(userId: string, version?: string): Promise<BackupVersionInfo>;
  updateVersion(
    userId: string,
    version: string,
    body: { algorithm: string; authData: JsonObject; version?: string },
  ): Promise<void>;
  deleteVersion(userId: string, version: string): Promise<void>;
  putSessions(
    userId: string,
    version: string,
    sessions: readonly BackupSession[],
  ): Promise<{ etag: string; count: number }>;
  /** Sessions of the backup, of one room, or one session (`roomId`, `sessionId` narrowing). */
  getSessions(userId: string, version: string, roomId?: string, sessionId?: string): Promise<BackupSession[]>;
  deleteSessions(
    userId: string,
    version: string,
    roomId?: string,
    sessionId?: string,
  ): Promise<{ etag: string; count: number }>;
}

const unknownVersion = (version: string) => notFound(`Unknown backup version ${version}`);

/**
 * "When a client uploads a key for a session that the server already has a key for": keep
 * the verified one; then the lower `first_message_index`; then the lower `forwarded_count`.
 * True when `incoming` replaces `stored`.
 */
export function keepsNew(stored: JsonObject, incoming: JsonObject): boolean {
  const verifiedOld = stored.is_verified === true;
  const verifiedNew = incoming.is_verified === true;
  if (verifiedOld !== verifiedNew) return verifiedNew;
  const indexOld = Number(stored.first_message_index);
  const indexNew = Number(incoming.first_message_index);
  if (indexOld !== indexNew) return indexNew < indexOld;
  return Number(incoming.forwarded_count) < Number(stored.forwarded_count);
}

export function createBackupService(ctx: HomeserverContext): BackupService {
  const { store } = ctx;

  async function requireVersion(userId: string, version: string) {
    const found = await store.e2ee.getBackupVersion(userId, version);
    if (!found) throw unknownVersion(version);
    return found;
  }

  return {
    createVersion(userId, algorithm, authData) {
      return store.e2ee.createBackupVersion(userId, algorithm, authData);
    },

    async getVersion(userId, version) {
      const found = await store.e2ee.getBackupVersion(userId, version);
      if (!found) throw version === undefined ? notFound('No backup') : unknownVersion(version);
      return {
        algorithm: found.algorithm,
        auth_data: found.authData,
        count: found.count,
        etag: String(found.etag),
        version: found.version,
      };
    },

    async updateVersion(userId, version, body) {
      if (body.version !== undefined && body.version !== version)
        throw invalidParam('The version in the body does not match the version in the path');
      const current = await requireVersion(userId, version);
      // key_backup.yaml: the algorithm "Must be the same as the algorithm currently used by the backup".
      if (body.algorithm !== current.algorithm) throw invalidParam('The algorithm of a backup cannot change');
      if (!(await store.e2ee.updateBackupVersion(userId, version, body.authData)))
        throw unknownVersion(version);
    },

    async deleteVersion(userId, version) {
      if (!(await store.e2ee.deleteBackupVersion(userId, version))) throw unknownVersion(version);
    },

    async putSessions(userId, version, sessions) {
      const latest = await store.e2ee.getBackupVersion(userId);
      if (!latest || latest.version !== version) {
        // Keys go to the current backup only: an old client writing to a replaced one is told so.
        if (!(await store.e2ee.getBackupVersion(userId, version))) throw unknownVersion(version);
        throw new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version', {
          current_version: latest?.version ?? null,
        });
      }
      let etag: number;
      try {
        etag = await store.e2ee.putBackupSessions(userId, version, sessions, keepsNew);
      } catch (err) {
        // Deleted between the check and the write.
        if (err instanceof StoreError && err.code === 'NOT_FOUND') throw unknownVersion(version);
        throw err;
      }
      const after = await store.e2ee.getBackupVersion(userId, version);
      return { etag: String(etag), count: after?.count ?? 0 };
    },

    async getSessions(userId, version, roomId, sessionId) {
      await requireVersion(userId, version);
      return store.e2ee.getBackupSessions(userId, version, roomId, sessionId);
    },

    async deleteSessions(userId, version, roomId, sessionId) {
      await requireVersion(userId, version);
      await store.e2ee.deleteBackupSessions(userId, version, roomId, sessionId);
      const after = await requireVersion(userId, version);
      return { etag: String(after.etag), count: after.count };
    },
  };
}
