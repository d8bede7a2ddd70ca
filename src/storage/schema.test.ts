/**
 * The schema declaration: its derived SQLite DDL is what `sqlite/schema.sql` shows (regenerate
 * with UPDATE_SCHEMA_SQL=1), portable (CREATE TABLE/INDEX only), and every index a query uses
 * exists.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import {
  type IndexSpec,
  parseTable,
  SCHEMA,
  SCHEMA_VERSION,
  sqliteDdl,
  sqliteSideTable,
  tablesAt,
} from './schema.ts';

const snapshot = join(import.meta.dirname, 'sqlite/schema.sql');

describe('schema', () => {
  it('derives the SQLite DDL shown in sqlite/schema.sql', () => {
    const ddl = `-- Derived from src/storage/schema.ts (schema version ${SCHEMA_VERSION}); do not edit.\n${sqliteDdl(
      0,
      SCHEMA_VERSION,
    )
      .map((statement) => `${statement};`)
      .join('\n')}\n`;
    if (process.env.UPDATE_SCHEMA_SQL) writeFileSync(snapshot, ddl);
    expect(ddl).toBe(readFileSync(snapshot, 'utf8'));
  });

  it('uses only portable statements, which SQLite accepts', () => {
    const db = new DatabaseSync(':memory:');
    for (const statement of sqliteDdl(0, SCHEMA_VERSION)) {
      expect(statement).toMatch(/^CREATE (TABLE|(UNIQUE )?INDEX) "/);
      db.exec(statement);
    }
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    // Each table, and a side table per multi-entry index (`sqliteSideTable`).
    const expected = [...tablesAt(SCHEMA_VERSION).values()].flatMap((table) => [
      table.name,
      ...table.indexes.filter((ix) => ix.multi).map((ix) => sqliteSideTable(table, ix).name),
    ]);
    expect(tables.map((t) => t.name)).toEqual(expected.sort());
    db.close();
  });

  it('builds each version from the one before into what a new database gets', () => {
    const schemaOf = (statements: string[]) => {
      const db = new DatabaseSync(':memory:');
      for (const statement of statements) db.exec(statement);
      const rows = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name').all();
      db.close();
      return rows;
    };
    const stepwise = SCHEMA.flatMap((step, i) =>
      sqliteDdl(i === 0 ? 0 : (SCHEMA[i - 1]?.version as number), step.version),
    );
    expect(stepwise.some((statement) => statement.startsWith('DROP TABLE'))).toBe(true);
    expect(schemaOf(stepwise)).toEqual(schemaOf(sqliteDdl(0, SCHEMA_VERSION)));
    expect(SCHEMA.map((s) => s.version)).toEqual([...SCHEMA.keys()].map((i) => i + 1));
  });

  it('parses Dexie declarations into keys and indexes', () => {
    expect(parseTable('events', 'event_id, [room_id+stream], &stream')).toEqual({
      name: 'events',
      key: { name: 'event_id', columns: ['event_id'], unique: true },
      indexes: [
        { name: '[room_id+stream]', columns: ['room_id', 'stream'], unique: false },
        { name: 'stream', columns: ['stream'], unique: true },
      ],
      columns: ['event_id', 'room_id', 'stream'],
    });
    expect(parseTable('search_docs', 'event_id, *terms[term+stream]')).toEqual({
      name: 'search_docs',
      key: { name: 'event_id', columns: ['event_id'], unique: true },
      indexes: [{ name: 'terms', columns: ['term', 'stream'], unique: false, multi: true }],
      columns: ['event_id'],
    });
    // A unique multi-entry index: SQLite's side table is keyed by the entry alone.
    const claims = parseTable('events', 'event_id, &*awaits[awaited_id]');
    expect(claims.indexes).toEqual([{ name: 'awaits', columns: ['awaited_id'], unique: true, multi: true }]);
    expect(sqliteSideTable(claims, claims.indexes[0] as IndexSpec)).toEqual({
      name: 'events__awaits',
      columns: ['awaited_id', 'event_id'],
      key: ['awaited_id'],
    });
  });
});
