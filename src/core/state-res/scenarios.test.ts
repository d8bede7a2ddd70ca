/**
 * Hearth's own state resolution scenarios (src/core/fixtures/state-res/*.json): the events of
 * a room, the forks as state sets (lists of event IDs), and the resolved state expected, worked
 * out by hand from the spec and explained in each file's `description`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IdentifiedPdu } from '../pdu.ts';
import { getRoomVersion } from '../room-versions.ts';
import { resolveState } from './index.ts';
import { indexEvents, stateOf } from './testing.ts';

interface Scenario {
  description: string;
  room_version: string;
  events: IdentifiedPdu[];
  state_sets: string[][];
  expected: string[];
}

const dir = new URL('../fixtures/state-res/', import.meta.url);
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort();

describe('state resolution scenarios', () => {
  it('has the scenarios the suite promises', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  for (const file of files) {
    const scenario = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Scenario;
    it(`${file}: ${scenario.description.slice(0, 80)}…`, () => {
      const version = getRoomVersion(scenario.room_version);
      const events = indexEvents(scenario.events);
      const stateSets = scenario.state_sets.map((ids) => stateOf(ids, events));
      const resolved = resolveState(version, stateSets, (id) => events.get(id));
      expect([...resolved.values()].sort()).toEqual([...scenario.expected].sort());
      // Each key is there once, under the event's own (type, state_key).
      expect(resolved).toEqual(stateOf(scenario.expected, events));
    });
  }
});
