/**
 * Which user IDs a new account may get — registration.yaml (`username`: "the server MUST
 * either map the provided `username` onto a `user_id` in a logical manner, or reject any
 * `username` which does not comply to the grammar with `M_INVALID_USERNAME`") and
 * appendices.md "User Identifiers" (new IDs use the strict grammar, at most 255 bytes).
 */

import { isValidLocalpart, isValidUserId, MAX_ID_BYTES, utf8ByteLength } from '../../core/identifiers.ts';
import type { Random } from '../context.ts';
import { invalidUsername } from '../errors.ts';

/**
 * All-digit localparts are what the server hands out itself (guests, registrations without a
 * username), as Synapse does; keeping them out of users' reach means a generated ID never
 * collides with a chosen one.
 */
const GENERATED = /^[0-9]+$/;

/**
 * The user ID a requested username maps to. Upper case is folded (user IDs are lower case, and
 * "Alice" plainly means "alice"); anything else outside the strict grammar is refused.
 */
export function userIdForUsername(username: string, serverName: string): string {
  const localpart = username.toLowerCase();
  if (localpart === '') throw invalidUsername('The username must not be empty');
  if (!isValidLocalpart(localpart)) {
    throw invalidUsername('A username may only contain a-z, 0-9 and the characters . _ = - / +');
  }
  if (GENERATED.test(localpart)) {
    throw invalidUsername('All-numeric usernames are reserved for accounts the server names itself');
  }
  const userId = `@${localpart}:${serverName}`;
  if (utf8ByteLength(userId) > MAX_ID_BYTES || !isValidUserId(userId)) {
    throw invalidUsername(`The user ID ${userId.slice(0, 40)}… would be longer than ${MAX_ID_BYTES} bytes`);
  }
  return userId;
}

/** A fresh all-digit localpart (callers retry on the rare collision). */
export function generatedLocalpart(random: Random): string {
  // 12 digits: 10^12 IDs, so collisions stay rare long past any realistic user count.
  let out = '';
  while (out.length < 12) {
    for (const byte of random.bytes(16)) {
      if (byte < 250 && out.length < 12) out += String(byte % 10);
    }
  }
  // No leading zero: the ID reads as the number it looks like.
  return out[0] === '0' ? `1${out.slice(1)}` : out;
}
