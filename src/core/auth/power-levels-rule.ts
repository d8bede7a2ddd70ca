/**
 * The `m.room.power_levels` authorization rule: rule 10 of rooms v1–v5 and v12, rule 9 of
 * v6–v11 (rooms/fragments/v1-auth-rules.md, v8-auth-rules.md; rooms/v6.md adds
 * `notifications`; rooms/v10.md requires integers; rooms/v12.md forbids creators in `users`).
 * Returns to allow; throws `AuthDenied` to reject.
 */
import type { JsonObject } from '../canonical-json.ts';
import { stateKey } from '../pdu.ts';
import { isJsonObject, parsePowerLevelValue, roomCreators, TOP_LEVEL_FIELDS } from '../power-levels.ts';
import type { RoomVersion } from '../room-versions.ts';
import { type AuthContext, contentOf, userLevel } from './context.ts';
import { isEventUserId } from './ids.ts';
import { deny } from './result.ts';

export function checkPowerLevels(ctx: AuthContext): void {
  const { content, version, sender, state, event, create } = ctx;

  if (version.integerPowerLevels) {
    for (const field of TOP_LEVEL_FIELDS) {
      if (Object.hasOwn(content, field) && parsePowerLevelValue(content[field], version) === undefined) {
        deny(`${field} in m.room.power_levels is not an integer`);
      }
    }
    for (const field of ['events', 'notifications']) {
      if (!Object.hasOwn(content, field)) continue;
      const map = content[field];
      if (
        !isJsonObject(map) ||
        Object.values(map).some((v) => parsePowerLevelValue(v, version) === undefined)
      ) {
        deny(`${field} in m.room.power_levels is not an object of integers`);
      }
    }
  }

  if (Object.hasOwn(content, 'users')) {
    const users = content.users;
    if (!isJsonObject(users)) deny('users in m.room.power_levels is not an object');
    for (const [userId, level] of Object.entries(users)) {
      if (!isEventUserId(userId))
        deny(`users in m.room.power_levels has an invalid user ID ${JSON.stringify(userId)}`);
      if (parsePowerLevelValue(level, version) === undefined) {
        deny(
          `users.${userId} in m.room.power_levels is not ${version.integerPowerLevels ? 'an integer' : 'an integer or integer string'}`,
        );
      }
    }
    if (version.privilegedCreators) {
      for (const creator of roomCreators(create, version)) {
        if (Object.hasOwn(users, creator)) deny(`room creator ${creator} must not appear in users`);
      }
    }
  }

  // "The previous m.room.power_levels event": the state at this event's (type, state_key).
  const previous = state.get(stateKey(ctx.type, event.state_key as string));
  if (!previous) return;
  const old = contentOf(previous);
  const senderLevel = userLevel(ctx, sender);

  for (const field of TOP_LEVEL_FIELDS) {
    const before = levelAt(old, field, version, 'current');
    const after = levelAt(content, field, version, 'new');
    if (before === after) continue;
    if (before !== undefined && before > senderLevel) {
      deny(`cannot change ${field}: its current value ${before} is above the sender's level ${senderLevel}`);
    }
    if (after !== undefined && after > senderLevel) {
      deny(`cannot change ${field}: the new value ${after} is above the sender's level ${senderLevel}`);
    }
  }

  const maps = version.limitNotificationsPowerLevels ? ['events', 'notifications'] : ['events'];
  for (const field of maps) {
    const before = mapAt(old, field, 'current');
    const after = mapAt(content, field, 'new');
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const was = levelAt(before, key, version, 'current', field);
      const now = levelAt(after, key, version, 'new', field);
      if (was === now) continue;
      if (was !== undefined && was > senderLevel) {
        deny(
          `cannot change ${field}.${key}: its current value ${was} is above the sender's level ${senderLevel}`,
        );
      }
      if (now !== undefined && now > senderLevel) {
        deny(
          `cannot change ${field}.${key}: the new value ${now} is above the sender's level ${senderLevel}`,
        );
      }
    }
  }

  const before = mapAt(old, 'users', 'current');
  const after = mapAt(content, 'users', 'new');
  for (const userId of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const was = levelAt(before, userId, version, 'current', 'users');
    const now = levelAt(after, userId, version, 'new', 'users');
    if (was === now) continue;
    if (userId !== sender && was !== undefined && was >= senderLevel) {
      deny(`cannot change the level of ${userId}: ${was} is not below the sender's level ${senderLevel}`);
    }
    if (now !== undefined && now > senderLevel) {
      deny(`cannot set ${userId} to ${now}, above the sender's level ${senderLevel}`);
    }
  }
}

/** `holder[key]` as a level, `undefined` when absent; a malformed (or null) value rejects. */
function levelAt(
  holder: JsonObject,
  key: string,
  version: RoomVersion,
  which: 'current' | 'new',
  map?: string,
): number | undefined {
  if (!Object.hasOwn(holder, key)) return undefined;
  const level = parsePowerLevelValue(holder[key], version);
  if (level === undefined) {
    const name = map ? `${map}.${key}` : key;
    deny(
      `the ${which} ${name} in m.room.power_levels is not a valid power level: ${JSON.stringify(holder[key])}`,
    );
  }
  return level;
}

function mapAt(content: JsonObject, field: string, which: 'current' | 'new'): JsonObject {
  if (!Object.hasOwn(content, field) || content[field] === undefined) return {};
  const map = content[field];
  if (!isJsonObject(map)) deny(`the ${which} ${field} in m.room.power_levels is not an object`);
  return map;
}
