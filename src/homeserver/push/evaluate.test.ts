import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import {
  conditionMatches,
  evaluate,
  outcomeOf,
  parseMemberCount,
  prepareEvent,
  type RoomFacts,
  type RuleMatches,
} from './evaluate.ts';
import { assembleRuleset, defaultRuleset, type PushCondition, type PushRule, type Ruleset } from './rules.ts';

const ME = '@me:example.org';
const OTHER = '@other:example.org';
const ROOM = '!room:example.org';

function facts(overrides: Partial<RoomFacts> = {}): RoomFacts {
  return {
    userId: ME,
    roomId: ROOM,
    memberCount: 5,
    displayName: 'Mia',
    senderPowerLevel: 0,
    notificationLevel: () => 50,
    ...overrides,
  };
}

function event(fields: JsonObject = {}) {
  return prepareEvent({
    type: 'm.room.message',
    sender: OTHER,
    room_id: ROOM,
    content: { msgtype: 'm.text', body: 'hello' },
    ...fields,
  });
}

const message = (content: JsonObject, extra: JsonObject = {}) =>
  event({ content: { msgtype: 'm.text', ...content }, ...extra });

/** Runs the default ruleset (optionally changed) and reports the matching rule and outcome. */
function run(
  ev: ReturnType<typeof event>,
  f: Partial<RoomFacts> = {},
  ruleset: Ruleset = defaultRuleset(ME),
) {
  const { matched, outcome } = evaluate(ruleset, ev, facts(f));
  return {
    rule: matched?.rule.rule_id ?? null,
    notify: outcome.notify,
    highlight: outcome.highlight,
    sound: outcome.sound,
  };
}

