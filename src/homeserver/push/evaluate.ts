/**
 * Push rule evaluation — client-server-api "Push Notifications": "Push Rules" (kinds checked
 * override → content → room → sender → underride, the first enabled matching rule decides,
 * disabled rules never match), "Conditions" (`event_match`, `event_property_is`,
 * `event_property_contains`, `contains_display_name`, `room_member_count`,
 * `sender_notification_permission`; unknown kinds never match) and "Actions" (`notify`,
 * `set_tweak` with `highlight` true when given without a value).
 *
 * Pure: everything about the room (member count, the user's display name, power levels) comes
 * in through `RoomFacts`, so the same code serves the server and tests.
 */
import type { JsonValue } from '../../core/canonical-json.ts';
import {
  type CompiledGlob,
  compileGlob,
  globMatches,
  type PreparedText,
  parsePropertyPath,
  prepareText,
  valueAtPath,
} from './glob.ts';
import {
  HISTORICAL_ACTIONS,
  type PushAction,
  type PushCondition,
  type PushRule,
  type PushRuleKind,
  RULE_KINDS,
  type Ruleset,
} from './rules.ts';

/** What the conditions may ask about the room and the user the rules belong to. */
export interface RoomFacts {
  /** The owner of the ruleset. */
  userId: string;
  roomId: string;
  /** Joined members of the room ("the current number of members in the room"). */
  memberCount: number;
  /** The owner's display name in this room (`m.room.member` content), if any. */
  displayName: string | null;
  /** The sender's power level. */
  senderPowerLevel: number;
  /** The level `notifications[key]` of the power levels requires (the schema's default is 50). */
  notificationLevel(key: string): number;
}

/** One event prepared for evaluation against many rulesets: property lookups and folded text are cached. */
export interface PreparedEvent {
  readonly event: Readonly<Record<string, unknown>>;
  value(key: string): unknown;
  /** The folded code points of a string property value. */
  text(value: string): PreparedText;
  glob(pattern: string, literal?: boolean): CompiledGlob;
  /**
   * Whether `condition`, which depends on the event alone, matches: `match()` the first time
   * this condition object is asked about, then its answer. One event is evaluated for every
   * member of a room, and the server defaults' conditions that do not name the user are the
   * same objects in every member's ruleset (rules.ts), so each is matched once per event.
   */
  once(condition: PushCondition, match: () => boolean): boolean;
}

/** Patterns compiled once for every event (the same rules match event after event); bounded. */
const compiledGlobs = new Map<string, CompiledGlob>();
const MAX_COMPILED_GLOBS = 4096;

export function prepareEvent(event: Readonly<Record<string, unknown>>): PreparedEvent {
  const values = new Map<string, unknown>();
  const texts = new Map<string, PreparedText>();
  const matched = new Map<PushCondition, boolean>();
  return {
    event,
    once(condition, match) {
      let answer = matched.get(condition);
      if (answer === undefined) {
        answer = match();
        matched.set(condition, answer);
      }
      return answer;
    },
    value(key) {
      if (!values.has(key)) values.set(key, valueAtPath(event, parsePropertyPath(key)));
      return values.get(key);
    },
    text(value) {
      let prepared = texts.get(value);
      if (!prepared) {
        prepared = prepareText(value);
        texts.set(value, prepared);
      }
      return prepared;
    },
    glob(pattern, literal = false) {
      const cacheKey = `${literal ? 'l' : 'g'}${pattern}`;
      let compiled = compiledGlobs.get(cacheKey);
      if (!compiled) {
        compiled = compileGlob(pattern, { literal });
        if (compiledGlobs.size >= MAX_COMPILED_GLOBS) compiledGlobs.clear();
        compiledGlobs.set(cacheKey, compiled);
      }
      return compiled;
    },
  };
}

/** The key whose `event_match` uses word-boundary substring matching ("`event_match`"). */
const BODY_KEY = 'content.body';

/** The values `event_property_is` / `_contains` compare: non-compound canonical JSON values. */
function isScalar(value: unknown): value is string | number | boolean | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  return typeof value === 'number' && Number.isSafeInteger(value);
}

const MEMBER_COUNT = /^(==|<=|>=|<|>)?([0-9]+)$/;

/** Parses `room_member_count`'s `is` ("a decimal integer optionally prefixed by ==, <, >, >= or <="). */
export function parseMemberCount(is: unknown): { op: string; count: number } | null {
  if (typeof is !== 'string') return null;
  const match = MEMBER_COUNT.exec(is);
  if (!match) return null;
  const count = Number(match[2]);
  if (!Number.isSafeInteger(count)) return null;
  return { op: match[1] ?? '==', count };
}

/** `room_member_count` conditions parsed once per condition object (conditions are not changed in place). */
const parsedCounts = new WeakMap<PushCondition, { op: string; count: number } | null>();
function memberCountOf(condition: PushCondition): { op: string; count: number } | null {
  let parsed = parsedCounts.get(condition);
  if (parsed === undefined) {
    parsed = parseMemberCount(condition.is);
    parsedCounts.set(condition, parsed);
  }
  return parsed;
}

function compare(actual: number, op: string, expected: number): boolean {
  switch (op) {
    case '<':
      return actual < expected;
    case '>':
      return actual > expected;
    case '<=':
      return actual <= expected;
    case '>=':
      return actual >= expected;
    default:
      return actual === expected;
  }
}

