/**
 * The ruma state resolution fixtures (test/data/ruma-state-res, a copy of shared/conformance/state-res, read unchanged at test
 * time): every batch case resolved iteratively, file by file and atomically must give the
 * snapshot's state, and the MSC4297 state-map cases must give the v2.0 answer in a v11 room and
 * the v2.1 answer in a v12 room.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IdentifiedPdu, StateMap } from '../pdu.ts';
import { getRoomVersion } from '../room-versions.ts';
import { resolveState } from './index.ts';
import { indexEvents, resolveInBatches, resolveIteratively, stateOf } from './testing.ts';

const root = new URL('../../../test/data/ruma-state-res/', import.meta.url);

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, root), 'utf8')) as T;
}

function pdus(file: string): IdentifiedPdu[] {
  return readJson<IdentifiedPdu[]>(`fixtures/${file}.json`);
}

/** The snapshot's resolved state: the JSON after the second `---` line, as (type, state_key) → ID. */
function snapshot(name: string): Record<string, string> {
  const text = readFileSync(new URL(`snapshots/${name}@resolved_state.snap`, root), 'utf8');
  const lines = text.split('\n');
  const separators = lines.flatMap((line, i) => (line.trim() === '---' ? [i] : []));
  const second = separators[1];
  if (second === undefined) throw new Error(`${name}: no second --- line`);
  const entries = JSON.parse(lines.slice(second + 1).join('\n')) as Array<{
    type: string;
    state_key: string;
    event_id: string;
  }>;
  return Object.fromEntries(entries.map((entry) => [`${entry.type}|${entry.state_key}`, entry.event_id]));
}

function readable(state: StateMap): Record<string, string> {
  return Object.fromEntries([...state].map(([key, id]) => [key.replace('\u0000', '|'), id]));
}

function versionOf(events: readonly IdentifiedPdu[]) {
  const create = events.find((event) => event.type === 'm.room.create');
  return getRoomVersion(create?.content.room_version);
}

const batchCases: Array<[snapshot: string, files: string[]]> = [
  ['minimal_private_chat', ['bootstrap-private-chat']],
  ['minimal_public_chat', ['bootstrap-public-chat']],
  ['origin_server_ts_tiebreak', ['bootstrap-private-chat', 'origin-server-ts-tiebreak']],
  ['ban_vs_power_levels', ['bootstrap-public-chat', 'ban-vs-power-levels-alice', 'ban-vs-power-levels-bob']],
  [
    'topic_vs_power_levels',
    ['bootstrap-public-chat', 'topic-vs-power-levels-alice', 'topic-vs-power-levels-bob'],
  ],
  [
    'power_levels_admin_vs_mod',
    ['bootstrap-public-chat', 'power-levels-admin-vs-mod-alice', 'power-levels-admin-vs-mod-bob'],
  ],
  [
    'topic_vs_ban',
    ['bootstrap-public-chat', 'topic-vs-ban-common', 'topic-vs-ban-alice', 'topic-vs-ban-bob'],
  ],
  [
    'join_rules_vs_join',
    [
      'bootstrap-public-chat',
      'join-rules-vs-join-common',
      'join-rules-vs-join-alice',
      'join-rules-vs-join-ella',
    ],
  ],
  ['concurrent_joins', ['bootstrap-public-chat', 'concurrent-joins-charlie', 'concurrent-joins-ella']],
];

describe('ruma conformance: batches', () => {
  for (const [name, files] of batchCases) {
    describe(name, () => {
      const batches = files.map(pdus);
      const all = batches.flat();
      const version = versionOf(all);
      const expected = snapshot(name);

      it('iteratively, along prev_events', () => {
        expect(readable(resolveIteratively(version, all))).toEqual(expected);
      });
      it('by batch, file by file', () => {
        expect(readable(resolveInBatches(version, batches))).toEqual(expected);
      });
      it('atomically, all files at once', () => {
        expect(readable(resolveInBatches(version, [all]))).toEqual(expected);
      });
    });
  }
});

const stateMapCases: Array<[snapshot: string, dir: string, states: [string, string], pdus: string]> = [
  ['msc4297_problem_a_state_res_v2_0', 'MSC4297-problem-A', ['state-bob', 'state-charlie'], 'pdus-v11'],
  ['msc4297_problem_a_state_res_v2_1', 'MSC4297-problem-A', ['state-bob', 'state-charlie'], 'pdus-v12'],
  ['msc4297_problem_b_state_res_v2_0', 'MSC4297-problem-B', ['state-eve', 'state-zara'], 'pdus-v11'],
  ['msc4297_problem_b_state_res_v2_1', 'MSC4297-problem-B', ['state-eve', 'state-zara'], 'pdus-v12'],
];

describe('ruma conformance: MSC4297 state maps', () => {
  for (const [name, dir, stateFiles, pduFile] of stateMapCases) {
    it(name, () => {
      const events = pdus(`${dir}/${pduFile}`);
      const version = versionOf(events);
      expect(version.stateRes).toBe(pduFile === 'pdus-v12' ? 'v2.1' : 'v2');
      const byId = indexEvents(events);
      const stateSets = stateFiles.map((file) =>
        stateOf(readJson<string[]>(`fixtures/${dir}/${file}.json`), byId),
      );
      const resolved = resolveState(version, stateSets, (id) => byId.get(id));
      expect(readable(resolved)).toEqual(snapshot(name));
    });
  }
});