describe('conditions', () => {
  const check = (condition: PushCondition, ev = event(), f: Partial<RoomFacts> = {}) =>
    conditionMatches(condition, ev, facts(f));

  it('event_match needs a string value, even for pattern "*"', () => {
    expect(check({ kind: 'event_match', key: 'type', pattern: 'm.room.*' })).toBe(true);
    expect(check({ kind: 'event_match', key: 'content.missing', pattern: '*' })).toBe(false);
    expect(check({ kind: 'event_match', key: 'content.n', pattern: '*' }, message({ n: 1 }))).toBe(false);
    expect(check({ kind: 'event_match', key: 'content.topic', pattern: '*' }, message({ topic: null }))).toBe(
      false,
    );
    expect(check({ kind: 'event_match', key: 'content', pattern: '*' })).toBe(false);
  });

  it('event_match on content.body matches words, on other keys the whole value', () => {
    expect(
      check({ kind: 'event_match', key: 'content.body', pattern: 'lunch' }, message({ body: 'Lunch now?' })),
    ).toBe(true);
    expect(
      check(
        { kind: 'event_match', key: 'content.topic', pattern: 'lunch' },
        message({ topic: 'Lunch now?' }),
      ),
    ).toBe(false);
    expect(
      check(
        { kind: 'event_match', key: 'content.topic', pattern: 'lunc?*' },
        message({ topic: 'Lunch plans' }),
      ),
    ).toBe(true);
  });

  it('event_match reads dotted property names through escapes', () => {
    const ev = message({ 'm.relates_to': { rel_type: 'm.thread' } });
    expect(
      check({ kind: 'event_match', key: 'content.m\\.relates_to.rel_type', pattern: 'm.thread' }, ev),
    ).toBe(true);
    expect(
      check({ kind: 'event_match', key: 'content.m.relates_to.rel_type', pattern: 'm.thread' }, ev),
    ).toBe(false);
  });

  it('event_property_is compares exactly, without casting', () => {
    const ev = event({
      type: 'm.room.create',
      state_key: '',
      content: { 'm.federate': true, n: 1, s: 'true', z: null, f: 1.5 },
    });
    const is = (key: string, value: JsonObject[string]) =>
      check({ kind: 'event_property_is', key, value } as PushCondition, ev);
    expect(is('content.m\\.federate', true)).toBe(true);
    expect(is('content.m\\.federate', 'true')).toBe(false);
    expect(is('content.m\\.federate', 1)).toBe(false);
    expect(is('content.n', 1)).toBe(true);
    expect(is('content.s', 'TRUE')).toBe(false);
    expect(is('content.z', null)).toBe(true);
    expect(is('content.absent', null)).toBe(false);
    expect(is('content.f', 1.5)).toBe(false);
    expect(is('content', null)).toBe(false);
  });

  it('event_property_contains needs an array holding the exact value', () => {
    const ev = event({
      content: { alt_aliases: ['#somewhere:example.org', '#myroom:example.com', { x: 1 }, 7] },
    });
    const contains = (key: string, value: JsonObject[string]) =>
      check({ kind: 'event_property_contains', key, value } as PushCondition, ev);
    expect(contains('content.alt_aliases', '#myroom:example.com')).toBe(true);
    expect(contains('content.alt_aliases', ':example.com')).toBe(false);
    expect(contains('content.alt_aliases', '#MYROOM:example.com')).toBe(false);
    expect(contains('content.alt_aliases', 7)).toBe(true);
    expect(contains('content.alt_aliases', '7')).toBe(false);
    expect(contains('content.missing', 7)).toBe(false);
    expect(contains('type', 'm')).toBe(false);
  });

  it('contains_display_name looks for the name, literally, at word boundaries of the body', () => {
    const cond: PushCondition = { kind: 'contains_display_name' };
    expect(check(cond, message({ body: 'hi mia!' }))).toBe(true);
    expect(check(cond, message({ body: 'hi Miami' }))).toBe(false);
    expect(check(cond, message({ body: 'hi mia' }), { displayName: null })).toBe(false);
    expect(check(cond, message({ body: 'hi M*a' }), { displayName: 'M*a' })).toBe(true);
    expect(check(cond, message({ body: 'hi Mia' }), { displayName: 'M*a' })).toBe(false);
    expect(check(cond, message({ formatted_body: 'mia' }))).toBe(false);
  });

  it('room_member_count compares with ==, <, >, <=, >= (== when no prefix)', () => {
    const count = (is: string, memberCount: number) =>
      check({ kind: 'room_member_count', is }, event(), { memberCount });
    expect(count('2', 2)).toBe(true);
    expect(count('2', 3)).toBe(false);
    expect(count('==2', 2)).toBe(true);
    expect(count('<2', 1)).toBe(true);
    expect(count('<2', 2)).toBe(false);
    expect(count('>2', 3)).toBe(true);
    expect(count('>2', 2)).toBe(false);
    expect(count('<=10', 10)).toBe(true);
    expect(count('<=10', 11)).toBe(false);
    expect(count('>=10', 10)).toBe(true);
    expect(count('>=10', 9)).toBe(false);
    for (const bad of ['', '=2', '=>2', ' 2', '2.0', '-1', 'two', '<']) expect(count(bad, 2)).toBe(false);
    expect(parseMemberCount('>=10')).toEqual({ op: '>=', count: 10 });
    expect(parseMemberCount(2)).toBeNull();
  });

  it('sender_notification_permission compares the sender level with notifications[key]', () => {
    const cond: PushCondition = { kind: 'sender_notification_permission', key: 'room' };
    expect(check(cond, event(), { senderPowerLevel: 50 })).toBe(true);
    expect(check(cond, event(), { senderPowerLevel: 49 })).toBe(false);
    const levels = (key: string) => (key === 'room' ? 10 : 50);
    expect(check(cond, event(), { senderPowerLevel: 10, notificationLevel: levels })).toBe(true);
    expect(
      check({ kind: 'sender_notification_permission', key: 'other' }, event(), {
        senderPowerLevel: 10,
        notificationLevel: levels,
      }),
    ).toBe(false);
    expect(check({ kind: 'sender_notification_permission' }, event(), { senderPowerLevel: 100 })).toBe(false);
  });

  it('unknown condition kinds and malformed conditions never match', () => {
    expect(check({ kind: 'org.example.always' })).toBe(false);
    expect(check({ kind: 'event_match', key: 'type' })).toBe(false);
    expect(check({ kind: 'event_property_is', key: 'type', value: { x: 1 } })).toBe(false);
  });
});

