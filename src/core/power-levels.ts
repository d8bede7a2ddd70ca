/**
 * Power levels — server-server-api.md "Definitions" (required power level, invite/kick/ban/
 * redact level), the `m.room.power_levels` schema (defaults), rooms/fragments/
 * v1-stringy-power-levels.md and v1-floaty-power-levels.md (v1–v9 value quirks), rooms/v10.md
 * (integers only) and rooms/v12.md (room creators have infinite power).
 *
 * Two readings of a power levels event exist here:
 * - lenient (`userPowerLevel`, `requiredPowerLevel`, `namedPowerLevel`, `parsePowerLevelsContent`):
 *   a malformed value counts as absent, so the default applies. State resolution and clients
 *   use these; they always produce a number.
 * - strict (the `onInvalid` hook of the `*From` functions): the authorization rules use it to
 *   reject an event when a value they consult cannot be read, as Synapse does when `int()`
 *   fails. Only the values actually consulted matter, never the rest of the content.
 */
import type { JsonObject } from './canonical-json.ts';
import type { RoomVersion } from './room-versions.ts';

/** The level of a room creator in room versions with `privilegedCreators` (v12+). */
export const CREATOR_POWER_LEVEL = Number.POSITIVE_INFINITY;

/** The level of the (single) creator when a v1–v11 room has no power levels event. */
export const CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100;

/**
 * Defaults from the `m.room.power_levels` schema; they apply both to a missing key and to a
 * room without a power levels event (`state_default` is 50 in both cases).
 */
export const POWER_LEVEL_DEFAULTS = Object.freeze({
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
});

export type NamedLevel = 'ban' | 'kick' | 'redact' | 'invite';
export type TopLevelField = keyof typeof POWER_LEVEL_DEFAULTS;

/** The integer-valued top-level properties the auth rules compare, in spec order. */
export const TOP_LEVEL_FIELDS: readonly TopLevelField[] = Object.freeze([
  'users_default',
  'events_default',
  'state_default',
  'ban',
  'redact',
  'kick',
  'invite',
]);

/** The minimum an event needs for power-level lookups: its content (and sender, for creators). */
export interface ContentHolder {
  readonly content: unknown;
}
export interface CreateEventLike {
  readonly sender: unknown;
  readonly content: unknown;
}

const MAX_LEVEL = 2 ** 53 - 1;
/** v1-stringy-power-levels.md: optional whitespace, one optional sign, base-10 digits, whitespace. */
const STRINGY_INTEGER = /^\s*[+-]?[0-9]+\s*$/;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads one power level value as the room version allows it, or `undefined` when the value
 * is malformed for that version:
 * - v6+ (`strictCanonicalJson`): a JSON integer in the canonical range [-(2^53)+1, 2^53-1];
 * - v1–v5: any finite JSON number, truncated towards zero (`50.57` is 50,
 *   v1-floaty-power-levels.md) — canonical JSON was not enforced, so neither was the range;
 * - v1–v9 (`!integerPowerLevels`): also a string holding an integer in the canonical range
 *   (`" +0100 "` is 100, v1-stringy-power-levels.md).
 * Booleans, `null`, objects and other strings are malformed in every version.
 */
export function parsePowerLevelValue(value: unknown, version: RoomVersion): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    if (!version.strictCanonicalJson) return Math.trunc(value) + 0; // + 0 turns -0 into 0
    return Number.isInteger(value) && Math.abs(value) <= MAX_LEVEL ? value + 0 : undefined;
  }
  if (typeof value === 'string' && !version.integerPowerLevels && STRINGY_INTEGER.test(value)) {
    const parsed = Number.parseInt(value.trim(), 10);
    return Math.abs(parsed) <= MAX_LEVEL ? parsed + 0 : undefined;
  }
  return undefined;
}

/** Called when a consulted value is malformed; returns the level to use instead, or throws. */
export type OnInvalidLevel = (problem: string) => number;

const useDefault =
  (fallback: number): OnInvalidLevel =>
  () =>
    fallback;

function contentOf(event: ContentHolder | undefined): JsonObject | undefined {
  if (!event) return undefined;
  return isJsonObject(event.content) ? event.content : {};
}

/** Reads `content[key]` (or `content[map][key]`), falling back to `fallback` when absent. */
function readLevel(
  content: JsonObject,
  path: readonly [string] | readonly [string, string],
  fallback: number,
  version: RoomVersion,
  onInvalid: OnInvalidLevel,
): number {
  let holder: unknown = content;
  if (path.length === 2) {
    const map = content[path[0]];
    if (map === undefined) return fallback;
    if (!isJsonObject(map)) return onInvalid(`\`${path[0]}\` in m.room.power_levels is not an object`);
    holder = map;
  }
  const key = path[path.length - 1] as string;
  if (!Object.hasOwn(holder as JsonObject, key)) return fallback;
  const raw = (holder as JsonObject)[key];
  // Synapse reads `content.get(key)` and treats `null` as absent; so do we.
  if (raw === null || raw === undefined) return fallback;
  const level = parsePowerLevelValue(raw, version);
  if (level === undefined) {
    return onInvalid(
      `\`${path.join('.')}\` in m.room.power_levels is not a valid power level: ${JSON.stringify(raw)}`,
    );
  }
  return level;
}

