/**
 * Bundled aggregations — client-server-api "Aggregations of child events": what the server puts
 * in `unsigned["m.relations"]` of every event it serves that has children, for
 * - `m.replace` (modules/event_replacements.md "Server-side aggregation"): the most recent
 *   *valid* edit (same sender and type, neither a state event, original not itself an edit,
 *   `m.new_content` present unless encrypted; latest by `origin_server_ts`, then the largest
 *   event ID), never for a redacted original. The original's content is left as it is (v1.7).
 * - `m.thread` (modules/threading.md): the latest reply (itself with its edit bundled), the
 *   number of replies, and whether the viewer took part (sent the root or a reply).
 * - `m.reference` (modules/reference_relations.md): the IDs of the referencing events.
 *
 * One store transaction finds which events have children; the children are loaded in one
 * more read. Events without children cost one index probe each.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { RelationSummary, Store, StoredEvent } from '../storage/store.ts';

export interface Aggregation {
  replace?: StoredEvent;
  thread?: { latest: StoredEvent; count: number; participated: boolean };
  references?: string[];
}

const relatesTo = (e: StoredEvent) => {
  const rel = e.event.content['m.relates_to'];
  return typeof rel === 'object' && rel !== null && !Array.isArray(rel) ? (rel as JsonObject) : null;
};

/** Whether `edit` validly replaces `original` (event_replacements.md "Validity of replacement events"). */
export function validEdit(original: StoredEvent, edit: StoredEvent): boolean {
  if (edit.redactedBy || edit.rejected || edit.softFailed) return false;
  if (edit.roomId !== original.roomId || edit.event.sender !== original.event.sender) return false;
  if (edit.event.type !== original.event.type) return false;
  if (edit.event.state_key !== undefined || original.event.state_key !== undefined) return false;
  if (relatesTo(original)?.rel_type === 'm.replace') return false;
  const rel = relatesTo(edit);
  if (rel?.rel_type !== 'm.replace' || rel.event_id !== original.event.event_id) return false;
  const newContent = edit.event.content['m.new_content'];
  const encrypted = edit.event.type === 'm.room.encrypted';
  return encrypted || (typeof newContent === 'object' && newContent !== null && !Array.isArray(newContent));
}

/** Later edit first: `origin_server_ts`, then the lexicographically largest event ID. */
const newer = (a: StoredEvent, b: StoredEvent) =>
  b.event.origin_server_ts - a.event.origin_server_ts ||
  (a.event.event_id < b.event.event_id ? 1 : a.event.event_id > b.event.event_id ? -1 : 0);

/**
 * The aggregations of `events` as `userId` sees them. `nested` is false for the events inside
 * an aggregation (a thread's latest reply): only their edits are bundled.
 */
export async function loadAggregations(
  store: Store,
  events: readonly StoredEvent[],
  userId: string | null,
  nested = true,
): Promise<Map<string, Aggregation>> {
  const out = new Map<string, Aggregation>();
  const candidates = events.filter((e) => e.rejected === null && !e.outlier);
  if (candidates.length === 0) return out;
  const summaries = await store.rooms.relationSummaries(candidates.map((e) => e.event.event_id));
  if (summaries.size === 0) return out;

  const wanted = new Set<string>();
  const threadRoots: string[] = [];
  for (const [id, s] of summaries) {
    for (const edit of s.replace) wanted.add(edit);
    if (nested && s.thread) {
      wanted.add(s.thread.latestEventId);
      threadRoots.push(id);
    }
  }
  const [loaded, participated] = await Promise.all([
    store.rooms.getEvents([...wanted]),
    userId && threadRoots.length > 0
      ? store.rooms.threadParticipants(userId, threadRoots)
      : Promise.resolve(new Set<string>()),
  ]);
  const latestEvents = nested
    ? [...summaries.values()]
        .map((s) => (s.thread ? loaded.get(s.thread.latestEventId) : undefined))
        .filter((e): e is StoredEvent => e !== undefined)
    : [];
  const inner =
    latestEvents.length > 0 ? await loadAggregations(store, latestEvents, userId, false) : new Map();

  for (const event of candidates) {
    const id = event.event.event_id;
    const summary: RelationSummary | undefined = summaries.get(id);
    if (!summary) continue;
    const aggregation: Aggregation = {};
    if (!event.redactedBy) {
      const edits = summary.replace
        .map((editId) => loaded.get(editId))
        .filter((e): e is StoredEvent => e !== undefined && validEdit(event, e))
        .sort(newer);
      if (edits[0]) aggregation.replace = edits[0];
    }
    if (nested && summary.thread) {
      const latest = loaded.get(summary.thread.latestEventId);
      if (latest) {
        const viewerInThread = userId !== null && (event.event.sender === userId || participated.has(id));
        aggregation.thread = { latest, count: summary.thread.count, participated: viewerInThread };
        const innerEdit = inner.get(latest.event.event_id)?.replace;
        if (innerEdit) out.set(latest.event.event_id, { replace: innerEdit });
      }
    }
    if (summary.references.length > 0) aggregation.references = summary.references;
    if (aggregation.replace || aggregation.thread || aggregation.references) out.set(id, aggregation);
  }
  return out;
}