describe('the default rules', () => {
  it('a plain message in a group notifies without highlight (.m.rule.message)', () => {
    expect(run(message({ body: 'hello all' }))).toEqual({
      rule: '.m.rule.message',
      notify: true,
      highlight: false,
      sound: null,
    });
  });

  it('a message in a one-to-one room notifies with sound', () => {
    expect(run(message({ body: 'hi' }), { memberCount: 2 })).toMatchObject({
      rule: '.m.rule.room_one_to_one',
      notify: true,
      sound: 'default',
    });
  });

  it('encrypted events notify: with sound one-to-one, plainly in groups', () => {
    const encrypted = event({
      type: 'm.room.encrypted',
      content: { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'x' },
    });
    expect(run(encrypted, { memberCount: 2 })).toMatchObject({
      rule: '.m.rule.encrypted_room_one_to_one',
      notify: true,
      sound: 'default',
    });
    expect(run(encrypted, { memberCount: 3 })).toMatchObject({
      rule: '.m.rule.encrypted',
      notify: true,
      sound: null,
    });
  });

  it('notices are suppressed, even one-to-one', () => {
    expect(run(message({ msgtype: 'm.notice', body: 'bot says' }), { memberCount: 2 })).toMatchObject({
      rule: '.m.rule.suppress_notices',
      notify: false,
    });
  });

  it('a user mention in m.mentions highlights with sound; the body alone does not (legacy rules are gone)', () => {
    expect(run(message({ body: 'hey', 'm.mentions': { user_ids: [ME] } }))).toEqual({
      rule: '.m.rule.is_user_mention',
      notify: true,
      highlight: true,
      sound: 'default',
    });
    expect(run(message({ body: `hey ${ME} and Mia` }))).toMatchObject({
      rule: '.m.rule.message',
      highlight: false,
    });
    expect(run(message({ body: 'hey', 'm.mentions': { user_ids: [OTHER] } }))).toMatchObject({
      rule: '.m.rule.message',
    });
  });

  it('a room mention highlights only when the sender has the notifications.room level', () => {
    const roomMention = message({ body: '@room look', 'm.mentions': { room: true } });
    expect(run(roomMention, { senderPowerLevel: 50 })).toMatchObject({
      rule: '.m.rule.is_room_mention',
      notify: true,
      highlight: true,
    });
    expect(run(roomMention, { senderPowerLevel: 0 })).toMatchObject({
      rule: '.m.rule.message',
      highlight: false,
    });
    expect(
      run(message({ body: 'x', 'm.mentions': { room: 'true' } }), { senderPowerLevel: 100 }),
    ).toMatchObject({ rule: '.m.rule.message' });
  });

  it('an invite for me notifies with sound; other member events do not', () => {
    const invite = (target: string) =>
      event({ type: 'm.room.member', state_key: target, content: { membership: 'invite' } });
    expect(run(invite(ME))).toMatchObject({ rule: '.m.rule.invite_for_me', notify: true, sound: 'default' });
    expect(run(invite('@someone:example.org'))).toMatchObject({
      rule: '.m.rule.member_event',
      notify: false,
    });
    expect(
      run(event({ type: 'm.room.member', state_key: OTHER, content: { membership: 'join' } }), {
        memberCount: 2,
      }),
    ).toMatchObject({
      rule: '.m.rule.member_event',
      notify: false,
    });
  });

  it('tombstones highlight; reactions, server ACLs and edits are silent', () => {
    expect(
      run(
        event({
          type: 'm.room.tombstone',
          state_key: '',
          content: { body: 'moved', replacement_room: '!n:x' },
        }),
      ),
    ).toMatchObject({
      rule: '.m.rule.tombstone',
      highlight: true,
    });
    expect(run(event({ type: 'm.room.tombstone', content: { body: 'not state' } }))).toMatchObject({
      rule: null,
      notify: false,
    });
    expect(
      run(
        event({
          type: 'm.reaction',
          content: { 'm.relates_to': { rel_type: 'm.annotation', key: '👍', event_id: '$x' } },
        }),
        { memberCount: 2 },
      ),
    ).toMatchObject({
      rule: '.m.rule.reaction',
      notify: false,
    });
    expect(run(event({ type: 'm.room.server_acl', state_key: '', content: { allow: ['*'] } }))).toMatchObject(
      { rule: '.m.rule.room.server_acl', notify: false },
    );
    const edit = message({
      body: '* fixed',
      'm.new_content': { body: 'fixed' },
      'm.relates_to': { rel_type: 'm.replace', event_id: '$x' },
      'm.mentions': { user_ids: [ME] },
    });
    expect(run(edit)).toMatchObject({ rule: '.m.rule.is_user_mention' });
    const plainEdit = message({ body: '* fixed', 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } });
    expect(run(plainEdit, { memberCount: 2 })).toMatchObject({
      rule: '.m.rule.suppress_edits',
      notify: false,
    });
  });

  it('calls ring', () => {
    expect(run(event({ type: 'm.call.invite', content: { call_id: 'c', version: 1 } }))).toMatchObject({
      rule: '.m.rule.call',
      notify: true,
      sound: 'ring',
    });
  });

  it('nothing matches other events, so they do not notify', () => {
    expect(run(event({ type: 'm.room.topic', state_key: '', content: { topic: 'x' } }))).toEqual({
      rule: null,
      notify: false,
      highlight: false,
      sound: null,
    });
  });

  it('the master rule, when enabled, silences everything, mentions included', () => {
    const ruleset = defaultRuleset(ME);
    (ruleset.override[0] as PushRule).enabled = true;
    expect(run(message({ body: 'x', 'm.mentions': { user_ids: [ME] } }), {}, ruleset)).toMatchObject({
      rule: '.m.rule.master',
      notify: false,
    });
    expect(run(message({ body: 'x' }), { memberCount: 2 }, ruleset)).toMatchObject({
      rule: '.m.rule.master',
      notify: false,
    });
  });

  it('a disabled rule is skipped and the next one decides', () => {
    const ruleset = defaultRuleset(ME);
    (ruleset.override.find((r) => r.rule_id === '.m.rule.suppress_notices') as PushRule).enabled = false;
    expect(run(message({ msgtype: 'm.notice', body: 'x' }), {}, ruleset)).toMatchObject({
      rule: '.m.rule.message',
      notify: true,
    });
  });
});

