/**
 * The schema, for both backends, derived from the queries in `QUERIES.md`.
 *
 * Each table is declared once in Dexie's notation: the primary key first (`[a+b]` is
 * compound), then secondary indexes (`&` = unique). IndexedDB gets exactly these stores;
 * SQLite gets a table whose columns are the key, index and blob columns, plus `v`, the JSON of
 * every other field (`sqliteDdl`), and an index per declared index. Rows are plain objects
 * with snake_case fields, the same in both.
 *
 * A version lists only what changed (Dexie's convention); `upgrade` moves data, through the
 * same engine operations the store uses. Databases of every earlier version are migrated
 * on open; a database of a later version is refused, untouched (`StoreError SCHEMA_TOO_NEW`).
 */
import { type EventReference, referencedIds } from '../core/pdu.ts';
import { indexEvent, searchDoc, searchTerms } from './areas/event-index.ts';
import type { Key, KeyPart, Row, Tx } from './engine.ts';

export interface SchemaVersion {
  version: number;
  tables: Record<string, string | null>;
  upgrade?: (tx: Tx) => Promise<void>;
  /**
   * Tables this step drops whose rows were derived from others and are rebuilt by its
   * `upgrade`: an older backup's rows of them are not needed (`importBackup` skips them).
   */
  rebuilds?: readonly string[];
}

