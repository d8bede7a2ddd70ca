/**
 * The background half of a partial-state join (server-server-api.md `PUT /v2/send_join`
 * `omit_members`; MSC3706/MSC3902, Synapse's "faster joins"). The join itself
 * (remote-join.ts) stores the room with the state the resident sent — members omitted — and
 * the room is usable at once; here the full state is fetched and merged:
 *
 * `/state_ids` at the join (the state before it) → the events not stored here, by `/event`
 * when few, else by one `/state` → every one checked (accept.ts `acceptFullStateLocked`:
 * signatures, hashes, auth against its auth events; a failing event, and any citing it, is
 * left out and logged, the rest stored as outliers) → merged under the room's lock
 * (`RoomStore.fillPartialState`: the keys the partial state lacked join the state of the join,
 * of every later event and the current state) → /sync sends the room whole again, so clients
 * see the members fill in.
 *
 * Events that arrived meanwhile were checked against the partial state completed by their
 * own auth events (accept.ts); once the full state is in, each is checked again against the
 * state before it, now whole, and one that fails is logged (it stays in the timeline: its
 * clients have seen it — Synapse does not re-check them at all).
 *
 * Durable: the room stays marked partial in the store until the merge commits, so a restart
 * resumes (`start`). One task per room, run outside the room's lock but for the merge, so
 * other rooms — and this room's own events — go on meanwhile. A server that fails is left for
 * the next of `servers_in_room`; when all have failed, the room waits (1 s, doubling to 5 min)
 * and tries again.
 */
import {
  authStateOf,
  authTypesForEvent,
  checkAuth,
  type Pdu,
  type StateKey,
  type StateMap,
  stateKey,
} from '../../core/index.ts';
import type { PartialStateRoom } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { CREATE_STATE_KEY } from './build.ts';
import type { EventPipeline } from './pipeline.ts';

export interface PartialStateSync {
  /** Resumes the resync of every room the store holds as partial (after a restart too). */
  start(): void;
  /** Stops every resync after its current request; the rooms stay partial in the store. */
  stop(): void;
  /** A room just joined with partial state: its resync starts now (when started). */
  begin(room: PartialStateRoom): void;
  /** Resolves once the room's full state is merged (at once for a room that is not partial). */
  whenFull(roomId: string): Promise<void>;
}

/** At most this many missing events are fetched one by one (`/event`); more take one `/state`. */
const EVENT_FETCH_LIMIT = 20;
const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 5 * 60_000;

