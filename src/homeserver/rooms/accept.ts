/**
 * Accepting an event into a room: the one way any event — built here or received from
 * another server — becomes part of a room this server has. server-server-api.md "Checks
 * performed on receipt of a PDU", in its order:
 *
 * 1. the room version's event format and size (rooms/fragments/*-event-format.md) — else dropped;
 * 2. signatures of every required signer ("Validating hashes and signatures on received
 *    events") — else dropped;
 * 3. the content hash — else the event is kept only in its redacted form;
 * 4. the authorization rules against its own `auth_events` — else rejected;
 * 5. the rules against the state before it, the state after its `prev_events`, resolved with
 *    the room version's algorithm when there are several ("Room State Resolution") — else
 *    rejected;
 * 6. the rules against the room's current state — else soft failed ("Soft failure");
 *
 * then one `persistEvents` transaction writes the event with its state delta, its stream
 * position (none for rejected and soft-failed events), the room's new current state when
 * the event forked or merged it, push actions and, for events of this server's users, an
 * outbox row per remote server in the room; then /sync is woken.
 *
 * Rejected events are stored with their reason ("Rejection": they may sit in the DAG, and a
 * later event citing one takes the state before it); soft-failed ones are stored with their
 * state but never served to clients and never become forward extremities. An event whose
 * prev or auth events this server lacks is not stored: the answer names them, for the
 * federation side to fetch (get_missing_events, event_auth) before trying again.
 *
 * Callers hold the room's lock (lock.ts): the checks read the extremities and current state
 * the write then moves, so nothing else may move them meanwhile.
 *
 * Cost (issue 10, `bench/federation.ts`): the signatures of a batch of received events are
 * verified ahead of the sequential checks (WebCrypto, off the main thread), and each event's
 * ID is the hash of the bytes its signatures were checked over (no second encoding); what
 * the checks read of the store — the events themselves, those they cite, redactions
 * awaiting them — is read for `READ_AHEAD` events at a time (`readAhead`); a run of plain
 * messages, each on all the forward extremities, is written in one `persistEvents`, the
 * later ones checked against the store plus the unwritten ones (`unwritten`); a joined
 * room's thousands of events are verified many at a time and their auth checked in one
 * topological pass.
 */

import {
  type AuthState,
  authStateOf,
  authTypesForEvent,
  CoreError,
  checkAuth,
  checkAuthEventsShape,
  checkContentHash,
  eventSignedBytes,
  type IdentifiedPdu,
  identify,
  identifyFromSignedBytes,
  isCoreError,
  namedPowerLevel,
  type Pdu,
  type RoomVersion,
  redact,
  referencedIds,
  resolveState,
  roomIdOf,
  type StateKey,
  type StateMap,
  stateKey,
  userPowerLevel,
  validatePdu,
  verifyEvent,
} from '../../core/index.ts';
import type { PersistEventInput, PersistedEvent, StateBefore, StoredEvent } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, MatrixError } from '../errors.ts';
import { CREATE_STATE_KEY, coreToMatrix, MEMBER_TYPE, POWER_LEVELS_TYPE, REDACTION_TYPE } from './build.ts';

/** What the builder knew when it made an event: handed over so nothing is read back. */
export interface BuiltEvent {
  /**
   * The state before the event, as events by (type, state_key): at least the create event and
   * every key `authTypesForEvent` selects for the event.
   */
  authState: AuthState;
  /** The state before the event as the store keeps it. */
  stateBefore: StateBefore;
  /**
   * The event's prev_events are all of the room's forward extremities (or it starts the room),
   * so the state before it is the current state and the soft-fail check would repeat step 5.
   */
  followsCurrent: boolean;
  txn?: PersistEventInput['txn'];
  redaction?: PersistEventInput['redaction'];
}

export interface Candidate {
  /** As received (v3+ without `event_id`), or as built and identified. */
  pdu: Pdu;
  /** Set only by this process's pipeline, for an event it has just built and signed. */
  built?: BuiltEvent;
  /** Where a received event goes when not simply on its prev events (see `Placement`). */
  placed?: Placement;
  /**
   * A received event this server passes on to the room's other servers: a join, leave or knock
   * that came through this server's send_join/send_leave/send_knock (server-server-api.md
   * "Joining Rooms": the resident server sends the event to the other servers in the room).
   */
  forward?: boolean;
}

/**
 * A received event taken without its prev events (server-server-api.md "Retrieving events",
 * "Backfilling and retrieving missing events"):
 * - `outlier` — an auth-chain or state event, checked against its own auth events only
 *   (steps 1–4) and stored with no state and no timeline place;
 * - `state` — an event whose prev events cannot be had, checked against the state before it
 *   as another server answered `/state_ids` at it (the state's events already stored),
 *   instead of the state after its prev events;
 * - `backfilled` — older history: stored behind the timeline (negative stream positions),
 *   moving neither the forward extremities nor the current state, so not checked against
 *   the current state (step 6) and sent nowhere.
 */
export type Placement = { outlier: true } | { state?: StateMap; backfilled?: true };

export type AcceptOutcome =
  | { status: 'accepted' | 'soft_failed'; eventId: string; redacted: boolean }
  | { status: 'rejected'; eventId: string; redacted: boolean; reason: string }
  /** Not stored: the format or a signature is bad (steps 1–2). */
  | { status: 'dropped'; eventId: string | null; reason: string }
  /**
   * Not stored: these prev or auth events are unknown here (or known without a state), or
   * an event state resolution needs is (`reason` says which).
   */
  | { status: 'missing'; eventId: string; missing: string[]; reason?: string }
  /** Stored before: nothing was done. */
  | { status: 'known'; eventId: string };

/** A built event failed a check: the client's request is refused and nothing is stored. */
export class BuiltEventRefused extends MatrixError {
  /** Which of the candidates failed. */
  readonly index: number;
  constructor(index: number, error: MatrixError) {
    super(error.status, error.errcode, error.message, error.extra, error.headers);
    this.index = index;
  }
}

/** What accept already knows of the room an event notifies in: push reads none of it again. */
export interface NotifiedRoom {
  /** User IDs of the joined members. */
  joined: readonly string[];
  /** The state before the event at (at least) the create event and the power levels. */
  state: AuthState;
  version: RoomVersion;
}

export interface AcceptDeps {
  /** The users an event notifies, with highlight (push rules); absent in tests without push. */
  notificationsFor?: (
    event: IdentifiedPdu,
    roomId: string,
    room: NotifiedRoom,
  ) => Promise<{ userId: string; highlight: boolean }[]> | undefined;
  /** Current state events at the given keys (the pipeline's reader, shared). */
  stateEventsAt(roomId: string, keys: Iterable<StateKey>): Promise<Map<StateKey, IdentifiedPdu>>;
  /**
   * The room, when it was joined with partial state and its full state is not in yet: the
   * servers its events also go to. Asked only when a check fails or a local event is routed.
   */
  partialState?(roomId: string): Promise<{ servers: readonly string[] } | undefined>;
}