export const SCHEMA: readonly SchemaVersion[] = [
  {
    version: 1,
    tables: {
      meta: 'name',
      streams: 'name', // one counter row per stream
      rooms: 'room_id, published',
      events: 'event_id, [room_id+stream], [room_id+depth+stream], &stream',
      event_edges: '[prev_id+event_id]',
      forward_extremities: '[room_id+event_id]',
      state_groups: 'id', // {room_id, prev, chain: ids back to a snapshot, delta}
      current_state: '[room_id+type+state_key]',
      room_members: '[room_id+user_id], [user_id+membership], [room_id+membership]',
      room_aliases: 'alias, room_id',
      txn_ids: '[user_id+device_id+txn_id]',
      users: 'user_id',
      devices: '[user_id+device_id]',
      access_tokens: 'token_hash, [user_id+device_id]',
      refresh_tokens: 'token_hash, [user_id+device_id]',
      uia_sessions: 'session_id',
      registration_tokens: 'token',
      account_data: '[user_id+room_id+type], [user_id+stream]',
      filters: '[user_id+filter_id]',
      push_rules: '[user_id+kind+rule_id]',
      push_rules_stream: 'user_id',
      profiles: 'user_id',
      receipts: '[room_id+receipt_type+user_id+thread_id], [room_id+stream], &stream',
      notifications: '[user_id+room_id+stream]',
      device_keys: '[user_id+device_id]',
      device_list_changes: 'stream, user_id',
      one_time_keys: '[user_id+device_id+algorithm+key_id]',
      fallback_keys: '[user_id+device_id+algorithm]',
      cross_signing_keys: '[user_id+key_type]',
      key_signatures: '[user_id+key_id+signer_user_id+signer_key_id]',
      to_device: '[user_id+device_id+stream]',
      backup_versions: '[user_id+version]',
      backup_sessions: '[user_id+version+room_id+session_id]',
      media: '[origin+media_id]',
      outbox: '[destination+seq]',
      destinations: 'destination',
      server_keys: '[server_name+key_id]',
      secrets: 'name',
    },
  },
  {
    // Relations (m.relates_to) indexed for /relations, threads and edits: a query without
    // an index is a full scan per event (matrix-rust-sdk #5572). Backfilled from events.
    version: 2,
    tables: { relations: 'event_id, [relates_to+stream], [relates_to+rel_type+stream]' },
    upgrade: async (tx) => {
      await forEachEvent(tx, async (row) => {
        const relation = relationRow(row);
        if (relation) await tx.put('relations', relation);
      });
    },
  },
  {
    // Events awaited by a stored child get a marker row on their extremity key (see
    // `awaitedMarker`); the store relies on it from v3, so mark those of earlier versions.
    version: 3,
    tables: {},
    upgrade: async (tx) => {
      await forEachEvent(tx, async (row) => {
        if (row.stream == null || row.outlier === true) return;
        const pdu = row.pdu as { prev_events?: unknown };
        if (!Array.isArray(pdu?.prev_events)) return;
        for (const prev of referencedIds(pdu.prev_events as EventReference[])) {
          if ((await tx.count('events', { prefix: [prev] })) === 0)
            await tx.put(
              'forward_extremities',
              awaitedMarker(row.room_id as string, prev, row.event_id as string),
            );
        }
      });
    },
  },
  {
    // Simplified sliding sync (MSC4186): what one connection (user, device, conn_id) has sent
    // its client, saved per answer under a version its `pos` names, so a retried request and
    // a restarted host find it.
    version: 4,
    tables: { sliding_sync_connections: '[user_id+device_id+conn_id+version]' },
  },
  {
    // Received federation transactions (server-server-api.md "Transactions"): staged as they
    // arrive, before anything is applied, so a crash in between loses nothing; answered ones
    // keep their answer, so a retried txnId gets the first answer and is applied once.
    version: 5,
    tables: {
      inbound_staged: '[origin+txn_id], received_ts', // {txn, received_ts}
      inbound_txns: '[origin+txn_id], answered_ts', // {response, answered_ts}
    },
  },
  {
    // A redaction received before its target (federation delivers in any order): kept by
    // target, so the target is stored redacted when it comes. OpenID tokens
    // (client-server-api "OpenID"): given to a user for another service, which asks
    // /_matrix/federation/v1/openid/userinfo who they belong to; stored hashed, with expiry.
    version: 6,
    tables: {
      pending_redactions: '[target_id+redaction_id]',
      openid_tokens: 'token_hash, expires_at', // {user_id, expires_at}
    },
  },
  {
    // Unread counts kept at write time (issue 13): per user, room and thread ('main' for the
    // main timeline), moved by each notifying event and reset by read receipts, so /sync
    // reads a few counter rows instead of scanning `notifications` (whose rows now carry
    // `thread_id` and stay, for the /notifications list). Counted from the rows kept so far.
    version: 7,
    tables: { notification_counts: '[user_id+room_id+thread_id]' }, // {notifications, highlights, since}
    upgrade: async (tx) => {
      const counts = new Map<string, Row>();
      for (const row of await tx.query('notifications')) {
        const threadId = typeof row.thread_id === 'string' ? row.thread_id : MAIN_THREAD;
        const key = JSON.stringify([row.user_id, row.room_id, threadId]);
        const count = counts.get(key) ?? {
          user_id: row.user_id,
          room_id: row.room_id,
          thread_id: threadId,
          notifications: 0,
          highlights: 0,
          since: 0,
        };
        (count.notifications as number)++;
        if (row.highlight === true) (count.highlights as number)++;
        counts.set(key, count);
      }
      for (const count of counts.values()) await tx.put('notification_counts', count);
    },
  },
  {
    // The operator's side (issue 14): application services' durable transaction queue and
    // their sending state, how far a background follower of the event stream has got,
    // content reports, rooms blocked by an admin.
    version: 8,
    tables: {
      appservice_queue: '[as_id+seq]', // {kind: 'event' | 'ephemeral', data}
      appservice_state: 'as_id', // {txn_id, up_to, retry_interval}
      stream_cursors: 'name', // {position}
      reports: 'id, created_ts', // {user_id, room_id, event_id?, target_user_id?, reason, score}
      blocked_rooms: 'room_id', // {by, blocked_ts}
    },
  },
  {
    // Server-side search and the thread list (areas/event-index.ts), written with each event:
    // a word index (one row per distinct word of an event's body/name/topic), each thread
    // root's latest reply (for /threads, newest activity first) and who took part in it.
    // Built from the events already stored.
    version: 9,
    tables: {
      search_terms: '[term+stream]', // {room_id, event_id}
      threads: '[room_id+root_id], [room_id+latest]', // {latest_event_id}
      thread_participants: '[root_id+user_id]', // {room_id}
    },
    upgrade: async (tx) => {
      await forEachEvent(tx, async (row) => {
        if (row.redacted_by != null) return;
        const pending: Promise<unknown>[] = [];
        // The word index is not built here: v11 replaced it (`search_docs`) and builds that.
        await indexEvent(tx, row, relationRow(row), (p) => pending.push(p), { careful: true });
        await Promise.all(pending);
      });
    },
  },
  {
    // Rooms joined with partial state (server-server-api.md send_join `omit_members`, as
    // Synapse's faster joins): the join, the servers the resident named (where this server's
    // events go meanwhile) and, once the full state is merged, the `partial_state` stream
    // position it came at (null while partial; /sync shows the room's full state after it).
    version: 10,
    tables: {
      partial_state_rooms: 'room_id, filled', // {join_event_id, servers}
    },
  },
  {
    // The search index as one row per event (issue 13): its words are entries `[term, stream]`
    // of a multi-entry index, so persisting an event writes one search row, not one per word
    // (in Chromium each request costs about as much as a small put). SQLite keeps the entries
    // in a side table (`search_docs__terms`) maintained by the engine. Built from the events.
    version: 11,
    tables: {
      search_terms: null,
      search_docs: 'event_id, *terms[term+stream]', // {room_id, stream, terms: [term, stream][]}
    },
    rebuilds: ['search_terms'],
    upgrade: async (tx) => {
      await forEachEvent(tx, async (row) => {
        const doc = row.redacted_by == null ? searchDoc(row) : null;
        if (doc) await tx.put('search_docs', doc);
      });
    },
  },
  {
    // An event is one request to persist (issue 13: in Chromium each request of a write costs
    // about as much as a small put, and a message made five). Its row carries what had rows
    // of its own: its prev events (`prevs`, the DAG's edges, found by child; were
    // `event_edges`), its search words (`terms`; were a `search_docs` row), the events it
    // awaits (`awaits`, unique: an event stored before one of its prev events claims it, so
    // that event's own claim fails when it comes — were v3's markers) and, on a timeline row,
    // the room's forward extremities after it (`extremities`; were `forward_extremities`
    // rows): a room's are those its latest event carries. Built from the events and the old
    // tables, which stay, emptied (earlier steps write them when an older database migrates).
    version: 12,
    tables: {
      events:
        'event_id, [room_id+stream], [room_id+depth+stream], &stream, *prevs[prev_id], &*awaits[awaited_id], *terms[term+stream]',
    },
    upgrade: async (tx) => {
      const awaits = new Map<string, string[]>();
      const claimed = new Set<string>();
      const extremities = new Map<string, ExtremityEntry[]>();
      for (const row of await tx.query('forward_extremities')) {
        const roomId = row.room_id as string;
        const eventId = row.event_id as string;
        if (isExtremity(row)) {
          const entry = { event_id: eventId, depth: row.depth as number, stream: row.stream as number };
          extremities.set(roomId, [...(extremities.get(roomId) ?? []), entry]);
        } else if (!claimed.has(eventId)) {
          claimed.add(eventId);
          const child = row.awaited_by as string;
          awaits.set(child, [...(awaits.get(child) ?? []), eventId]);
        }
      }
      const latest = new Map<string, ExtremityEntry[]>();
      for (const [roomId, entries] of extremities) {
        const last = await latestEvent(tx, roomId);
        if (last) latest.set(last.event_id as string, entries);
      }
      await forEachEvent(tx, async (row) => {
        const eventId = row.event_id as string;
        const extremity = latest.get(eventId);
        // A row that has claims keeps them (a backup's rows may be newer than its version says).
        const had = Array.isArray(row.awaits) ? (row.awaits as [string][]).map(([id]) => id) : [];
        await tx.put('events', {
          ...eventRowEntries(row, [...had, ...(awaits.get(eventId) ?? [])]),
          ...(extremity ? { extremities: extremity } : {}),
        });
      });
      // The edges were written from each pdu's prev_events; any that is not there still counts.
      let after: Key | undefined;
      for (;;) {
        const edges = await tx.query('event_edges', {
          ...(after === undefined ? {} : { lower: after as KeyPart[], lowerOpen: true }),
          limit: 500,
        });
        const ids = [...new Set(edges.map((edge) => edge.event_id as string))];
        const rows = await tx.getMany('events', ids);
        const children = new Map(ids.map((id, i) => [id, rows[i]]));
        for (const edge of edges) {
          const child = children.get(edge.event_id as string);
          const prevs = child?.prevs as [string][] | undefined;
          if (!child || !prevs || prevs.some(([id]) => id === edge.prev_id)) continue;
          prevs.push([edge.prev_id as string]);
          await tx.put('events', child);
        }
        const last = edges.at(-1);
        if (edges.length < 500 || !last) break;
        after = [last.prev_id as string, last.event_id as string];
      }
      for (const table of ['event_edges', 'forward_extremities', 'search_docs'])
        await tx.deleteRange(table, {});
    },
  },
];

