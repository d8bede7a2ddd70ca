/**
 * Property tests: the resolved state depends only on the *sets* of states, never on the order
 * of the state sets or of the entries inside each state map, and repeating a state set changes
 * nothing. Checked on every scenario fixture, the MSC4297 fixtures and seeded synthetic forks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IdentifiedPdu, StateMap } from '../pdu.ts';
import { getRoomVersion, type RoomVersion } from '../room-versions.ts';
import { buildForkedRoom } from './bench-fixture.ts';
import { resolveState } from './index.ts';
import { indexEvents, stateOf } from './testing.ts';

interface Case {
  name: string;
  version: RoomVersion;
  getEvent: (id: string) => IdentifiedPdu | undefined;
  stateSets: StateMap[];
}

function fixtureCases(): Case[] {
  const cases: Case[] = [];
  const dir = new URL('../fixtures/state-res/', import.meta.url);
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
    const data = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as {
      room_version: string;
      events: IdentifiedPdu[];
      state_sets: string[][];
    };
    const events = indexEvents(data.events);
    cases.push({
      name: file,
      version: getRoomVersion(data.room_version),
      getEvent: (id) => events.get(id),
      stateSets: data.state_sets.map((ids) => stateOf(ids, events)),
    });
  }
  const conformance = new URL('../../../test/data/ruma-state-res/fixtures/', import.meta.url);
  for (const [dir, states] of [
    ['MSC4297-problem-A', ['state-bob', 'state-charlie']],
    ['MSC4297-problem-B', ['state-eve', 'state-zara']],
  ] as const) {
    for (const pdus of ['pdus-v11', 'pdus-v12']) {
      const read = (name: string) =>
        JSON.parse(readFileSync(new URL(`${dir}/${name}.json`, conformance), 'utf8'));
      const events = indexEvents(read(pdus) as IdentifiedPdu[]);
      cases.push({
        name: `${dir}/${pdus}`,
        version: getRoomVersion(pdus === 'pdus-v11' ? '11' : '12'),
        getEvent: (id) => events.get(id),
        stateSets: states.map((state) => stateOf(read(state) as string[], events)),
      });
    }
  }
  return cases;
}

/** Fisher–Yates driven by fast-check's integers, so a failure shrinks and replays. */
function permute<T>(items: readonly T[], choices: readonly number[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (choices[i % choices.length] ?? 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const shuffles = fc.record({
  sets: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
  entries: fc.array(fc.nat(), { minLength: 1, maxLength: 32 }),
});

function shuffled(stateSets: readonly StateMap[], choice: { sets: number[]; entries: number[] }): StateMap[] {
  return permute(stateSets, choice.sets).map((set) => new Map(permute([...set], choice.entries)));
}

function sorted(state: StateMap): Array<[string, string]> {
  return [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

describe('resolution ignores input order', () => {
  for (const testCase of fixtureCases()) {
    it(testCase.name, () => {
      const { version, getEvent, stateSets } = testCase;
      const reference = sorted(resolveState(version, stateSets, getEvent));
      fc.assert(
        fc.property(shuffles, (choice) => {
          expect(sorted(resolveState(version, shuffled(stateSets, choice), getEvent))).toEqual(reference);
        }),
        { numRuns: 25 },
      );
    });
  }

  it('on seeded synthetic forks of every state resolution algorithm, with a repeated fork', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.constantFrom('1', '10', '11', '12'),
        shuffles,
        (seed, roomVersion, choice) => {
          const room = buildForkedRoom({ stateEvents: 60, changesPerFork: 12, seed, roomVersion });
          const reference = sorted(resolveState(room.version, room.stateSets, room.getEvent));
          const again = shuffled([...room.stateSets, room.stateSets[0]], choice);
          expect(sorted(resolveState(room.version, again, room.getEvent))).toEqual(reference);
        },
      ),
      { numRuns: 40 },
    );
  });
});