describe('kind order and user rules', () => {
  const withRules = (rules: Partial<Ruleset>): Ruleset => {
    const base = defaultRuleset(ME);
    return {
      override: [base.override[0] as PushRule, ...(rules.override ?? []), ...base.override.slice(1)],
      content: rules.content ?? [],
      room: rules.room ?? [],
      sender: rules.sender ?? [],
      underride: [...(rules.underride ?? []), ...base.underride],
    };
  };
  const rule = (rule_id: string, actions: PushRule['actions'], extra: Partial<PushRule> = {}): PushRule => ({
    rule_id,
    default: false,
    enabled: true,
    actions,
    ...extra,
  });

  it('content rules match the body at word boundaries and beat room, sender and underride rules', () => {
    const ruleset = withRules({
      content: [
        rule('cake', ['notify', { set_tweak: 'sound', value: 'cakealarm.wav' }, { set_tweak: 'highlight' }], {
          pattern: 'cake',
        }),
      ],
      room: [rule(ROOM, [])],
      sender: [rule(OTHER, [])],
    });
    expect(run(message({ body: 'Cake time!' }), {}, ruleset)).toEqual({
      rule: 'cake',
      notify: true,
      highlight: true,
      sound: 'cakealarm.wav',
    });
    expect(run(message({ body: 'pancakes' }), {}, ruleset)).toMatchObject({ rule: ROOM, notify: false });
  });

  it('room rules apply to their room only; sender rules to their sender only', () => {
    const ruleset = withRules({
      room: [rule('!elsewhere:example.org', [])],
      sender: [rule(OTHER, ['notify', { set_tweak: 'highlight', value: false }])],
    });
    expect(run(message({ body: 'x' }), {}, ruleset)).toEqual({
      rule: OTHER,
      notify: true,
      highlight: false,
      sound: null,
    });
    expect(run(message({ body: 'x' }, { sender: '@third:example.org' }), {}, ruleset)).toMatchObject({
      rule: '.m.rule.message',
    });
  });

  it('a user override beats the default overrides (except master); a user underride only the default underrides', () => {
    const mute: PushRule = rule('mute-room', [], {
      conditions: [{ kind: 'event_match', key: 'room_id', pattern: ROOM }],
    });
    expect(
      run(message({ body: 'x', 'm.mentions': { user_ids: [ME] } }), {}, withRules({ override: [mute] })),
    ).toMatchObject({ rule: 'mute-room', notify: false });
    const beer = rule('beer', ['notify', { set_tweak: 'sound', value: 'beeroclock.wav' }], {
      conditions: [
        { kind: 'event_match', key: 'content.body', pattern: 'beer' },
        { kind: 'room_member_count', is: '<=10' },
      ],
    });
    const ruleset = withRules({ underride: [beer] });
    expect(run(message({ body: 'beer?' }), { memberCount: 10 }, ruleset)).toMatchObject({
      rule: 'beer',
      sound: 'beeroclock.wav',
    });
    expect(run(message({ body: 'beer?' }), { memberCount: 11 }, ruleset)).toMatchObject({
      rule: '.m.rule.message',
    });
    expect(run(message({ body: 'beer?', 'm.mentions': { user_ids: [ME] } }), {}, ruleset)).toMatchObject({
      rule: '.m.rule.is_user_mention',
    });
  });

  it('a rule with no conditions always matches; one with an unknown condition never does', () => {
    expect(
      run(
        event({ type: 'org.example.custom', content: {} }),
        {},
        withRules({ underride: [rule('all', ['notify'], { conditions: [] })] }),
      ),
    ).toMatchObject({ rule: 'all', notify: true });
    expect(
      run(
        event({ type: 'org.example.custom', content: {} }),
        {},
        withRules({
          underride: [rule('odd', ['notify'], { conditions: [{ kind: 'org.example.unknown' }] })],
        }),
      ),
    ).toMatchObject({ rule: null });
  });
});