/** A room's forward extremity as an event row carries it (`extremities`, schema v12). */
export interface ExtremityEntry {
  event_id: string;
  depth: number;
  stream: number;
}

/**
 * An event row with its index entries (schema v12): `prevs` from its pdu's prev_events,
 * `terms` from its searchable text, and `awaits`, the prev events it claims as awaited (see
 * `awaits` above) plus, when given, its own ID — so that it cannot be stored while a child
 * claims it.
 */
export function eventRowEntries(row: Row, awaited: readonly string[], own?: string): Row {
  const pdu = row.pdu as { prev_events?: unknown } | undefined;
  const prevs = Array.isArray(pdu?.prev_events)
    ? [...new Set(referencedIds(pdu.prev_events as EventReference[]))]
    : [];
  const claims = new Set(awaited);
  if (own !== undefined) claims.add(own);
  return {
    ...row,
    prevs: prevs.map((id) => [id]),
    awaits: [...claims].map((id) => [id]),
    terms: searchTerms(row),
  };
}

/** The latest timeline event of a room (highest positive stream position), if any. */
export async function latestEvent(tx: Tx, roomId: string): Promise<Row | undefined> {
  const [last] = await tx.query('events', {
    index: '[room_id+stream]',
    prefix: [roomId],
    lower: [0],
    lowerOpen: true,
    reverse: true,
    limit: 1,
  });
  return last;
}

