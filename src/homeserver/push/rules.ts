/**
 * Push rules as data — client-server-api "Push Notifications" → "Push Rules" (kinds and their
 * order), "Actions", "Conditions" and "Predefined Rules" (modules/push.md), and the shapes of
 * data/api/client-server/definitions/push_rule.yaml and push_ruleset.yaml.
 *
 * Only the user's own rules and the user's changes to server-default rules (`enabled`,
 * `actions`) are stored; the defaults are computed here for each user and merged in
 * (`assembleRuleset`), so a new server version brings new default rules to every account.
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import type { PushRuleRecord } from '../../storage/store.ts';

export type PushRuleKind = PushRuleRecord['kind'];

/** The kinds in the order they are checked ("Push Rules": override → content → room → sender → underride). */
export const RULE_KINDS: readonly PushRuleKind[] = Object.freeze([
  'override',
  'content',
  'room',
  'sender',
  'underride',
]);

/** `"notify"` or a `{ "set_tweak": …, "value": … }` object ("Actions"). */
export type PushAction = string | JsonObject;

/**
 * A condition of an override or underride rule. Its `kind` decides which other keys count;
 * a kind this server does not know is kept as given and never matches ("Conditions").
 */
export type PushCondition = JsonObject & { kind: string };

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: PushAction[];
  /** Override and underride rules only. */
  conditions?: PushCondition[];
  /** Content rules only: a glob matched against `content.body` at word boundaries. */
  pattern?: string;
}

export type Ruleset = Record<PushRuleKind, PushRule[]>;

/** Marks the rule IDs reserved for server-default rules (modules/push.md "Predefined Rules"). */
export const SERVER_DEFAULT_PREFIX = '.';

/** The one default rule that stays above the user's own override rules ("`.m.rule.master`"). */
export const MASTER_RULE_ID = '.m.rule.master';

/**
 * Actions older versions of the spec defined and clients may still send: "Clients and
 * homeservers MUST ignore these actions, for instance, by stripping them" ("Historical Actions").
 */
export const HISTORICAL_ACTIONS: ReadonlySet<string> = new Set(['dont_notify', 'coalesce']);

/** Drops historical actions (and anything that is neither a string nor an object, which no action is). */
export function stripHistoricalActions(actions: readonly JsonValue[]): PushAction[] {
  return actions.filter((action): action is PushAction =>
    typeof action === 'string'
      ? !HISTORICAL_ACTIONS.has(action)
      : typeof action === 'object' && action !== null && !Array.isArray(action),
  );
}

const notifyWithSound = (sound: string): PushAction[] => ['notify', { set_tweak: 'sound', value: sound }];
const eventMatch = (key: string, pattern: string): PushCondition => ({ kind: 'event_match', key, pattern });
const propertyIs = (key: string, value: JsonValue): PushCondition => ({
  kind: 'event_property_is',
  key,
  value,
});

/**
 * The conditions of the server-default rules that do not name the user: one frozen object
 * each, shared by every user's defaults, so that one event's evaluation for many members
 * matches each of them once (evaluate.ts `PreparedEvent.once`).
 */
const frozen = (condition: PushCondition): PushCondition => Object.freeze(condition);
const SHARED = Object.freeze({
  notice: frozen(eventMatch('content.msgtype', 'm.notice')),
  member: frozen(eventMatch('type', 'm.room.member')),
  invite: frozen(eventMatch('content.membership', 'invite')),
  roomMention: frozen(propertyIs('content.m\\.mentions.room', true)),
  roomPermission: frozen({ kind: 'sender_notification_permission', key: 'room' }),
  tombstone: frozen(eventMatch('type', 'm.room.tombstone')),
  emptyStateKey: frozen(eventMatch('state_key', '')),
  reaction: frozen(eventMatch('type', 'm.reaction')),
  serverAcl: frozen(eventMatch('type', 'm.room.server_acl')),
  edit: frozen(propertyIs('content.m\\.relates_to.rel_type', 'm.replace')),
  call: frozen(eventMatch('type', 'm.call.invite')),
  twoMembers: frozen({ kind: 'room_member_count', is: '2' }),
  encrypted: frozen(eventMatch('type', 'm.room.encrypted')),
  message: frozen(eventMatch('type', 'm.room.message')),
});

/**
 * The server-default rules of the current spec, in its order ("Default Override Rules",
 * "Default Underride Rules"). v1.17 removed the legacy rules that matched mentions in the body
 * (`.m.rule.contains_display_name`, `.m.rule.contains_user_name`, `.m.rule.roomnotif`, MSC4210),
 * so there are no default content, room or sender rules. The rules are new objects for each
 * call; their conditions that do not name the user are shared (`SHARED`, frozen).
 */
