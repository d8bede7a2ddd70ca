/**
 * Unit tests of the state resolution building blocks (separation, auth chains, auth
 * difference, conflicted state subgraph, the two orderings), of the error contract, and of the
 * options (`authChains`, `isRejected`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.ts';
import type { IdentifiedPdu, StateMap } from '../pdu.ts';
import { stateKey } from '../pdu.ts';
import { getRoomVersion } from '../room-versions.ts';
import { conflictedStateSubgraph } from './graph.ts';
import {
  authChain,
  authDifference,
  isPowerEvent,
  mainlineOrder,
  resolveState,
  reverseTopologicalPowerOrder,
  separateConflicted,
} from './index.ts';
import { EventLookup } from './lookup.ts';
import { indexEvents, stateOf } from './testing.ts';

const v10 = getRoomVersion('10');
const v12 = getRoomVersion('12');

/** A bare state event for graph tests; only the fields the algorithms read. */
function ev(id: string, auth: string[], extra: Partial<IdentifiedPdu> = {}): IdentifiedPdu {
  return {
    event_id: id,
    room_id: '!r:example.org',
    sender: '@alice:example.org',
    type: 'org.example.test',
    state_key: id,
    content: {},
    origin_server_ts: 0,
    depth: 1,
    prev_events: [],
    auth_events: auth,
    hashes: { sha256: '' },
    signatures: {},
    ...extra,
  };
}

function lookupOf(events: IdentifiedPdu[]) {
  const byId = indexEvents(events);
  return (id: string) => byId.get(id);
}

function loadScenario(name: string) {
  const data = JSON.parse(
    readFileSync(new URL(`../fixtures/state-res/${name}`, import.meta.url), 'utf8'),
  ) as {
    room_version: string;
    events: IdentifiedPdu[];
    state_sets: string[][];
    expected: string[];
  };
  const events = indexEvents(data.events);
  return {
    version: getRoomVersion(data.room_version),
    events,
    getEvent: (id: string) => events.get(id),
    stateSets: data.state_sets.map((ids) => stateOf(ids, events)),
    expected: stateOf(data.expected, events),
  };
}

describe('separateConflicted', () => {
  const k = (name: string) => stateKey('t', name);
  it('keeps a key unconflicted only when every state set has the same event for it', () => {
    const a: StateMap = new Map([
      [k('same'), '$1'],
      [k('differs'), '$2'],
      [k('only-a'), '$3'],
    ]);
    const b: StateMap = new Map([
      [k('same'), '$1'],
      [k('differs'), '$4'],
    ]);
    const { unconflicted, conflicted } = separateConflicted([a, b]);
    expect(unconflicted).toEqual(new Map([[k('same'), '$1']]));
    expect(conflicted).toEqual(
      new Map([
        [k('differs'), new Set(['$2', '$4'])],
        [k('only-a'), new Set(['$3'])],
      ]),
    );
  });

  it('has nothing to split without state sets', () => {
    expect(separateConflicted([])).toEqual({ unconflicted: new Map(), conflicted: new Map() });
  });
});

describe('auth chains', () => {
  // d → c → b → a, and e → a
  const events = [ev('$a', []), ev('$b', ['$a']), ev('$c', ['$b']), ev('$d', ['$c', '$a']), ev('$e', ['$a'])];
  const getEvent = lookupOf(events);

  it('follows auth_events transitively and leaves out the starting events', () => {
    expect(authChain(['$d'], getEvent)).toEqual(new Set(['$c', '$b', '$a']));
    expect(authChain(['$a'], getEvent)).toEqual(new Set());
  });

  it('unions the chains of several events, keeping a start another one reaches', () => {
    expect(authChain(['$c', '$b', '$e'], getEvent)).toEqual(new Set(['$b', '$a']));
  });

  it('terminates on a cycle in malformed input', () => {
    const cyclic = lookupOf([ev('$x', ['$y']), ev('$y', ['$x'])]);
    expect(authChain(['$x'], cyclic)).toEqual(new Set(['$x', '$y']));
  });

  it('auth difference is the union minus the intersection', () => {
    const difference = authDifference([
      new Set(['$a', '$b', '$c']),
      new Set(['$a', '$c', '$d']),
      new Set(['$a', '$c']),
    ]);
    expect(difference).toEqual(new Set(['$b', '$d']));
    expect(authDifference([new Set(['$a'])])).toEqual(new Set());
  });
});

describe('conflicted state subgraph (v2.1)', () => {
  // c1 → x → y → c2 → z, and c1 → w (w reaches no conflicted event)
  const events = [
    ev('$z', []),
    ev('$c2', ['$z']),
    ev('$y', ['$c2']),
    ev('$x', ['$y']),
    ev('$w', []),
    ev('$c1', ['$x', '$w']),
    ev('$lonely', ['$z']),
  ];
  const lookup = new EventLookup(lookupOf(events), v12);

  it('holds the events on auth paths between conflicted events, endpoints included', () => {
    expect(conflictedStateSubgraph(new Set(['$c1', '$c2', '$lonely']), lookup)).toEqual(
      new Set(['$c1', '$x', '$y', '$c2']),
    );
  });

  it('is empty when no conflicted event reaches another', () => {
    expect(conflictedStateSubgraph(new Set(['$c2', '$lonely']), lookup)).toEqual(new Set());
  });
});

