import { describe, expect, it } from 'vitest';
import type { PushRuleRecord } from '../../storage/store.ts';
import specRules from './fixtures/spec-default-rules.json' with { type: 'json' };
import {
  assembleRuleset,
  defaultRuleset,
  isDefaultRule,
  RULE_KINDS,
  stripHistoricalActions,
} from './rules.ts';

const ALICE = '@alice:example.org';
const PLACEHOLDER = "[the user's Matrix ID]";

/** The spec's definitions with its placeholder filled in for one user. */
function specFor(userId: string, kind: 'override' | 'underride') {
  return JSON.parse(JSON.stringify(specRules[kind]).replaceAll(PLACEHOLDER, userId));
}

describe('server-default rules', () => {
  const defaults = defaultRuleset(ALICE);

  it('lists exactly the override rules of the spec, in its order, with its conditions and actions', () => {
    expect(defaults.override.map((r) => r.rule_id)).toEqual(specRules.override.map((r) => r.rule_id));
    expect(defaults.override).toEqual(specFor(ALICE, 'override'));
  });

  it('lists exactly the underride rules of the spec, in its order', () => {
    expect(defaults.underride.map((r) => r.rule_id)).toEqual(specRules.underride.map((r) => r.rule_id));
    expect(defaults.underride).toEqual(specFor(ALICE, 'underride'));
  });

  it('has no content, room or sender defaults since v1.17 removed the legacy body-matching rules', () => {
    expect(defaults.content).toEqual([]);
    expect(defaults.room).toEqual([]);
    expect(defaults.sender).toEqual([]);
    const ids = [...defaults.override, ...defaults.underride].map((r) => r.rule_id);
    for (const legacy of [
      '.m.rule.contains_user_name',
      '.m.rule.contains_display_name',
      '.m.rule.roomnotif',
    ]) {
      expect(ids).not.toContain(legacy);
    }
  });

  it('names the user in invite_for_me and is_user_mention', () => {
    const bob = defaultRuleset('@bob:other.example');
    const invite = bob.override.find((r) => r.rule_id === '.m.rule.invite_for_me');
    expect(invite?.conditions).toContainEqual({
      kind: 'event_match',
      key: 'state_key',
      pattern: '@bob:other.example',
    });
    const mention = bob.override.find((r) => r.rule_id === '.m.rule.is_user_mention');
    expect(mention?.conditions?.[0]).toMatchObject({ value: '@bob:other.example' });
  });

  it('every default rule ID starts with a dot, and isDefaultRule knows them per kind', () => {
    for (const kind of RULE_KINDS) {
      for (const rule of defaults[kind]) {
        expect(rule.rule_id.startsWith('.')).toBe(true);
        expect(rule.default).toBe(true);
        expect(isDefaultRule(kind, rule.rule_id)).toBe(true);
      }
    }
    expect(isDefaultRule('underride', '.m.rule.master')).toBe(false);
    expect(isDefaultRule('override', '.m.rule.nonexistent')).toBe(false);
  });
});

describe('assembleRuleset', () => {
  const userRule = (
    kind: PushRuleRecord['kind'],
    ruleId: string,
    priority: number,
    extra: Partial<PushRuleRecord> = {},
  ): PushRuleRecord => ({
    kind,
    ruleId,
    priority,
    rule:
      kind === 'content'
        ? { pattern: 'cake' }
        : kind === 'override' || kind === 'underride'
          ? { conditions: [] }
          : {},
    enabled: true,
    actions: ['notify'],
    ...extra,
  });

  it('puts user overrides after .m.rule.master but before every other default override', () => {
    const ruleset = assembleRuleset(ALICE, [userRule('override', 'mine', 5)]);
    expect(ruleset.override.map((r) => r.rule_id).slice(0, 3)).toEqual([
      '.m.rule.master',
      'mine',
      '.m.rule.suppress_notices',
    ]);
    expect(ruleset.override[1]).toEqual({
      rule_id: 'mine',
      default: false,
      enabled: true,
      actions: ['notify'],
      conditions: [],
    });
  });

  it('puts user underrides before the default underrides and keeps the store order', () => {
    const ruleset = assembleRuleset(ALICE, [
      userRule('underride', 'high', 9),
      userRule('underride', 'low', 1),
    ]);
    expect(ruleset.underride.map((r) => r.rule_id).slice(0, 3)).toEqual(['high', 'low', '.m.rule.call']);
  });

  it('shows content rules with their pattern and room/sender rules without conditions', () => {
    const ruleset = assembleRuleset(ALICE, [
      userRule('content', 'cake', 1),
      userRule('room', '!r:example.org', 1),
      userRule('sender', '@s:example.org', 1),
    ]);
    expect(ruleset.content).toEqual([
      { rule_id: 'cake', default: false, enabled: true, actions: ['notify'], pattern: 'cake' },
    ]);
    expect(ruleset.room).toEqual([
      { rule_id: '!r:example.org', default: false, enabled: true, actions: ['notify'] },
    ]);
    expect(ruleset.sender[0]).not.toHaveProperty('conditions');
  });

  it('applies stored enabled/actions changes to default rules and ignores changes to unknown defaults', () => {
    const ruleset = assembleRuleset(ALICE, [
      { kind: 'override', ruleId: '.m.rule.master', priority: 0, rule: null, enabled: true, actions: null },
      {
        kind: 'underride',
        ruleId: '.m.rule.message',
        priority: 0,
        rule: null,
        enabled: null,
        actions: ['dont_notify'],
      },
      {
        kind: 'content',
        ruleId: '.m.rule.contains_user_name',
        priority: 0,
        rule: null,
        enabled: false,
        actions: null,
      },
    ]);
    expect(ruleset.override[0]).toMatchObject({ rule_id: '.m.rule.master', enabled: true, actions: [] });
    expect(ruleset.underride.find((r) => r.rule_id === '.m.rule.message')).toMatchObject({
      enabled: true,
      actions: [],
    });
    expect(ruleset.content).toEqual([]);
  });

  it('strips historical actions', () => {
    expect(
      stripHistoricalActions([
        'notify',
        'dont_notify',
        'coalesce',
        { set_tweak: 'sound', value: 'x' },
        3,
        null,
      ]),
    ).toEqual(['notify', { set_tweak: 'sound', value: 'x' }]);
  });
});
