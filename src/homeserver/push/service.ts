/**
 * The push service — client-server-api "Push Notifications": the user's push rules (data/api/
 * client-server/pushrules.yaml), pushers (pusher.yaml), and "Server behaviour": "When receiving
 * a new event homeservers process push rules for each of the local users in the room
 * (excluding the sender)". The room pipeline calls `notificationsFor` before it persists an
 * event, and stores the answer with it so /sync's unread counts move with the event itself.
 *
 * Push rule changes reach clients as `m.push_rules` global account data: every write moves the
 * account-data stream (the store does that) and wakes the user's /sync; `rulesFor` gives the
 * content and that position.
 */

import type { AuthState } from '../../core/auth/context.ts';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { IdentifiedPdu } from '../../core/pdu.ts';
import { stateKey } from '../../core/pdu.ts';
import { parsePowerLevelsContent, userPowerLevel } from '../../core/power-levels.ts';
import { getRoomVersion, type RoomVersion, roomVersions } from '../../core/room-versions.ts';
import type { PushRuleRecord, PushSettings } from '../../storage/store.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import { badJson, forbidden, invalidParam, matrixError, notFound } from '../errors.ts';
import type { NotifiedRoom } from '../rooms/accept.ts';
import { createKeyedLock } from '../rooms/lock.ts';
import { evaluate, prepareEvent, type RuleMatches } from './evaluate.ts';
import {
  assembleRuleset,
  findRule,
  isDefaultRule,
  type PushAction,
  type PushCondition,
  type PushRule,
  type PushRuleKind,
  type Ruleset,
  SERVER_DEFAULT_PREFIX,
  stripHistoricalActions,
} from './rules.ts';

/** What a client sends to create or replace one of its rules (pushrules.yaml `setPushRule`). */
export interface PushRuleInput {
  actions: PushAction[];
  /** Override and underride rules; absent means none ("a rule with no conditions always matches"). */
  conditions?: PushCondition[];
  /** Content rules: required. */
  pattern?: string;
}

export interface Pusher {
  pushkey: string;
  kind: string;
  app_id: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag?: string;
  lang: string;
  data: JsonObject;
}

/** pusher.yaml `postPusher`; `kind: null` deletes the pusher with this app ID and pushkey. */
export interface PusherInput {
  kind: string | null;
  app_id: string;
  pushkey: string;
  app_display_name?: string;
  device_display_name?: string;
  profile_tag?: string;
  lang?: string;
  data?: JsonObject;
  append?: boolean;
}

export interface Notification {
  userId: string;
  highlight: boolean;
}

export interface PushService {
  /** The user's whole ruleset and the account-data stream position of its last change (0: never changed). */
  rulesFor(userId: string): Promise<{ global: Ruleset; stream: number }>;
  /** The content of the user's `m.push_rules` account data event: `{ global: ruleset }`. */
  pushRulesContent(userId: string): Promise<JsonObject>;
  /** M_NOT_FOUND when the rule does not exist. */
  getRule(userId: string, kind: PushRuleKind, ruleId: string): Promise<PushRule>;
  /** Creates or replaces a user-defined rule; `before`/`after` name another user-defined rule of the kind. */
  putRule(
    userId: string,
    kind: PushRuleKind,
    ruleId: string,
    input: PushRuleInput,
    position?: { before?: string; after?: string },
  ): Promise<void>;
  /** M_NOT_FOUND for an unknown rule, M_FORBIDDEN for a server-default one. */
  deleteRule(userId: string, kind: PushRuleKind, ruleId: string): Promise<void>;
  setEnabled(userId: string, kind: PushRuleKind, ruleId: string, enabled: boolean): Promise<void>;
  setActions(userId: string, kind: PushRuleKind, ruleId: string, actions: PushAction[]): Promise<void>;
  /**
   * The local users the event notifies (joined members and a local invitee, never the sender).
   * `room` is what the caller knows already (accept.ts: the joined members, the state before
   * the event); without it, it is read. Every member is evaluated against one snapshot of
   * the room and of the members' push settings (the store's write-through cache).
   */
  notificationsFor(event: IdentifiedPdu, roomId: string, room?: NotifiedRoom): Promise<Notification[]>;
  pushers(userId: string): Promise<Pusher[]>;
  setPusher(userId: string, input: PusherInput): Promise<void>;
}