export interface Accept {
  /**
   * Checks and persists `candidates` of one room of `version`, in order, and wakes /sync.
   * The room's lock must be held. Built candidates are persisted together, all or none (a
   * failed check throws `BuiltEventRefused`); received ones one by one, each answered with
   * its outcome.
   */
  acceptLocked(
    roomId: string,
    version: RoomVersion,
    candidates: readonly Candidate[],
    options?: AcceptOptions,
  ): Promise<AcceptOutcome[]>;
  /**
   * A room joined through another server (`send_join`'s answer): every state and auth-chain
   * event checked (format, signatures, content hash, auth against its own auth events), the
   * join checked against that state, then all of it stored in one `persistEvents` batch —
   * the state and auth chain as outliers, the join as the room's one forward extremity with
   * the received state before it and the current state after it. Any event failing a check
   * refuses the whole room (`RoomStateRefused`) and nothing is stored: a forged state event
   * fails the join rather than poisoning the room. The room's lock must be held.
   */
  acceptJoinedRoomLocked(
    roomId: string,
    version: RoomVersion,
    room: ReceivedRoom,
  ): Promise<{ eventId: string }>;
  /**
   * The full state of a partial-state room, as another server answered `/state` (members
   * included): steps 1–4 for every event, each failing one (and those citing it) left out and
   * named in `refused`, the rest stored as outliers in one write. Returns the state made of
   * the accepted state events. The room's lock need not be held: nothing but outliers moves.
   */
  acceptFullStateLocked(
    roomId: string,
    version: RoomVersion,
    state: { pdus: readonly Pdu[]; authChain: readonly Pdu[] },
  ): Promise<{ state: StateMap; refused: Map<string, string> }>;
  /** Forgets what is kept of the room's members (its state moved outside accept: a partial-state fill). */
  forgetMembers(roomId: string): void;
  /** The room's joined members if they are known here (see `createAccept`), else undefined. */
  knownMembers(roomId: string): readonly string[] | undefined;
  /** Remembers the joined members read under the room's lock (the pipeline's send snapshot). */
  rememberMembers(roomId: string, joined: readonly string[]): void;
}

export interface AcceptOptions {
  /**
   * Called once the candidates' write is committed (and what is kept of the room's members
   * forgotten if it moved them), perhaps before it is durable: the room's next event may be
   * built on it then, since its own durability implies this one's (SQLite's WAL is written in
   * commit order). Nothing is shown meanwhile: the outbox is told only once the write is
   * durable, `acceptLocked` resolves only then, and /sync is woken either then or when the
   * write asks to commit on an engine whose reads from then on see it only once committed
   * and durable (`WriteOptions.committing`).
   */
  committed?(): void;
}

/** The room as a resident server handed it over at a join. */
export interface ReceivedRoom {
  state: readonly Pdu[];
  authChain: readonly Pdu[];
  /** Our membership event as the resident server accepted it. */
  join: Pdu;
  /** The ID of the join this server made: the one returned must be it (perhaps co-signed). */
  joinEventId: string;
  /**
   * The answer omitted members (send_join `omit_members`): the room is stored as partial,
   * with the servers the resident named (`servers_in_room`), until its full state is merged.
   */
  partial?: { servers: readonly string[] };
}

/** A received room's state failed a check: nothing of it was stored. */
export class RoomStateRefused extends Error {
  override readonly name = 'RoomStateRefused';
}

/** Users whose membership an event changes: their /sync must wake even if they are not in the room. */
export function affectedUsers(event: IdentifiedPdu): string[] {
  return event.type === MEMBER_TYPE && typeof event.state_key === 'string' ? [event.state_key] : [];
}

/** An event past steps 1–3, as kept. */
interface Integrity {
  event: IdentifiedPdu;
  redacted: boolean;
}

/**
 * `start(i)` for every index, at most `window` ahead of the one awaited: independent work
 * (signature verifies, which WebCrypto runs off the main thread) overlaps the sequential
 * checks without starting thousands of tasks at once. A task's failure is seen when its
 * index is awaited, never as an unhandled rejection.
 */
export function lookahead<T>(count: number, window: number, start: (index: number) => Promise<T>) {
  const started: Promise<T>[] = [];
  return (index: number): Promise<T> => {
    for (let i = started.length; i < Math.min(count, index + window + 1); i++) {
      const task = start(i);
      task.catch(() => {});
      started.push(task);
    }
    return started[index] as Promise<T>;
  };
}

/** What one event's checks decided, ready to persist. */
interface Verdict {
  outcome: AcceptOutcome;
  input?: PersistEventInput;
  /** The event became the room's newest state and changed who is in it, or the state was replaced. */
  membershipChanged: boolean;
  /**
   * Set when the write may wait for the events after it (`acceptLocked`): a received message
   * accepted on all of the room's forward extremities, changing nothing but the timeline;
   * the state before (and after) it.
   */
  deferrable?: StateMap;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((id) => b.includes(id));

/**
 * The server of a user ID, leniently: everything after the first colon (old rooms hold
 * senders that today's grammar refuses; their events are still routed and compared).
 */
export function serverOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon > 0 && colon < id.length - 1 ? id.slice(colon + 1) : undefined;
}

/** How many received events' signatures are verified ahead of the one being checked. */
const VERIFY_WINDOW = 64;
/** The same for the state and auth chain of a joined room (thousands of events). */
const JOIN_VERIFY_WINDOW = 256;
/** At most this many received events wait to be written together. */
const MAX_DEFERRED = 100;
/** Received events whose store reads are made together (`readAhead`). */
const READ_AHEAD = 64;

/** The rooms/v12.md create event ID a v12 room ID names (`!x` ↔ `$x`). */
const createEventIdOf = (roomId: string) => `$${roomId.slice(1)}`;