/** The forward extremities of a room whose latest timeline event is `latest` (schema v12). */
export function extremitiesAfter(latest: Row | undefined): ExtremityEntry[] {
  return Array.isArray(latest?.extremities) ? (latest.extremities as ExtremityEntry[]) : [];
}

/** The thread of the main timeline (receipts.md "Threaded read receipts"). */
export const MAIN_THREAD = 'main';

/** The thread an event row is in: the root its `m.thread` relation names, else the main timeline. */
export function threadOfRow(row: Record<string, unknown>): string {
  const relation = relationRow(row);
  return relation?.rel_type === 'm.thread' ? (relation.relates_to as string) : MAIN_THREAD;
}

/** Visits every stored event in event-ID order, 500 rows a read, inside a migration's transaction. */
async function forEachEvent(tx: Tx, visit: (row: Row) => Promise<void>): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const batch = await tx.query(
      'events',
      after === undefined ? { limit: 500 } : { lower: [after], lowerOpen: true, limit: 500 },
    );
    for (const row of batch) await visit(row);
    if (batch.length < 500) return;
    after = batch[batch.length - 1]?.event_id as string;
  }
}

/**
 * A `forward_extremities` row without a position: `eventId` is not stored and `childId`, a
 * stored timeline event, names it among its prev_events — so it must not become an
 * extremity when it arrives. Written by the store for such events, dropped when they arrive.
 */
export function awaitedMarker(roomId: string, eventId: string, childId: string): Record<string, unknown> {
  return { room_id: roomId, event_id: eventId, awaited_by: childId };
}

/** Whether a `forward_extremities` row is an extremity (not an `awaitedMarker`). */
export function isExtremity(row: Record<string, unknown>): boolean {
  return typeof row.stream === 'number';
}

export const SCHEMA_VERSION = SCHEMA[SCHEMA.length - 1]?.version ?? 0;

/**
 * SQLite tables whose rows can be large (events, state snapshots, media, JSON documents)
 * keep a rowid; every other table is WITHOUT ROWID — one B-tree instead of a table plus
 * its primary-key index, so a write dirties half the pages (SQLite's advice for small rows).
 */
export const SQLITE_ROWID_TABLES: ReadonlySet<string> = new Set(
  'events state_groups media account_data filters push_rules profiles uia_sessions device_keys cross_signing_keys to_device backup_versions backup_sessions outbox sliding_sync_connections appservice_queue reports'.split(
    ' ',
  ),
);

