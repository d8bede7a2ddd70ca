/**
 * A whole homeserver as one file, and back: every row of every table of `schema.ts`, keys
 * and events exactly as stored, media bytes included. Works on any `Engine` (a backup taken
 * from a browser's IndexedDB imports into SQLite and the other way round).
 *
 * The file is UTF-8 JSON lines. Line 1 is the header:
 *
 *   {"format":"hearth-backup","version":1,"schema":3,"server_name":"…","created_at":…,
 *    "tables":{"events":120,…}}
 *
 * and every other line one row, `["table",{…row…}]`, tables in schema order and rows in key
 * order, so exporting an imported backup gives the same lines again. Rows are JSON with a
 * few tagged values for what JSON cannot hold — `{"$bytes":b64}` (Uint8Array), `{"$blob":b64,
 * "type":…}` (Blob), `{"$undefined":1}`, `{"$number":"NaN"|"Infinity"|"-Infinity"|"-0"}` —
 * and `{"$object":{…}}` around any stored object that has a key starting with `$` itself, so
 * event content can never be mistaken for a tag. Strings, integers and key order pass
 * through JSON unchanged: an event's canonical JSON, hashes and signatures are the same after
 * a round trip.
 *
 * `meta` is left out: it is the engine's own bookkeeping (SQLite's schema_version), not data.
 *
 * Export reads every table in one read transaction (a consistent snapshot). Import reads and
 * checks the whole file first (format, schema version, server name, row counts), then
 * replaces the database's contents in one write transaction — all of the backup or, on any
 * failure, the database as it was. A backup of an older schema is brought up to date inside
 * that transaction by the same upgrade steps that migrate a database on open.
 */
import { decodeBase64, encodeBase64 } from '../core/base64.ts';
import { parseJson } from '../core/json.ts';
import type { Engine, Row } from './engine.ts';
import { SCHEMA, SCHEMA_VERSION, tablesAt } from './schema.ts';

export const BACKUP_FORMAT = 'hearth-backup';
/** Version of the file layout (not of the schema, which the header carries separately). */
export const BACKUP_FORMAT_VERSION = 1;
/** The engine's own table, never backed up nor overwritten. */
const ENGINE_TABLES: ReadonlySet<string> = new Set(['meta']);

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  /** `SCHEMA_VERSION` of the Hearth that wrote it. */
  schema: number;
  server_name: string;
  /** Milliseconds since the epoch. */
  created_at: number;
  /** Rows per table: a truncated file is refused rather than half imported. */
  tables: Record<string, number>;
}

export type BackupErrorCode =
  /** The file is not a Hearth backup (or not one this Hearth understands). */
  | 'NOT_A_BACKUP'
  /** Written by a newer Hearth (format or schema): importing it would lose what it knows. */
  | 'TOO_NEW'
  /** The file is damaged or truncated. */
  | 'CORRUPT'
  /** The backup belongs to another server name: its events and user IDs name that server. */
  | 'SERVER_MISMATCH'
  /** A stored value that has no faithful encoding (found while exporting). */
  | 'UNSUPPORTED_VALUE';

export class BackupError extends Error {
  override readonly name = 'BackupError';
  readonly code: BackupErrorCode;
  constructor(code: BackupErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The tables a backup of schema `version` holds, in schema order. */
export function backupTables(version: number = SCHEMA_VERSION): string[] {
  return [...tablesAt(version).keys()].filter((name) => !ENGINE_TABLES.has(name));
}

// ---------------------------------------------------------------------------------------
// Values

type Encoded = null | boolean | number | string | Encoded[] | { [key: string]: Encoded };

/** Encodes a stored value as JSON; Blobs are read afterwards (`pending`), so this stays synchronous. */
function encodeValue(
  value: unknown,
  pending: { target: { $blob: string }; blob: Blob }[],
  where: string,
): Encoded {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value === undefined) return { $undefined: 1 };
  if (typeof value === 'number') {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { $number: Object.is(value, -0) ? '-0' : String(value) };
  }
  if (value instanceof Uint8Array) return { $bytes: encodeBase64(value) };
  if (typeof Blob !== 'undefined' && value instanceof Blob) {
    const target = { $blob: '', type: value.type };
    pending.push({ target, blob: value });
    return target;
  }
  if (Array.isArray(value)) return value.map((item) => encodeValue(item, pending, where));
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, Encoded> = {};
      let escaped = false;
      for (const [key, item] of Object.entries(value)) {
        if (key.startsWith('$')) escaped = true;
        out[key] = encodeValue(item, pending, where);
      }
      return escaped ? { $object: out } : out;
    }
  }
  const kind = typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  throw new BackupError('UNSUPPORTED_VALUE', `${where}: cannot back up a value of type ${kind}`);
}