function eventMatch(event: PreparedEvent, key: unknown, pattern: unknown): boolean {
  if (typeof key !== 'string' || typeof pattern !== 'string') return false;
  const value = event.value(key);
  // "If the property … is completely absent from the event, or does not have a string value,
  // then the condition will not match, even if pattern is *."
  if (typeof value !== 'string') return false;
  return globMatches(event.glob(pattern), event.text(value), key === BODY_KEY ? 'words' : 'whole');
}

export function conditionMatches(condition: PushCondition, event: PreparedEvent, facts: RoomFacts): boolean {
  switch (condition.kind) {
    case 'event_match':
      return event.once(condition, () => eventMatch(event, condition.key, condition.pattern));
    case 'event_property_is':
      return event.once(condition, () => {
        if (typeof condition.key !== 'string' || !isScalar(condition.value)) return false;
        const value = event.value(condition.key);
        return isScalar(value) && value === condition.value;
      });
    case 'event_property_contains':
      return event.once(condition, () => {
        if (typeof condition.key !== 'string' || !isScalar(condition.value)) return false;
        const value = event.value(condition.key);
        return Array.isArray(value) && value.some((item) => isScalar(item) && item === condition.value);
      });
    case 'contains_display_name': {
      // Deprecated (v1.17) but still defined: the owner's display name, as literal text, at word boundaries of the body.
      const body = event.value(BODY_KEY);
      if (typeof body !== 'string' || !facts.displayName) return false;
      return globMatches(event.glob(facts.displayName, true), event.text(body), 'words');
    }
    case 'room_member_count': {
      const wanted = memberCountOf(condition);
      return wanted !== null && compare(facts.memberCount, wanted.op, wanted.count);
    }
    case 'sender_notification_permission': {
      if (typeof condition.key !== 'string') return false;
      return facts.senderPowerLevel >= facts.notificationLevel(condition.key);
    }
    default:
      // "Unrecognised conditions MUST NOT match any events, effectively making the push rule disabled."
      return false;
  }
}

/** Whether one rule of `kind` matches; room, sender and content rules carry their condition in their ID or pattern. */
export function ruleMatches(
  kind: PushRuleKind,
  rule: PushRule,
  event: PreparedEvent,
  facts: RoomFacts,
): boolean {
  if (!rule.enabled) return false;
  switch (kind) {
    case 'override':
    case 'underride':
      for (const condition of rule.conditions ?? [])
        if (!conditionMatches(condition, event, facts)) return false;
      return true;
    case 'content':
      return typeof rule.pattern === 'string' && eventMatch(event, BODY_KEY, rule.pattern);
    case 'room':
      return rule.rule_id === facts.roomId;
    case 'sender':
      return rule.rule_id === event.value('sender');
  }
}

export interface MatchedRule {
  kind: PushRuleKind;
  rule: PushRule;
}

/**
 * Whether each rule object matched, for one event in one room evaluated for many members:
 * a rule's answer depends on the event, the room's facts and, through `contains_display_name`
 * alone, on whose ruleset it is (conditions name the user by value, not through the facts).
 * Shared rule objects (rules.ts `SHARED_RULES`) are thus matched once for all members.
 */
export type RuleMatches = Map<PushRule, boolean>;

const asksDisplayName = (rule: PushRule) =>
  rule.conditions?.some((condition) => condition.kind === 'contains_display_name') === true;

/**
 * The first enabled rule that matches, in kind order then rule order; null when none does.
 * `matches`, when given, holds the answers for this event and these facts but the user's
 * (`RuleMatches`).
 */
export function firstMatchingRule(
  ruleset: Ruleset,
  event: PreparedEvent,
  facts: RoomFacts,
  matches?: RuleMatches,
): MatchedRule | null {
  for (const kind of RULE_KINDS) {
    for (const rule of ruleset[kind]) {
      let matched = matches?.get(rule);
      if (matched === undefined) {
        matched = ruleMatches(kind, rule, event, facts);
        if (matches && !asksDisplayName(rule)) matches.set(rule, matched);
      }
      if (matched) return { kind, rule };
    }
  }
  return null;
}

export interface PushOutcome {
  notify: boolean;
  highlight: boolean;
  /** The `sound` tweak, if set. */
  sound: string | null;
  /** Every tweak set, as the push gateway would receive them. */
  tweaks: Record<string, JsonValue>;
}

/** What a rule's actions mean; historical actions are ignored, a valueless `highlight` is true. */
export function outcomeOf(actions: readonly PushAction[]): PushOutcome {
  const tweaks: Record<string, JsonValue> = {};
  let notify = false;
  for (const action of actions) {
    if (typeof action === 'string') {
      if (action === 'notify') notify = true;
      else if (HISTORICAL_ACTIONS.has(action)) continue;
    } else if (typeof action.set_tweak === 'string') {
      const value = action.value;
      tweaks[action.set_tweak] =
        action.set_tweak === 'highlight' && value === undefined ? true : (value ?? null);
    }
  }
  const sound = tweaks.sound;
  return {
    notify,
    highlight: tweaks.highlight === true,
    sound: typeof sound === 'string' ? sound : null,
    tweaks,
  };
}

/** Evaluates a ruleset for one event: the matching rule and what its actions mean (no match: no notification). */
export function evaluate(
  ruleset: Ruleset,
  event: PreparedEvent,
  facts: RoomFacts,
  matches?: RuleMatches,
): { matched: MatchedRule | null; outcome: PushOutcome } {
  const matched = firstMatchingRule(ruleset, event, facts, matches);
  return { matched, outcome: outcomeOf(matched?.rule.actions ?? []) };
}