/** Fields holding bytes (Uint8Array; a Blob for media in IndexedDB): SQLite BLOB columns, not JSON. */
export const BLOB_FIELDS: Readonly<Record<string, readonly string[]>> = {
  media: ['data'],
  secrets: ['value'],
};

/** The relations row of an event row (v2), or null when the event relates to nothing. */
export function relationRow(row: Record<string, unknown>): Record<string, unknown> | null {
  const pdu = row.pdu as { content?: { 'm.relates_to'?: unknown }; type?: unknown } | undefined;
  const rel = pdu?.content?.['m.relates_to'];
  if (typeof rel !== 'object' || rel === null) return null;
  const { rel_type: relType, event_id: target } = rel as Record<string, unknown>;
  if (typeof relType !== 'string' || typeof target !== 'string') return null;
  return {
    event_id: row.event_id,
    room_id: row.room_id,
    relates_to: target,
    rel_type: relType,
    type: pdu?.type,
    stream: row.stream ?? null,
  };
}

// ---------------------------------------------------------------------------------------
// Derivations

export interface IndexSpec {
  /** As written in the declaration: `'[room_id+stream]'`, `'&stream'` without the `&`; a multi-entry index's field. */
  name: string;
  columns: string[];
  unique: boolean;
  /**
   * A multi-entry index (`*field[a+b]`): the row's `field` is an array of entries, each a key
   * `[a, b]` (one entry per element, IndexedDB `multiEntry`; an array even of one part);
   * `columns` name the entry's parts, which are not row fields. SQLite keeps the entries in a
   * side table (`sqliteSideTable`). `&*field[a]` is unique: no entry may be in two rows.
   */
  multi?: true;
}

export interface TableSpec {
  name: string;
  key: IndexSpec;
  indexes: IndexSpec[];
  /** SQLite columns: key, index and blob columns; every other field goes in `v`. */
  columns: string[];
}

function parseIndex(text: string): IndexSpec {
  const multi = /^(&?)\*(\w+)\[(\w+(?:\+\w+)*)\]$/.exec(text);
  if (multi)
    return {
      name: multi[2] as string,
      columns: (multi[3] as string).split('+'),
      unique: multi[1] === '&',
      multi: true,
    };
  const unique = text.startsWith('&');
  const name = unique ? text.slice(1) : text;
  const columns = name.startsWith('[') ? name.slice(1, -1).split('+') : [name];
  return { name, columns, unique };
}

export function parseTable(name: string, declaration: string): TableSpec {
  const [key, ...indexes] = declaration.split(',').map((part) => parseIndex(part.trim()));
  if (!key) throw new Error(`table ${name} declares no key`);
  const columns = [
    ...new Set(
      [key, ...indexes.filter((ix) => !ix.multi)].flatMap((ix) => ix.columns).concat(BLOB_FIELDS[name] ?? []),
    ),
  ];
  return { name, key: { ...key, unique: true }, indexes, columns };
}

/** Each table's declaration as the steps up to `version` leave it (dropped tables gone). */
export function declarationsAt(version: number): Map<string, string> {
  const declarations = new Map<string, string>();
  for (const step of SCHEMA) {
    if (step.version > version) break;
    for (const [name, declaration] of Object.entries(step.tables)) {
      if (declaration === null) declarations.delete(name);
      else declarations.set(name, declaration);
    }
  }
  return declarations;
}

/** The tables as they are at `version`. */
export function tablesAt(version: number): Map<string, TableSpec> {
  const tables = new Map<string, TableSpec>();
  for (const [name, declaration] of declarationsAt(version)) tables.set(name, parseTable(name, declaration));
  return tables;
}

const quote = (id: string) => `"${id}"`;

/** SQLite index columns: IndexedDB orders index ties by primary key, so non-unique SQL
 * indexes carry the key columns too, and the same ORDER BY is served by the index. */
export function sqliteIndexColumns(table: TableSpec, index: IndexSpec): string[] {
  if (index.unique) return index.columns;
  return [...new Set([...index.columns, ...table.key.columns])];
}

/**
 * The SQLite table holding a multi-entry index's entries: one row per entry, the entry's
 * parts then the owning row's key, all of them the primary key (as the index orders them) —
 * or, for a unique index, the entry's parts alone, so a second row's same entry is refused.
 */
