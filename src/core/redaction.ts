/**
 * The redaction algorithm of every room version — rooms/fragments/v1-redactions.md,
 * v6-redactions.md, rooms/v8.md "Redactions", v9-redactions.md, v11-redactions.md
 * (v12 reuses v11 unchanged: rooms/v12.md "Unchanged from v11").
 *
 * Redaction decides what a signature and a reference hash cover (server-server-api.md
 * "Signing Events"), so the key lists must match every other server's byte for byte.
 * They are kept as data, one table per algorithm, read through `RoomVersion.redaction`.
 */
import type { JsonObject, JsonValue } from './canonical-json.ts';
import type { IdentifiedPdu, Pdu } from './pdu.ts';
import type { RoomVersion } from './room-versions.ts';

/** What survives of one event type's `content`. */
export interface ContentRedactionRule {
  /** Keys of `content` that are kept whole; `'all'` keeps the whole content. */
  readonly keep: readonly string[] | 'all';
  /**
   * Keys of `content` whose value, when it is an object, is kept with only these keys
   * (v11: `m.room.member` keeps `third_party_invite.signed`).
   */
  readonly keepWithin?: Readonly<Record<string, readonly string[]>>;
}

export interface RedactionRules {
  /** Top-level keys of the event that are kept; every other key is removed. */
  readonly topLevel: readonly string[];
  /** Per event type, what of `content` is kept; types not listed keep an empty `content`. */
  readonly content: ReadonlyMap<string, ContentRedactionRule>;
}

const TOP_LEVEL_V1 = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'prev_state',
  'auth_events',
  'origin',
  'origin_server_ts',
  'membership',
] as const;

/** v11 (MSC2176) stops protecting the top-level `origin`, `membership` and `prev_state`. */
const TOP_LEVEL_V11 = TOP_LEVEL_V1.filter(
  (key) => key !== 'prev_state' && key !== 'origin' && key !== 'membership',
);

const POWER_LEVELS_V1 = [
  'ban',
  'events',
  'events_default',
  'kick',
  'redact',
  'state_default',
  'users',
  'users_default',
] as const;

const v1Content: Record<string, ContentRedactionRule> = {
  'm.room.member': { keep: ['membership'] },
  'm.room.create': { keep: ['creator'] },
  'm.room.join_rules': { keep: ['join_rule'] },
  'm.room.power_levels': { keep: POWER_LEVELS_V1 },
  'm.room.aliases': { keep: ['aliases'] },
  'm.room.history_visibility': { keep: ['history_visibility'] },
};

/** v6 (MSC2432) removes all special meaning of `m.room.aliases`. */
const { 'm.room.aliases': _aliases, ...v6Content } = v1Content;

/** v8 (MSC3083) keeps the `allow` list of restricted join rules. */
const v8Content: Record<string, ContentRedactionRule> = {
  ...v6Content,
  'm.room.join_rules': { keep: ['join_rule', 'allow'] },
};

/** v9 (MSC3375) keeps the authorising user of restricted joins. */
const v9Content: Record<string, ContentRedactionRule> = {
  ...v8Content,
  'm.room.member': { keep: ['membership', 'join_authorised_via_users_server'] },
};

/** v11 (MSC2176, MSC3821, MSC2174). */
const v11Content: Record<string, ContentRedactionRule> = {
  ...v9Content,
  'm.room.member': {
    keep: ['membership', 'join_authorised_via_users_server'],
    keepWithin: { third_party_invite: ['signed'] },
  },
  'm.room.create': { keep: 'all' },
  'm.room.power_levels': { keep: [...POWER_LEVELS_V1, 'invite'] },
  'm.room.redaction': { keep: ['redacts'] },
};

const rules = (topLevel: readonly string[], content: Record<string, ContentRedactionRule>): RedactionRules =>
  Object.freeze({ topLevel: Object.freeze([...topLevel]), content: new Map(Object.entries(content)) });