// ---------------------------------------------------------------------------------------------
// Room creators

/**
 * The user a v1–v11 room treats as its creator when there is no power levels event:
 * `content.creator` up to v10, the `sender` from v11 (MSC2175).
 */
export function legacyRoomCreator(
  create: CreateEventLike | undefined,
  version: RoomVersion,
): string | undefined {
  if (!create) return undefined;
  if (version.implicitRoomCreator) return typeof create.sender === 'string' ? create.sender : undefined;
  const content = contentOf(create);
  const creator = content?.creator;
  return typeof creator === 'string' ? creator : undefined;
}

/**
 * The room creators of a v12+ room (`privilegedCreators`): the create event's sender plus the
 * strings in `content.additional_creators`. Empty for earlier versions, whose creators hold no
 * special power once a power levels event exists.
 */
export function roomCreators(create: CreateEventLike | undefined, version: RoomVersion): ReadonlySet<string> {
  const creators = new Set<string>();
  if (!create || !version.privilegedCreators) return creators;
  if (typeof create.sender === 'string') creators.add(create.sender);
  const additional = contentOf(create)?.additional_creators;
  if (Array.isArray(additional)) {
    for (const user of additional) if (typeof user === 'string') creators.add(user);
  }
  return creators;
}

/** Whether `userId` is a room creator with infinite power (v12+). */
export function isPrivilegedCreator(
  userId: string,
  create: CreateEventLike | undefined,
  version: RoomVersion,
): boolean {
  return version.privilegedCreators && roomCreators(create, version).has(userId);
}

// ---------------------------------------------------------------------------------------------
// Lookups

/**
 * A user's power level. v12+ creators have `CREATOR_POWER_LEVEL` (Infinity) whatever the power
 * levels say. Otherwise `users[userId]`, else `users_default`, else 0; without a power levels
 * event the v1–v11 creator has 100 and everyone else 0.
 */
export function userPowerLevelFrom(
  userId: string,
  powerLevels: ContentHolder | undefined,
  create: CreateEventLike | undefined,
  version: RoomVersion,
  onInvalid: OnInvalidLevel,
): number {
  if (isPrivilegedCreator(userId, create, version)) return CREATOR_POWER_LEVEL;
  const content = contentOf(powerLevels);
  if (!content) {
    if (!version.privilegedCreators && legacyRoomCreator(create, version) === userId) {
      return CREATOR_LEVEL_WITHOUT_POWER_LEVELS;
    }
    return 0;
  }
  const usersDefault = (): number =>
    readLevel(content, ['users_default'], POWER_LEVEL_DEFAULTS.users_default, version, onInvalid);
  const users = content.users;
  if (users === undefined || users === null) return usersDefault();
  if (!isJsonObject(users)) {
    onInvalid('`users` in m.room.power_levels is not an object');
    return usersDefault();
  }
  if (!Object.hasOwn(users, userId) || users[userId] === null) return usersDefault();
  const level = parsePowerLevelValue(users[userId], version);
  if (level === undefined) {
    return onInvalid(`\`users.${userId}\` in m.room.power_levels is not a valid power level`);
  }
  return level;
}

/** Lenient `userPowerLevelFrom`: malformed values count as absent. Never throws. */
export function userPowerLevel(
  userId: string,
  powerLevels: ContentHolder | undefined,
  create: CreateEventLike | undefined,
  version: RoomVersion,
): number {
  const lenient: OnInvalidLevel = () => Number.NaN;
  const level = userPowerLevelFrom(userId, powerLevels, create, version, lenient);
  if (!Number.isNaN(level)) return level;
  // The user's own entry was malformed: fall back to users_default (itself read leniently).
  const content = contentOf(powerLevels) ?? {};
  return readLevel(
    content,
    ['users_default'],
    POWER_LEVEL_DEFAULTS.users_default,
    version,
    useDefault(POWER_LEVEL_DEFAULTS.users_default),
  );
}

/**
 * The *required power level* to send an event of `type`: `events[type]`, else
 * `state_default` for state events (`stateKey` defined) or `events_default` otherwise.
 */
