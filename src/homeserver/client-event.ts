/**
 * Events as clients see them — data/api/client-server/definitions/client_event.yaml and
 * client_event_without_room_id.yaml (client-server-api/_index.md "Room event format").
 *
 * One function, `toClientEvent`, turns a stored event into the client format for every
 * endpoint that returns events (/sync, /messages, /context, /event, /state, /members …), so
 * they all agree on `unsigned`: `age`, `transaction_id` (only for the device that sent it),
 * `redacted_because`, `prev_content` / `replaces_state` for state events.
 *
 * `toClientEvent` is pure; `loadClientEvents` fetches what it needs (redaction events,
 * replaced state) for a batch of events with a few store reads, then formats them.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import { stateKey } from '../core/pdu.ts';
import type { Store, StoredEvent } from '../storage/store.ts';
import { type Aggregation, loadAggregations } from './aggregations.ts';

/** Who the event is shown to: `transaction_id` is given only to the device that sent it. */
export interface Viewer {
  userId: string;
  deviceId?: string | null;
}

export interface ClientEventExtras {
  /** `false` gives the `ClientEventWithoutRoomID` form (/sync). Default true. */
  withRoomId?: boolean;
  /** `federation` returns the event as servers exchange it (sync_filter.yaml `event_format`). */
  format?: 'client' | 'federation';
  /** The redaction event named by `stored.redactedBy`, when loaded. */
  redactedBecause?: StoredEvent | null;
  /** For a state event: the state event it replaced, when loaded. */
  replaced?: StoredEvent | null;
  /** Bundled aggregations (aggregations.ts) by event ID: this event's, and those of the events inside it. */
  aggregations?: ReadonlyMap<string, Aggregation>;
}

/**
 * Keys of a PDU's own `unsigned` that a client may see. Everything else there comes from
 * another server (or from us, for federation) and is not ours to vouch for.
 */
const PASSED_UNSIGNED = ['invite_room_state', 'knock_room_state'] as const;

/** The client format of a stored event, as `viewer` should see it at `now`. */
export function toClientEvent(
  stored: StoredEvent,
  viewer: Viewer | null,
  now: number,
  extras: ClientEventExtras = {},
): JsonObject {
  const pdu = stored.event;
  const unsigned: JsonObject = {};
  const pduUnsigned = pdu.unsigned;
  if (pduUnsigned)
    for (const key of PASSED_UNSIGNED) if (pduUnsigned[key] !== undefined) unsigned[key] = pduUnsigned[key];
  unsigned.age = Math.max(0, now - pdu.origin_server_ts);
  if (
    stored.txn &&
    viewer &&
    viewer.userId === pdu.sender &&
    viewer.deviceId != null &&
    viewer.deviceId === stored.txn.deviceId
  ) {
    unsigned.transaction_id = stored.txn.txnId;
  }
  if (extras.redactedBecause) {
    // One level only: a redaction's own redaction is not shown inside it.
    unsigned.redacted_because = toClientEvent(extras.redactedBecause, viewer, now, {
      withRoomId: extras.withRoomId,
    });
  }
  if (pdu.state_key !== undefined && extras.replaced) {
    unsigned.replaces_state = extras.replaced.event.event_id;
    unsigned.prev_content = extras.replaced.event.content;
    unsigned.prev_sender = extras.replaced.event.sender;
  }
  const aggregation = extras.aggregations?.get(pdu.event_id);
  if (aggregation) unsigned['m.relations'] = bundled(aggregation, viewer, now, extras);

  if (extras.format === 'federation') {
    return { ...(pdu as unknown as JsonObject), unsigned };
  }

  const out: JsonObject = {
    event_id: pdu.event_id,
    type: pdu.type,
    sender: pdu.sender,
    origin_server_ts: pdu.origin_server_ts,
    content: pdu.content,
  };
  if (extras.withRoomId !== false) out.room_id = stored.roomId;
  if (pdu.state_key !== undefined) out.state_key = pdu.state_key;
  // v1–v10 carry `redacts` at the top level; from v11 it lives in `content.redacts`. Older
  // clients read only the top-level key, so it is shown there for every version.
  if (pdu.type === 'm.room.redaction') {
    const redacts = typeof pdu.redacts === 'string' ? pdu.redacts : pdu.content.redacts;
    if (typeof redacts === 'string') out.redacts = redacts;
  }
  out.unsigned = unsigned;
  return out;
}