describe('reverse topological power ordering', () => {
  const create = ev('$create', [], {
    type: 'm.room.create',
    state_key: '',
    content: { creator: '@alice:example.org' },
  });
  const pl = ev('$pl', ['$create'], {
    type: 'm.room.power_levels',
    state_key: '',
    content: { users: { '@alice:example.org': 100, '@bob:example.org': 50 } },
  });
  const getEvent = lookupOf([
    create,
    pl,
    ev('$bob-late', ['$create', '$pl'], { sender: '@bob:example.org', origin_server_ts: 1 }),
    ev('$alice-later', ['$create', '$pl'], { origin_server_ts: 9 }),
    ev('$alice-b', ['$create', '$pl'], { origin_server_ts: 5 }),
    ev('$alice-a', ['$create', '$pl'], { origin_server_ts: 5 }),
    ev('$child', ['$create', '$pl', '$bob-late'], { origin_server_ts: 0 }),
  ]);

  it('puts auth events first, then greater power, then earlier ts, then smaller ID', () => {
    const ids = ['$child', '$bob-late', '$alice-later', '$alice-b', '$alice-a', '$pl', '$create'];
    // Every rotation of the input, forwards and backwards: the answer may not depend on it.
    for (let i = 0; i < ids.length; i++) {
      const rotated = [...ids.slice(i), ...ids.slice(0, i)];
      for (const input of [rotated, [...rotated].reverse()]) {
        expect(reverseTopologicalPowerOrder(v10, input, getEvent)).toEqual([
          '$create',
          '$pl',
          '$alice-a',
          '$alice-b',
          '$alice-later',
          '$bob-late',
          '$child',
        ]);
      }
    }
  });

  it('gives a v12 creator infinite power, above any listed level', () => {
    const room = loadScenario('v12-creator-power.json');
    const bob = '$v12-creator-pl-bob';
    const alice = '$v12-creator-pl-alice';
    // Bob's change is older, but Alice created the room.
    expect(reverseTopologicalPowerOrder(room.version, [bob, alice], room.getEvent)).toEqual([alice, bob]);
  });

  it('rejects a cycle', () => {
    const cyclic = lookupOf([ev('$x', ['$y']), ev('$y', ['$x'])]);
    expect(() => reverseTopologicalPowerOrder(v10, ['$x', '$y'], cyclic)).toThrow(/cycle/);
  });
});

describe('mainline ordering', () => {
  const pl = (id: string, auth: string[], ts: number) =>
    ev(id, auth, { type: 'm.room.power_levels', state_key: '', origin_server_ts: ts });
  const getEvent = lookupOf([
    pl('$p2', [], 0),
    pl('$p1', ['$p2'], 1),
    pl('$p0', ['$p1'], 2),
    pl('$side', ['$p2'], 3),
    ev('$on-p0', ['$p0'], { origin_server_ts: 1 }),
    ev('$on-p1', ['$p1'], { origin_server_ts: 50 }),
    ev('$on-side', ['$side'], { origin_server_ts: 100 }),
    ev('$no-pl', [], { origin_server_ts: 999 }),
    ev('$on-p0-too', ['$p0'], { origin_server_ts: 1 }),
  ]);

  it('orders by mainline position (∞ and older first), then ts, then ID', () => {
    const order = mainlineOrder(
      v10,
      ['$on-p0-too', '$on-p0', '$on-p1', '$on-side', '$no-pl'],
      '$p0',
      getEvent,
    );
    // $on-side meets the mainline at $p2 (position 2), $on-p1 at $p1 (1), the others at $p0 (0).
    expect(order).toEqual(['$no-pl', '$on-side', '$on-p1', '$on-p0', '$on-p0-too']);
  });

  it('without a power levels event only ts and ID decide', () => {
    expect(mainlineOrder(v10, ['$on-side', '$on-p1', '$no-pl'], undefined, getEvent)).toEqual([
      '$on-p1',
      '$on-side',
      '$no-pl',
    ]);
  });
});

describe('power events', () => {
  it('are power levels, join rules and kicks/bans of someone else', () => {
    const member = (sender: string, target: string, membership: string) =>
      ev('$m', [], { type: 'm.room.member', sender, state_key: target, content: { membership } });
    expect(isPowerEvent(ev('$pl', [], { type: 'm.room.power_levels', state_key: '' }))).toBe(true);
    expect(isPowerEvent(ev('$jr', [], { type: 'm.room.join_rules', state_key: '' }))).toBe(true);
    expect(isPowerEvent(member('@a:x', '@b:x', 'ban'))).toBe(true);
    expect(isPowerEvent(member('@a:x', '@b:x', 'leave'))).toBe(true);
    expect(isPowerEvent(member('@b:x', '@b:x', 'leave'))).toBe(false);
    expect(isPowerEvent(member('@a:x', '@b:x', 'invite'))).toBe(false);
    expect(isPowerEvent(ev('$t', [], { type: 'm.room.topic', state_key: '' }))).toBe(false);
  });
});