export function createPartialStateSync(ctx: HomeserverContext, pipeline: EventPipeline): PartialStateSync {
  const { store, config } = ctx;
  const running = new Map<string, Promise<void>>();
  const waiters = new Map<string, (() => void)[]>();
  /** Waits between rounds, each with what ends it early (`stop`). */
  const timers = new Map<ReturnType<typeof setTimeout>, () => void>();
  let started = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.set(timer, resolve);
    });

  /** The events of `ids` not stored here, fetched from `server` (unchecked). */
  async function fetchMissing(
    server: string,
    room: PartialStateRoom,
    stateIds: readonly string[],
    missing: ReadonlySet<string>,
  ): Promise<{ pdus: Pdu[]; authChain: Pdu[] }> {
    if (missing.size > EVENT_FETCH_LIMIT) {
      const answer = await ctx.federation.getState(server, room.roomId, room.joinEventId);
      return { pdus: answer.pdus, authChain: answer.authChain };
    }
    const inState = new Set(stateIds);
    const pdus: Pdu[] = [];
    const authChain: Pdu[] = [];
    await Promise.all(
      [...missing].map(async (id) => {
        const pdu = await ctx.federation.getEvent(server, id);
        (inState.has(id) ? pdus : authChain).push(pdu);
      }),
    );
    return { pdus, authChain };
  }

  /** One attempt through `server`: true once the full state is merged. */
  async function resyncThrough(server: string, room: PartialStateRoom): Promise<boolean> {
    const { roomId } = room;
    const ids = await ctx.federation.getStateIds(server, roomId, room.joinEventId);
    const wanted = [...new Set([...ids.pduIds, ...ids.authChainIds])];
    const stored = await store.rooms.getEvents(wanted);
    const missing = new Set(wanted.filter((id) => !stored.has(id)));
    let fetched: StateMap = new Map();
    if (missing.size > 0) {
      const answer = await fetchMissing(server, room, ids.pduIds, missing);
      const checked = await pipeline.acceptFullState(roomId, answer);
      fetched = checked.state;
      for (const [eventId, reason] of checked.refused)
        ctx.logger.warn("refused an event of a partial-state room's full state", {
          roomId,
          server,
          eventId,
          reason,
        });
    }
    // The state before the join: stored events as they are, fetched ones as checked.
    const byId = new Map<string, StateKey>();
    for (const [key, id] of fetched) byId.set(id, key);
    const state: StateMap = new Map();
    for (const id of ids.pduIds) {
      const kept = stored.get(id);
      if (kept) {
        if (kept.rejected === null && typeof kept.event.state_key === 'string')
          state.set(stateKey(kept.event.type, kept.event.state_key), id);
        continue;
      }
      const key = byId.get(id);
      if (key !== undefined) state.set(key, id);
    }
    if (!state.has(CREATE_STATE_KEY)) {
      ctx.logger.warn("a partial-state room's full state came without its create event", { roomId, server });
      return false;
    }
    const filled = await pipeline.fillPartialState(roomId, state);
    if (filled) await recheckSinceJoin(room);
    return true;
  }

  /** The events after the join, checked again against the state before them, now whole. */
  async function recheckSinceJoin(room: PartialStateRoom): Promise<void> {
    const version = await pipeline.roomVersionOf(room.roomId);
    const join = await store.rooms.getEvent(room.joinEventId);
    if (!version || join?.stream == null) return;
    let from = join.stream;
    for (;;) {
      const page = await store.rooms.timeline(room.roomId, { from, dir: 'f', limit: 100 });
      for (const stored of page.events) {
        const before = await store.rooms.stateAt(stored.event.event_id, 'before');
        if (!before) continue;
        const keys = [CREATE_STATE_KEY, ...authTypesForEvent(stored.event, version)];
        const ids = keys.flatMap((key) => {
          const id = before.get(key);
          return id === undefined ? [] : [id];
        });
        const events = await store.rooms.getEvents(ids);
        const authState = authStateOf([...events.values()].map((e) => e.event));
        const result = checkAuth(stored.event, authState, version);
        if (!result.ok)
          ctx.logger.warn('an event accepted on partial state fails against the full state', {
            roomId: room.roomId,
            eventId: stored.event.event_id,
            reason: result.reason,
          });
      }
      if (page.next === null || page.events.length === 0) return;
      from = page.next;
    }
  }

  async function resync(room: PartialStateRoom): Promise<void> {
    const servers = room.servers.filter((server) => server !== config.serverName);
    let wait = FIRST_RETRY_MS;
    while (started) {
      for (const server of servers) {
        if (!started) return;
        try {
          if (await resyncThrough(server, room)) return;
        } catch (err) {
          ctx.logger.warn("a partial-state room's full state could not be had", {
            roomId: room.roomId,
            server,
            error: String(err),
          });
        }
      }
      if (servers.length === 0) {
        ctx.logger.error('a partial-state room names no server to ask for its full state', {
          roomId: room.roomId,
        });
        return;
      }
      await sleep(wait);
      wait = Math.min(wait * 2, LAST_RETRY_MS);
    }
  }

  function run(room: PartialStateRoom): void {
    if (!started || running.has(room.roomId)) return;
    const task = resync(room)
      .catch((err: unknown) => {
        ctx.logger.error('the resync of a partial-state room failed', {
          roomId: room.roomId,
          error: String(err),
        });
      })
      .finally(async () => {
        running.delete(room.roomId);
        try {
          if (!(await pipeline.partialState(room.roomId))) {
            for (const resolve of waiters.get(room.roomId) ?? []) resolve();
            waiters.delete(room.roomId);
          }
        } catch (err) {
          // The store failed or closed meanwhile (the rooms are read again once another store's
          // change was found): logged, never an unhandled rejection.
          ctx.logger.error('could not read the partial-state rooms', {
            roomId: room.roomId,
            error: String(err),
          });
        }
      });
    running.set(room.roomId, task);
  }

  return {
    start() {
      if (started) return;
      started = true;
      store.rooms.partialStateRooms().then(
        (rooms) => {
          for (const room of rooms) run(room);
        },
        (err: unknown) => ctx.logger.error('could not read the partial-state rooms', { error: String(err) }),
      );
    },
    stop() {
      started = false;
      for (const [timer, resolve] of timers) {
        clearTimeout(timer);
        resolve();
      }
      timers.clear();
    },
    begin: run,
    async whenFull(roomId) {
      if (!(await pipeline.partialState(roomId))) return;
      await new Promise<void>((resolve) => {
        const list = waiters.get(roomId);
        if (list) list.push(resolve);
        else waiters.set(roomId, [resolve]);
      });
    },
  };
}
