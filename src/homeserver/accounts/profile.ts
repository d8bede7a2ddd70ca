/**
 * Profiles — client-server-api/_index.md "Profiles" (profile.yaml): display name, avatar URL,
 * `m.tz` and custom fields (v1.16), and "Events on Change of Profile Information": a change of
 * `displayname` or `avatar_url` is sent as a new `m.room.member` join event into every room the
 * user is joined to.
 */

import { canonicalJsonBytes, type JsonObject, type JsonValue } from '../../core/canonical-json.ts';
import { isValidUserId, serverNameOf, utf8ByteLength } from '../../core/identifiers.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, MatrixError, notFound } from '../errors.ts';

/** What accounts need from the rooms service (the contract in notes/issue4-plan.md). */
export interface RoomsForAccounts {
  sendEvent(input: {
    sender: string;
    deviceId?: string;
    roomId: string;
    type: string;
    content: JsonObject;
    stateKey?: string;
  }): Promise<{ eventId: string }>;
  setMembership(sender: string, roomId: string, target: string, membership: string): Promise<unknown>;
}

export const DISPLAYNAME = 'displayname';
export const AVATAR_URL = 'avatar_url';

/** profile.yaml `keyName`: the three defined keys or a namespaced one. */
const KEY_NAME = /^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$/;
/** profile.yaml: "the total profile MUST be under 64 KiB". */
export const MAX_PROFILE_BYTES = 64 * 1024;
/** profile.yaml M_KEY_TOO_LARGE: "the maximum allowed key length of 255 bytes". */
const MAX_KEY_BYTES = 255;
/**
 * Display names and avatar URLs are copied into every member event of the user; Synapse's
 * limits (256 and 1000 characters) keep them from eating the 64 KiB event budget.
 */
const MAX_DISPLAYNAME_LENGTH = 256;
const MAX_AVATAR_URL_LENGTH = 1000;
/** mxc://<server-name>/<media-id> (client-server-api "Matrix Content (mxc://) URIs"). */
const MXC_URI = /^mxc:\/\/[^/\s]+\/[A-Za-z0-9_-]+$/;

export function checkProfileKey(key: string): void {
  if (utf8ByteLength(key) > MAX_KEY_BYTES) {
    throw new MatrixError(400, 'M_KEY_TOO_LARGE', `Profile keys are at most ${MAX_KEY_BYTES} bytes`);
  }
  if (!KEY_NAME.test(key)) {
    throw invalidParam(
      `Invalid profile key ${JSON.stringify(key)}: use displayname, avatar_url, m.tz or a namespaced key`,
    );
  }
}

/** Checks a value for a key; returns what to store (null = remove the field). */
function normaliseValue(key: string, value: JsonValue): JsonValue | null {
  if (value === null) {
    throw new MatrixError(400, 'M_BAD_JSON', 'A profile field cannot be set to null; DELETE it instead');
  }
  if (key === DISPLAYNAME || key === AVATAR_URL || key === 'm.tz') {
    if (typeof value !== 'string') throw new MatrixError(400, 'M_BAD_JSON', `${key} must be a string`);
    // Clients from before v1.16 remove a display name or avatar by setting it to "".
    if (value === '' && key !== 'm.tz') return null;
  }
  if (key === DISPLAYNAME && (value as string).length > MAX_DISPLAYNAME_LENGTH) {
    throw invalidParam(`displayname is longer than ${MAX_DISPLAYNAME_LENGTH} characters`);
  }
  if (key === AVATAR_URL) {
    const url = value as string;
    if (url.length > MAX_AVATAR_URL_LENGTH)
      throw invalidParam(`avatar_url is longer than ${MAX_AVATAR_URL_LENGTH} characters`);
    if (!MXC_URI.test(url)) throw invalidParam('avatar_url must be an mxc:// URI');
  }
  return value;
}

export interface ProfileCaller {
  userId: string;
  deviceId: string | null;
  isGuest: boolean;
}

export interface ProfileService {
  /** The whole profile of a user (404 for unknown users; remote ones are asked of their server). */
  getProfile(userId: string): Promise<JsonObject>;
  getProfileField(userId: string, key: string): Promise<JsonValue>;
  /** Sets one field of the caller's own profile; a changed name or avatar is propagated. */
  setProfileField(caller: ProfileCaller, userId: string, key: string, value: JsonValue): Promise<void>;
  /** Removes one field of the caller's own profile (absent already: nothing happens). */
  deleteProfileField(caller: ProfileCaller, userId: string, key: string): Promise<void>;
  /** Sends the user's current display name and avatar into every room they are joined to. */
  propagate(userId: string, deviceId?: string | null): Promise<void>;
}