describe('resolveState contract', () => {
  it('returns an empty state for no state sets and a copy of a single one', () => {
    expect(resolveState(v10, [], () => undefined)).toEqual(new Map());
    const only: StateMap = new Map([[stateKey('m.room.topic', ''), '$t']]);
    const resolved = resolveState(v10, [only], () => undefined);
    expect(resolved).toEqual(only);
    expect(resolved).not.toBe(only);
  });

  it('does not fetch anything when the state sets agree', () => {
    const same: StateMap = new Map([[stateKey('m.room.topic', ''), '$t']]);
    expect(resolveState(v10, [same, new Map(same)], () => undefined)).toEqual(same);
  });

  it('names a missing event in a BAD_EVENT error', () => {
    const room = loadScenario('ban-vs-power-levels.json');
    const missing = '$ban-vs-pl-pl0';
    const getEvent = (id: string) => (id === missing ? undefined : room.events.get(id));
    for (const version of [room.version, v12, getRoomVersion('1')]) {
      const attempt = () => resolveState(version, room.stateSets, getEvent);
      expect(attempt).toThrow(CoreError);
      expect(attempt).toThrow(new RegExp(`needs event \\${missing}`));
    }
  });

  it('rejects a malformed event with BAD_EVENT, not a TypeError', () => {
    const room = loadScenario('ban-vs-power-levels.json');
    const broken = '$ban-vs-pl-ban-bob';
    const getEvent = (id: string) =>
      id === broken
        ? ({ ...room.events.get(id), auth_events: 'nope' } as unknown as IdentifiedPdu)
        : room.events.get(id);
    const attempt = () => resolveState(room.version, room.stateSets, getEvent);
    expect(attempt).toThrow(CoreError);
    expect(attempt).toThrow(/auth_events/);
    const wrongId = (id: string) => (id === broken ? room.events.get('$ban-vs-pl-pl0') : room.events.get(id));
    expect(() => resolveState(room.version, room.stateSets, wrongId)).toThrow(/event_id/);
  });

  it('v1 needs a depth on the conflicted events', () => {
    const room = loadScenario('v1-power-levels-and-topic.json');
    const getEvent = (id: string) => {
      const event = room.events.get(id);
      return event && id === '$v1-pl-demote'
        ? ({ ...event, depth: undefined } as unknown as IdentifiedPdu)
        : event;
    };
    expect(() => resolveState(room.version, room.stateSets, getEvent)).toThrow(/depth/);
  });
});

describe('options', () => {
  it('uses the given auth chains, and insists on one per state set', () => {
    const room = loadScenario('state-reset-attempt.json');
    const chains = room.stateSets.map((set) => authChain(set.values(), room.getEvent));
    expect(resolveState(room.version, room.stateSets, room.getEvent, { authChains: chains })).toEqual(
      room.expected,
    );
    expect(() =>
      resolveState(room.version, room.stateSets, room.getEvent, { authChains: [chains[0] as Set<string>] }),
    ).toThrow(/2 state sets/);
  });

  it('computes no auth chain of its own when given them', () => {
    const room = loadScenario('topic-forks-tiebreak.json');
    const fetched = new Set<string>();
    const getEvent = (id: string) => {
      fetched.add(id);
      return room.events.get(id);
    };
    // The join rules event is only reachable through auth chains: the topics never need it.
    const joinRules = '$topic-tie-jr0';
    expect(resolveState(room.version, room.stateSets, getEvent)).toEqual(room.expected);
    expect(fetched.has(joinRules)).toBe(true);
    fetched.clear();
    const empty = [new Set<string>(), new Set<string>()];
    expect(resolveState(room.version, room.stateSets, getEvent, { authChains: empty })).toEqual(
      room.expected,
    );
    expect(fetched.has(joinRules)).toBe(false);
  });

  it('never uses a rejected auth event in the iterative auth checks', () => {
    // Dave's rename is allowed only by falling back to his join among its auth events.
    const room = loadScenario('join-rules-vs-join-then-rename.json');
    const rename = '$jr-vs-rejoin-rename-dave';
    expect([...resolveState(room.version, room.stateSets, room.getEvent).values()]).toContain(rename);
    const resolved = resolveState(room.version, room.stateSets, room.getEvent, {
      isRejected: (id) => id === '$jr-vs-rejoin-join-dave',
    });
    expect([...resolved.values()]).not.toContain(rename);
    expect(resolved.has(stateKey('m.room.member', '@dave:example.org'))).toBe(false);
  });
});