export function defaultRuleset(userId: string): Ruleset {
  const rule = (
    rule_id: string,
    conditions: PushCondition[],
    actions: PushAction[],
    enabled = true,
  ): PushRule => ({
    rule_id,
    default: true,
    enabled,
    conditions,
    actions,
  });
  return {
    override: [
      rule(MASTER_RULE_ID, [], [], false),
      rule('.m.rule.suppress_notices', [SHARED.notice], []),
      rule(
        '.m.rule.invite_for_me',
        [SHARED.member, SHARED.invite, eventMatch('state_key', userId)],
        notifyWithSound('default'),
      ),
      rule('.m.rule.member_event', [SHARED.member], []),
      rule(
        '.m.rule.is_user_mention',
        [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
        [...notifyWithSound('default'), { set_tweak: 'highlight' }],
      ),
      rule(
        '.m.rule.is_room_mention',
        [SHARED.roomMention, SHARED.roomPermission],
        ['notify', { set_tweak: 'highlight' }],
      ),
      rule(
        '.m.rule.tombstone',
        [SHARED.tombstone, SHARED.emptyStateKey],
        ['notify', { set_tweak: 'highlight' }],
      ),
      rule('.m.rule.reaction', [SHARED.reaction], []),
      rule('.m.rule.room.server_acl', [SHARED.serverAcl, SHARED.emptyStateKey], []),
      rule('.m.rule.suppress_edits', [SHARED.edit], []),
    ],
    content: [],
    room: [],
    sender: [],
    underride: [
      rule('.m.rule.call', [SHARED.call], notifyWithSound('ring')),
      rule(
        '.m.rule.encrypted_room_one_to_one',
        [SHARED.twoMembers, SHARED.encrypted],
        notifyWithSound('default'),
      ),
      rule('.m.rule.room_one_to_one', [SHARED.twoMembers, SHARED.message], notifyWithSound('default')),
      rule('.m.rule.message', [SHARED.message], ['notify']),
      rule('.m.rule.encrypted', [SHARED.encrypted], ['notify']),
    ],
  };
}

/** Whether `ruleId` names a server-default rule of `kind` (for any user: the IDs do not depend on one). */
export function isDefaultRule(kind: PushRuleKind, ruleId: string): boolean {
  return DEFAULT_RULE_IDS[kind].has(ruleId);
}

const DEFAULT_RULE_IDS: Record<PushRuleKind, ReadonlySet<string>> = (() => {
  const defaults = defaultRuleset('@user:example.org');
  const ids = {} as Record<PushRuleKind, ReadonlySet<string>>;
  for (const kind of RULE_KINDS) ids[kind] = new Set(defaults[kind].map((r) => r.rule_id));
  return ids;
})();

/** Freezes a rule and everything in it (its conditions are frozen already or the user's own). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * The server-default rules that do not name the user, one frozen object each, which every
 * assembled ruleset holds (unless the user changed the rule): the rules two users' defaults
 * have alike. One event's evaluation for many members then matches each of them once
 * (evaluate.ts `RuleMatches`).
 */
const SHARED_RULES: ReadonlyMap<string, PushRule> = (() => {
  const one = defaultRuleset('@one:example.org');
  const other = defaultRuleset('@other:example.net');
  const shared = new Map<string, PushRule>();
  for (const kind of RULE_KINDS)
    for (const [i, rule] of one[kind].entries())
      if (JSON.stringify(rule) === JSON.stringify(other[kind][i]))
        shared.set(`${kind}\u0000${rule.rule_id}`, deepFreeze(rule));
  return shared;
})();

/** The stored form of a user rule's own data (`PushRuleRecord.rule`). */
export interface StoredRuleBody {
  conditions?: PushCondition[];
  pattern?: string;
}

/** A stored user-defined rule as the API shows it. */
function userRule(record: PushRuleRecord): PushRule {
  const body = (record.rule ?? {}) as StoredRuleBody;
  const out: PushRule = {
    rule_id: record.ruleId,
    default: false,
    enabled: record.enabled ?? true,
    actions: stripHistoricalActions(record.actions ?? []),
  };
  if (record.kind === 'override' || record.kind === 'underride') {
    out.conditions = Array.isArray(body.conditions) ? body.conditions : [];
  }
  if (record.kind === 'content' && typeof body.pattern === 'string') out.pattern = body.pattern;
  return out;
}

/**
 * The user's whole ruleset: within each kind the user's rules (highest priority first) come
 * before the server-default ones, except `.m.rule.master`, which stays above everything
 * ("Predefined Rules"). `records` is what the store holds, already ordered by kind and priority.
 * The default rules that do not name the user and that the user did not change are shared,
 * frozen objects (`SHARED_RULES`): read only, like the whole ruleset.
 */
export function assembleRuleset(userId: string, records: readonly PushRuleRecord[]): Ruleset {
  const defaults = defaultRuleset(userId);
  const changes = new Map<string, PushRuleRecord>();
  const own: Ruleset = { override: [], content: [], room: [], sender: [], underride: [] };
  for (const record of records) {
    if (record.rule === null) changes.set(`${record.kind}\u0000${record.ruleId}`, record);
    else own[record.kind].push(userRule(record));
  }
  const withChanges = (kind: PushRuleKind, rule: PushRule): PushRule => {
    const change = changes.get(`${kind}\u0000${rule.rule_id}`);
    if (!change) return rule;
    return {
      ...rule,
      enabled: change.enabled ?? rule.enabled,
      actions: change.actions ? stripHistoricalActions(change.actions) : rule.actions,
    };
  };
  const ruleset = {} as Ruleset;
  for (const kind of RULE_KINDS) {
    const serverRules = defaults[kind].map((rule) =>
      withChanges(kind, SHARED_RULES.get(`${kind}\u0000${rule.rule_id}`) ?? rule),
    );
    if (kind === 'override') {
      const master = serverRules.filter((r) => r.rule_id === MASTER_RULE_ID);
      const rest = serverRules.filter((r) => r.rule_id !== MASTER_RULE_ID);
      ruleset[kind] = [...master, ...own[kind], ...rest];
    } else {
      ruleset[kind] = [...own[kind], ...serverRules];
    }
  }
  return ruleset;
}

/** Finds a rule in an assembled ruleset. */
export function findRule(ruleset: Ruleset, kind: PushRuleKind, ruleId: string): PushRule | undefined {
  return ruleset[kind].find((rule) => rule.rule_id === ruleId);
}