export function createProfileService(
  ctx: HomeserverContext,
  rooms: () => RoomsForAccounts | undefined,
): ProfileService {
  const { store, config, logger } = ctx;

  /**
   * The profile of a user: a local one from the store (404 when unknown), a remote one from
   * its server through the federation port (GET /query/profile; 404 while federation is off).
   */
  async function profileOf(userId: string, field?: string): Promise<JsonObject> {
    if (!isValidUserId(userId, { historical: true }))
      throw invalidParam(`Invalid user ID ${JSON.stringify(userId)}`);
    const server = serverNameOf(userId) as string;
    if (server !== config.serverName) return ctx.federation.queryProfile(server, userId, field);
    if (!(await store.accounts.getUser(userId))) throw notFound('Profile not found');
    return (await store.userData.getProfile(userId)) ?? {};
  }

  async function propagate(userId: string, deviceId?: string | null): Promise<void> {
    const service = rooms();
    if (!service) {
      logger.warn('profile change not propagated: no rooms service', { userId });
      return;
    }
    const profile = (await store.userData.getProfile(userId)) ?? {};
    for (const m of await store.rooms.roomsForUser(userId, 'join')) {
      const current = await store.rooms.currentStateEvent(m.roomId, 'm.room.member', userId);
      const old = current?.event.content ?? {};
      // Only the membership and the profile, as other servers do: a per-room name set through
      // the state API is replaced, and keys that belonged to the original join (a reason,
      // `join_authorised_via_users_server`) are not repeated.
      const content: JsonObject = { membership: 'join' };
      if (typeof profile.displayname === 'string') content.displayname = profile.displayname;
      if (typeof profile.avatar_url === 'string') content.avatar_url = profile.avatar_url;
      if (
        old.membership === 'join' &&
        old.displayname === content.displayname &&
        old.avatar_url === content.avatar_url
      ) {
        continue;
      }
      try {
        await service.sendEvent({
          sender: userId,
          ...(deviceId ? { deviceId } : {}),
          roomId: m.roomId,
          type: 'm.room.member',
          stateKey: userId,
          content,
        });
      } catch (err) {
        // One room refusing (say, a power-level change since) must not stop the others.
        logger.warn('profile change not sent to a room', { userId, roomId: m.roomId, error: String(err) });
      }
    }
  }

  async function change(caller: ProfileCaller, userId: string, key: string, stored: JsonValue | null) {
    const before = (await store.userData.getProfile(userId)) ?? {};
    const after: JsonObject = { ...before };
    if (stored === null) delete after[key];
    else after[key] = stored;
    if (canonicalJsonBytes(after).length >= MAX_PROFILE_BYTES) {
      throw new MatrixError(
        400,
        'M_PROFILE_TOO_LARGE',
        `The profile would exceed ${MAX_PROFILE_BYTES} bytes`,
      );
    }
    await store.userData.updateProfile(userId, { [key]: stored });
    if ((key === DISPLAYNAME || key === AVATAR_URL) && before[key] !== after[key]) {
      await propagate(userId, caller.deviceId);
    }
  }

  function checkCaller(caller: ProfileCaller, userId: string, key: string): void {
    checkProfileKey(key);
    if (caller.userId !== userId) throw forbidden("You cannot change another user's profile");
    // Guest access module: guests may only set or remove their display name.
    if (caller.isGuest && key !== DISPLAYNAME) throw forbidden('Guests may only change their display name');
  }

  return {
    getProfile(userId) {
      return profileOf(userId);
    },

    async getProfileField(userId, key) {
      checkProfileKey(key);
      const profile = await profileOf(userId, key);
      if (!Object.hasOwn(profile, key)) throw notFound(`This user has no ${key}`);
      return profile[key] as JsonValue;
    },

    async setProfileField(caller, userId, key, value) {
      checkCaller(caller, userId, key);
      await change(caller, userId, key, normaliseValue(key, value));
    },

    async deleteProfileField(caller, userId, key) {
      checkCaller(caller, userId, key);
      await change(caller, userId, key, null);
    },

    propagate,
  };
}