/** `unsigned["m.relations"]` of one event (client-server-api "Aggregations of child events"). */
function bundled(
  aggregation: Aggregation,
  viewer: Viewer | null,
  now: number,
  extras: ClientEventExtras,
): JsonObject {
  const inner: ClientEventExtras = { withRoomId: extras.withRoomId, format: extras.format };
  const relations: JsonObject = {};
  if (aggregation.replace) relations['m.replace'] = toClientEvent(aggregation.replace, viewer, now, inner);
  if (aggregation.thread) {
    const { latest, count, participated } = aggregation.thread;
    relations['m.thread'] = {
      latest_event: toClientEvent(latest, viewer, now, { ...inner, aggregations: extras.aggregations }),
      count,
      current_user_participated: participated,
    };
  }
  if (aggregation.references)
    relations['m.reference'] = { chunk: aggregation.references.map((event_id) => ({ event_id })) };
  return relations;
}

export interface LoadOptions extends Pick<ClientEventExtras, 'withRoomId' | 'format'> {
  /** Look up the replaced state of state events for `prev_content` (default true). */
  prevContent?: boolean;
  /** Bundle aggregations of child events (default true; state and member lists leave them out). */
  relations?: boolean;
}

/**
 * Format a batch of stored events, loading their redaction events and replaced state.
 * Reads: one `getEvents` for redactions, one `stateAt` per state event whose PDU does not
 * name the state it replaces, one `getEvents` for the replaced events.
 */
export async function loadClientEvents(
  store: Store,
  events: readonly StoredEvent[],
  viewer: Viewer | null,
  now: number,
  options: LoadOptions = {},
): Promise<JsonObject[]> {
  const redactionIds = new Set<string>();
  for (const e of events) if (e.redactedBy) redactionIds.add(e.redactedBy);

  const replacedIdOf = new Map<string, string>();
  if (options.prevContent !== false) {
    for (const e of events) {
      const pdu = e.event;
      if (pdu.state_key === undefined || e.outlier || e.rejected) continue;
      const hinted = pdu.unsigned?.replaces_state;
      if (typeof hinted === 'string') {
        replacedIdOf.set(pdu.event_id, hinted);
        continue;
      }
      const before = await store.rooms.stateAt(pdu.event_id, 'before');
      const previous = before?.get(stateKey(pdu.type, pdu.state_key));
      if (previous && previous !== pdu.event_id) replacedIdOf.set(pdu.event_id, previous);
    }
  }

  const wanted = [...redactionIds, ...replacedIdOf.values()];
  const [loaded, aggregations] = await Promise.all([
    wanted.length > 0 ? store.rooms.getEvents(wanted) : new Map<string, StoredEvent>(),
    options.relations === false ? undefined : loadAggregations(store, events, viewer?.userId ?? null),
  ]);

  return events.map((e) => {
    const pdu = e.event;
    const replacedId = replacedIdOf.get(pdu.event_id);
    let replaced = replacedId ? loaded.get(replacedId) : undefined;
    // A hint in `unsigned` may come from another server: believe it only for the same slot.
    if (
      replaced &&
      (replaced.roomId !== e.roomId ||
        replaced.event.type !== pdu.type ||
        replaced.event.state_key !== pdu.state_key)
    ) {
      replaced = undefined;
    }
    return toClientEvent(e, viewer, now, {
      withRoomId: options.withRoomId,
      format: options.format,
      redactedBecause: e.redactedBy ? (loaded.get(e.redactedBy) ?? null) : null,
      replaced: replaced ?? null,
      ...(aggregations && aggregations.size > 0 ? { aggregations } : {}),
    });
  });
}