export function createAccept(ctx: HomeserverContext, deps: AcceptDeps): Accept {
  const { store, config } = ctx;
  /**
   * Per room, the joined members and the other servers among them (the outbox destinations of
   * a local event). Read once, then kept until a membership change or a state reset in the
   * room (both happen only here, under the room's lock; out-of-band memberships are never
   * joins) or until the store finds another store's membership change (below), so a message
   * costs no members read for push or for its destinations.
   */
  const roomMembers = new Map<string, { joined: readonly string[]; servers: ReadonlySet<string> }>();
  /**
   * Another store writing the same database (a second worker or `hearth serve`) may change
   * memberships too: the store finds that in the snapshot of the next send, and all are dropped.
   */
  let membersDropped = 0;
  store.onChangedElsewhere('members', () => {
    membersDropped++;
    roomMembers.clear();
  });

  function membersWith(joined: readonly string[]) {
    const servers = new Set<string>();
    for (const userId of joined) {
      const server = serverOf(userId);
      if (server && server !== config.serverName) servers.add(server);
    }
    return { joined, servers };
  }

  function rememberMembers(roomId: string, joined: readonly string[]) {
    const members = membersWith(joined);
    roomMembers.set(roomId, members);
    return members;
  }

  async function membersOf(roomId: string) {
    const known = roomMembers.get(roomId);
    if (known) return known;
    const dropped = membersDropped;
    const joined = (await store.rooms.members(roomId, 'join')).map((m) => m.userId);
    // Kept only if no other store's change was found meanwhile: this read may predate it.
    return dropped === membersDropped ? rememberMembers(roomId, joined) : membersWith(joined);
  }

  async function destinationsOf(roomId: string, event: IdentifiedPdu): Promise<string[]> {
    const { servers } = await membersOf(roomId);
    const all = new Set(servers);
    const target = event.type === MEMBER_TYPE ? serverOf(event.state_key) : undefined;
    if (target && target !== config.serverName) all.add(target);
    // A partial-state room's members are not all known: its events go to the servers the
    // resident named too (server-server-api.md send_join `servers_in_room`).
    for (const server of (await deps.partialState?.(roomId))?.servers ?? [])
      if (server !== config.serverName) all.add(server);
    return [...all];
  }

  /**
   * Received events checked but not yet written, by ID (see `acceptLocked`): a run of
   * accepted messages, each on the one before, is written in one `persistEvents`. Event IDs
   * are unique across rooms, so one map serves every room's batch.
   */
  const unwritten = new Map<string, { stored: StoredEvent; state: StateMap }>();
  /**
   * The state events read from an unwritten event's state, by ID, while it is unwritten: the
   * messages after it are checked against the same state (nothing in a deferred run changes
   * a state event; a redaction is checked only once the run is written).
   */
  const unwrittenStateEvents = new WeakMap<StateMap, Map<string, IdentifiedPdu>>();
  /**
   * What a batch of received events read ahead (`readAhead` in `acceptLocked`): for each
   * event and the events it cites, the stored event or null for none, and for the batch's
   * own events the redactions awaiting them. One read for many events instead of two an
   * event. An entry goes the moment its event (or a redaction of or awaiting it) is written,
   * and every entry a batch made goes when the batch ends.
   */
  const readAhead = new Map<string, StoredEvent | null>();
  const pendingReadAhead = new Map<string, readonly string[]>();
  /** The store's reads of events and their states, seeing the unwritten events too. */
  const reads = {
    async getEvents(ids: readonly string[]): Promise<Map<string, StoredEvent>> {
      if (unwritten.size === 0 && readAhead.size === 0) return store.rooms.getEvents(ids);
      const found = new Map<string, StoredEvent>();
      const rest: string[] = [];
      for (const id of ids) {
        const known = unwritten.get(id)?.stored ?? readAhead.get(id);
        if (known) found.set(id, known);
        else if (known === undefined) rest.push(id);
      }
      if (rest.length > 0)
        for (const [id, stored] of await store.rooms.getEvents(rest)) found.set(id, stored);
      return found;
    },
    async getEvent(id: string): Promise<StoredEvent | null> {
      const known = unwritten.get(id)?.stored ?? readAhead.get(id);
      return known !== undefined ? known : store.rooms.getEvent(id);
    },
    /** Unwritten events are never state events: the state before and after them is one. */
    async stateAt(id: string, when: 'before' | 'after'): Promise<StateMap | null> {
      return unwritten.get(id)?.state ?? store.rooms.stateAt(id, when);
    },
    async pendingRedactions(id: string): Promise<readonly string[]> {
      return pendingReadAhead.get(id) ?? store.rooms.pendingRedactions(id);
    },
  };

  /** Reads what `pdus`' checks will read of the store, in one go (see `readAhead`). Returns the IDs read. */
  async function readAheadFor(events: readonly IdentifiedPdu[]): Promise<string[]> {
    const own = events.map((event) => event.event_id);
    const ids = new Set(own);
    for (const event of events) {
      for (const id of referencedIds(event.auth_events)) ids.add(id);
      for (const id of referencedIds(event.prev_events)) ids.add(id);
    }
    const wanted = [...ids].filter((id) => !unwritten.has(id) && !readAhead.has(id));
    const read = await store.rooms.getEventsAndPendingRedactions(wanted, own);
    for (const id of wanted) readAhead.set(id, read.events.get(id) ?? null);
    // Only targets read now: one written meanwhile may have gained a redaction since.
    for (const id of own)
      if (!pendingReadAhead.has(id)) pendingReadAhead.set(id, read.pendingRedactions.get(id) ?? []);
    return [...ids];
  }

  /** Drops what was read ahead of the events a write changes. */
  function forgetReadAhead(inputs: readonly PersistEventInput[]): void {
    if (readAhead.size === 0 && pendingReadAhead.size === 0) return;
    for (const input of inputs) {
      readAhead.delete(input.event.event_id);
      pendingReadAhead.delete(input.event.event_id);
      if (input.redaction) readAhead.delete(input.redaction.eventId);
      if (input.redactsLater) pendingReadAhead.delete(input.redactsLater);
    }
  }

  /** Keys of the event's signers: this server's own, else the key store's. */
  const keysFor = (pdu: Pdu) => async (server: string, ts: number) => {
    if (server === config.serverName) return { [ctx.signingKey.keyId]: ctx.signingKey.publicKey };
    const entry = (pdu.signatures as Record<string, Record<string, string>> | undefined)?.[server];
    const keyIds = entry && typeof entry === 'object' ? Object.keys(entry) : [];
    const keys = keyIds.length > 0 ? await ctx.keys.verifyKeys(server, keyIds, ts) : new Map();
    return keys.size > 0 ? keys : undefined;
  };

  /**
   * Stored events with what they cite through `auth_events`, transitively: what state
   * resolution reads (the events of the state sets and their auth chains) into `known`.
   */
  async function withAuthChains(ids: Iterable<string>, known: Map<string, StoredEvent>): Promise<void> {
    const tried = new Set<string>();
    let wanted = [...new Set(ids)];
    while (wanted.length > 0) {
      const asked = wanted.filter((id) => !known.has(id));
      for (const id of wanted) tried.add(id);
      const found = asked.length > 0 ? await reads.getEvents(asked) : new Map<string, StoredEvent>();
      for (const [id, stored] of found) known.set(id, stored);
      const next = new Set<string>();
      for (const id of wanted) {
        for (const authId of referencedIds(known.get(id)?.event.auth_events ?? []))
          if (!tried.has(authId)) next.add(authId);
      }
      // Unknown ones stay out: resolveState names the first it needs.
      wanted = [...next];
    }
  }

  async function resolve(
    version: RoomVersion,
    sets: StateMap[],
    known: Map<string, StoredEvent>,
  ): Promise<StateMap> {
    const distinct = sets.filter((set, i) => sets.findIndex((other) => sameState(other, set)) === i);
    if (distinct.length === 1) return distinct[0] as StateMap;
    await withAuthChains(
      distinct.flatMap((set) => [...set.values()]),
      known,
    );
    return resolveState(version, distinct, (id) => known.get(id)?.event, {
      isRejected: (id) => (known.get(id)?.rejected ?? null) !== null,
    });
  }

  /** The events at `keys` of a state map, read by ID (or kept, for an unwritten event's state). */
  async function eventsAt(state: StateMap, keys: readonly StateKey[]): Promise<AuthState> {
    const kept = unwrittenStateEvents.get(state);
    const events: IdentifiedPdu[] = [];
    const toRead: string[] = [];
    for (const key of keys) {
      const id = state.get(key);
      if (id === undefined) continue;
      const hit = kept?.get(id);
      if (hit) events.push(hit);
      else toRead.push(id);
    }
    if (toRead.length > 0) {
      const found = await reads.getEvents(toRead);
      for (const id of toRead) {
        const stored = found.get(id);
        if (!stored) continue;
        events.push(stored.event);
        kept?.set(id, stored.event);
      }
    }
    return authStateOf(events);
  }

  /** Step 1 for any event, and step 2 for received ones; returns the event as kept (3). */
  /**
   * Steps 1–3 started: format, then — for a received event — its ID at once (the hash of
   * the bytes its signatures cover, so the store can be read for it meanwhile: `readAhead`)
   * and the signatures and content hash checked over those same bytes, off the main thread.
   */
  function startIntegrity(
    roomId: string,
    version: RoomVersion,
    candidate: Candidate,
  ): { identified?: IdentifiedPdu; done: Promise<Integrity> } {
    if (candidate.built) return { done: builtIntegrity(roomId, version, candidate) };
    let pdu: Pdu;
    let signedBytes: Uint8Array;
    let identified: IdentifiedPdu;
    try {
      pdu = validatedFor(roomId, version, candidate);
      signedBytes = eventSignedBytes(pdu, version);
      identified = identifyFromSignedBytes(pdu, version, signedBytes);
    } catch (err) {
      return { done: Promise.reject(err) };
    }
    // What another server put in `unsigned` is its own view (age, relations); ours is computed.
    delete identified.unsigned;
    const done = verifyEvent(pdu, version, keysFor(pdu), { signedBytes }).then(({ redacted, pdu: kept }) => {
      if (!redacted) return { event: identified, redacted };
      // Redacted, it has the same ID: the reference hash covers the redacted form either way.
      const { unsigned: _unsigned, ...event } = { ...kept, event_id: identified.event_id };
      return { event: event as IdentifiedPdu, redacted };
    });
    return { identified, done };
  }

  function validatedFor(roomId: string, version: RoomVersion, candidate: Candidate): Pdu {
    const pdu = validatePdu(candidate.pdu, version);
    if (roomIdOf(pdu, version) !== roomId) {
      throw new CoreError('BAD_EVENT', `the event is for room ${String(pdu.room_id)}, not ${roomId}`);
    }
    return pdu;
  }

  /** Step 1 and the content hash of an event this process built (`startIntegrity`). */
  async function builtIntegrity(
    roomId: string,
    version: RoomVersion,
    candidate: Candidate,
  ): Promise<Integrity> {
    let pdu = validatedFor(roomId, version, candidate);
    // Signed a moment ago by this process with its own key (build.ts): verifying that
    // signature again proves nothing and costs ~0.2 ms per send, so it alone is skipped.
    // The content hash, which a bug in building could break, is still checked.
    const redacted = !checkContentHash(pdu, version);
    if (redacted) pdu = redact(pdu, version);
    // Its ID was computed by build.ts from these very bytes; only a redaction changes what a
    // v3+ ID covers, so the reference hash is not taken again for nothing.
    if (!redacted && typeof pdu.event_id === 'string') return { event: pdu as IdentifiedPdu, redacted };
    return { event: identify(pdu, version), redacted };
  }

  const checkIntegrity = (roomId: string, version: RoomVersion, candidate: Candidate) =>
    startIntegrity(roomId, version, candidate).done;

  /** Step 4's inputs: the auth events, found in the builder's state or the store. */
  async function authEventsOf(
    event: IdentifiedPdu,
    roomId: string,
    version: RoomVersion,
    built: BuiltEvent | undefined,
    known: Map<string, StoredEvent>,
  ): Promise<{ authEvents: IdentifiedPdu[]; create: IdentifiedPdu | undefined; missing: string[] }> {
    const authIds = referencedIds(event.auth_events);
    const byId = new Map(built ? [...built.authState.values()].map((e) => [e.event_id, e]) : []);
    // v12: the create event is named by the room ID, never listed (rooms/v12.md).
    const createId =
      version.roomIdFromCreateEvent && event.type !== 'm.room.create' ? createEventIdOf(roomId) : undefined;
    const builtCreate = createId ? built?.authState.get(CREATE_STATE_KEY) : undefined;
    const unread = authIds.filter((id) => !byId.has(id));
    if (createId && !builtCreate) unread.push(createId);
    // Received events: their auth and prev events were read with the event (`check`).
    const toRead = unread.filter((id) => !known.has(id));
    if (toRead.length > 0) for (const [id, stored] of await reads.getEvents(toRead)) known.set(id, stored);
    const missing = unread.filter((id) => !known.has(id));
    const authEvents = authIds.flatMap((id) => {
      const found = byId.get(id) ?? known.get(id)?.event;
      return found ? [found] : [];
    });
    const create = builtCreate ?? (createId ? known.get(createId)?.event : undefined);
    return { authEvents, create, missing };
  }

  /**
   * Step 5's input for a received event: the state after its prev events, resolved when they
   * differ. A string lists what is missing; otherwise the state and how the store keeps it.
   */
  async function stateBeforeOf(
    event: IdentifiedPdu,
    roomId: string,
    version: RoomVersion,
    known: Map<string, StoredEvent>,
  ): Promise<{ missing: string[]; reason?: string } | { stateMap: StateMap; stateBefore: StateBefore }> {
    const prevIds = referencedIds(event.prev_events);
    const unknownPrevs = prevIds.filter((id) => {
      const stored = known.get(id);
      return !stored || stored.outlier || stored.roomId !== roomId;
    });
    if (unknownPrevs.length > 0) return { missing: unknownPrevs };
    // The create event (taken as an outlier first, then into the timeline by backfill).
    if (prevIds.length === 0) return { stateMap: new Map(), stateBefore: { state: new Map() } };
    const sets = await Promise.all(prevIds.map((id) => reads.stateAt(id, 'after')));
    const missing = prevIds.filter((_, i) => sets[i] === null);
    if (missing.length > 0) return { missing };
    let stateMap: StateMap;
    try {
      stateMap = await resolve(version, sets as StateMap[], known);
    } catch (err) {
      if (!isCoreError(err)) throw err;
      return { missing: [], reason: err.message };
    }
    const stateBefore: StateBefore = (sets as StateMap[]).every((set) => sameState(set, stateMap))
      ? { afterEvent: prevIds[0] as string }
      : { state: stateMap };
    return { stateMap, stateBefore };
  }

  /**
   * For a partial-state room, `state` with the keys it lacks taken from `authEvents`; else
   * undefined (a room with its full state is checked as it is).
   */
  async function completedFromAuthEvents(
    roomId: string,
    state: AuthState,
    authEvents: readonly IdentifiedPdu[],
  ): Promise<AuthState | undefined> {
    if (!(await deps.partialState?.(roomId))) return undefined;
    const completed = new Map<StateKey, IdentifiedPdu>(state);
    for (const event of authEvents) {
      if (typeof event.state_key !== 'string') continue;
      const key = stateKey(event.type, event.state_key);
      if (!completed.has(key)) completed.set(key, event);
    }
    return completed;
  }

  async function check(
    roomId: string,
    version: RoomVersion,
    candidate: Candidate,
    extremities: readonly string[],
    /** Steps 1–3 already under way (`acceptLocked` starts a batch's verifies together). */
    integrity: Promise<Integrity> = checkIntegrity(roomId, version, candidate),
  ): Promise<Verdict> {
    const { built } = candidate;
    const unchanged = (outcome: AcceptOutcome): Verdict => ({ outcome, membershipChanged: false });

    // --- 1–3: format, signatures, content hash ------------------------------------------------
    let event: IdentifiedPdu;
    let redacted: boolean;
    try {
      ({ event, redacted } = await integrity);
    } catch (err) {
      if (!isCoreError(err)) throw err;
      // A client's draft that makes no valid event: 400 M_BAD_JSON or 413 M_TOO_LARGE.
      if (built) throw coreToMatrix(err);
      const eventId = typeof candidate.pdu.event_id === 'string' ? candidate.pdu.event_id : null;
      return unchanged({ status: 'dropped', eventId, reason: err.message });
    }
    const eventId = event.event_id;
    const { placed } = candidate;
    const asOutlier = placed !== undefined && 'outlier' in placed;
    const givenState = placed && 'state' in placed ? placed.state : undefined;
    const backfilled = placed !== undefined && 'backfilled' in placed && placed.backfilled === true;
    const known = new Map<string, StoredEvent>();
    if (!built) {
      // One read for the event itself, its auth events and its prev events (steps 4 and 5).
      const found = await reads.getEvents([
        eventId,
        ...referencedIds(event.auth_events),
        ...referencedIds(event.prev_events),
      ]);
      const existing = found.get(eventId);
      if (existing && (!existing.outlier || asOutlier)) return unchanged({ status: 'known', eventId });
      found.delete(eventId);
      for (const [id, stored] of found) known.set(id, stored);
    }

    // --- 4: against its own auth events -----------------------------------------------------
    const { authEvents, create, missing } = await authEventsOf(event, roomId, version, built, known);
    if (missing.length > 0) {
      if (built) throw new Error(`built event ${eventId} cites auth events the store lacks: ${missing}`);
      return unchanged({ status: 'missing', eventId, missing });
    }
    const isRejected = (id: string) => (known.get(id)?.rejected ?? null) !== null;
    const shape = checkAuthEventsShape(event, authEvents, version, { isRejected });
    const authState = shape.ok ? authStateOf(create ? [create, ...authEvents] : authEvents) : undefined;
    const byAuthEvents = authState ? checkAuth(event, authState, version) : shape;
    let rejection = byAuthEvents.ok ? undefined : byAuthEvents.reason;
    if (asOutlier) {
      if (rejection !== undefined) return rejectedVerdict(event, redacted, rejection, undefined);
      return {
        outcome: { status: 'accepted', eventId, redacted },
        input: { event, outlier: true },
        membershipChanged: false,
      };
    }

    // --- 5: against the state before it -----------------------------------------------------
    let stateBefore: StateBefore | undefined;
    let stateMap: StateMap | undefined;
    let before: AuthState;
    if (built) {
      stateBefore = built.stateBefore;
      before = built.authState;
    } else if (givenState) {
      stateMap = givenState;
      stateBefore = { state: stateMap };
      before = await eventsAt(stateMap, [CREATE_STATE_KEY, ...authTypesForEvent(event, version)]);
    } else {
      const found = await stateBeforeOf(event, roomId, version, known);
      if ('missing' in found) {
        // Rejected anyway: kept without a state, an event the DAG may name but nothing follows.
        if (rejection !== undefined && found.reason === undefined)
          return rejectedVerdict(event, redacted, rejection, undefined);
        return unchanged({ status: 'missing', eventId, ...found });
      }
      ({ stateMap, stateBefore } = found);
      before = await eventsAt(stateMap, [CREATE_STATE_KEY, ...authTypesForEvent(event, version)]);
    }
    // The same events as step 4's (a message on the state its sender saw): the same answer.
    if (rejection === undefined && !(authState && sameEvents(authState, before))) {
      const byState = checkAuth(event, before, version);
      if (!byState.ok) {
        rejection = byState.reason;
        // Partial state: the keys it lacks are taken from the event's own auth events
        // (checked at step 4), as Synapse resolves them with the partial state; the event
        // is checked again once the full state is in (`partial-state.ts`).
        const partial = await completedFromAuthEvents(roomId, before, authEvents);
        if (partial && checkAuth(event, partial, version).ok) rejection = undefined;
      }
    }
    if (rejection !== undefined) {
      if (built) throw forbidden(rejection);
      return rejectedVerdict(event, redacted, rejection, stateBefore);
    }

    // --- 6: against the current state -------------------------------------------------------
    const prevIds = referencedIds(event.prev_events);
    // An event on a given state in a room with no timeline here yet (a join's answer) starts
    // the room's current state: nothing else to check it against.
    const startsRoom = givenState !== undefined && extremities.length === 0;
    const followsCurrent = built ? built.followsCurrent : startsRoom || sameSet(prevIds, extremities);
    let softFailed = false;
    if (!followsCurrent && !backfilled) {
      const current = await deps.stateEventsAt(roomId, [
        CREATE_STATE_KEY,
        ...authTypesForEvent(event, version),
      ]);
      softFailed = !checkAuth(event, current, version).ok;
      if (softFailed) {
        const partial = await completedFromAuthEvents(roomId, current, authEvents);
        if (partial && checkAuth(event, partial, version).ok) softFailed = false;
      }
    }

    // --- what the write carries -------------------------------------------------------------
    const input: PersistEventInput = { event, stateBefore };
    if (softFailed) input.softFailed = true;
    if (backfilled) input.backfilled = true;
    let stateReset = false;
    if (!softFailed && !backfilled && stateMap && (startsRoom || !(followsCurrent && prevIds.length === 1))) {
      // The event forks the room or merges branches: the current state is the resolution of
      // the states after the new forward extremities (server-server-api.md "Soft failure").
      input.currentState = await currentAfter(version, event, stateMap, extremities, prevIds, known);
      stateReset = true;
    }
    if (built?.txn) input.txn = built.txn;
    const redaction = built
      ? built.redaction
      : softFailed
        ? undefined
        : await remoteRedaction(event, roomId, version, before);
    if (redaction && 'later' in redaction) input.redactsLater = redaction.later;
    else if (redaction) input.redaction = redaction;
    if (!built && !softFailed && !backfilled) {
      // A redaction of this event came first: it is stored redacted.
      const redactedBy = await awaitingRedaction(event, roomId, version);
      if (redactedBy !== null) {
        input.event = { ...redact(event, version), event_id: eventId };
        input.redactedBy = redactedBy;
      }
    }
    const senderServer = serverOf(event.sender);
    if (!backfilled && (senderServer === config.serverName || (candidate.forward && !softFailed))) {
      // A forwarded event goes to every other server but its own.
      const destinations = (await destinationsOf(roomId, event)).filter((server) => server !== senderServer);
      if (destinations.length > 0) input.destinations = destinations;
    }
    if (!softFailed && !backfilled) {
      const notify =
        deps.notificationsFor &&
        (await deps.notificationsFor(event, roomId, {
          joined: (await membersOf(roomId)).joined,
          state: before,
          version,
        }));
      if (notify && notify.length > 0) input.notify = notify;
    }
    const verdict: Verdict = {
      outcome: { status: softFailed ? 'soft_failed' : 'accepted', eventId, redacted },
      input,
      membershipChanged: stateReset || (!softFailed && !backfilled && event.type === MEMBER_TYPE),
    };
    const plain =
      !built &&
      !softFailed &&
      !backfilled &&
      !givenState &&
      !candidate.forward &&
      followsCurrent &&
      extremities.length > 0 &&
      event.state_key === undefined &&
      event.type !== REDACTION_TYPE &&
      !input.currentState &&
      !input.redaction &&
      !input.redactsLater &&
      !input.redactedBy;
    if (plain && stateMap) verdict.deferrable = stateMap;
    return verdict;
  }

  function rejectedVerdict(
    event: IdentifiedPdu,
    redacted: boolean,
    reason: string,
    stateBefore: StateBefore | undefined,
  ): Verdict {
    const input: PersistEventInput = { event, rejected: reason };
    if (stateBefore) input.stateBefore = stateBefore;
    return {
      outcome: { status: 'rejected', eventId: event.event_id, redacted, reason },
      input,
      membershipChanged: false,
    };
  }

  /** The room's current state once `event` joins the forward extremities. */
  async function currentAfter(
    version: RoomVersion,
    event: IdentifiedPdu,
    before: StateMap,
    extremities: readonly string[],
    prevIds: readonly string[],
    known: Map<string, StoredEvent>,
  ): Promise<StateMap> {
    const after = new Map(before);
    if (typeof event.state_key === 'string') after.set(stateKey(event.type, event.state_key), event.event_id);
    const others = extremities.filter((id) => !prevIds.includes(id));
    if (others.length === 0) return after;
    const sets = await Promise.all(others.map((id) => reads.stateAt(id, 'after')));
    known.set(event.event_id, acceptedUnwritten(event, ''));
    return resolve(version, [...sets.filter((set): set is StateMap => set !== null), after], known);
  }

  /**
   * A received redaction, accepted: the target's content goes when the target is here and the
   * redaction may remove it — v1/v2 decided that in the auth rules; from v3 the sender must be
   * of the target's server or hold the redact level (rooms/v3.md "Handling redactions").
   * A target not here yet is awaited (`later`): when it comes, `awaitingRedaction` applies
   * the same rule and it is stored redacted.
   */
  async function remoteRedaction(
    event: IdentifiedPdu,
    roomId: string,
    version: RoomVersion,
    state: AuthState,
  ): Promise<PersistEventInput['redaction'] | { later: string } | undefined> {
    if (event.type !== REDACTION_TYPE) return undefined;
    const targetId = version.redactsInContent ? event.content.redacts : event.redacts;
    if (typeof targetId !== 'string') return undefined;
    const target = await reads.getEvent(targetId);
    if (!target) return { later: targetId };
    if (target.roomId !== roomId || target.redactedBy !== null || target.rejected !== null) return undefined;
    if (!mayRedact(event.sender, target.event.sender, version, state)) return undefined;
    return { eventId: targetId, redacted: { ...redact(target.event, version), event_id: targetId } };
  }

  /** rooms/v3.md "Handling redactions": the target's own server, or the redact level. */
  function mayRedact(
    redacter: string,
    targetSender: string,
    version: RoomVersion,
    state: AuthState,
  ): boolean {
    if (!version.redactionsCheckedLater || serverOf(targetSender) === serverOf(redacter)) return true;
    const powerLevels = state.get(stateKey(POWER_LEVELS_TYPE, ''));
    const create = state.get(CREATE_STATE_KEY);
    return (
      userPowerLevel(redacter, powerLevels, create, version) >=
      namedPowerLevel('redact', powerLevels, version)
    );
  }

  /** The stored redaction that came before `event` and may remove its content, or null. */
  async function awaitingRedaction(event: IdentifiedPdu, roomId: string, version: RoomVersion) {
    const pending = await reads.pendingRedactions(event.event_id);
    if (pending.length === 0) return null;
    for (const redactionId of pending) {
      const redaction = await reads.getEvent(redactionId);
      if (!redaction || redaction.roomId !== roomId || redaction.rejected !== null || redaction.softFailed)
        continue;
      const stateMap = await reads.stateAt(redactionId, 'before');
      if (!stateMap) continue;
      const state = await eventsAt(stateMap, [CREATE_STATE_KEY, stateKey(POWER_LEVELS_TYPE, '')]);
      if (mayRedact(redaction.event.sender, event.sender, version, state)) return redactionId;
    }
    return null;
  }

  async function persist(
    roomId: string,
    verdicts: readonly Verdict[],
    options?: AcceptOptions,
  ): Promise<void> {
    const inputs = verdicts.flatMap((verdict) => (verdict.input ? [verdict.input] : []));
    if (inputs.length === 0) return;
    const forget = () => {
      // Whatever happened to the write, membership may have moved: read it again next time.
      if (verdicts.some((verdict) => verdict.membershipChanged)) roomMembers.delete(roomId);
      forgetReadAhead(inputs);
    };
    const users = new Set(
      inputs
        .filter((input) => !input.rejected && !input.softFailed)
        .flatMap((input) => affectedUsers(input.event)),
    );
    // /sync is woken as soon as the write asks to commit, where the engine says so: the woken
    // passes' reads are then queued behind it in the backend and see it once committed (or
    // nothing of it: a write that fails wakes them for nothing, and they wait again). Else
    // once it is durable. `notified` is the attempt's list that woke them (a second attempt,
    // after a failed optimistic one, has its own).
    let notified: readonly PersistedEvent[] | undefined;
    const notify = (persisted: readonly PersistedEvent[]) => {
      notified = persisted;
      const events = persisted.flatMap((p) =>
        p.stream !== null && p.stream > 0 && !p.existed
          ? [{ roomId, eventId: p.eventId, stream: p.stream }]
          : [],
      );
      ctx.notifier.notify({ rooms: [roomId], users, events });
    };
    let persisted: PersistedEvent[];
    try {
      persisted = await store.rooms.persistEvents(inputs, {
        committing: notify,
        ...(options?.committed
          ? {
              committed: () => {
                forget();
                options.committed?.();
              },
            }
          : {}),
      });
    } finally {
      forget();
    }
    if (notified !== persisted) notify(persisted);
    const destinations = [...new Set(inputs.flatMap((input) => input.destinations ?? []))];
    if (destinations.length > 0) ctx.federation.outboxWritten?.(destinations);
  }

  async function acceptLocked(
    roomId: string,
    version: RoomVersion,
    candidates: readonly Candidate[],
    options?: AcceptOptions,
  ): Promise<AcceptOutcome[]> {
    if (candidates.length === 0) return [];
    if (candidates.every((candidate) => candidate.built)) {
      const verdicts: Verdict[] = [];
      for (const [index, candidate] of candidates.entries()) {
        let verdict: Verdict;
        try {
          verdict = await check(roomId, version, candidate, []);
        } catch (err) {
          throw err instanceof MatrixError ? new BuiltEventRefused(index, err) : err;
        }
        verdicts.push(verdict);
      }
      await persist(roomId, verdicts, options);
      return verdicts.map((verdict) => verdict.outcome);
    }
    if (candidates.some((candidate) => candidate.built)) {
      throw new Error('acceptLocked: built and received events are accepted separately');
    }
    const outcomes: AcceptOutcome[] = [];
    // Each event's ID is known as soon as its verification starts: the store is read ahead
    // for READ_AHEAD of them at a time while their signatures are being checked.
    const identified: (IdentifiedPdu | undefined)[] = [];
    const integrity = lookahead(candidates.length, VERIFY_WINDOW, (i) => {
      const started = startIntegrity(roomId, version, candidates[i] as Candidate);
      identified[i] = started.identified;
      return started.done;
    });
    // Deferrable verdicts wait, unwritten, and are written with the next verdict that is not
    // (or at the end): the events after them are checked against the store plus them. The
    // forward extremities after a deferred event are that event alone.
    const batch: Verdict[] = [];
    let head: string | undefined;
    const forget = (verdict: Verdict) => {
      unwritten.delete(verdict.outcome.eventId as string);
      if (verdict.deferrable) unwrittenStateEvents.delete(verdict.deferrable);
    };
    const flush = async () => {
      if (batch.length === 0) return;
      try {
        await persist(roomId, batch);
      } finally {
        for (const verdict of batch) forget(verdict);
        batch.length = 0;
        head = undefined;
      }
    };
    // The store is read ahead for READ_AHEAD events at a time, once their integrity is known.
    const readIds: string[] = [];
    let readUpTo = 0;
    try {
      for (const [index, candidate] of candidates.entries()) {
        if (index >= readUpTo) {
          readUpTo = Math.min(candidates.length, index + READ_AHEAD);
          const events: IdentifiedPdu[] = [];
          for (let i = index; i < readUpTo; i++) {
            void integrity(i); // started, not awaited
            const event = identified[i];
            if (event) events.push(event);
          }
          if (events.length > 0) readIds.push(...(await readAheadFor(events)));
        }
        // Placed events and redactions (whose target may be unwritten) see the store alone.
        if (candidate.placed || candidate.pdu.type === REDACTION_TYPE) await flush();
        const extremities =
          head !== undefined ? [head] : (await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId);
        const verdict = await check(roomId, version, candidate, extremities, integrity(index));
        outcomes.push(verdict.outcome);
        if (!verdict.input) continue;
        batch.push(verdict);
        if (verdict.deferrable && verdict.input && batch.length < MAX_DEFERRED) {
          const { event } = verdict.input;
          head = event.event_id;
          unwritten.set(head, { stored: acceptedUnwritten(event, roomId), state: verdict.deferrable });
          if (!unwrittenStateEvents.has(verdict.deferrable))
            unwrittenStateEvents.set(verdict.deferrable, new Map());
        } else await flush();
      }
      await flush();
    } catch (err) {
      // What was accepted before the failure is written, as if each had been written at once.
      await flush().catch(() => {});
      throw err;
    } finally {
      for (const verdict of batch) forget(verdict);
      for (const id of readIds) {
        readAhead.delete(id);
        pendingReadAhead.delete(id);
      }
    }
    return outcomes;
  }

  /**
   * Steps 1–4 for events another server handed over in bulk (a join's state and auth chain, a
   * partial-state room's full state): signatures verified many at a time (WebCrypto works off
   * the main thread), then each event checked against its own auth events, auth events first.
   * Those already stored here count as checked. `strict`: the first failure refuses them all
   * (`RoomStateRefused`); otherwise a failing event is left out (`refused`, with why), and so
   * is every event citing it.
   */
  async function checkReceived(
    roomId: string,
    version: RoomVersion,
    received: readonly { pdu: Pdu; what: string }[],
    strict: boolean,
  ) {
    const refused = new Map<string, string>();
    const refuse = (id: string, why: string): void => {
      if (strict) throw new RoomStateRefused(why);
      refused.set(id, why);
    };
    const verified = lookahead(received.length, JOIN_VERIFY_WINDOW, async (i) => {
      const { pdu, what } = received[i] as (typeof received)[number];
      try {
        return (await checkIntegrity(roomId, version, { pdu })).event;
      } catch (err) {
        if (!isCoreError(err)) throw err;
        const id =
          typeof pdu.event_id === 'string'
            ? ` ${pdu.event_id}`
            : ` ${String(pdu.type)} (state key ${JSON.stringify(pdu.state_key ?? null)})`;
        refuse(id.trim(), `${what}${id} fails its checks: ${err.message}`);
        return undefined;
      }
    });
    const events: (IdentifiedPdu | undefined)[] = [];
    const byId = new Map<string, IdentifiedPdu>();
    for (let i = 0; i < received.length; i++) {
      const event = await verified(i);
      events.push(event);
      if (event && !byId.has(event.event_id)) byId.set(event.event_id, event);
    }

    const createId = version.roomIdFromCreateEvent ? createEventIdOf(roomId) : undefined;
    const authIdsOf = (event: IdentifiedPdu) => {
      const ids = referencedIds(event.auth_events);
      if (createId && event.type !== 'm.room.create' && !ids.includes(createId)) ids.push(createId);
      return ids;
    };
    // The received events and the auth events they cite that are stored here already (a
    // resync sends only the events this server lacks).
    const cited = new Set<string>(byId.keys());
    for (const event of byId.values()) for (const id of authIdsOf(event)) cited.add(id);
    const stored = await store.rooms.getEvents([...cited]);
    const lookup = (id: string) => (refused.has(id) ? undefined : (byId.get(id) ?? stored.get(id)?.event));
    const checked = new Set<string>(
      [...stored].filter(([, s]) => s.rejected === null && !s.softFailed).map(([id]) => id),
    );
    /** Whether the event passes step 4; a failure is refused (or thrown, strict). */
    const checkOne = (event: IdentifiedPdu): boolean => {
      const authEvents: IdentifiedPdu[] = [];
      for (const id of authIdsOf(event)) {
        const found = lookup(id);
        if (!found) {
          refuse(
            event.event_id,
            `${event.event_id} cites auth event ${id}, which the room's auth chain lacks`,
          );
          return false;
        }
        authEvents.push(found);
      }
      const listed = authEvents.filter((e) => referencedIds(event.auth_events).includes(e.event_id));
      const shape = checkAuthEventsShape(event, listed, version);
      const result = shape.ok ? checkAuth(event, authStateOf(authEvents), version) : shape;
      if (result.ok) return true;
      refuse(event.event_id, `${event.event_id} is not allowed by its auth events: ${result.reason}`);
      return false;
    };
    // Auth events first (Kahn's order): an event is ready once every auth event it cites
    // that the room's chain holds is checked; one it cites that is nowhere fails in checkOne.
    const pending = [...byId.values()].filter((e) => !checked.has(e.event_id));
    const waitingOn = new Map<string, number>();
    const dependents = new Map<string, IdentifiedPdu[]>();
    const ready: IdentifiedPdu[] = [];
    for (const event of pending) {
      let waits = 0;
      for (const id of new Set(authIdsOf(event))) {
        if (checked.has(id) || !lookup(id)) continue;
        waits++;
        const list = dependents.get(id);
        if (list) list.push(event);
        else dependents.set(id, [event]);
      }
      waitingOn.set(event.event_id, waits);
      if (waits === 0) ready.push(event);
    }
    for (let event = ready.pop(); event; event = ready.pop()) {
      if (!checkOne(event)) continue;
      checked.add(event.event_id);
      for (const dependent of dependents.get(event.event_id) ?? []) {
        const waits = (waitingOn.get(dependent.event_id) as number) - 1;
        waitingOn.set(dependent.event_id, waits);
        if (waits === 0) ready.push(dependent);
      }
    }
    for (const event of pending) {
      if (checked.has(event.event_id) || refused.has(event.event_id)) continue;
      // Never ready: it cites a refused event (or the chain has a cycle).
      refuse(
        event.event_id,
        `${event.event_id} cites auth events that were refused, or the auth chain has a cycle`,
      );
    }
    const accepted = (event: IdentifiedPdu | undefined): event is IdentifiedPdu =>
      event !== undefined && !refused.has(event.event_id);
    return { events, byId, stored, refused, accepted, checkOne, lookup };
  }

  async function acceptJoinedRoomLocked(
    roomId: string,
    version: RoomVersion,
    room: ReceivedRoom,
  ): Promise<{ eventId: string }> {
    const refuse = (why: string): never => {
      throw new RoomStateRefused(why);
    };
    // 1–4 for every event the resident server sent, the join last.
    const received = [
      ...room.state.map((pdu) => ({ pdu, what: 'state event' })),
      ...room.authChain.map((pdu) => ({ pdu, what: 'auth chain event' })),
      { pdu: room.join, what: 'the join' },
    ];
    const { events, byId, stored, checkOne, lookup } = await checkReceived(roomId, version, received, true);
    const join = events[received.length - 1] as IdentifiedPdu;
    const stateIds = events.slice(0, room.state.length).map((event) => (event as IdentifiedPdu).event_id);

    // The state: one create event of this version, one event per key.
    const stateMap: StateMap = new Map();
    for (const id of stateIds) {
      const event = byId.get(id) as IdentifiedPdu;
      if (typeof event.state_key !== 'string') refuse(`${id} in the room's state is not a state event`);
      stateMap.set(stateKey(event.type, event.state_key as string), id);
    }
    const create = lookup(stateMap.get(CREATE_STATE_KEY) ?? '');
    if (!create) return refuse("the room's state has no create event");
    const createdVersion = create.content.room_version ?? '1';
    if (createdVersion !== version.id)
      refuse(`the room is of version ${String(createdVersion)}, not ${version.id} as make_join said`);

    // The join, against its auth events and against the state before it.
    if (join.event_id !== room.joinEventId)
      refuse(`the returned join ${join.event_id} is not ours, ${room.joinEventId}`);
    if (join.type !== MEMBER_TYPE || join.content.membership !== 'join')
      refuse('the returned join is not a join');
    checkOne(join);
    const stateEvents = new Map<StateKey, IdentifiedPdu>(
      authStateOf(stateIds.map((id) => byId.get(id) as IdentifiedPdu)),
    );
    if (room.partial) {
      // Partial state lacks members the join's auth may need (a restricted join's authoriser):
      // those keys are taken from the join's own auth events, already checked (as Synapse
      // resolves the claimed auth events with the partial state).
      for (const id of referencedIds(join.auth_events)) {
        const event = lookup(id);
        const key = event && typeof event.state_key === 'string' ? stateKey(event.type, event.state_key) : '';
        if (event && key && !stateEvents.has(key)) stateEvents.set(key, event);
      }
    }
    const byState = checkAuth(join, stateEvents, version);
    if (!byState.ok) refuse(`the join is not allowed by the room's state: ${byState.reason}`);

    const inputs: PersistEventInput[] = [...byId.values()]
      .filter((event) => !stored.has(event.event_id) && event.event_id !== join.event_id)
      .map((event) => ({ event, outlier: true }));
    const after: StateMap = new Map(stateMap);
    after.set(stateKey(MEMBER_TYPE, join.state_key as string), join.event_id);
    // A rejoin: the branches this server had left end here (it cannot build on them any more).
    inputs.push({
      event: join,
      stateBefore: { state: stateMap },
      currentState: after,
      replacesExtremities: true,
      ...(room.partial ? { partialState: { servers: room.partial.servers } } : {}),
    });
    try {
      await store.rooms.persistEvents(inputs);
    } finally {
      roomMembers.delete(roomId);
      forgetReadAhead(inputs);
    }
    ctx.notifier.notify({ rooms: [roomId], users: affectedUsers(join) });
    return { eventId: join.event_id };
  }

  async function acceptFullStateLocked(
    roomId: string,
    version: RoomVersion,
    state: { pdus: readonly Pdu[]; authChain: readonly Pdu[] },
  ): Promise<{ state: StateMap; refused: Map<string, string> }> {
    const received = [
      ...state.pdus.map((pdu) => ({ pdu, what: 'state event' })),
      ...state.authChain.map((pdu) => ({ pdu, what: 'auth chain event' })),
    ];
    const { events, byId, stored, refused, accepted } = await checkReceived(roomId, version, received, false);
    const stateMap: StateMap = new Map();
    for (const event of events.slice(0, state.pdus.length)) {
      if (!accepted(event)) continue;
      if (typeof event.state_key !== 'string') {
        refused.set(event.event_id, `${event.event_id} in the room's state is not a state event`);
        continue;
      }
      stateMap.set(stateKey(event.type, event.state_key), event.event_id);
    }
    const inputs: PersistEventInput[] = [...byId.values()]
      .filter((event) => !stored.has(event.event_id) && !refused.has(event.event_id))
      .map((event) => ({ event, outlier: true }));
    if (inputs.length > 0) await store.rooms.persistEvents(inputs);
    return { state: stateMap, refused };
  }

  return {
    acceptLocked,
    acceptJoinedRoomLocked,
    acceptFullStateLocked,
    forgetMembers: (roomId) => {
      roomMembers.delete(roomId);
    },
    knownMembers: (roomId) => roomMembers.get(roomId)?.joined,
    rememberMembers: (roomId, joined) => {
      rememberMembers(roomId, joined);
    },
  };
}

/** An accepted event not written yet, as the store would give it back (with no position). */
function acceptedUnwritten(event: IdentifiedPdu, roomId: string): StoredEvent {
  return {
    event,
    roomId,
    stream: null,
    depth: event.depth,
    outlier: false,
    rejected: null,
    softFailed: false,
    redactedBy: null,
    txn: null,
  };
}

/** Whether two auth states hold the same event at every key (events are named by their IDs). */
function sameEvents(a: AuthState, b: AuthState): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [key, event] of a) if (b.get(key)?.event_id !== event.event_id) return false;
  return true;
}

function sameState(a: StateMap, b: StateMap): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [key, id] of a) if (b.get(key) !== id) return false;
  return true;
}
