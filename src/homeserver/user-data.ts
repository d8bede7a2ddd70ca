/**
 * Per-user data: account data (client-server-api/modules/account_data.md "Client Config") and
 * room tags (modules/tags.md "Room Tagging", kept as the `m.tag` room account data event).
 *
 * Every change moves the account-data stream and wakes the user's /sync.
 */

import type { JsonObject } from '../core/canonical-json.ts';
import { utf8ByteLength } from '../core/identifiers.ts';
import type { HomeserverContext } from './context.ts';
import { badJson, invalidParam, matrixError, notFound } from './errors.ts';
import { createKeyedLock } from './rooms/lock.ts';

/**
 * Types the server manages (account_data.md "Server Behaviour": "Servers MUST reject setting
 * account data for event types that the server manages by using a 405 error response",
 * errcode M_BAD_JSON per account-data.yaml). `m.fully_read` moves through /read_markers,
 * `m.push_rules` through /pushrules (v1.10).
 */
export const SERVER_MANAGED_ACCOUNT_DATA: ReadonlySet<string> = new Set(['m.fully_read', 'm.push_rules']);

/** tags.md: "The name of a tag MUST NOT exceed 255 bytes." */
export const MAX_TAG_BYTES = 255;

export interface UserDataService {
  /** Null when unset. */
  getAccountData(userId: string, type: string, roomId?: string): Promise<JsonObject | null>;
  /** A client's write: refuses server-managed types. */
  setAccountData(userId: string, type: string, content: JsonObject, roomId?: string): Promise<number>;
  /** The server's own write (m.fully_read from /read_markers): no type check. */
  setManagedAccountData(userId: string, type: string, content: JsonObject, roomId?: string): Promise<number>;
  getTags(userId: string, roomId: string): Promise<Record<string, JsonObject>>;
  putTag(userId: string, roomId: string, tag: string, content: JsonObject): Promise<void>;
  deleteTag(userId: string, roomId: string, tag: string): Promise<void>;
}

export interface UserDataDeps {
  /** The user's `m.push_rules` content, which lives with the push rules, not in account data. */
  pushRules?: (userId: string) => Promise<JsonObject>;
}

export function createUserDataService(
  ctx: Pick<HomeserverContext, 'store' | 'notifier'>,
  deps: UserDataDeps = {},
): UserDataService {
  const { store, notifier } = ctx;
  // Tags are read-modify-write of one account-data row: chain the writes per (user, room) so
  // two concurrent PUTs from the same user's clients cannot lose one another's tag.
  const tagLock = createKeyedLock();

  const write = async (userId: string, type: string, content: JsonObject, roomId?: string) => {
    const position = await store.userData.setAccountData(userId, type, content, roomId);
    notifier.notify({ users: [userId] });
    return position;
  };

  const readTags = async (userId: string, roomId: string): Promise<Record<string, JsonObject>> => {
    const content = await store.userData.getAccountData(userId, 'm.tag', roomId);
    const tags = content?.tags;
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return {};
    return { ...(tags as Record<string, JsonObject>) };
  };

  return {
    getAccountData(userId, type, roomId) {
      // account_data.md: "Servers must allow clients to read the above event types as normal."
      if (type === 'm.push_rules' && roomId === undefined && deps.pushRules) return deps.pushRules(userId);
      return store.userData.getAccountData(userId, type, roomId);
    },

    async setAccountData(userId, type, content, roomId) {
      if (SERVER_MANAGED_ACCOUNT_DATA.has(type)) {
        throw matrixError(405, 'M_BAD_JSON', `Cannot set ${type} through this API`);
      }
      return write(userId, type, content, roomId);
    },

    setManagedAccountData: write,

    getTags: readTags,

    putTag(userId, roomId, tag, content) {
      if (utf8ByteLength(tag) > MAX_TAG_BYTES)
        throw invalidParam(`Tag names are at most ${MAX_TAG_BYTES} bytes`);
      const order = content.order;
      if (order !== undefined && (typeof order !== 'number' || !Number.isFinite(order))) {
        throw badJson('JSON field "order": expected a number');
      }
      return tagLock.run(`${userId}\u0000${roomId}`, async () => {
        const tags = await readTags(userId, roomId);
        Object.defineProperty(tags, tag, {
          value: content,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        await write(userId, 'm.tag', { tags }, roomId);
      });
    },

    deleteTag(userId, roomId, tag) {
      return tagLock.run(`${userId}\u0000${roomId}`, async () => {
        const tags = await readTags(userId, roomId);
        // Deleting a tag that is not there succeeds without a write (nothing changed).
        if (!Object.hasOwn(tags, tag)) return;
        delete tags[tag];
        await write(userId, 'm.tag', { tags }, roomId);
      });
    },
  };
}

/** Account data GETs answer 404 M_NOT_FOUND for an unset type (account-data.yaml). */
export function accountDataNotFound(roomId?: string) {
  return notFound(roomId ? 'Room account data not found' : 'Account data not found');
}
