/** The conformance suite on the SQLite backend (node:sqlite, one file per database). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll } from 'vitest';
import { type ConformanceTarget, storeConformance } from '../conformance/index.ts';
import { createStore } from '../create-store.ts';
import { openMediaFiles } from '../files/media-files.ts';
import { SCHEMA_VERSION } from '../schema.ts';
import { createSqliteAtVersion } from './engine.ts';
import { nodeSqliteDriver, openSqliteEngine } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (id: string) => join(dir, `${id}.sqlite`);

const target: ConformanceTarget = {
  name: 'SQLite (node:sqlite)',
  openEngine: (id) => openSqliteEngine({ path: path(id) }),
  async createAtVersion(id, version, rows) {
    const driver = nodeSqliteDriver({ path: path(id) });
    try {
      await createSqliteAtVersion(driver, version, rows);
    } finally {
      driver.close();
    }
  },
  async createNewer(id) {
    const db = new DatabaseSync(path(id));
    db.exec(`CREATE TABLE meta ("name" NOT NULL, v TEXT, PRIMARY KEY ("name"))`);
    db.prepare('INSERT INTO meta VALUES (?, ?)').run(
      'schema_version',
      JSON.stringify({ value: SCHEMA_VERSION + 1 }),
    );
    db.exec('CREATE TABLE future_table (id PRIMARY KEY, marker TEXT)');
    db.prepare('INSERT INTO future_table VALUES (?, ?)').run(1, 'written by a newer Hearth');
    db.close();
  },
  async newerIntact(id) {
    const db = new DatabaseSync(path(id));
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
      const version = db.prepare("SELECT v FROM meta WHERE name = 'schema_version'").get();
      const marker = db.prepare('SELECT marker FROM future_table WHERE id = 1').get();
      return (
        tables.map((t) => t.name).join() === 'future_table,meta' &&
        version?.v === JSON.stringify({ value: SCHEMA_VERSION + 1 }) &&
        marker?.marker === 'written by a newer Hearth'
      );
    } finally {
      db.close();
    }
  },
};

storeConformance(target);

// The same suite with media bytes as files beside the database (`hearth serve --data`).
storeConformance({
  ...target,
  name: 'SQLite (node:sqlite) with media files',
  createStore: async (engine, id) =>
    createStore(engine, { media: await openMediaFiles(engine, join(dir, `${id}-media`)) }),
});
