/**
 * Taking in the PDUs another server sent for one room (a `/send` transaction's share of it):
 * server-server-api.md "Checks performed on receipt of a PDU", "Backfilling and retrieving
 * missing events" and "Retrieving events".
 *
 * Each PDU goes through the accept pipeline. When its prev events are unknown here, the gap
 * is closed from the sender: `get_missing_events` from our forward extremities to the PDU,
 * bounded (at most `MAX_GAP_EVENTS` events over `MAX_GAP_ROUNDS` requests, none older than
 * our oldest extremity), the events accepted oldest first, and the PDU tried again. When the
 * gap cannot be closed so — a fork from long ago, a server that will not say — the state
 * before the PDU is asked for (`/state_ids`, then `/event` for each unknown ID, or `/state`
 * when many are unknown), its events and their auth chains accepted as outliers, and the
 * PDU accepted on that state. An event whose auth events cannot be had (after
 * `/event_auth`) is never applied.
 */
import {
  computeEventId,
  type Pdu,
  type RoomVersion,
  referencedIds,
  type StateMap,
  stateKey,
} from '../../core/index.ts';
import type { HomeserverContext } from '../context.ts';
import { type AcceptOutcome, serverOf } from '../rooms/accept.ts';
import type { RoomsService } from '../rooms/service.ts';

/** Events asked for in one `get_missing_events` request. */
export const MISSING_EVENTS_LIMIT = 100;
/** Requests made to close one gap before falling back to the state before the event. */
export const MAX_GAP_ROUNDS = 10;
/** Events fetched to close one gap. */
export const MAX_GAP_EVENTS = 1000;
/** Unknown state events fetched one by one with `/event`; past this, one `/state` request. */
const MAX_SINGLE_FETCHES = 20;

export type ReceiveResult = Map<string, { error?: string }>;

const isObject = (value: unknown): value is Pdu =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const depthOf = (pdu: Pdu): number => (typeof pdu.depth === 'number' ? pdu.depth : 0);

const byDepth = (x: Pdu, y: Pdu): number => depthOf(x) - depthOf(y);

function errorOf(outcome: AcceptOutcome): string | undefined {
  switch (outcome.status) {
    case 'accepted':
    case 'soft_failed':
    case 'known':
      return undefined;
    case 'rejected':
      return `rejected: ${outcome.reason}`;
    case 'dropped':
      return `dropped: ${outcome.reason}`;
    case 'missing':
      // Everything was asked for and something is still lacking: never applied.
      return `rejected: ${outcome.reason ?? `cannot obtain ${outcome.missing.join(', ')}`}`;
  }
}

/** The event ID a PDU has or would have; undefined when it cannot be told. */
function idOf(pdu: Pdu, version: RoomVersion | null): string | undefined {
  if (typeof pdu.event_id === 'string') return pdu.event_id;
  if (!version) return undefined;
  try {
    return computeEventId(pdu, version);
  } catch {
    return undefined;
  }
}

const why = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export interface Receiving {
  receivePdus(origin: string, roomId: string, pdus: unknown[]): Promise<ReceiveResult>;
  /**
   * History from before what this server holds of a room (a client paging back past it):
   * `/backfill` from `from` of the servers in the room, the events stored as backfilled,
   * the oldest on the state `/state_ids` gives at it. Returns how many events were stored.
   */
  backfillRoom(roomId: string, from: readonly string[], limit: number): Promise<number>;
}

/** Servers asked in turn for one backfill. */
const MAX_BACKFILL_SERVERS = 3;
/** Events whose prev events could not be backfilled, so each is not asked about again and again. */
const MAX_BACKFILL_FAILURES = 1000;

