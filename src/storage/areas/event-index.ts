/**
 * The indexes kept beside each timeline event, written in the transaction that writes the
 * event: the search index (schema v12: the event row's distinct words as entries
 * `[term, stream]` of its multi-entry index `terms`; v11 kept them in a `search_docs` row of
 * their own) and the thread list (`threads`, one row per thread root with its latest reply;
 * `thread_participants`, who replied).
 *
 * Why a word index rather than SQLite FTS5: one index written once over the engine serves
 * IndexedDB and SQLite alike (and the edge SQLites, where FTS5 may be missing), stays in the
 * event's own transaction on both, and its queries are key-range scans `plans.test.ts` checks.
 * On the event row rather than one row per word (v9) or per event (v11): in Chromium every
 * request of a write costs about as much as a small put (an index entry about 1.5% of one),
 * so an event's words cost no request of their own. Matching is whole words
 * (`core/search-text.ts`); ranking is done by the homeserver over the events found.
 */
import { indexWords, searchableText } from '../../core/search-text.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import type { NotificationRecord, RelationSummary, RoomStore, SearchHit, ThreadRecord } from '../store.ts';

export const EVENT_INDEX_TABLES = ['threads', 'thread_participants'] as const;

const THREAD = 'm.thread';

/** Whether an event row is in a timeline and accepted: only those are searched or threaded. */
function indexable(row: Row): boolean {
  return (
    typeof row.stream === 'number' && row.rejected == null && row.soft_failed !== true && row.outlier !== true
  );
}

/**
 * The search entries of an event row (its `terms`, schema v12): each distinct word of its
 * searchable text as `[word, stream]`; none when it is not searched (not in a timeline,
 * rejected, redacted, no text).
 */
export function searchTerms(row: Row): [string, number][] {
  if (!indexable(row) || row.redacted_by != null) return [];
  const pdu = row.pdu as { type?: unknown; content?: unknown; state_key?: unknown };
  const found = searchableText(String(pdu.type), pdu.content);
  if (!found) return [];
  return indexWords(found.text).map((term) => [term, row.stream as number]);
}

/** The `search_docs` row of an event row as schema v11 kept it; null when it has no searchable text. */
export function searchDoc(row: Row): Row | null {
  const terms = searchTerms(row);
  if (terms.length === 0) return null;
  return { event_id: row.event_id, room_id: row.room_id, stream: row.stream, terms };
}

/**
 * Writes an event row's thread rows (its search words are on the row itself, `searchTerms`).
 * `relation` is its relations row (schema.ts `relationRow`), if any. Writes are handed to
 * `write` unawaited, except for a backfilled thread reply, which reads the thread's row first
 * (older history must not become its latest).
 */
export function indexEvent(
  tx: Tx,
  row: Row,
  relation: Row | null,
  write: (promise: Promise<unknown>) => void,
  options: {
    /** Read the thread's row first whatever the position (a migration visits events out of order). */
    careful?: boolean;
  } = {},
): Promise<void> | undefined {
  if (!relation || relation.rel_type !== THREAD || !indexable(row)) return undefined;
  const rootId = relation.relates_to as string;
  const roomId = row.room_id as string;
  const stream = row.stream as number;
  const sender = (row.pdu as { sender: string }).sender;
  write(tx.put('thread_participants', { root_id: rootId, user_id: sender, room_id: roomId }));
  const thread = { room_id: roomId, root_id: rootId, latest: stream, latest_event_id: row.event_id };
  if (stream > 0 && !options.careful) {
    write(tx.put('threads', thread));
    return undefined;
  }
  return tx.get('threads', [roomId, rootId]).then((known) => {
    if (!known || (known.latest as number) < stream) write(tx.put('threads', thread));
  });
}

// ---------------------------------------------------------------------------------------
// Reads

/** Index rows read per batch while searching. */
const SEARCH_BATCH = 256;
/** Lower bound that excludes rows without a position (SQLite orders NULL first; IndexedDB leaves them out of the index). */
const POSITIONED = [Number.MIN_SAFE_INTEGER];
/** Relations listed per event in a summary (edits, references): the newest are kept. */
const SUMMARY_LIMIT = 100;

export type EventIndexReads = Pick<
  RoomStore,
  'searchEvents' | 'threads' | 'threadParticipants' | 'relationSummaries' | 'notificationsFor'
>;

