/**
 * Scale: two forks of a room with 10,000 state events resolve correctly (how fast is the
 * benchmark's job, `npm run bench`, not a timed test's). Also checks the synthetic room is
 * deterministic, since the benchmark relies on it.
 */
import { describe, expect, it } from 'vitest';
import { buildForkedRoom } from './bench-fixture.ts';
import { resolveState } from './index.ts';

describe('state resolution at scale', () => {
  it('the synthetic room is the same for the same seed, different for another', () => {
    const a = buildForkedRoom({ stateEvents: 500, seed: 7 });
    const b = buildForkedRoom({ stateEvents: 500, seed: 7 });
    const c = buildForkedRoom({ stateEvents: 500, seed: 8 });
    expect(JSON.stringify([...a.events.values()])).toBe(JSON.stringify([...b.events.values()]));
    expect(JSON.stringify([...a.events.values()])).not.toBe(JSON.stringify([...c.events.values()]));
  });

  for (const roomVersion of ['11', '12']) {
    it(`resolves two forks of 10,000 state events (room v${roomVersion})`, () => {
      const room = buildForkedRoom({ stateEvents: 10_000, changesPerFork: 50, roomVersion });
      const [a, b] = room.stateSets;
      expect(a.size).toBeGreaterThanOrEqual(10_000);
      const conflicted = [...a].filter(([key, id]) => b.get(key) !== id).length;
      expect(conflicted).toBeGreaterThan(20);

      const resolved = resolveState(room.version, room.stateSets, room.getEvent);

      // Every resolved entry comes from one of the forks, and the forks' agreement is kept.
      for (const [key, id] of resolved) expect(id === a.get(key) || id === b.get(key)).toBe(true);
      for (const [key, id] of a) if (b.get(key) === id) expect(resolved.get(key)).toBe(id);
    });
  }
});