function decodeValue(value: unknown, bytes: Engine['bytes'], where: string): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => decodeValue(item, bytes, where));
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  const tag = keys.find((key) => key.startsWith('$'));
  if (tag === undefined) {
    const out: Record<string, unknown> = {};
    for (const key of keys) out[key] = decodeValue(record[key], bytes, where);
    return out;
  }
  const body = record[tag];
  switch (tag) {
    case '$object': {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) break;
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(body)) out[key] = decodeValue(item, bytes, where);
      return out;
    }
    case '$bytes':
      if (typeof body === 'string') return decodeBytes(body, where);
      break;
    case '$blob': {
      if (typeof body !== 'string' || typeof record.type !== 'string') break;
      const data = decodeBytes(body, where);
      // SQLite keeps media as BLOB columns of bytes; IndexedDB as Blobs.
      return bytes === 'blob' ? new Blob([data as Uint8Array<ArrayBuffer>], { type: record.type }) : data;
    }
    case '$undefined':
      return undefined;
    case '$number':
      if (body === '-0') return -0;
      if (body === 'NaN' || body === 'Infinity' || body === '-Infinity') return Number(body);
      break;
  }
  throw new BackupError(
    'CORRUPT',
    `${where}: unknown or malformed tagged value ${JSON.stringify(value).slice(0, 80)}`,
  );
}

function decodeBytes(text: string, where: string): Uint8Array {
  try {
    return decodeBase64(text);
  } catch {
    throw new BackupError('CORRUPT', `${where}: bad base64 in a binary value`);
  }
}

// ---------------------------------------------------------------------------------------
// Export

export interface ExportOptions {
  /** The server whose data this is; an import checks it. */
  serverName: string;
  /** The time written in the header (ms since the epoch); default now. */
  now?: number;
  /** The bytes of media whose row holds none (kept as files), read while exporting. */
  mediaBytes?: ((origin: string, mediaId: string) => Promise<Blob | null>) | undefined;
}

/** Every table of the store behind `engine`, as one backup file. */
export async function exportBackup(engine: Engine, options: ExportOptions): Promise<Blob> {
  const tables = backupTables();
  // One read transaction: the snapshot is consistent even while the homeserver writes.
  const rows = await engine.read(tables, async (tx) => {
    const out: Row[][] = [];
    for (const table of tables) out.push(await tx.query(table));
    return out;
  });
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    schema: SCHEMA_VERSION,
    server_name: options.serverName,
    created_at: options.now ?? Date.now(),
    tables: Object.fromEntries(tables.map((table, i) => [table, rows[i]?.length ?? 0])),
  };
  const mediaBytes = options.mediaBytes;
  if (mediaBytes) {
    // Bytes kept as files are written into the row, as an engine that keeps them would have.
    const media = rows[tables.indexOf('media')] ?? [];
    for (const [i, row] of media.entries()) {
      if (row.data != null || typeof row.pending_until === 'number') continue;
      const blob = await mediaBytes(row.origin as string, row.media_id as string);
      if (blob) media[i] = { ...row, data: blob };
    }
  }
  const lines: Encoded[][] = [];
  const pending: { target: { $blob: string }; blob: Blob }[] = [];
  tables.forEach((table, i) => {
    for (const row of rows[i] ?? []) lines.push([table, encodeValue(row, pending, table)]);
  });
  for (const { target, blob } of pending)
    target.$blob = encodeBase64(new Uint8Array(await blob.arrayBuffer()));
  const parts: string[] = [`${JSON.stringify(header)}\n`];
  for (const line of lines) parts.push(`${JSON.stringify(line)}\n`);
  return new Blob(parts, { type: 'application/x-ndjson' });
}

// ---------------------------------------------------------------------------------------
// Import

export interface ParsedBackup {
  header: BackupHeader;
  /** Rows per table, decoded for an engine keeping bytes as `bytes`. */
  rows: Map<string, Row[]>;
}

async function* lines(blob: Blob): AsyncGenerator<string> {
  const reader = blob
    .stream()
    .pipeThrough(new TextDecoderStream('utf-8', { fatal: true }))
    .getReader();
  // The unfinished line, in pieces: a media row can be megabytes long, and searching it
  // again for each chunk would be quadratic.
  let pieces: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let start = 0;
      let end = value.indexOf('\n');
      while (end >= 0) {
        pieces.push(value.slice(start, end));
        yield pieces.join('');
        pieces = [];
        start = end + 1;
        end = value.indexOf('\n', start);
      }
      if (start < value.length) pieces.push(value.slice(start));
    }
  } catch (error) {
    if (error instanceof BackupError) throw error;
    throw new BackupError('CORRUPT', `the backup is not valid UTF-8 text (${String(error)})`);
  } finally {
    reader.releaseLock();
  }
  if (pieces.length > 0) yield pieces.join('');
}

