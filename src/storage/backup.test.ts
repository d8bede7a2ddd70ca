/**
 * Whole-store backups: a homeserver's data exported, imported into fresh databases of both
 * backends, compared row by row and byte by byte; then refused or rolled back when the file
 * is wrong in each way an import must catch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, type JsonObject } from '../core/canonical-json.ts';
import { createHomeserver, type Homeserver } from '../server.ts';
import {
  BACKUP_FORMAT_VERSION,
  BackupError,
  backupTables,
  exportBackup,
  importBackup,
  readBackup,
} from './backup.ts';
import { createStore } from './create-store.ts';
import type { Engine, Row } from './engine.ts';
import { IndexedDbEngine } from './indexeddb/engine.ts';
import { SCHEMA_VERSION } from './schema.ts';
import { openSqliteEngine } from './sqlite/index.ts';

const SERVER = 'backup.test';
const indexedDB = new IDBFactory();
let counter = 0;
const openIdb = () => IndexedDbEngine.open({ indexedDB, IDBKeyRange, name: `backup-${++counter}` });
const dir = mkdtempSync(join(tmpdir(), 'hearth-backup-'));
const openSqlite = () => openSqliteEngine({ path: join(dir, `backup-${++counter}.sqlite`) });

/** Every backed-up table's rows, Blobs read into bytes, in key order. */
async function dump(engine: Engine): Promise<Record<string, Row[]>> {
  const tables = backupTables();
  const rows = await engine.read(tables, async (tx) => Promise.all(tables.map((t) => tx.query(t))));
  const out: Record<string, Row[]> = {};
  for (const [i, table] of tables.entries()) {
    out[table] = [];
    for (const row of rows[i] ?? []) {
      const copy: Row = { ...row };
      for (const [key, value] of Object.entries(copy)) {
        if (value instanceof Blob)
          copy[key] = { blob: new Uint8Array(await value.arrayBuffer()), type: value.type };
        // SQLite hands back bytes for media; compare the bytes either way.
        else if (value instanceof Uint8Array && table === 'media')
          copy[key] = { blob: new Uint8Array(value), type: copy.content_type };
        else if (value instanceof Uint8Array) copy[key] = new Uint8Array(value);
      }
      out[table].push(copy);
    }
  }
  return out;
}

async function call(hs: Homeserver, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await hs.fetch(
    new Request(`http://${SERVER}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, body: (await response.json()) as JsonObject };
}

/** A homeserver (open registration, cheap password hashing) on `engine`'s data. */
function homeserverOn(engine: Engine): Homeserver {
  return createHomeserver({
    serverName: SERVER,
    store: createStore(engine),
    registration: 'open',
    passwordIterations: 1000,
  });
}

async function register(hs: Homeserver, username: string): Promise<string> {
  const first = await call(hs, 'POST', '/_matrix/client/v3/register', {
    username,
    password: 'secret-password',
  });
  const session = first.body.session as string;
  const done = await call(hs, 'POST', '/_matrix/client/v3/register', {
    username,
    password: 'secret-password',
    auth: { type: 'm.login.dummy', session },
  });
  expect(done.status).toBe(200);
  return done.body.access_token as string;
}

/** A homeserver with users, a room with messages whose content has `$` keys, and media. */
async function populated(engine: Engine) {
  const hs = homeserverOn(engine);
  const alice = await register(hs, 'alice');
  const bob = await register(hs, 'bob');
  const room = await call(
    hs,
    'POST',
    '/_matrix/client/v3/createRoom',
    { name: 'Backups', invite: [`@bob:${SERVER}`] },
    alice,
  );
  const roomId = room.body.room_id as string;
  await call(hs, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, bob);
  for (let i = 0; i < 5; i++) {
    const content = {
      msgtype: 'm.text',
      body: `message ${i} — ünïcødé 🔥`,
      $weird: { $bytes: 'not a tag' },
      n: 2 ** 53 - 1 - i,
    };
    const sent = await call(
      hs,
      'PUT',
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${i}`,
      content,
      i % 2 ? bob : alice,
    );
    expect(sent.status).toBe(200);
  }
  const store = createStore(engine);
  const media = new Uint8Array(70_000).map((_, i) => (i * 31) & 255);
  await store.media.putMedia(
    {
      origin: SERVER,
      mediaId: 'picture',
      contentType: 'image/png',
      uploadName: 'p.png',
      userId: `@alice:${SERVER}`,
      createdAt: 1,
    },
    media,
  );
  return { hs, alice, roomId };
}