export function createReceiving(
  ctx: HomeserverContext,
  deps: {
    rooms: Pick<RoomsService, 'acceptRemote' | 'roomVersionOf' | 'serverAllowed'>;
  },
): Receiving {
  const { store, federation, logger } = ctx;
  const { rooms } = deps;

  const accept1 = async (roomId: string, pdu: Pdu) =>
    (await rooms.acceptRemote(roomId, [pdu]))[0] as AcceptOutcome;

  /**
   * get_missing_events from `origin` until the PDU's ancestors reach what we hold. Returns
   * the PDU's new outcome.
   */
  async function closeGap(origin: string, roomId: string, pdu: Pdu, eventId: string): Promise<AcceptOutcome> {
    const extremities = await store.rooms.forwardExtremities(roomId);
    const earliest = extremities.map((e) => e.eventId);
    // Nothing older than our oldest extremity can be part of the gap (depth grows along the DAG).
    const minDepth = extremities.length > 0 ? Math.min(...extremities.map((e) => e.depth)) : 0;
    // Fetched events not yet accepted (their own prev events were still missing), by ID.
    const pool = new Map<string, Pdu>();
    let fetched = 0;
    let latest = [eventId];
    for (let round = 0; round < MAX_GAP_ROUNDS && fetched < MAX_GAP_EVENTS && latest.length > 0; round++) {
      let events: Pdu[];
      try {
        events = await federation.getMissingEvents(origin, roomId, {
          earliest,
          latest,
          limit: Math.min(MISSING_EVENTS_LIMIT, MAX_GAP_EVENTS - fetched),
          minDepth,
        });
      } catch (err) {
        logger.warn('get_missing_events failed', { origin, roomId, error: why(err) });
        break;
      }
      const fresh = events.filter(isObject);
      if (fresh.length === 0) break;
      fetched += fresh.length;
      // Everything fetched so far, oldest first: each round's events sit under the last's.
      const batch = [...pool.values(), ...fresh].sort(byDepth);
      const outcomes = await rooms.acceptRemote(roomId, batch);
      pool.clear();
      const waiting: { id: string; missing: string[] }[] = [];
      outcomes.forEach((outcome, i) => {
        if (outcome.status !== 'missing') return;
        pool.set(outcome.eventId, batch[i] as Pdu);
        waiting.push({ id: outcome.eventId, missing: outcome.missing });
      });
      const retried = await accept1(roomId, pdu);
      if (retried.status !== 'missing') return retried;
      // Go on from the fetched events whose prev events are neither here nor fetched.
      latest = waiting.filter((w) => w.missing.some((id) => !pool.has(id))).map((w) => w.id);
    }
    return accept1(roomId, pdu);
  }

  /** The state before the PDU from `origin`, accepted as outliers; the state map, or null. */
  async function fetchState(origin: string, roomId: string, eventId: string): Promise<StateMap | null> {
    let stateIds: string[];
    let authIds: string[];
    try {
      const answer = await federation.getStateIds(origin, roomId, eventId);
      stateIds = answer.pduIds;
      authIds = answer.authChainIds;
    } catch (err) {
      logger.warn('state_ids failed', { origin, roomId, eventId, error: why(err) });
      return null;
    }
    const known = await store.rooms.getEvents([...stateIds, ...authIds]);
    const unknown = [...new Set([...stateIds, ...authIds])].filter((id) => !known.has(id));
    const got: Pdu[] = [];
    if (unknown.length > MAX_SINGLE_FETCHES) {
      try {
        const state = await federation.getState(origin, roomId, eventId);
        got.push(...state.authChain, ...state.pdus);
      } catch (err) {
        logger.warn('state failed', { origin, roomId, eventId, error: why(err) });
        return null;
      }
    } else {
      for (const id of unknown) {
        try {
          got.push(await federation.getEvent(origin, id));
        } catch (err) {
          logger.warn('event fetch failed', { origin, id, error: why(err) });
        }
      }
    }
    // Auth chain first, then state: each event's auth events are older (lower depth) than it.
    await rooms.acceptRemote(roomId, got.filter(isObject).sort(byDepth), { placed: { outlier: true } });
    const stored = await store.rooms.getEvents(stateIds);
    const state: StateMap = new Map();
    for (const id of stateIds) {
      const event = stored.get(id);
      if (!event || event.rejected !== null || typeof event.event.state_key !== 'string') continue;
      state.set(stateKey(event.event.type, event.event.state_key), id);
    }
    return state;
  }

  /** Auth events the PDU cites and we lack, asked of `origin`, accepted as outliers. */
  async function fetchAuth(origin: string, roomId: string, eventId: string): Promise<void> {
    try {
      const chain = await federation.getEventAuth(origin, roomId, eventId);
      await rooms.acceptRemote(roomId, chain.filter(isObject).sort(byDepth), { placed: { outlier: true } });
    } catch (err) {
      logger.warn('event_auth failed', { origin, roomId, eventId, error: why(err) });
    }
  }

  async function receiveOne(origin: string, roomId: string, pdu: Pdu): Promise<AcceptOutcome> {
    let outcome = await accept1(roomId, pdu);
    if (outcome.status !== 'missing') return outcome;
    const { eventId } = outcome;
    const prevIds = new Set(Array.isArray(pdu.prev_events) ? referencedIds(pdu.prev_events) : []);
    const missingPrev = outcome.missing.some((id) => prevIds.has(id));
    if (missingPrev) {
      outcome = await closeGap(origin, roomId, pdu, eventId);
      if (outcome.status !== 'missing') return outcome;
    }
    // The gap stays open: take the state before the event from the sender.
    const state = await fetchState(origin, roomId, eventId);
    outcome = await accept1(roomId, pdu);
    if (outcome.status !== 'missing') return outcome;
    const unknownAuth = async () => {
      const cited = outcome.status === 'missing' ? outcome.missing : [];
      const have = await store.rooms.getEvents(cited);
      return cited.filter((id) => !have.has(id) && !prevIds.has(id));
    };
    if ((await unknownAuth()).length > 0) {
      await fetchAuth(origin, roomId, eventId);
      outcome = await accept1(roomId, pdu);
      if (outcome.status !== 'missing') return outcome;
    }
    if ((await unknownAuth()).length > 0 || state === null) return outcome;
    const [placed] = await rooms.acceptRemote(roomId, [pdu], { placed: { state } });
    return placed as AcceptOutcome;
  }

  /** Event IDs a backfill from them brought nothing for: a client paging back asks once. */
  const fruitless = new Set<string>();

  /** Servers to ask for a room's history: those of the events' senders first, then the others in the room. */
  async function backfillServers(roomId: string, from: readonly string[]): Promise<string[]> {
    const servers = new Set<string>();
    for (const stored of (await store.rooms.getEvents(from)).values()) {
      const server = serverOf(stored.event.sender);
      if (server) servers.add(server);
    }
    for (const member of await store.rooms.members(roomId, 'join')) {
      const server = serverOf(member.userId);
      if (server) servers.add(server);
    }
    servers.delete(ctx.config.serverName);
    return [...servers].slice(0, MAX_BACKFILL_SERVERS);
  }

  async function backfillRoom(roomId: string, from: readonly string[], limit: number): Promise<number> {
    const wanted = from.filter((id) => !fruitless.has(id));
    if (wanted.length === 0) return 0;
    let stored = 0;
    for (const server of await backfillServers(roomId, wanted)) {
      let pdus: Pdu[];
      try {
        pdus = (await federation.backfill(server, roomId, wanted, limit)).filter(isObject).sort(byDepth);
      } catch (err) {
        logger.warn('backfill failed', { server, roomId, error: why(err) });
        continue;
      }
      // Oldest first; the oldest lack their prev events: they go on the state the server gives.
      let pending = pdus;
      for (let round = 0; round < 3 && pending.length > 0; round++) {
        const outcomes = await rooms.acceptRemote(roomId, pending, { placed: { backfilled: true } });
        stored += outcomes.filter((o) => o.status === 'accepted' || o.status === 'soft_failed').length;
        const waiting = pending.filter((_, i) => outcomes[i]?.status === 'missing');
        const oldest = outcomes.find((o) => o.status === 'missing');
        if (!oldest) break;
        const state = await fetchState(server, roomId, oldest.eventId);
        if (!state) break;
        const [first, ...rest] = waiting;
        const [placed] = await rooms.acceptRemote(roomId, [first as Pdu], {
          placed: { state, backfilled: true },
        });
        if (placed?.status !== 'accepted' && placed?.status !== 'soft_failed') break;
        stored++;
        pending = rest;
      }
      if (stored > 0) return stored;
    }
    if (fruitless.size >= MAX_BACKFILL_FAILURES) fruitless.clear();
    for (const id of wanted) fruitless.add(id);
    return stored;
  }

  return {
    backfillRoom,
    async receivePdus(origin, roomId, pdus) {
      const results: ReceiveResult = new Map();
      const candidates = pdus.filter(isObject).sort(byDepth);
      const allowed = await deps.rooms.serverAllowed(roomId, origin);
      const version = await rooms.roomVersionOf(roomId);
      // All of them through accept at once: their signatures are verified together and a run
      // of messages is written in one transaction. Only those whose prev or auth events are
      // unknown here then go one by one, each with what it lacks fetched first.
      let together: AcceptOutcome[] | undefined;
      if (allowed && candidates.length > 1) {
        try {
          together = await rooms.acceptRemote(roomId, candidates);
        } catch (err) {
          logger.warn('receiving PDUs together failed; trying them one by one', {
            origin,
            roomId,
            error: why(err),
          });
        }
      }
      for (const [index, pdu] of candidates.entries()) {
        if (!allowed) {
          // "the PDU MUST be ignored with an appropriate error included in the response".
          const id = idOf(pdu, version);
          if (id) results.set(id, { error: `${origin} is denied by the server ACL of ${roomId}` });
          continue;
        }
        let outcome: AcceptOutcome;
        try {
          const first = together?.[index];
          outcome = first && first.status !== 'missing' ? first : await receiveOne(origin, roomId, pdu);
        } catch (err) {
          logger.warn('receiving a PDU failed', { origin, roomId, error: why(err) });
          const id = idOf(pdu, version);
          if (id) results.set(id, { error: why(err) });
          continue;
        }
        const id = outcome.eventId ?? idOf(pdu, version);
        if (id === undefined) continue;
        const error = errorOf(outcome);
        results.set(id, error === undefined ? {} : { error });
      }
      return results;
    },
  };
}