function parseHeader(line: string | undefined): BackupHeader {
  let header: unknown;
  try {
    header = parseJson(line ?? '', { loneSurrogates: 'allow', maxDepth: 1024 });
  } catch {
    throw new BackupError('NOT_A_BACKUP', 'this file is not a Hearth backup (its first line is not JSON)');
  }
  const h = header as Partial<BackupHeader> | null;
  if (typeof h !== 'object' || h === null || h.format !== BACKUP_FORMAT) {
    throw new BackupError('NOT_A_BACKUP', 'this file is not a Hearth backup');
  }
  if (typeof h.version !== 'number' || h.version > BACKUP_FORMAT_VERSION) {
    throw new BackupError(
      'TOO_NEW',
      `backup format ${h.version} is newer than this Hearth reads (${BACKUP_FORMAT_VERSION})`,
    );
  }
  if (!Number.isInteger(h.schema) || (h.schema as number) < 1)
    throw new BackupError('CORRUPT', 'the backup header has no schema version');
  if ((h.schema as number) > SCHEMA_VERSION) {
    throw new BackupError(
      'TOO_NEW',
      `the backup has schema version ${h.schema}, newer than this Hearth's ${SCHEMA_VERSION}: import it with a newer Hearth`,
    );
  }
  if (typeof h.server_name !== 'string' || typeof h.tables !== 'object' || h.tables === null) {
    throw new BackupError('CORRUPT', 'the backup header lacks server_name or tables');
  }
  return h as BackupHeader;
}

/**
 * Reads and checks a backup file without touching any database. `bytes` is how the target
 * engine keeps binary data (`engine.bytes`).
 */
export async function readBackup(blob: Blob, bytes: Engine['bytes']): Promise<ParsedBackup> {
  const iterator = lines(blob);
  let first: IteratorResult<string>;
  try {
    first = await iterator.next();
  } catch (error) {
    // Not even a first line of text: some other kind of file.
    if (error instanceof BackupError)
      throw new BackupError('NOT_A_BACKUP', 'this file is not a Hearth backup (not text)');
    throw error;
  }
  const header = parseHeader(first.done ? undefined : first.value);
  const known = new Set(backupTables(header.schema));
  for (const table of Object.keys(header.tables)) {
    if (!known.has(table))
      throw new BackupError(
        'CORRUPT',
        `the backup names table ${table}, which schema ${header.schema} does not have`,
      );
  }
  const rows = new Map<string, Row[]>();
  let lineNumber = 1;
  for await (const line of iterator) {
    lineNumber++;
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = parseJson(line, { loneSurrogates: 'allow', maxDepth: 1024 });
    } catch {
      throw new BackupError('CORRUPT', `line ${lineNumber} of the backup is not JSON`);
    }
    const [table, encoded] = Array.isArray(parsed) ? parsed : [];
    if (
      typeof table !== 'string' ||
      !known.has(table) ||
      Array.isArray(parsed) === false ||
      parsed.length !== 2
    ) {
      throw new BackupError('CORRUPT', `line ${lineNumber} of the backup is not a row of a known table`);
    }
    const row = decodeValue(encoded, bytes, `line ${lineNumber} (${table})`);
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new BackupError('CORRUPT', `line ${lineNumber} of the backup is not a row`);
    }
    const list = rows.get(table) ?? [];
    if (list.length === 0) rows.set(table, list);
    list.push(row as Row);
  }
  for (const table of known) {
    const expected = header.tables[table] ?? 0;
    const found = rows.get(table)?.length ?? 0;
    if (found !== expected) {
      throw new BackupError(
        'CORRUPT',
        `the backup is incomplete: table ${table} has ${found} rows, its header says ${expected}`,
      );
    }
  }
  return { header, rows };
}

export interface ImportOptions {
  /** This server's name: a backup of another server is refused. */
  serverName: string;
}

/**
 * Replaces everything in the store behind `engine` with the backup, in one write
 * transaction. Nothing else should use the engine meanwhile (the host restarts its
 * homeserver around an import: in-memory caches would otherwise describe the old data).
 */
export async function importBackup(
  engine: Engine,
  backup: Blob | ParsedBackup,
  options: ImportOptions,
): Promise<BackupHeader> {
  const parsed = backup instanceof Blob ? await readBackup(backup, engine.bytes) : backup;
  const { header, rows } = parsed;
  if (header.server_name !== options.serverName) {
    throw new BackupError(
      'SERVER_MISMATCH',
      `this backup is of ${header.server_name}, not of ${options.serverName}: its user IDs and signed events name that server`,
    );
  }
  const tables = backupTables();
  const upgrades = SCHEMA.filter((step) => step.version > header.schema);
  // Rows of a table a later step dropped and rebuilds from others (the old search index).
  const rebuilt = new Set(upgrades.flatMap((step) => step.rebuilds ?? []));
  for (const table of rows.keys()) {
    if (!tables.includes(table) && !rebuilt.has(table)) {
      throw new BackupError(
        'TOO_NEW',
        `the backup's table ${table} no longer exists in schema ${SCHEMA_VERSION}; this Hearth cannot carry its rows over`,
      );
    }
  }
  await engine.write(tables, async (tx) => {
    for (const table of tables) await tx.deleteRange(table, {});
    for (const [table, list] of rows) if (!rebuilt.has(table)) await tx.putMany(table, list);
    // An older backup: the steps a database of its version would take on open, in the same transaction.
    for (const step of upgrades) await step.upgrade?.(tx);
  });
  return header;
}