/**
 * Where pushers are kept until the store has a table for them: the user's global account data
 * under this (namespaced, non-`m.`) type. Nothing sends to push gateways yet.
 */
export const PUSHERS_ACCOUNT_DATA_TYPE = 'io.hearth.pushers';

/** `notifications.room` and any other key default to 50 (m.room.power_levels schema). */
const DEFAULT_NOTIFICATION_LEVEL = 50;

/** pusher.yaml: "app_id … Max length, 64 chars", "pushkey … Max length, 512 bytes". */
const MAX_APP_ID_CHARS = 64;
const MAX_PUSHKEY_BYTES = 512;
/** pusher.yaml: an http pusher's `data.url` "MUST be an HTTPS URL with a path of /_matrix/push/v1/notify". */
const PUSH_GATEWAY_PATH = '/_matrix/push/v1/notify';

/** Gap left between neighbouring user rules so `before`/`after` can usually insert with one write. */
const PRIORITY_STEP = 1024;

export function createPushService(
  ctx: Pick<HomeserverContext, 'config' | 'store' | 'notifier'>,
): PushService {
  const { store, notifier, config } = ctx;
  // Rule writes read the kind's order, then write: one user's writes go one at a time.
  const lock = createKeyedLock();
  /**
   * Each user's assembled ruleset, by the settings it was made from: the store hands out the
   * same settings object until the user's rules or ignore list change, so an event costs no
   * assembly per member, and a change is seen at once (a new object, not found here).
   */
  const assembled = new WeakMap<PushSettings, Ruleset>();

  const isLocal = (userId: string) => isLocalId(config, userId);

  async function loadRuleset(
    userId: string,
  ): Promise<{ records: PushRuleRecord[]; ruleset: Ruleset; stream: number }> {
    const { rules, stream } = await store.userData.pushRules(userId);
    return { records: rules, ruleset: assembleRuleset(userId, rules), stream };
  }

  function requireRule(ruleset: Ruleset, kind: PushRuleKind, ruleId: string): PushRule {
    const rule = findRule(ruleset, kind, ruleId);
    if (!rule) throw notFound(`No ${kind} push rule ${JSON.stringify(ruleId)}`);
    return rule;
  }

  /** Writes one record and wakes the user's /sync (their `m.push_rules` changed). */
  async function write(userId: string, record: PushRuleRecord): Promise<void> {
    await store.userData.putPushRule(userId, record);
    notifier.notify({ users: [userId] });
  }

  /** The stored record for a rule: the user's own, or a (possibly new) change record for a default. */
  function recordFor(records: readonly PushRuleRecord[], kind: PushRuleKind, ruleId: string): PushRuleRecord {
    return (
      records.find((r) => r.kind === kind && r.ruleId === ruleId) ?? {
        kind,
        ruleId,
        priority: 0,
        rule: null,
        enabled: null,
        actions: null,
      }
    );
  }

  function checkRuleId(kind: PushRuleKind, ruleId: string): void {
    if (ruleId.startsWith(SERVER_DEFAULT_PREFIX)) {
      throw invalidParam(
        `Rule IDs starting with "${SERVER_DEFAULT_PREFIX}" are reserved for server-default rules`,
      );
    }
    if (ruleId.includes('/') || ruleId.includes('\\'))
      throw invalidParam('Rule IDs may not contain slashes or backslashes');
    // "The rule_id of a room rule is always the ID of the room", "of Sender rules … the Matrix user ID".
    if (kind === 'room' && !ruleId.startsWith('!'))
      throw invalidParam('The ID of a room rule must be a room ID');
    if (kind === 'sender' && !ruleId.startsWith('@'))
      throw invalidParam('The ID of a sender rule must be a user ID');
  }

  /**
   * The priority that puts a rule where the client asked among the kind's user rules (highest
   * first): above `before`, below `after`, on top when new and unplaced, unchanged when
   * replaced in place. Returns the records to write when the gap is used up and the kind is
   * renumbered.
   */
  function placeRule(
    records: readonly PushRuleRecord[],
    kind: PushRuleKind,
    ruleId: string,
    position: { before?: string; after?: string },
  ): { priority: number; renumbered: PushRuleRecord[] } {
    const others = records.filter((r) => r.kind === kind && r.rule !== null && r.ruleId !== ruleId);
    const existing = records.find((r) => r.kind === kind && r.rule !== null && r.ruleId === ruleId);
    // "If both after and before are provided, the new or updated rule must be the next most
    // important rule with respect to the rule identified by before."
    const anchorId = position.before ?? position.after;
    if (anchorId === undefined) {
      if (existing) return { priority: existing.priority, renumbered: [] };
      const top = others.length > 0 ? Math.max(...others.map((r) => r.priority)) : 0;
      return { priority: top + PRIORITY_STEP, renumbered: [] };
    }
    const which = position.before !== undefined ? 'before' : 'after';
    if (anchorId === ruleId) throw invalidParam(`A rule cannot be placed relative to itself (${which})`);
    if (anchorId.startsWith(SERVER_DEFAULT_PREFIX) || isDefaultRule(kind, anchorId)) {
      throw invalidParam(`${which}: rules cannot be placed relative to a server-default rule`);
    }
    const at = others.findIndex((r) => r.ruleId === anchorId);
    if (at < 0) throw invalidParam(`${which}: no ${kind} rule ${JSON.stringify(anchorId)}`);
    // `others` is highest first: the new rule goes at index `at` (before) or `at + 1` (after).
    const index = which === 'before' ? at : at + 1;
    const above = others[index - 1]?.priority;
    const below = others[index]?.priority;
    const priority =
      above === undefined
        ? (below as number) + PRIORITY_STEP
        : below === undefined
          ? above - PRIORITY_STEP
          : above / 2 + below / 2;
    if (priority !== above && priority !== below) return { priority, renumbered: [] };
    // Doubles ran out between two neighbours: spread the whole kind out again.
    const count = others.length + 1;
    const renumbered = others.map((r, i) => ({
      ...r,
      priority: (count - (i < index ? i : i + 1)) * PRIORITY_STEP,
    }));
    return { priority: (count - index) * PRIORITY_STEP, renumbered };
  }

  /** The room as accept would give it: read here for a caller that has none of it. */
  async function readRoom(roomId: string): Promise<NotifiedRoom> {
    const [room, stateEvents, joined] = await Promise.all([
      store.rooms.getRoom(roomId),
      store.rooms.currentStateEvents(roomId, ['m.room.power_levels', 'm.room.create']),
      store.rooms.members(roomId, 'join'),
    ]);
    let version: RoomVersion;
    try {
      version = getRoomVersion(room?.roomVersion);
    } catch {
      // An unknown version cannot have been joined; read its power levels the strictest way.
      version = roomVersions['11'] as RoomVersion;
    }
    const state: AuthState = new Map(
      stateEvents.map((e) => [stateKey(e.event.type, e.event.state_key ?? ''), e.event]),
    );
    return { joined: joined.map((m) => m.userId), state, version };
  }

  function ruleFacts(event: IdentifiedPdu, room: NotifiedRoom) {
    const { version } = room;
    const powerLevels = room.state.get(stateKey('m.room.power_levels', ''));
    const create = room.state.get(stateKey('m.room.create', ''));
    const memberCount = room.joined.length;
    const senderPowerLevel = userPowerLevel(event.sender, powerLevels, create, version);
    const notifications = notificationLevels(powerLevels?.content, version);
    return {
      memberCount,
      senderPowerLevel,
      notificationLevel: (key: string) => notifications.get(key) ?? DEFAULT_NOTIFICATION_LEVEL,
    };
  }

  /** `notifications` of a power levels content, parsed once per content object (events are not changed). */
  const parsedNotifications = new WeakMap<
    object,
    { version: RoomVersion; levels: ReadonlyMap<string, number> }
  >();
  function notificationLevels(
    content: object | undefined,
    version: RoomVersion,
  ): ReadonlyMap<string, number> {
    const known = content && parsedNotifications.get(content);
    if (known && known.version === version) return known.levels;
    const levels = parsePowerLevelsContent(content ?? {}, version).levels.notifications;
    if (content) parsedNotifications.set(content, { version, levels });
    return levels;
  }

  /** Whether a ruleset asks for the display name, once per assembled ruleset (they are kept, not changed). */
  const displayNameUse = new WeakMap<Ruleset, boolean>();
  const usesDisplayName = (ruleset: Ruleset) => {
    let uses = displayNameUse.get(ruleset);
    if (uses === undefined) {
      uses = [...ruleset.override, ...ruleset.underride].some(
        (rule) => rule.enabled && rule.conditions?.some((c) => c.kind === 'contains_display_name'),
      );
      displayNameUse.set(ruleset, uses);
    }
    return uses;
  };

  /**
   * Each recipient's ruleset, or none for one who ignores the sender (modules/ignore_users.md:
   * events from ignored users never reach the user, so never notify).
   */
  function rulesetsFor(
    recipients: Iterable<string>,
    sender: string,
    settings: ReadonlyMap<string, PushSettings>,
  ): Map<string, Ruleset> {
    const rulesets = new Map<string, Ruleset>();
    for (const userId of recipients) {
      const own = settings.get(userId);
      const ignoredUsers = own?.ignoredUsers?.ignored_users;
      if (ignoredUsers && typeof ignoredUsers === 'object' && Object.hasOwn(ignoredUsers, sender)) continue;
      let ruleset = own && assembled.get(own);
      if (!ruleset) {
        ruleset = assembleRuleset(userId, own?.rules ?? []);
        if (own) assembled.set(own, ruleset);
      }
      rulesets.set(userId, ruleset);
    }
    return rulesets;
  }

  /** Display names of the users whose rules match on one, read together (rarely any: no default rule does). */
  async function displayNamesFor(roomId: string, rulesets: ReadonlyMap<string, Ruleset>) {
    const names = new Map<string, string>();
    const wanted = [...rulesets].filter(([, ruleset]) => usesDisplayName(ruleset)).map(([userId]) => userId);
    if (wanted.length === 0) return names;
    const members = await store.rooms.currentStateEventsAt(
      roomId,
      wanted.map((userId) => ['m.room.member', userId] as const),
    );
    for (const member of members) {
      const name = member.event.content.displayname;
      if (typeof name === 'string' && name !== '') names.set(member.event.state_key as string, name);
    }
    return names;
  }

  async function pushers(userId: string): Promise<Pusher[]> {
    const content = await store.userData.getAccountData(userId, PUSHERS_ACCOUNT_DATA_TYPE);
    return Array.isArray(content?.pushers) ? (content.pushers as unknown as Pusher[]) : [];
  }

  return {
    async rulesFor(userId) {
      const { ruleset, stream } = await loadRuleset(userId);
      return { global: ruleset, stream };
    },

    async pushRulesContent(userId) {
      const { ruleset } = await loadRuleset(userId);
      return { global: ruleset } as unknown as JsonObject;
    },

    async getRule(userId, kind, ruleId) {
      const { ruleset } = await loadRuleset(userId);
      return requireRule(ruleset, kind, ruleId);
    },

    putRule(userId, kind, ruleId, input, position = {}) {
      checkRuleId(kind, ruleId);
      const body: JsonObject = {};
      if (kind === 'override' || kind === 'underride') body.conditions = input.conditions ?? [];
      if (kind === 'content') {
        if (typeof input.pattern !== 'string')
          throw matrixError(400, 'M_MISSING_PARAM', 'Content rules need a "pattern"');
        body.pattern = input.pattern;
      }
      const actions = stripHistoricalActions(input.actions);
      return lock.run(userId, async () => {
        const { rules: records } = await store.userData.pushRules(userId);
        const { priority, renumbered } = placeRule(records, kind, ruleId, position);
        const existing = records.find((r) => r.kind === kind && r.ruleId === ruleId && r.rule !== null);
        for (const record of renumbered) await store.userData.putPushRule(userId, record);
        // "When creating push rules, they MUST be enabled by default"; a replaced rule keeps its state.
        await write(userId, {
          kind,
          ruleId,
          priority,
          rule: body,
          enabled: existing?.enabled ?? true,
          actions,
        });
      });
    },

    deleteRule(userId, kind, ruleId) {
      return lock.run(userId, async () => {
        const { ruleset } = await loadRuleset(userId);
        const rule = requireRule(ruleset, kind, ruleId);
        if (rule.default) {
          throw forbidden(
            'Server-default push rules cannot be deleted; disable them through …/enabled instead',
          );
        }
        await store.userData.deletePushRule(userId, kind, ruleId);
        notifier.notify({ users: [userId] });
      });
    },

    setEnabled(userId, kind, ruleId, enabled) {
      return lock.run(userId, async () => {
        const { records, ruleset } = await loadRuleset(userId);
        requireRule(ruleset, kind, ruleId);
        await write(userId, { ...recordFor(records, kind, ruleId), enabled });
      });
    },

    setActions(userId, kind, ruleId, actions) {
      return lock.run(userId, async () => {
        const { records, ruleset } = await loadRuleset(userId);
        requireRule(ruleset, kind, ruleId);
        await write(userId, {
          ...recordFor(records, kind, ruleId),
          actions: stripHistoricalActions(actions),
        });
      });
    },

    async notificationsFor(event, roomId, given) {
      const room = given ?? (await readRoom(roomId));
      const recipients = new Set(room.joined.filter((u) => isLocal(u) && u !== event.sender));
      // An invitee is not joined yet, but `.m.rule.invite_for_me` exists to tell them.
      if (
        event.type === 'm.room.member' &&
        event.content.membership === 'invite' &&
        typeof event.state_key === 'string' &&
        isLocal(event.state_key) &&
        event.state_key !== event.sender
      ) {
        recipients.add(event.state_key);
      }
      if (recipients.size === 0) return [];
      const shared = ruleFacts(event, room);
      const rulesets = rulesetsFor(
        recipients,
        event.sender,
        await store.userData.pushSettings([...recipients]),
      );
      const displayNames = await displayNamesFor(roomId, rulesets);
      // Conditions on `room_id` must work for v12 create events too, which carry none.
      const prepared = prepareEvent({ ...event, room_id: event.room_id ?? roomId });
      const notified: Notification[] = [];
      // One event, one room's facts: each shared rule is matched once for every member.
      const matches: RuleMatches = new Map();
      for (const [userId, ruleset] of rulesets) {
        const displayName = displayNames.get(userId) ?? null;
        const { outcome } = evaluate(ruleset, prepared, { ...shared, userId, roomId, displayName }, matches);
        if (outcome.notify) notified.push({ userId, highlight: outcome.highlight });
      }
      return notified;
    },

    pushers,

    setPusher(userId, input) {
      if (input.app_id.length > MAX_APP_ID_CHARS)
        throw badJson(`"app_id" must be at most ${MAX_APP_ID_CHARS} characters`);
      if (new TextEncoder().encode(input.pushkey).length > MAX_PUSHKEY_BYTES) {
        throw badJson(`"pushkey" must be at most ${MAX_PUSHKEY_BYTES} bytes`);
      }
      let pusher: Pusher | null = null;
      if (input.kind !== null) pusher = checkPusher(input);
      return lock.run(`pushers\u0000${userId}`, async () => {
        const current = await pushers(userId);
        // One pusher per (app_id, pushkey) for the user; `append` concerns other users' pushers,
        // which this per-user storage does not see.
        const kept = current.filter((p) => !(p.app_id === input.app_id && p.pushkey === input.pushkey));
        if (pusher === null && kept.length === current.length) return;
        const next = pusher ? [...kept, pusher] : kept;
        await store.userData.setAccountData(userId, PUSHERS_ACCOUNT_DATA_TYPE, {
          pushers: next as unknown as JsonObject[],
        });
        notifier.notify({ users: [userId] });
      });
    },
  };
}

