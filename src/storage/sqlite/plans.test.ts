/**
 * The queries of QUERIES.md use an index on SQLite: no full table scan, no sort (STYLE.md
 * "what not to copy": relation queries with no index).
 */
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { Range } from '../engine.ts';
import { SCHEMA_VERSION, sqliteDdl } from '../schema.ts';
import { selectFor } from './engine.ts';

const queries: [string, Range][] = [
  ['events', { index: '[room_id+stream]', prefix: ['!r'], upper: [10], reverse: true, limit: 51 }],
  [
    'events',
    { index: '[room_id+stream]', prefix: ['!r'], lower: [3], lowerOpen: true, upper: [10], limit: 51 },
  ],
  ['events', { index: '[room_id+depth+stream]', prefix: ['!r'], upper: [5, 9], reverse: true, limit: 51 }],
  ['events', { index: '[room_id+depth+stream]', prefix: ['!r'], lower: [5], lowerOpen: true, limit: 51 }],
  ['events', { index: 'stream', lower: [3], lowerOpen: true, upper: [10] }],
  ['events', { index: 'stream', reverse: true, limit: 1 }],
  ['events', { index: 'prevs', prefix: ['$e'] }],
  ['events', { index: 'awaits', prefix: ['$e'] }],
  [
    'events',
    { index: '[room_id+stream]', prefix: ['!r'], lower: [0], lowerOpen: true, reverse: true, limit: 1 },
  ],
  ['state_groups', { reverse: true, limit: 1 }],
  ['current_state', { prefix: ['!r', 'm.room.member'] }],
  ['room_members', { index: '[user_id+membership]', prefix: ['@u', 'join'] }],
  ['room_members', { index: '[room_id+membership]', prefix: ['!r', 'join'] }],
  [
    'relations',
    {
      index: '[relates_to+rel_type+stream]',
      prefix: ['$e', 'm.thread'],
      upper: [9],
      reverse: true,
      limit: 10,
    },
  ],
  ['relations', { index: '[relates_to+stream]', prefix: ['$e'], lower: [-9] }],
  ['events', { index: 'terms', prefix: ['word'], upper: [9], upperOpen: true, reverse: true, limit: 256 }],
  [
    'threads',
    { index: '[room_id+latest]', prefix: ['!r'], upper: [9], upperOpen: true, reverse: true, limit: 6 },
  ],
  ['notifications', { prefix: ['@u', '!r'], upper: [9], upperOpen: true, reverse: true, limit: 20 }],
  ['account_data', { index: '[user_id+stream]', prefix: ['@u'], lower: [3], lowerOpen: true }],
  ['receipts', { index: 'stream', lower: [3], lowerOpen: true, upper: [9] }],
  ['notifications', { prefix: ['@u', '!r'], lower: [3], lowerOpen: true }],
  ['to_device', { prefix: ['@u', 'D'], lower: [3], lowerOpen: true, limit: 11 }],
  ['access_tokens', { index: '[user_id+device_id]', prefix: ['@u', 'D'] }],
  ['one_time_keys', { prefix: ['@u', 'D', 'signed_curve25519'], limit: 1 }],
  ['outbox', { prefix: ['remote'], limit: 50 }],
  ['outbox', { lower: ['remote'], lowerOpen: true, limit: 1 }],
  ['device_list_changes', { lower: [3], lowerOpen: true, upper: [9] }],
  ['rooms', { index: 'published' }],
];

describe('SQLite query plans', () => {
  const db = new DatabaseSync(':memory:');
  for (const statement of sqliteDdl(0, SCHEMA_VERSION)) db.exec(statement);

  it.each(queries)('%s %j is an index search without a sort', (table, range) => {
    const { sql, params } = selectFor(table, range);
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...params)
      .map((step) => String(step.detail));
    expect(plan.join('; ')).toMatch(/USING (COVERING )?INDEX|USING PRIMARY KEY/);
    for (const step of plan) expect(step).not.toMatch(/TEMP B-TREE|^SCAN \S+$/);
  });
});
