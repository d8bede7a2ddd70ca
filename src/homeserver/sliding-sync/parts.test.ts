import { describe, expect, it } from 'vitest';
import { type StateMap, stateKey } from '../../core/pdu.ts';
import { MatrixError } from '../errors.ts';
import { formatPos, fromStored, parsePos, toStored } from './connection.ts';
import { combineConfigs, requiredStateSignature, selectState } from './required-state.ts';
import type { RoomConfig } from './types.ts';

const state: StateMap = new Map([
  [stateKey('m.room.create', ''), '$create'],
  [stateKey('m.room.name', ''), '$name'],
  [stateKey('m.room.member', '@a:x'), '$a'],
  [stateKey('m.room.member', '@b:x'), '$b'],
  [stateKey('m.room.member', '@c:x'), '$c'],
]);
const config = (include: [string | null, string | null][], lazy = false, limit = 1): RoomConfig => ({
  timelineLimit: limit,
  requiredState: {
    include: include.map(([type, key]) => ({ type, stateKey: key })),
    exclude: [],
    lazyMembers: lazy,
  },
});
const picked = (map: StateMap) => [...map.values()].sort();

describe('required_state', () => {
  it('matches exact entries, wildcards, and lazy members of the timeline only', () => {
    expect(picked(selectState(state, combineConfigs([config([['m.room.name', '']])]), new Set()))).toEqual([
      '$name',
    ]);
    expect(
      picked(selectState(state, combineConfigs([config([['m.room.member', null]])]), new Set())),
    ).toEqual(['$a', '$b', '$c']);
    // A type wildcard with lazy members leaves members to the lazy rule.
    const lazy = combineConfigs([config([[null, null]], true)]);
    expect(picked(selectState(state, lazy, new Set(['@b:x'])))).toEqual(['$b', '$create', '$name']);
    // Several rules: the union, lazy if any is.
    const both = combineConfigs([
      config([['m.room.create', '']]),
      config([['m.room.member', '@a:x']], true, 5),
    ]);
    expect(both.timelineLimit).toBe(5);
    expect(picked(selectState(state, both, new Set(['@c:x'])))).toEqual(['$a', '$c', '$create']);
  });

  it('applies exclude, and signs configs the same whatever their order', () => {
    const all = combineConfigs([
      {
        timelineLimit: 0,
        requiredState: {
          include: [{ type: null, stateKey: null }],
          exclude: [{ type: 'm.room.create', stateKey: null }],
          lazyMembers: false,
        },
      },
    ]);
    expect(picked(selectState(state, all, new Set()))).toEqual(['$a', '$b', '$c', '$name']);
    const a = combineConfigs([
      config([
        ['m.room.name', ''],
        ['m.room.create', ''],
      ]),
      config([['x', null]]),
    ]);
    const b = combineConfigs([
      config([['x', null]]),
      config([
        ['m.room.create', ''],
        ['m.room.name', ''],
      ]),
    ]);
    expect(requiredStateSignature(a)).toBe(requiredStateSignature(b));
    expect(requiredStateSignature(a)).not.toBe(
      requiredStateSignature(combineConfigs([config([['x', null]])])),
    );
  });
});

describe('connection state and pos', () => {
  it('round-trips through its stored form', () => {
    const sub = config([['m.room.name', '']], true, 20);
    const original = {
      rooms: new Map([
        ['!a:x', { at: null, requiredState: 'S', timelineLimit: 1, membership: 'join' }],
        ['!b:x', { at: 42, requiredState: 'S', timelineLimit: 1, membership: 'leave' }],
        ['!c:x', { at: 7, requiredState: 'T', timelineLimit: 20, membership: 'invite' }],
      ]),
      subscriptions: new Map([['!a:x', sub]]),
    };
    const stored = JSON.parse(JSON.stringify(toStored(original)));
    expect(fromStored(stored)).toEqual(original);
    // Configs are listed once however many rooms share them.
    expect(stored.configs).toHaveLength(2);
  });

  it('parses its own positions and refuses anything else with M_UNKNOWN_POS', () => {
    const positions = {
      events: 5,
      receipts: 1,
      accountData: 2,
      toDevice: 3,
      deviceLists: 4,
      typing: 0,
      presence: 9,
      partialState: 0,
    };
    expect(parsePos(formatPos(12, positions))).toEqual({ version: 12, positions });
    for (const bad of [
      '',
      '12',
      '.s1_2',
      'x.s1_2_3_4_5_6_7',
      '1.t1_2',
      '01.s1_2_3_4_5_6_7',
      '-1.s1_2_3_4_5_6_7',
    ]) {
      expect(() => parsePos(bad), bad).toThrow(MatrixError);
      try {
        parsePos(bad);
      } catch (err) {
        expect((err as MatrixError).errcode).toBe('M_UNKNOWN_POS');
      }
    }
  });
});