async function messages(hs: Homeserver, roomId: string, token: string): Promise<string[]> {
  const res = await call(
    hs,
    'GET',
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
    undefined,
    token,
  );
  expect(res.status).toBe(200);
  // `unsigned.age` is computed per request; everything else is what was stored.
  return (res.body.chunk as JsonObject[]).map((event) => {
    delete (event.unsigned as JsonObject | undefined)?.age;
    return canonicalJson(event);
  });
}

describe('whole-store backup', () => {
  let source: Engine;
  let backup: Blob;
  let before: Record<string, Row[]>;
  let alice: string;
  let roomId: string;
  let history: string[];

  beforeAll(async () => {
    source = await openIdb();
    const made = await populated(source);
    alice = made.alice;
    roomId = made.roomId;
    history = await messages(made.hs, roomId, alice);
    before = await dump(source);
    backup = await exportBackup(source, { serverName: SERVER, now: 1234 });
  });
  afterAll(async () => {
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a header with the schema, server and row counts, then one line per row', async () => {
    const text = await backup.text();
    const lines = text.trimEnd().split('\n');
    const header = JSON.parse(lines[0] as string);
    expect(header).toMatchObject({
      format: 'hearth-backup',
      version: BACKUP_FORMAT_VERSION,
      schema: SCHEMA_VERSION,
      server_name: SERVER,
      created_at: 1234,
    });
    const total = Object.values(before).reduce((n, rows) => n + rows.length, 0);
    expect(lines.length - 1).toBe(total);
    for (const table of backupTables()) expect(header.tables[table]).toBe(before[table]?.length);
    expect(header.tables.meta).toBeUndefined();
    expect(before.events?.length).toBeGreaterThan(8);
    expect(before.secrets?.length).toBeGreaterThan(0);
  });

  for (const [name, open] of [
    ['IndexedDB', openIdb],
    ['SQLite', openSqlite],
  ] as const) {
    it(`imports into a fresh ${name} database with every row identical, and the server works on it`, async () => {
      const target = await open();
      try {
        await importBackup(target, backup, { serverName: SERVER });
        const after = await dump(target);
        // Engines differ in how they return fields they keep as JSON; compare what was stored.
        expect(after).toEqual(before);
        // The signing seed, byte for byte.
        expect(after.secrets).toEqual(before.secrets);
        const again = await exportBackup(target, { serverName: SERVER, now: 1234 });
        if (target.kind === 'indexeddb') {
          // Exporting the imported database gives the same file, line for line.
          expect(await again.text()).toBe(await backup.text());
        } else {
          // SQLite orders a row's fields differently and keeps media as bytes: same rows.
          const back = await openIdb();
          await importBackup(back, again, { serverName: SERVER });
          expect(await dump(back)).toEqual(before);
          await back.close();
        }
        // Only now run a server on it: a request with a token records its device as seen.
        const hs = homeserverOn(target);
        expect(await messages(hs, roomId, alice)).toEqual(history);
        const media = await createStore(target).media.getMedia(SERVER, 'picture');
        if (!media) throw new Error('the media row is missing');
        const stored = before.media?.[0]?.data as { blob: Uint8Array };
        expect(new Uint8Array(await media.data.arrayBuffer())).toEqual(stored.blob);
      } finally {
        await target.close();
      }
    });
  }

  it('replaces what the target held, in one transaction', async () => {
    const target = await openIdb();
    try {
      await register(homeserverOn(target), 'carol');
      await importBackup(target, backup, { serverName: SERVER });
      expect(await dump(target)).toEqual(before);
      expect(await createStore(target).accounts.getUser(`@carol:${SERVER}`)).toBeNull();
    } finally {
      await target.close();
    }
  });

  it('keeps the old contents when a row cannot be written (all or nothing)', async () => {
    const target = await openIdb();
    try {
      await register(homeserverOn(target), 'carol');
      const kept = await dump(target);
      // A parseable file whose last events row lacks its key: IndexedDB refuses that put.
      const text = await backup.text();
      const lines = text.trimEnd().split('\n');
      const index = lines.findLastIndex((line) => line.startsWith('["events"'));
      const broken = JSON.parse(lines[index] as string);
      delete broken[1].event_id;
      lines[index] = JSON.stringify(broken);
      await expect(
        importBackup(target, new Blob([`${lines.join('\n')}\n`]), { serverName: SERVER }),
      ).rejects.toThrow();
      expect(await dump(target)).toEqual(kept);
    } finally {
      await target.close();
    }
  });

  it('refuses another server’s backup, a newer one, a truncated one and a foreign file, touching nothing', async () => {
    const target = await openIdb();
    try {
      const text = await backup.text();
      const [head, ...rows] = text.trimEnd().split('\n');
      const header = JSON.parse(head as string);
      const withHeader = (h: object, body = rows) => new Blob([`${JSON.stringify(h)}\n${body.join('\n')}\n`]);
      const cases: [Blob, string][] = [
        [backup, 'SERVER_MISMATCH'],
        [withHeader({ ...header, schema: SCHEMA_VERSION + 1 }), 'TOO_NEW'],
        [withHeader({ ...header, version: BACKUP_FORMAT_VERSION + 1 }), 'TOO_NEW'],
        [withHeader(header, rows.slice(0, -1)), 'CORRUPT'],
        [withHeader(header, [...rows.slice(0, -1), '["events",{"x":']), 'CORRUPT'],
        [withHeader(header, [...rows, '["no_such_table",{}]']), 'CORRUPT'],
        [withHeader(header, [...rows.slice(0, -1), '["events",{"$bytes":17}]']), 'CORRUPT'],
        [new Blob(['PK\u0003\u0004 a zip file']), 'NOT_A_BACKUP'],
        [new Blob([new Uint8Array([0x7b, 0xff, 0xfe, 0x0a])]), 'NOT_A_BACKUP'],
      ];
      for (const [i, [file, code]] of cases.entries()) {
        const serverName = i === 0 ? 'other.test' : SERVER;
        const error = await importBackup(target, file, { serverName }).catch((e: unknown) => e);
        expect(error, `case ${i}`).toBeInstanceOf(BackupError);
        expect((error as BackupError).code, `case ${i}: ${(error as Error).message}`).toBe(code);
      }
      expect(Object.values(await dump(target)).every((r) => r.length === 0)).toBe(true);
    } finally {
      await target.close();
    }
  });

  it('brings a backup of an older schema up to date in the same import', async () => {
    // A schema-1 backup: the same rows without the tables later versions added (relations, v2).
    const parsed = await readBackup(backup, 'blob');
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
    const old = new Set(backupTables(1));
    const lines = [
      JSON.stringify({
        ...parsed.header,
        schema: 1,
        tables: Object.fromEntries(Object.entries(parsed.header.tables).filter(([t]) => old.has(t))),
      }),
    ];
    for (const line of (await backup.text()).trimEnd().split('\n').slice(1)) {
      if (old.has(JSON.parse(line)[0])) lines.push(line);
    }
    const target = await openIdb();
    try {
      const header = await importBackup(target, new Blob([`${lines.join('\n')}\n`]), { serverName: SERVER });
      expect(header.schema).toBe(1);
      const after = await dump(target);
      // The v2 step rebuilt the relations index from events; the rest is as exported.
      expect(after).toEqual(before);
    } finally {
      await target.close();
    }
  });

  it('keeps values JSON cannot hold, and `$` keys, exactly', async () => {
    const engine = await openIdb();
    try {
      const row = {
        name: 'odd',
        value: new Uint8Array([0, 1, 2, 255]),
        nested: {
          $bytes: 'text',
          list: [undefined, -0, Number.NaN, Number.POSITIVE_INFINITY, { $object: 1 }],
          empty: {},
        },
        gone: undefined,
      };
      await engine.write(['secrets'], (tx) => tx.put('secrets', row));
      const file = await exportBackup(engine, { serverName: SERVER });
      const target = await openIdb();
      await importBackup(target, file, { serverName: SERVER });
      const back = await target.read(['secrets'], (tx) => tx.get('secrets', 'odd'));
      expect(back).toEqual(row);
      expect('gone' in (back as Row)).toBe(true);
      expect(Object.is(((back as Row).nested as { list: unknown[] }).list[1], -0)).toBe(true);
      await target.close();
    } finally {
      await engine.close();
    }
  });

  it('refuses to export a value it cannot encode faithfully', async () => {
    const engine = await openIdb();
    try {
      await engine.write(['secrets'], (tx) => tx.put('secrets', { name: 'date', value: new Date(0) }));
      const error = await exportBackup(engine, { serverName: SERVER }).catch((e: unknown) => e);
      expect((error as BackupError).code).toBe('UNSUPPORTED_VALUE');
      expect((error as Error).message).toContain('Date');
    } finally {
      await engine.close();
    }
  });
});
