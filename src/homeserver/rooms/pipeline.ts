/**
 * The local half of the event pipeline — every event this server's users send starts here
 * (client-server-api "Sending events to a room", "Redactions"; server-server-api.md
 * "Signing Events"):
 *
 * per-room lock → transaction ID lookup → prev_events (forward extremities) and depth →
 * auth events from the current state → build: PDU for the room version, hash, sign,
 * identify → accept (accept.ts, the same checks every received event meets: format, hash,
 * auth against its auth events, against the state before it, one atomic `persistEvents`
 * with state delta, stream position, txn, push actions, outbox rows and the redaction of
 * the target) → wake /sync.
 */

import {
  authTypesForEvent,
  canonicalJson,
  getRoomVersion,
  type IdentifiedPdu,
  isValidEventId,
  type JsonObject,
  type JsonValue,
  namedPowerLevel,
  type Pdu,
  type RoomVersion,
  redact,
  type StateKey,
  type StateMap,
  serverNameOf,
  splitStateKey,
  stateKey,
  toWirePdu,
  userPowerLevel,
} from '../../core/index.ts';
import type { PartialStateRoom, PersistEventInput, StateBefore } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { badJson, forbidden, notFound } from '../errors.ts';
import {
  type AcceptOutcome,
  affectedUsers,
  type Candidate,
  createAccept,
  type NotifiedRoom,
  type Placement,
  type ReceivedRoom,
} from './accept.ts';
import {
  type BuildTools,
  buildEvent,
  CREATE_STATE_KEY,
  checkDraft,
  type EventDraft,
  MEMBER_TYPE,
  POWER_LEVELS_TYPE,
  type PrevEvent,
  REDACTION_TYPE,
} from './build.ts';
import { createKeyedLock, type KeyedLock } from './lock.ts';
import { strippedState } from './members.ts';

/** What the push area gives the pipeline: the local users an event notifies. */
export interface PushNotifier {
  notificationsFor(
    event: IdentifiedPdu,
    roomId: string,
    room?: NotifiedRoom,
  ): Promise<{ userId: string; highlight: boolean }[]>;
}

export interface RoomsDeps {
  /** Looked up at send time: the push service is created after (and may depend on) rooms. */
  push?: () => PushNotifier | undefined;
}

export interface SendEventInput {
  sender: string;
  /** The sending device; with `txnId` it makes the send idempotent. */
  deviceId?: string | null;
  roomId: string;
  type: string;
  content: JsonObject;
  /** Present for a state event ('' is the empty state key). */
  stateKey?: string;
  txnId?: string;
  /** For `m.room.redaction`: the event redacted. */
  redacts?: string;
}

export interface SendEventResult {
  eventId: string;
}

export interface EventPipeline {
  sendEvent(input: SendEventInput): Promise<SendEventResult>;
  /** The room's version, or null for a room this server does not know. */
  roomVersionOf(roomId: string): Promise<RoomVersion | null>;
  /** The current state events at the given keys (absent keys are left out). */
  stateEventsAt(roomId: string, keys: Iterable<StateKey>): Promise<Map<StateKey, IdentifiedPdu>>;
  /**
   * Accepts events of one room (accept.ts), built here or received; the room's lock must be
   * held. Built ones are all stored or none (a failed check throws); received ones each get
   * an outcome.
   */
  acceptLocked(
    roomId: string,
    version: RoomVersion,
    candidates: readonly Candidate[],
  ): Promise<AcceptOutcome[]>;
  /** A room joined through another server (accept.ts `acceptJoinedRoomLocked`), under its lock. */
  acceptJoinedRoom(roomId: string, version: RoomVersion, room: ReceivedRoom): Promise<{ eventId: string }>;
  /**
   * Received events of one room, under its lock; an unknown room stores nothing. `placed`
   * takes them as outliers or on a given state (accept.ts `Candidate.placed`); `forward`: this
   * server passes them on to the room's other servers (`Candidate.forward`).
   */
  acceptRemote(
    roomId: string,
    pdus: readonly Pdu[],
    options?: { placed?: Placement; forward?: boolean },
  ): Promise<AcceptOutcome[]>;
  /**
   * Invites a user of another server: the invite is built here, signed by the invitee's
   * server through `ctx.federation.invite`, then accepted like any received event.
   */
  inviteRemote(sender: string, roomId: string, target: string, content: JsonObject): Promise<SendEventResult>;
  /** The room when it was joined with partial state and its full state is not merged yet. */
  partialState(roomId: string): Promise<PartialStateRoom | undefined>;
  /**
   * A partial-state room's full state as another server answered it (accept.ts
   * `acceptFullStateLocked`): every event checked, the failing ones left out and named.
   */
  acceptFullState(
    roomId: string,
    state: { pdus: readonly Pdu[]; authChain: readonly Pdu[] },
  ): Promise<{ state: StateMap; refused: Map<string, string> }>;
  /**
   * Merges a partial-state room's full state (the state before the join, its events stored)
   * under the room's lock (`RoomStore.fillPartialState`) and wakes /sync; false when the room
   * was not partial.
   */
  fillPartialState(roomId: string, stateBeforeJoin: StateMap): Promise<boolean>;
  /** The clock, key and randomness events are built with. */
  tools(): BuildTools;
  readonly lock: KeyedLock;
}

