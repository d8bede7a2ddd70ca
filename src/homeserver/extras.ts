/**
 * Small client features with no area of their own: content reports (report_content.yaml),
 * TURN credentials (voip.yaml, coturn's `use-auth-secret` scheme) and login tokens
 * (login_token.yaml `POST /login/get_token`, redeemed by `m.login.token`).
 */

import { encodeBase64 } from '../core/base64.ts';
import type { JsonObject } from '../core/canonical-json.ts';
import { type Auth, type HomeserverContext, isLocalId, randomString } from './context.ts';
import { notFound } from './errors.ts';

/** login_token.yaml: tokens are short-lived (the spec's example: 2 minutes). */
export const LOGIN_TOKEN_LIFETIME_MS = 2 * 60_000;
const LOGIN_TOKEN_PREFIX = 'login_token\u0000';

/** The user a login token was issued to, spending it (kept beside UIA sessions, which expire alike). */
export async function redeemLoginToken(
  ctx: Pick<HomeserverContext, 'store' | 'clock'>,
  token: string,
): Promise<string | null> {
  const key = `${LOGIN_TOKEN_PREFIX}${token}`;
  const data = await ctx.store.accounts.getUiaSession(key, ctx.clock.now());
  if (!data || typeof data.user_id !== 'string') return null;
  await ctx.store.accounts.deleteUiaSession(key);
  return data.user_id;
}

export interface ExtrasService {
  /** POST /rooms/{roomId}/report[/{eventId}]: 404 for what the reporter cannot see. */
  reportContent(
    auth: Auth,
    input: { roomId: string; eventId?: string; reason?: string; score?: number },
  ): Promise<void>;
  /** POST /users/{userId}/report */
  reportUser(auth: Auth, userId: string, reason: string | undefined): Promise<void>;
  /** GET /voip/turnServer: `{}` when no TURN server is configured (voip.yaml allows it). */
  turnServer(userId: string): Promise<JsonObject>;
  /** POST /login/get_token (the caller has proved presence already). */
  issueLoginToken(userId: string): Promise<{ login_token: string; expires_in_ms: number }>;
  /** The user a login token was issued to, spending it; null when unknown, spent or expired. */
  redeemLoginToken(token: string): Promise<string | null>;
  /** The room of a stored event (for the deprecated `GET /events/{eventId}`), or null. */
  roomOfEvent(eventId: string): Promise<string | null>;
}

export function createExtrasService(ctx: HomeserverContext): ExtrasService {
  const { store, clock, random, config, logger } = ctx;

  async function report(
    auth: Auth,
    fields: { roomId?: string; eventId?: string; userId?: string; reason?: string; score?: number },
  ) {
    const id = `${clock.now()}-${randomString(random, 10)}`;
    await store.operator.addReport({
      id,
      userId: auth.userId,
      roomId: fields.roomId ?? null,
      eventId: fields.eventId ?? null,
      targetUserId: fields.userId ?? null,
      reason: fields.reason ?? null,
      score: fields.score ?? null,
      createdAt: clock.now(),
    });
    logger.info('content reported', { id, by: auth.userId, ...fields });
  }

  return {
    async reportContent(auth, input) {
      const membership = await store.rooms.membership(input.roomId, auth.userId);
      if (!membership || !(await store.rooms.getRoom(input.roomId)))
        throw notFound('The room does not exist or you are not in it');
      if (input.eventId !== undefined) {
        const stored = await store.rooms.getEvent(input.eventId);
        if (!stored || stored.roomId !== input.roomId)
          throw notFound('The event does not exist in this room');
      }
      await report(auth, {
        roomId: input.roomId,
        ...(input.eventId !== undefined ? { eventId: input.eventId } : {}),
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
        ...(input.score !== undefined ? { score: input.score } : {}),
      });
    },

    async reportUser(auth, userId, reason) {
      if (isLocalId(config, userId) && !(await store.accounts.getUser(userId)))
        throw notFound('Unknown user');
      await report(auth, { userId, ...(reason !== undefined ? { reason } : {}) });
    },

    async turnServer(userId) {
      const turn = config.turn;
      if (!turn) return {} as JsonObject;
      // coturn `use-auth-secret`: username "<expiry unix time>:<anything>", password
      // base64(HMAC-SHA1(static-auth-secret, username)).
      const username = `${Math.floor(clock.now() / 1000) + turn.ttlSeconds}:${userId}`;
      const enc = new TextEncoder();
      const key = await crypto.subtle.importKey(
        'raw',
        enc.encode(turn.sharedSecret),
        { name: 'HMAC', hash: 'SHA-1' },
        false,
        ['sign'],
      );
      const mac = encodeBase64(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(username))));
      // coturn reads standard base64 with its padding (encodeBase64 is Matrix's unpadded form).
      const password = mac + '='.repeat((4 - (mac.length % 4)) % 4);
      const answer: JsonObject = { username, password, uris: turn.uris, ttl: turn.ttlSeconds };
      return answer;
    },

    async issueLoginToken(userId) {
      const token = randomString(random, 32);
      await store.accounts.putUiaSession(
        `${LOGIN_TOKEN_PREFIX}${token}`,
        { user_id: userId },
        clock.now() + LOGIN_TOKEN_LIFETIME_MS,
      );
      return { login_token: token, expires_in_ms: LOGIN_TOKEN_LIFETIME_MS };
    },

    redeemLoginToken: (token) => redeemLoginToken(ctx, token),

    async roomOfEvent(eventId) {
      return (await store.rooms.getEvent(eventId))?.roomId ?? null;
    },
  };
}