export function sqliteSideTable(
  table: TableSpec,
  index: IndexSpec,
): { name: string; columns: string[]; key: string[] } {
  const clash = index.columns.find((c) => table.key.columns.includes(c));
  if (clash)
    throw new Error(`${table.name}: multi-entry index ${index.name} repeats the key column ${clash}`);
  const columns = [...index.columns, ...table.key.columns];
  return { name: `${table.name}__${index.name}`, columns, key: index.unique ? index.columns : columns };
}

/** A table declaration in Dexie's own notation (a multi-entry index is `*field` there, `&*field` unique). */
export function dexieDeclaration(declaration: string | null): string | null {
  return declaration === null ? null : declaration.replace(/\*(\w+)\[[^\]]*\]/g, '*$1');
}

function createTable(table: TableSpec): string[] {
  const columns = table.columns.map((c) =>
    table.key.columns.includes(c) ? `${quote(c)} NOT NULL` : quote(c),
  );
  const statements = [
    `CREATE TABLE ${quote(table.name)} (${[...columns, 'v TEXT'].join(', ')}, PRIMARY KEY (${table.key.columns.map(quote).join(', ')}))${
      SQLITE_ROWID_TABLES.has(table.name) ? '' : ' WITHOUT ROWID'
    }`,
  ];
  for (const index of table.indexes) statements.push(createIndex(table, index));
  return statements;
}

/** The index, or for a multi-entry index its side table (`sqliteSideTable`). */
function createIndex(table: TableSpec, index: IndexSpec): string {
  if (index.multi) {
    const side = sqliteSideTable(table, index);
    return `CREATE TABLE ${quote(side.name)} (${side.columns.map((c) => `${quote(c)} NOT NULL`).join(', ')}, PRIMARY KEY (${side.key.map(quote).join(', ')})) WITHOUT ROWID`;
  }
  const columns = sqliteIndexColumns(table, index).map(quote).join(', ');
  return `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quote(sqliteIndexName(table.name, index))} ON ${quote(table.name)} (${columns})`;
}

export function sqliteIndexName(table: string, index: IndexSpec): string {
  return `${table}__${index.columns.join('_')}`;
}

/**
 * The DDL taking a SQLite database from `from` to `to` (0 = empty). Portable SQL only:
 * CREATE/DROP TABLE and INDEX, nothing host-specific.
 */
export function sqliteDdl(from: number, to: number): string[] {
  // A new database gets the tables as they are at `to` (none made only to be dropped later).
  if (from === 0) return [...tablesAt(to).values()].flatMap(createTable);
  const statements: string[] = [];
  let before = tablesAt(from);
  for (const step of SCHEMA) {
    if (step.version <= from || step.version > to) continue;
    const after = tablesAt(step.version);
    for (const name of Object.keys(step.tables)) {
      const old = before.get(name);
      const next = after.get(name);
      if (!next) {
        if (old) statements.push(`DROP TABLE ${quote(name)}`);
        for (const ix of old?.indexes ?? [])
          if (ix.multi) statements.push(`DROP TABLE ${quote(sqliteSideTable(old as TableSpec, ix).name)}`);
      } else if (!old) {
        statements.push(...createTable(next));
      } else {
        const sameColumns = next.columns.every((c) => old.columns.includes(c));
        const same = (a: IndexSpec, b: IndexSpec) => JSON.stringify(a) === JSON.stringify(b);
        // A multi-entry index may be added (its side table created, filled by the step's
        // upgrade rewriting the rows), not changed or dropped.
        const keepsMulti = old.indexes.every((o) => !o.multi || next.indexes.some((n) => same(n, o)));
        if (next.key.name !== old.key.name || !sameColumns || !keepsMulti) {
          // Moving fields between `v` and columns needs a hand-written step; refuse rather than guess.
          throw new Error(
            `schema v${step.version}: table ${name} changes key or columns; write its SQLite migration`,
          );
        }
        for (const ix of old.indexes) {
          if (!ix.multi && !next.indexes.some((n) => n.name === ix.name && n.unique === ix.unique)) {
            statements.push(`DROP INDEX ${quote(sqliteIndexName(name, ix))}`);
          }
        }
        for (const ix of next.indexes) {
          if (!old.indexes.some((o) => same(o, ix))) statements.push(createIndex(next, ix));
        }
      }
    }
    before = after;
  }
  return statements;
}