const sameJson = (a: JsonValue, b: JsonValue): boolean => {
  try {
    return canonicalJson(a, { strict: false }) === canonicalJson(b, { strict: false });
  } catch {
    return false;
  }
};

/**
 * A redaction names its target (rooms/v11.md: in `content.redacts`; before, at the top level).
 * One that reaches the pipeline without `redacts` — a v11 redaction sent through `/send` —
 * takes it from its content, so no redaction escapes the target checks; before v11 a
 * redaction can only be made through `/redact`.
 */
function routeRedaction(draft: EventDraft, version: RoomVersion): void {
  if (draft.stateKey !== undefined) throw badJson('m.room.redaction is not a state event');
  if (draft.redacts === undefined) {
    const named = draft.content.redacts;
    if (!version.redactsInContent || typeof named !== 'string') {
      throw badJson(
        'An m.room.redaction must name the event it redacts; send it with PUT /rooms/{roomId}/redact/…',
      );
    }
    draft.redacts = named;
  }
  if (!isValidEventId(draft.redacts))
    throw badJson(`${JSON.stringify(draft.redacts)} is not a valid event ID`);
}

export { affectedUsers };

export function createEventPipeline(ctx: HomeserverContext, deps: RoomsDeps = {}): EventPipeline {
  const { store } = ctx;
  const lock = createKeyedLock();
  /** Per room, the last send's write while it may be committed but not yet durable. */
  const syncing = new Map<string, Promise<void>>();
  // A room's version never changes (an upgrade makes a new room), so it is read once.
  const versions = new Map<string, RoomVersion>();

  const tools = (): BuildTools => ({
    serverName: ctx.config.serverName,
    signingKey: ctx.signingKey,
    now: ctx.clock.now(),
    random: ctx.random,
  });

  async function roomVersionOf(roomId: string): Promise<RoomVersion | null> {
    const known = versions.get(roomId);
    if (known) return known;
    const record = await store.rooms.getRoom(roomId);
    if (!record) return null;
    const version = getRoomVersion(record.roomVersion);
    versions.set(roomId, version);
    return version;
  }

  async function stateEventsAt(
    roomId: string,
    keys: Iterable<StateKey>,
  ): Promise<Map<StateKey, IdentifiedPdu>> {
    // One read transaction for every key: a send needs three or four.
    const wanted = [...new Set(keys)].map(splitStateKey);
    const found = await store.rooms.currentStateEventsAt(roomId, wanted);
    const state = new Map<StateKey, IdentifiedPdu>();
    for (const stored of found)
      state.set(stateKey(stored.event.type, stored.event.state_key ?? ''), stored.event);
    return state;
  }

  /**
   * Rooms joined with partial state, full state not merged: read from the store once (a
   * restart finds them there), then kept here — a join adds one, a fill removes it.
   */
  let partialRooms: Promise<Map<string, PartialStateRoom>> | undefined;
  const partialRoomsNow = () => {
    partialRooms ??= store.rooms
      .partialStateRooms()
      .then((rooms) => new Map(rooms.map((room) => [room.roomId, room])));
    return partialRooms;
  };
  const partialState = async (roomId: string) => (await partialRoomsNow()).get(roomId);
  // Read again after another store on the database (a second worker, `hearth serve`) changed them.
  store.onChangedElsewhere('partial_state', () => {
    partialRooms = undefined;
  });

  const accept = createAccept(ctx, {
    partialState,
    stateEventsAt,
    notificationsFor: (event, roomId, room) => deps.push?.()?.notificationsFor(event, roomId, room),
  });

  async function acceptRemote(
    roomId: string,
    pdus: readonly Pdu[],
    options: { placed?: Placement; forward?: boolean } = {},
  ): Promise<AcceptOutcome[]> {
    return lock.run(roomId, async () => {
      const version = await roomVersionOf(roomId);
      if (!version) {
        return pdus.map(
          (pdu): AcceptOutcome => ({
            status: 'dropped',
            eventId: typeof pdu.event_id === 'string' ? pdu.event_id : null,
            reason: `room ${roomId} is not known to this server`,
          }),
        );
      }
      return accept.acceptLocked(
        roomId,
        version,
        pdus.map((pdu) => ({
          pdu,
          ...(options.placed ? { placed: options.placed } : {}),
          ...(options.forward ? { forward: true } : {}),
        })),
      );
    });
  }

  /** The redacted form to store in place of the target, after checking the sender may redact it. */
  async function redactionOf(
    draft: EventDraft,
    roomId: string,
    version: RoomVersion,
    state: Map<StateKey, IdentifiedPdu>,
  ): Promise<PersistEventInput['redaction']> {
    const targetId = draft.redacts as string;
    const target = await store.rooms.getEvent(targetId);
    if (!target || target.roomId !== roomId || target.outlier || target.rejected !== null) {
      throw notFound(`Event ${targetId} is not in room ${roomId}`);
    }
    // From v3 the auth rules accept any redaction from a member and leave the target to be
    // checked when the redaction is applied (rooms/v3.md "Handling redactions"): here.
    if (target.event.sender !== draft.sender) {
      const create = state.get(CREATE_STATE_KEY);
      const powerLevels = state.get(stateKey(POWER_LEVELS_TYPE, ''));
      const level = userPowerLevel(draft.sender, powerLevels, create, version);
      const needed = namedPowerLevel('redact', powerLevels, version);
      if (level < needed) {
        throw forbidden(`Redacting another user's event needs power level ${needed}; yours is ${level}`);
      }
    }
    if (target.redactedBy !== null) return undefined;
    return { eventId: targetId, redacted: { ...redact(target.event, version), event_id: targetId } };
  }

  /** The draft of a send, checked as far as a client's input can be before building. */
  function draftOf(input: SendEventInput): EventDraft {
    const draft: EventDraft = {
      sender: input.sender,
      type: input.type,
      content: input.content,
      ...(input.stateKey !== undefined ? { stateKey: input.stateKey } : {}),
      ...(input.redacts !== undefined ? { redacts: input.redacts } : {}),
    };
    checkDraft(draft);
    return draft;
  }

  /**
   * Builds the event on the room's forward extremities and current state, with the lock
   * held; or answers at once (`eventId`) for a repeated transaction or a no-op state change.
   * Everything it reads is one store snapshot (`sendSnapshot`), whatever the room's size:
   * the joined members are read with it only when accept does not know them already.
   */
  async function prepare(
    input: SendEventInput,
    draft: EventDraft,
  ): Promise<{ eventId: string } | { version: RoomVersion; candidate: Candidate & { pdu: IdentifiedPdu } }> {
    const { roomId } = input;
    const txn =
      input.txnId !== undefined && input.deviceId
        ? { userId: input.sender, deviceId: input.deviceId, txnId: input.txnId }
        : undefined;
    const version = await roomVersionOf(roomId);
    if (!version) {
      // A transaction ID is the sender's own: a repeat answers as the first send did.
      const earlier = txn && (await store.rooms.eventForTransaction(txn.userId, txn.deviceId, txn.txnId));
      if (earlier) return { eventId: earlier };
      // An unknown room and a room the sender is not in answer alike, so nobody learns which
      // rooms exist by sending to them.
      throw forbidden(`You are not in room ${roomId}`);
    }

    if (draft.type === REDACTION_TYPE) routeRedaction(draft, version);

    const selectable = {
      type: draft.type,
      sender: draft.sender,
      state_key: draft.stateKey,
      content: draft.content,
    };
    const keys: StateKey[] = [CREATE_STATE_KEY, ...authTypesForEvent(selectable, version)];
    if (draft.stateKey !== undefined) keys.push(stateKey(draft.type, draft.stateKey));
    const knownMembers = accept.knownMembers(roomId);
    const snapshot = await store.rooms.sendSnapshot(roomId, {
      ...(txn ? { txn } : {}),
      keys: [...new Set(keys)].map(splitStateKey),
      prevEvents: version.eventIdFormat === 'server',
      joined: knownMembers === undefined,
    });
    if (snapshot.earlier !== null) return { eventId: snapshot.earlier };
    if (snapshot.joined) accept.rememberMembers(roomId, snapshot.joined);
    const state = new Map<StateKey, IdentifiedPdu>();
    for (const stored of snapshot.state)
      state.set(stateKey(stored.event.type, stored.event.state_key ?? ''), stored.event);
    const { extremities } = snapshot;

    // Setting a state event to what it already is changes nothing: answer with the event
    // that holds it (as Synapse does), so retries and no-op profile updates add no events.
    if (draft.stateKey !== undefined) {
      const current = state.get(stateKey(draft.type, draft.stateKey));
      if (current && current.sender === draft.sender && sameJson(current.content, draft.content)) {
        return { eventId: current.event_id };
      }
    }

    const redaction =
      draft.type === REDACTION_TYPE && draft.redacts !== undefined
        ? await redactionOf(draft, roomId, version, state)
        : undefined;

    // From v3 an event cites its prev events by ID, and the extremities carry their depths:
    // the events themselves are read only for v1/v2, whose references hold their hashes.
    const prevEvents: PrevEvent[] =
      version.eventIdFormat === 'server'
        ? (snapshot.prevEvents ?? []).map((s) => s.event)
        : extremities.map((e) => ({ event_id: e.eventId, depth: e.depth }));
    if (prevEvents.length === 0) throw forbidden(`Room ${roomId} has no events to build on`);
    const event = await buildEvent(draft, { version, roomId, prevEvents, state }, tools());

    // Built on every forward extremity: the state before it is the room's current state.
    const stateBefore: StateBefore =
      prevEvents.length === 1
        ? { afterEvent: (prevEvents[0] as PrevEvent).event_id }
        : { state: snapshot.currentState ?? (await store.rooms.currentState(roomId)) };
    const built: NonNullable<Candidate['built']> = { authState: state, stateBefore, followsCurrent: true };
    if (txn) built.txn = txn;
    if (redaction) built.redaction = redaction;
    return { version, candidate: { pdu: event, built } };
  }

  async function sendEvent(input: SendEventInput): Promise<SendEventResult> {
    const draft = draftOf(input);
    const { roomId } = input;
    return lock.run(roomId, async (release) => {
      const prepared = await prepare(input, draft);
      if ('eventId' in prepared) {
        // It may name the event of a send still waiting for its sync (a repeated transaction
        // ID, a no-op state change): answered once that is durable too.
        await syncing.get(roomId);
        return prepared;
      }
      // The room's next send may be built once this one is committed, while its sync runs:
      // the two then share the disk's flushes (accept.ts `AcceptOptions.committed`).
      const accepted = accept.acceptLocked(roomId, prepared.version, [prepared.candidate], {
        committed: release,
      });
      const settled = accepted.then(
        () => undefined,
        () => undefined,
      );
      syncing.set(roomId, settled);
      void settled.then(() => {
        if (syncing.get(roomId) === settled) syncing.delete(roomId);
      });
      await accepted;
      return { eventId: prepared.candidate.pdu.event_id };
    });
  }

  async function inviteRemote(
    sender: string,
    roomId: string,
    target: string,
    content: JsonObject,
  ): Promise<SendEventResult> {
    const draft = draftOf({ sender, roomId, type: MEMBER_TYPE, stateKey: target, content });
    // Built under the lock, but the invitee's server is asked without it: a slow server must
    // not hold the room. Accept takes whatever happened meanwhile into account (a fork).
    const prepared = await lock.run(roomId, () =>
      prepare({ sender, roomId, type: MEMBER_TYPE, stateKey: target, content }, draft),
    );
    if ('eventId' in prepared) return prepared;
    const { version, candidate } = prepared;
    const eventId = candidate.pdu.event_id;
    const signed = await ctx.federation.invite(serverNameOf(target) as string, roomId, eventId, {
      roomVersion: version.id,
      event: toWirePdu(candidate.pdu, version),
      inviteRoomState: await strippedState(store, roomId, sender),
    });
    const [outcome] = await lock.run(roomId, () => accept.acceptLocked(roomId, version, [{ pdu: signed }]));
    if (outcome?.status !== 'accepted' && outcome?.status !== 'known') {
      const why = outcome && 'reason' in outcome ? `: ${outcome.reason}` : '';
      throw forbidden(`The invite of ${target}, as its server signed it, was not accepted${why}`);
    }
    return { eventId: outcome.eventId };
  }

  return {
    sendEvent,
    roomVersionOf,
    stateEventsAt,
    acceptLocked: accept.acceptLocked,
    acceptRemote,
    async acceptJoinedRoom(roomId, version, room) {
      // Read before the write, so the room joined now is not counted twice.
      const partial = await partialRoomsNow();
      const accepted = await lock.run(roomId, () => accept.acceptJoinedRoomLocked(roomId, version, room));
      // The room may have been known before (a rejoin): its version is read again from the store.
      versions.delete(roomId);
      if (room.partial)
        partial.set(roomId, { roomId, joinEventId: accepted.eventId, servers: [...room.partial.servers] });
      return accepted;
    },
    inviteRemote,
    partialState,
    async acceptFullState(roomId, state) {
      const version = await roomVersionOf(roomId);
      if (!version) throw notFound(`Room ${roomId} is not known to this server`);
      return accept.acceptFullStateLocked(roomId, version, state);
    },
    async fillPartialState(roomId, stateBeforeJoin) {
      const partial = await partialRoomsNow();
      const position = await lock.run(roomId, async () => {
        try {
          return await store.rooms.fillPartialState(roomId, stateBeforeJoin);
        } finally {
          accept.forgetMembers(roomId);
        }
      });
      partial.delete(roomId);
      if (position === null) return false;
      ctx.notifier.notify({ rooms: [roomId] });
      return true;
    },
    tools,
    lock,
  };
}