export function requiredPowerLevelFrom(
  type: string,
  stateKey: string | undefined,
  powerLevels: ContentHolder | undefined,
  version: RoomVersion,
  onInvalid: OnInvalidLevel,
): number {
  const content = contentOf(powerLevels) ?? {};
  const fallbackField: TopLevelField = stateKey === undefined ? 'events_default' : 'state_default';
  const fallback = (): number =>
    readLevel(content, [fallbackField], POWER_LEVEL_DEFAULTS[fallbackField], version, onInvalid);
  const events = content.events;
  if (events !== undefined && events !== null && !isJsonObject(events)) {
    onInvalid('`events` in m.room.power_levels is not an object');
    return fallback();
  }
  if (!isJsonObject(events) || !Object.hasOwn(events, type) || events[type] === null) return fallback();
  const level = parsePowerLevelValue(events[type], version);
  if (level === undefined)
    return onInvalid(`\`events.${type}\` in m.room.power_levels is not a valid power level`);
  return level;
}

/** Lenient `requiredPowerLevelFrom`. Never throws. */
export function requiredPowerLevel(
  type: string,
  stateKey: string | undefined,
  powerLevels: ContentHolder | undefined,
  version: RoomVersion,
): number {
  const content = contentOf(powerLevels) ?? {};
  const fallbackField: TopLevelField = stateKey === undefined ? 'events_default' : 'state_default';
  const fallback = readLevel(
    content,
    [fallbackField],
    POWER_LEVEL_DEFAULTS[fallbackField],
    version,
    useDefault(POWER_LEVEL_DEFAULTS[fallbackField]),
  );
  return readLevel(content, ['events', type], fallback, version, useDefault(fallback));
}

/** The invite, kick, ban or redact level (defaults 0, 50, 50, 50). */
export function namedPowerLevelFrom(
  name: NamedLevel,
  powerLevels: ContentHolder | undefined,
  version: RoomVersion,
  onInvalid: OnInvalidLevel,
): number {
  const content = contentOf(powerLevels) ?? {};
  return readLevel(content, [name], POWER_LEVEL_DEFAULTS[name], version, onInvalid);
}

/** Lenient `namedPowerLevelFrom`. Never throws. */
export function namedPowerLevel(
  name: NamedLevel,
  powerLevels: ContentHolder | undefined,
  version: RoomVersion,
): number {
  return namedPowerLevelFrom(name, powerLevels, version, useDefault(POWER_LEVEL_DEFAULTS[name]));
}

// ---------------------------------------------------------------------------------------------
// Whole-content parse

/** A power levels event read into numbers, defaults filled in. */
export interface PowerLevels {
  readonly users: ReadonlyMap<string, number>;
  readonly users_default: number;
  readonly events: ReadonlyMap<string, number>;
  readonly events_default: number;
  readonly state_default: number;
  readonly ban: number;
  readonly kick: number;
  readonly redact: number;
  readonly invite: number;
  /** Keys of `notifications` (`room` defaults to 50 per the schema, not filled in here). */
  readonly notifications: ReadonlyMap<string, number>;
}

export interface ParsedPowerLevels {
  /** The levels, each malformed value replaced by its default (or left out of a map). */
  readonly levels: PowerLevels;
  /** One message per malformed value; empty when the content is well-formed for the version. */
  readonly problems: readonly string[];
}

function parseLevelMap(
  value: unknown,
  name: string,
  version: RoomVersion,
  problems: string[],
): Map<string, number> {
  const map = new Map<string, number>();
  if (value === undefined || value === null) return map;
  if (!isJsonObject(value)) {
    problems.push(`\`${name}\` in m.room.power_levels is not an object`);
    return map;
  }
  for (const [key, raw] of Object.entries(value)) {
    const level = parsePowerLevelValue(raw, version);
    if (level === undefined)
      problems.push(`\`${name}.${key}\` in m.room.power_levels is not a valid power level`);
    else map.set(key, level);
  }
  return map;
}

/**
 * Reads a whole `m.room.power_levels` content for `version`, applying the string/float rules
 * of v1–v9 and the integers-only rule of v10+. Never throws: anything malformed is reported
 * in `problems` and replaced by its default.
 */
export function parsePowerLevelsContent(content: unknown, version: RoomVersion): ParsedPowerLevels {
  const problems: string[] = [];
  const object = isJsonObject(content) ? content : {};
  if (!isJsonObject(content)) problems.push('m.room.power_levels content is not an object');
  const top = {} as Record<TopLevelField, number>;
  for (const field of TOP_LEVEL_FIELDS) {
    top[field] = readLevel(object, [field], POWER_LEVEL_DEFAULTS[field], version, (problem) => {
      problems.push(problem);
      return POWER_LEVEL_DEFAULTS[field];
    });
  }
  return {
    levels: {
      ...top,
      users: parseLevelMap(object.users, 'users', version, problems),
      events: parseLevelMap(object.events, 'events', version, problems),
      notifications: parseLevelMap(object.notifications, 'notifications', version, problems),
    },
    problems,
  };
}