describe('actions', () => {
  it('notify, sound and highlight (valueless highlight is true, highlight false is false)', () => {
    expect(outcomeOf(['notify', { set_tweak: 'highlight' }])).toMatchObject({
      notify: true,
      highlight: true,
    });
    expect(outcomeOf(['notify', { set_tweak: 'highlight', value: false }])).toMatchObject({
      notify: true,
      highlight: false,
    });
    expect(outcomeOf([{ set_tweak: 'sound', value: 'ring' }])).toMatchObject({
      notify: false,
      sound: 'ring',
    });
    expect(outcomeOf(['notify', { set_tweak: 'org.example.flash', value: 'red' }]).tweaks).toEqual({
      'org.example.flash': 'red',
    });
  });

  it('ignores the historical actions: ["dont_notify"] is the same as []', () => {
    expect(outcomeOf(['dont_notify'])).toEqual(outcomeOf([]));
    expect(outcomeOf(['coalesce', 'notify'])).toMatchObject({ notify: true });
  });
});

describe('one event, many members', () => {
  const members = Array.from({ length: 40 }, (_, i) => `@member${i}:example.org`);

  it('matches each shared default condition once, and each member gets what a fresh evaluation gives', () => {
    const mentioned = members[7] as string;
    const ev = event({ content: { msgtype: 'm.text', body: 'hi', 'm.mentions': { user_ids: [mentioned] } } });
    let computed = 0;
    const once = ev.once;
    ev.once = (condition, match) =>
      once(condition, () => {
        computed++;
        return match();
      });
    const outcomes = members.map((userId) => {
      const { matched, outcome } = evaluate(defaultRuleset(userId), ev, facts({ userId }));
      return [matched?.rule.rule_id, outcome.highlight];
    });
    for (const [i, userId] of members.entries()) {
      const { matched, outcome } = evaluate(
        defaultRuleset(userId),
        message({ body: 'hi', 'm.mentions': { user_ids: [mentioned] } }),
        facts({ userId }),
      );
      expect(outcomes[i]).toEqual([matched?.rule.rule_id, outcome.highlight]);
    }
    expect(outcomes[7]).toEqual(['.m.rule.is_user_mention', true]);
    expect(outcomes[0]).toEqual(['.m.rule.message', false]);
    // The shared conditions are matched once for all members; only the one naming each
    // member (its mention) is matched per member — not every condition of every ruleset.
    const shared = new Set(
      Object.values(defaultRuleset(ME))
        .flat()
        .flatMap((rule) => rule.conditions ?? [])
        .filter((c) => Object.isFrozen(c)),
    );
    expect(shared.size).toBeGreaterThan(5);
    expect(computed).toBeLessThanOrEqual(shared.size + members.length);
  });

  it('keeps the shared conditions frozen, so no ruleset can change another member’s', () => {
    const condition = (defaultRuleset(ME).underride.find((r) => r.rule_id === '.m.rule.message') as PushRule)
      .conditions?.[0] as PushCondition;
    expect(Object.isFrozen(condition)).toBe(true);
    expect(defaultRuleset(OTHER).underride.at(-2)?.conditions?.[0]).toBe(condition);
  });
});