/** Every redaction algorithm, by the name a `RoomVersion` gives it. */
export const REDACTION_RULES: Readonly<Record<RoomVersion['redaction'], RedactionRules>> = Object.freeze({
  v1: rules(TOP_LEVEL_V1, v1Content),
  v6: rules(TOP_LEVEL_V1, v6Content),
  v8: rules(TOP_LEVEL_V1, v8Content),
  v9: rules(TOP_LEVEL_V1, v9Content),
  v11: rules(TOP_LEVEL_V11, v11Content),
});

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy, so a redacted event shares nothing mutable with the event it came from. */
function cloneJson<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const item = cloneJson(value[key]);
      // As parsed JSON holds it: an own `__proto__` stays a property, never the prototype.
      if (key === '__proto__')
        Object.defineProperty(out, key, {
          value: item,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else out[key] = item;
    }
    return out as T;
  }
  return value;
}

/** Copies (for `redact`, whose result shares nothing) or shares (for `redactedView`) a kept value. */
type Keep = <T>(value: T) => T;
const share: Keep = (value) => value;

function redactContent(content: unknown, rule: ContentRedactionRule | undefined, keep: Keep): JsonObject {
  const out: JsonObject = {};
  if (!rule || !isObject(content)) return out;
  if (rule.keep === 'all') return keep(content as JsonObject);
  for (const key of rule.keep) {
    if (Object.hasOwn(content, key) && content[key] !== undefined) out[key] = keep(content[key] as JsonValue);
  }
  for (const [key, innerKeys] of Object.entries(rule.keepWithin ?? {})) {
    const inner = Object.hasOwn(content, key) ? content[key] : undefined;
    // Synapse, the reference implementation, keeps an object here even when none of its keys
    // survive, and drops a non-object value; following it keeps reference hashes in agreement.
    if (!isObject(inner)) continue;
    const kept: JsonObject = {};
    for (const innerKey of innerKeys) {
      if (Object.hasOwn(inner, innerKey) && inner[innerKey] !== undefined) {
        kept[innerKey] = keep(inner[innerKey] as JsonValue);
      }
    }
    out[key] = kept;
  }
  return out;
}

/**
 * Each algorithm's top-level keys sorted: the redacted event receives its keys in canonical
 * order, so that encoding it (what signatures and reference hashes cover) need not copy it
 * again to sort them.
 */
const SORTED_TOP_LEVEL = new Map<RedactionRules, readonly string[]>(
  Object.values(REDACTION_RULES).map((table) => [table, [...table.topLevel].sort()]),
);

function redactWith(pdu: Pdu, version: RoomVersion, keep: Keep, omit?: ReadonlySet<string>): Pdu {
  const table = REDACTION_RULES[version.redaction];
  const source = pdu as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of SORTED_TOP_LEVEL.get(table) ?? table.topLevel) {
    if (key === 'content') {
      const type = typeof source.type === 'string' ? source.type : undefined;
      out.content = redactContent(
        source.content,
        type === undefined ? undefined : table.content.get(type),
        keep,
      );
      continue;
    }
    if (omit?.has(key) || !Object.hasOwn(source, key) || source[key] === undefined) continue;
    out[key] = keep(source[key]);
  }
  return out as Pdu;
}

/**
 * The redacted form of an event under the room version's algorithm: every top-level key
 * not in the version's list is removed (including `unsigned`), and `content` keeps only
 * what its event type protects. Returns a new object; the input is never modified.
 * A `content` that is not an object redacts to `{}` rather than throwing.
 */
export function redact(pdu: IdentifiedPdu, version: RoomVersion): IdentifiedPdu;
export function redact(pdu: Pdu, version: RoomVersion): Pdu;
export function redact(pdu: Pdu, version: RoomVersion): Pdu {
  return redactWith(pdu, version, cloneJson);
}

/**
 * `redact`, less the top-level keys in `omit`, as a *view*: the kept values are the
 * input's own, not copies. For encoding what a signature or reference hash covers (the
 * result is serialised and dropped), where copying the event each time is wasted work;
 * never for keeping or handing out.
 */
export function redactedView(pdu: Pdu, version: RoomVersion, omit?: ReadonlySet<string>): Pdu {
  return redactWith(pdu, version, share, omit);
}

/** The content keys an event type keeps under a room version, for callers that explain redactions. */
export function redactionRuleFor(type: string, version: RoomVersion): ContentRedactionRule | undefined {
  return REDACTION_RULES[version.redaction].content.get(type);
}