export function eventIndexReads(engine: Engine): EventIndexReads {
  return {
    searchEvents(query) {
      const terms = [...new Set(query.terms)];
      const maxScan = query.maxScan ?? 20_000;
      return engine.read(['events'], async (tx) => {
        if (terms.length === 0) return { hits: [], next: null };
        // Walk the rarest word's events, newest first; each row lists its event's words, so
        // the others are checked on it. Which is rarest is judged from each word's first batch
        // (a word with fewer rows than a batch is known exactly), so a common word costs one
        // batch, never a count of all its rows.
        const byTerm = (term: string, before: number | undefined) =>
          tx.query('events', {
            index: 'terms',
            prefix: [term],
            ...(before !== undefined ? { upper: [before], upperOpen: true } : {}),
            reverse: true,
            limit: SEARCH_BATCH,
          });
        const firsts = await Promise.all(terms.map((term) => byTerm(term, query.before)));
        const order = terms
          .map((term, i) => [term, firsts[i] as Row[]] as const)
          .sort((a, b) => a[1].length - b[1].length);
        const [rarest, first] = order[0] as readonly [string, Row[]];
        const others = order.slice(1).map(([term]) => term);
        const hits: SearchHit[] = [];
        let batch = first;
        let scanned = 0;
        for (;;) {
          scanned += batch.length;
          for (const row of batch) {
            if (!query.roomIds.has(row.room_id as string)) continue;
            const words = new Set((row.terms as [string, number][]).map(([term]) => term));
            if (!others.every((term) => words.has(term))) continue;
            hits.push({
              eventId: row.event_id as string,
              roomId: row.room_id as string,
              stream: row.stream as number,
            });
            if (hits.length >= query.limit) return { hits, next: row.stream as number };
          }
          const last = batch.at(-1);
          if (batch.length < SEARCH_BATCH || !last) return { hits, next: null };
          if (scanned >= maxScan) return { hits, next: last.stream as number };
          batch = await byTerm(rarest, last.stream as number);
        }
      });
    },

    threads(roomId, { before, limit }) {
      return engine.read(['threads'], async (tx) => {
        const rows = await tx.query('threads', {
          index: '[room_id+latest]',
          prefix: [roomId],
          ...(before !== undefined ? { upper: [before], upperOpen: true } : {}),
          reverse: true,
          limit: limit + 1,
        });
        const threads = rows.slice(0, limit).map(
          (row): ThreadRecord => ({
            rootId: row.root_id as string,
            latestEventId: row.latest_event_id as string,
            latest: row.latest as number,
          }),
        );
        return { threads, next: rows.length > limit ? (threads.at(-1)?.latest ?? null) : null };
      });
    },

    async threadParticipants(userId, rootIds) {
      const rows = await engine.read(['thread_participants'], (tx) =>
        tx.getMany(
          'thread_participants',
          rootIds.map((id) => [id, userId]),
        ),
      );
      return new Set(rootIds.filter((_, i) => rows[i] !== undefined));
    },

    relationSummaries(eventIds) {
      return engine.read(['relations'], async (tx) => {
        const summaries = new Map<string, RelationSummary>();
        const ids = [...new Set(eventIds)];
        const any = await Promise.all(
          ids.map((id) =>
            tx.count('relations', { index: '[relates_to+stream]', prefix: [id], lower: POSITIONED }),
          ),
        );
        const related = ids.filter((_, i) => (any[i] ?? 0) > 0);
        const byType = (id: string, relType: string, limit: number) =>
          tx.query('relations', {
            index: '[relates_to+rel_type+stream]',
            prefix: [id, relType],
            lower: POSITIONED,
            reverse: true,
            limit,
          });
        await Promise.all(
          related.map(async (id) => {
            const [replace, threadCount, [latest], references] = await Promise.all([
              byType(id, 'm.replace', SUMMARY_LIMIT),
              tx.count('relations', {
                index: '[relates_to+rel_type+stream]',
                prefix: [id, 'm.thread'],
                lower: POSITIONED,
              }),
              byType(id, 'm.thread', 1),
              byType(id, 'm.reference', SUMMARY_LIMIT),
            ]);
            summaries.set(id, {
              replace: replace.map((row) => row.event_id as string),
              thread: latest ? { count: threadCount, latestEventId: latest.event_id as string } : null,
              references: references.map((row) => row.event_id as string).reverse(),
            });
          }),
        );
        return summaries;
      });
    },

    notificationsFor(userId, roomIds, { before, limit, highlightOnly }) {
      return engine.read(['notifications'], async (tx) => {
        // One newest-first page per room, merged: the table is keyed by (user, room, position).
        const pages = await Promise.all(
          roomIds.map((roomId) =>
            tx.query('notifications', {
              prefix: [userId, roomId],
              ...(before !== undefined ? { upper: [before], upperOpen: true } : {}),
              reverse: true,
              limit,
              ...(highlightOnly ? { filter: (row: Row) => row.highlight === true } : {}),
            }),
          ),
        );
        return pages
          .flat()
          .sort((a, b) => (b.stream as number) - (a.stream as number))
          .slice(0, limit)
          .map(
            (row): NotificationRecord => ({
              roomId: row.room_id as string,
              eventId: row.event_id as string,
              stream: row.stream as number,
              highlight: row.highlight === true,
            }),
          );
      });
    },
  };
}
