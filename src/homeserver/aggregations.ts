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
 * What is bundled is what the viewer may see: an edit or a thread reply the viewer's history
 * visibility hides (sent after they left, say), or sent by a user they ignore, is passed over
 * for the latest one they may see; a thread with no such reply has no summary, and its count
 * leaves out the replies passed over (those newer than the one shown). Redacted edits never
 * count.
 *
 * One store transaction finds which events have children; the children are loaded in one
 * more read. Events without children cost one index probe each. The viewer's checks cost
 * nothing for replies sent while they are joined; a thread walks back past hidden replies
 * only as far as it must (MAX_THREAD_WALK).
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { RelationSummary, Store, StoredEvent } from '../storage/store.ts';
import { createVisibility } from './rooms/visibility.ts';
import { ignoredUsersOf } from './sync/compute.ts';

/** Thread replies read at most to find the latest the viewer may see, or to count an ignored user's out. */
const MAX_THREAD_WALK = 1000;
/** Page size of that walk. */
const THREAD_PAGE = 100;

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
 * Which events the viewer may be shown inside an aggregation: visible under history
 * visibility, and not from a user they ignore. Null viewer (a server): everything.
 */
type Admit = (events: readonly StoredEvent[]) => Promise<Set<string>>;

async function admitFor(store: Store, userId: string | null): Promise<Admit> {
  if (userId === null) return async (events) => new Set(events.map((e) => e.event.event_id));
  const ignored = ignoredUsersOf(await store.userData.getAccountData(userId, 'm.ignored_user_list'));
  const visibility = createVisibility({ store });
  return async (events) => {
    const byRoom = new Map<string, StoredEvent[]>();
    for (const e of events) {
      if (ignored.has(e.event.sender)) continue;
      const list = byRoom.get(e.roomId) ?? [];
      list.push(e);
      byRoom.set(e.roomId, list);
    }
    const out = new Set<string>();
    for (const [roomId, list] of byRoom)
      for (const e of await visibility.filterVisible(userId, roomId, list)) out.add(e.event.event_id);
    return out;
  };
}

/**
 * A thread as the viewer sees it: its latest reply they may see and how many replies there
 * are up to it, less those passed over. Null when they may see none of the replies read.
 */
async function threadAsSeen(
  store: Store,
  rootId: string,
  thread: NonNullable<RelationSummary['thread']>,
  latest: StoredEvent | undefined,
  admitted: Set<string>,
  admit: Admit,
): Promise<{ latest: StoredEvent; count: number } | null> {
  if (latest && admitted.has(latest.event.event_id)) return { latest, count: thread.count };
  let hidden = 0;
  let from: number | undefined;
  for (let read = 0; read < MAX_THREAD_WALK; read += THREAD_PAGE) {
    const rows = await store.rooms.relations(rootId, {
      relType: 'm.thread',
      dir: 'b',
      limit: THREAD_PAGE,
      ...(from !== undefined ? { from } : {}),
    });
    const loaded = await store.rooms.getEvents(rows.map((r) => r.eventId));
    const replies = rows.map((r) => loaded.get(r.eventId)).filter((e): e is StoredEvent => e !== undefined);
    const seen = await admit(replies);
    for (const reply of replies) {
      if (seen.has(reply.event.event_id)) return { latest: reply, count: Math.max(1, thread.count - hidden) };
      hidden++;
    }
    const last = rows.at(-1);
    if (rows.length < THREAD_PAGE || !last) return null;
    from = last.stream - 1;
  }
  return null;
}

/**
 * The aggregations of `events` as `userId` sees them. `nested` is false for the events inside
 * an aggregation (a thread's latest reply): only their edits are bundled.
 */
export async function loadAggregations(
  store: Store,
  events: readonly StoredEvent[],
  userId: string | null,
  nested = true,
  admitGiven?: Admit,
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
  const [loaded, participated, admit] = await Promise.all([
    store.rooms.getEvents([...wanted]),
    userId && threadRoots.length > 0
      ? store.rooms.threadParticipants(userId, threadRoots)
      : Promise.resolve(new Set<string>()),
    admitGiven ?? admitFor(store, userId),
  ]);
  const byId = new Map(candidates.map((e) => [e.event.event_id, e]));
  // Valid edits, newest first, and thread replies: the viewer's checks in one pass.
  const editsOf = new Map<string, StoredEvent[]>();
  for (const [id, s] of summaries) {
    const original = byId.get(id);
    if (!original || original.redactedBy) continue;
    const edits = s.replace
      .map((editId) => loaded.get(editId))
      .filter((e): e is StoredEvent => e !== undefined && validEdit(original, e))
      .sort(newer);
    if (edits.length > 0) editsOf.set(id, edits);
  }
  const latestOf = new Map<string, StoredEvent>();
  if (nested)
    for (const [id, s] of summaries) {
      const latest = s.thread ? loaded.get(s.thread.latestEventId) : undefined;
      if (latest) latestOf.set(id, latest);
    }
  const admitted = await admit([...[...editsOf.values()].flat(), ...latestOf.values()]);

  const threads = new Map<string, { latest: StoredEvent; count: number }>();
  if (nested)
    for (const [id, s] of summaries) {
      if (!s.thread) continue;
      const seen = await threadAsSeen(store, id, s.thread, latestOf.get(id), admitted, admit);
      if (seen) threads.set(id, seen);
    }
  const latestEvents = [...threads.values()].map((t) => t.latest);
  const inner =
    latestEvents.length > 0 ? await loadAggregations(store, latestEvents, userId, false, admit) : new Map();

  for (const event of candidates) {
    const id = event.event.event_id;
    const summary: RelationSummary | undefined = summaries.get(id);
    if (!summary) continue;
    const aggregation: Aggregation = {};
    const edit = editsOf.get(id)?.find((e) => admitted.has(e.event.event_id));
    if (edit) aggregation.replace = edit;
    const thread = threads.get(id);
    if (thread) {
      const viewerInThread = userId !== null && (event.event.sender === userId || participated.has(id));
      aggregation.thread = { ...thread, participated: viewerInThread };
      const innerEdit = inner.get(thread.latest.event.event_id)?.replace;
      if (innerEdit) out.set(thread.latest.event.event_id, { replace: innerEdit });
    }
    if (summary.references.length > 0) aggregation.references = summary.references;
    if (aggregation.replace || aggregation.thread || aggregation.references) out.set(id, aggregation);
  }
  return out;
}