describe('one event, many members, one memo of rule answers', () => {
  const members = Array.from({ length: 30 }, (_, i) => `@member${i}:example.org`);
  const mentioned = members[3] as string;
  const mention = () => message({ body: 'hi Mo', 'm.mentions': { user_ids: [mentioned] } });
  const answer = (
    userId: string,
    ruleset: Ruleset,
    ev: ReturnType<typeof event>,
    matches?: RuleMatches,
    displayName = 'Mo',
  ) => {
    const { matched, outcome } = evaluate(ruleset, ev, facts({ userId, displayName }), matches);
    return [matched?.rule.rule_id ?? null, outcome.notify, outcome.highlight];
  };

  it('gives each member what a fresh evaluation gives, matching the shared rules once', () => {
    // member1 turned .m.rule.message off; member2 has a rule on their display name.
    const rulesets = members.map((userId, i) =>
      assembleRuleset(
        userId,
        i === 1
          ? [
              {
                kind: 'underride',
                ruleId: '.m.rule.message',
                priority: 0,
                rule: null,
                enabled: false,
                actions: null,
              },
            ]
          : i === 2
            ? [
                {
                  kind: 'override',
                  ruleId: 'name',
                  priority: 1,
                  rule: { conditions: [{ kind: 'contains_display_name' }] },
                  enabled: true,
                  actions: ['notify', { set_tweak: 'highlight' }],
                },
              ]
            : [],
      ),
    );
    const ev = mention();
    const matches: RuleMatches = new Map();
    const shared = members.map((userId, i) => answer(userId, rulesets[i] as Ruleset, ev, matches));
    const fresh = members.map((userId, i) => answer(userId, rulesets[i] as Ruleset, mention()));
    expect(shared).toEqual(fresh);
    expect(shared[0]).toEqual(['.m.rule.message', true, false]);
    expect(shared[1]).toEqual([null, false, false]);
    expect(shared[2]).toEqual(['name', true, true]);
    expect(shared[3]).toEqual(['.m.rule.is_user_mention', true, true]);
    // The display-name rule answers per member: another name does not match.
    const ev2 = mention();
    const memo: RuleMatches = new Map();
    expect(answer(members[2] as string, rulesets[2] as Ruleset, ev2, memo, 'Mo')).toEqual([
      'name',
      true,
      true,
    ]);
    expect(answer(members[2] as string, rulesets[2] as Ruleset, ev2, memo, 'Zed')).toEqual([
      '.m.rule.message',
      true,
      false,
    ]);
    // The rules every member's defaults share are one object each: the memo holds them once,
    // plus the two rules of each member that name them.
    const sharedRules = new Set(
      rulesets.flatMap((ruleset) => Object.values(ruleset).flat()).filter((r) => Object.isFrozen(r)),
    );
    expect(sharedRules.size).toBeGreaterThan(5);
    expect(matches.size).toBeLessThanOrEqual(sharedRules.size + 2 * members.length + 2);
  });

  it('shares only frozen rules, so an assembled ruleset cannot change another member’s', () => {
    const [a, b] = [assembleRuleset(ME, []), assembleRuleset(OTHER, [])];
    const message = a.underride.find((r) => r.rule_id === '.m.rule.message') as PushRule;
    expect(b.underride.find((r) => r.rule_id === '.m.rule.message')).toBe(message);
    expect(Object.isFrozen(message) && Object.isFrozen(message.actions)).toBe(true);
    // The rules naming the user are their own.
    const mine = a.override.find((r) => r.rule_id === '.m.rule.is_user_mention');
    expect(b.override.find((r) => r.rule_id === '.m.rule.is_user_mention')).not.toBe(mine);
  });
});