/** pusher.yaml: the fields required when `kind` is not null, and the `http` pusher's gateway URL. */
function checkPusher(input: PusherInput): Pusher {
  const missing = (['app_display_name', 'device_display_name', 'lang', 'data'] as const).filter(
    (key) => input[key] === undefined,
  );
  if (missing.length > 0)
    throw matrixError(400, 'M_MISSING_PARAM', `Missing parameters: ${missing.join(', ')}`);
  if (input.kind !== 'http') {
    // Email pushers need the address bound to the account (3PIDs), which this server does not keep.
    throw invalidParam(
      `Unsupported pusher kind ${JSON.stringify(input.kind)}: only "http" pushers are supported`,
    );
  }
  const data = input.data as JsonObject;
  if (typeof data.url !== 'string')
    throw matrixError(400, 'M_MISSING_PARAM', '"data.url" is required for http pushers');
  let url: URL;
  try {
    url = new URL(data.url);
  } catch {
    throw invalidParam('"data.url" is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw invalidParam('"data.url" must be an HTTPS URL');
  if (url.pathname !== PUSH_GATEWAY_PATH)
    throw invalidParam(`"data.url" must have the path ${PUSH_GATEWAY_PATH}`);
  const pusher: Pusher = {
    pushkey: input.pushkey,
    kind: input.kind,
    app_id: input.app_id,
    app_display_name: input.app_display_name as string,
    device_display_name: input.device_display_name as string,
    lang: input.lang as string,
    data,
  };
  if (input.profile_tag !== undefined) pusher.profile_tag = input.profile_tag;
  return pusher;
}
