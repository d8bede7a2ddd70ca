/**
 * Runs the JSON authorization scenarios in fixtures/auth/ under every room version they name.
 * Every scenario room is first checked to be a legal history (each event is authorised by the
 * state before it, unless marked `unchecked` or `rejected`), so a deny case fails only
 * through the rule its reason names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuthResult } from './auth/result.ts';
import { authTypesForEvent, checkAuth, checkAuthEventsShape } from './auth.ts';
import {
  type BuiltRoom,
  buildEvent,
  buildRoom,
  type CaseSpec,
  type Outcome,
  outcomeFor,
  parseVersions,
  type Scenario,
  selectAuthState,
} from './fixtures/auth/testing.ts';
import type { IdentifiedPdu } from './pdu.ts';
import { splitStateKey } from './pdu.ts';
import type { RoomVersion } from './room-versions.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'auth');
const files = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.json'))
  .sort();

function assertOutcome(result: AuthResult, outcome: Outcome): void {
  if (outcome === 'allow') {
    expect(result, 'expected the event to be allowed').toEqual({ ok: true });
  } else {
    expect(result.ok, `expected a rejection mentioning "${outcome.deny}"`).toBe(false);
    expect(result.ok ? '' : result.reason).toContain(outcome.deny);
  }
}

/** Every room event must be authorised by the state before it: scenario rooms are real histories. */
function assertLegalHistory(room: BuiltRoom): void {
  let before = new Map() as BuiltRoom['state'];
  for (const [name, event] of room.events) {
    if (!room.unchecked.has(name)) {
      const result = checkAuth(event, selectAuthState(event, before, room.version), room.version);
      expect(result, `room event "${name}" should be authorised (v${room.version.id})`).toEqual({ ok: true });
    }
    before = room.stateAfter.get(name) ?? before;
  }
}

function runCase(scenario: Scenario, spec: CaseSpec, version: RoomVersion): void {
  const room = buildRoom([...(scenario.room ?? []), ...(spec.room ?? [])], version);
  assertLegalHistory(room);
  const event = buildEvent(spec.event, room, spec.event.id ?? 'checked');
  const kind = scenario.kind ?? 'checkAuth';

  if (kind === 'selection') {
    const table = spec.expectTypes ?? {};
    const range = Object.keys(table).find((r) => parseVersions(r).some((v) => v.id === version.id));
    if (range === undefined) throw new Error(`no expectTypes for v${version.id}`);
    const got = authTypesForEvent(event, version).map((key) => splitStateKey(key));
    expect(new Set(got.map((pair) => JSON.stringify(pair)))).toEqual(
      new Set((table[range] ?? []).map((pair) => JSON.stringify(pair))),
    );
    expect(got.length, 'no duplicate pairs').toBe(new Set(got.map((p) => JSON.stringify(p))).size);
    return;
  }

  const rejectedIds = new Set<string>();
  for (const name of [...room.rejected, ...(spec.alsoRejected ?? [])]) {
    const found = room.events.get(name);
    if (found) rejectedIds.add(found.event_id);
  }
  const isRejected = (id: string): boolean => rejectedIds.has(id);

  if (kind === 'shape') {
    const names = spec.supply ?? spec.event.authEvents ?? [];
    const supplied =
      spec.supply || spec.event.authEvents ? names.map((n) => room.events.get(n) as IdentifiedPdu) : [];
    const authEvents = spec.supply || spec.event.authEvents ? supplied : autoAuthEvents(event, room);
    assertOutcome(
      checkAuthEventsShape(event, authEvents, version, { isRejected }),
      outcomeFor(spec.expect, version),
    );
    return;
  }

  // The harness picks auth_events by the selection algorithm, so their shape must be right.
  if (spec.shapeCheck !== false) {
    expect(checkAuthEventsShape(event, autoAuthEvents(event, room), version, { isRejected })).toEqual({
      ok: true,
    });
  }
  const result = checkAuth(event, selectAuthState(event, room.state, version), version);
  assertOutcome(result, outcomeFor(spec.expect, version));
}

function autoAuthEvents(event: IdentifiedPdu, room: BuiltRoom): IdentifiedPdu[] {
  const ids = new Set(event.auth_events.map((ref) => (typeof ref === 'string' ? ref : ref[0])));
  return [...room.events.values()].filter((e) => ids.has(e.event_id));
}

for (const file of files) {
  const scenario = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Scenario;
  describe(`${file}: ${scenario.description}`, () => {
    for (const spec of scenario.cases) {
      const versions = parseVersions(spec.versions ?? scenario.versions ?? '1-12');
      for (const version of versions) {
        it(`${spec.name} [v${version.id}]`, () => runCase(scenario, spec, version));
      }
    }
  });
}

describe('fixture coverage', () => {
  it('every scenario file has at least one allowed and one rejected case', () => {
    for (const file of files) {
      const scenario = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Scenario;
      if (scenario.kind === 'selection') continue;
      const outcomes = scenario.cases.flatMap((c) =>
        parseVersions(c.versions ?? scenario.versions ?? '1-12').map((v) => outcomeFor(c.expect, v)),
      );
      expect(
        outcomes.some((o) => o === 'allow'),
        `${file} has an allowed case`,
      ).toBe(true);
      expect(
        outcomes.some((o) => o !== 'allow'),
        `${file} has a rejected case`,
      ).toBe(true);
    }
  });
});
