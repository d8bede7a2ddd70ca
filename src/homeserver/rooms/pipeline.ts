/**
 * The one local event pipeline — every event this server's users send goes through here
 * (client-server-api "Sending events to a room", "Redactions"; server-server-api.md
 * "Authorisation rules", "Signing Events"):
 *
 * per-room lock → transaction ID lookup → prev_events (forward extremities) and depth →
 * auth events from the current state → PDU for the room version → hash, sign, identify →
 * checkAuth against the current state → push actions → one atomic `persistEvents` (event,
 * state delta, stream position, txn, notifications, redaction of the target) → wake /sync.
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
  type RoomVersion,
  redact,
  type StateKey,
  stateKey,
  userPowerLevel,
} from '../../core/index.ts';
import type { PersistEventInput, StateBefore } from '../../storage/store.ts';
import type { HomeserverContext } from '../context.ts';
import { badJson, forbidden, notFound } from '../errors.ts';
import {
  type BuildTools,
  buildEvent,
  CREATE_STATE_KEY,
  checkDraft,
  type EventDraft,
  MEMBER_TYPE,
  POWER_LEVELS_TYPE,
  REDACTION_TYPE,
} from './build.ts';
import { createKeyedLock, type KeyedLock } from './lock.ts';

/** What the push area gives the pipeline: the local users an event notifies. */
export interface PushNotifier {
  notificationsFor(event: IdentifiedPdu, roomId: string): Promise<{ userId: string; highlight: boolean }[]>;
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
  /** Persists locally built events of one room in one transaction, with push actions, then wakes /sync. */
  persistBuilt(roomId: string, inputs: PersistEventInput[]): Promise<void>;
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

/** Users whose membership an event changes: their /sync must wake even if they are not in the room. */
export function affectedUsers(event: IdentifiedPdu): string[] {
  return event.type === MEMBER_TYPE && typeof event.state_key === 'string' ? [event.state_key] : [];
}

export function createEventPipeline(ctx: HomeserverContext, deps: RoomsDeps = {}): EventPipeline {
  const { store } = ctx;
  const lock = createKeyedLock();
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
    const wanted = [...new Set(keys)];
    const found = await Promise.all(
      wanted.map((key) => {
        const at = key.indexOf('\u0000');
        return store.rooms.currentStateEvent(roomId, key.slice(0, at), key.slice(at + 1));
      }),
    );
    const state = new Map<StateKey, IdentifiedPdu>();
    found.forEach((stored, i) => {
      if (stored) state.set(wanted[i] as StateKey, stored.event);
    });
    return state;
  }

  async function notifications(event: IdentifiedPdu, roomId: string) {
    const push = deps.push?.();
    if (!push) return undefined;
    return push.notificationsFor(event, roomId);
  }

  async function persistBuilt(roomId: string, inputs: PersistEventInput[]): Promise<void> {
    for (const input of inputs) {
      const notify = await notifications(input.event, roomId);
      if (notify && notify.length > 0) input.notify = notify;
    }
    await store.rooms.persistEvents(inputs);
    const users = new Set(inputs.flatMap((input) => affectedUsers(input.event)));
    ctx.notifier.notify({ rooms: [roomId], users });
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

  async function sendEvent(input: SendEventInput): Promise<SendEventResult> {
    const draft: EventDraft = {
      sender: input.sender,
      type: input.type,
      content: input.content,
      ...(input.stateKey !== undefined ? { stateKey: input.stateKey } : {}),
      ...(input.redacts !== undefined ? { redacts: input.redacts } : {}),
    };
    checkDraft(draft);
    const { roomId } = input;
    return lock.run(roomId, async () => {
      const txn =
        input.txnId !== undefined && input.deviceId
          ? { userId: input.sender, deviceId: input.deviceId, txnId: input.txnId }
          : undefined;
      if (txn) {
        const earlier = await store.rooms.eventForTransaction(txn.userId, txn.deviceId, txn.txnId);
        if (earlier !== null) return { eventId: earlier };
      }
      const version = await roomVersionOf(roomId);
      // An unknown room and a room the sender is not in answer alike, so nobody learns which
      // rooms exist by sending to them.
      if (!version) throw forbidden(`You are not in room ${roomId}`);

      if (draft.type === REDACTION_TYPE) routeRedaction(draft, version);

      const selectable = {
        type: draft.type,
        sender: draft.sender,
        state_key: draft.stateKey,
        content: draft.content,
      };
      const keys: StateKey[] = [CREATE_STATE_KEY, ...authTypesForEvent(selectable, version)];
      if (draft.stateKey !== undefined) keys.push(stateKey(draft.type, draft.stateKey));
      const [state, extremities] = await Promise.all([
        stateEventsAt(roomId, keys),
        store.rooms.forwardExtremities(roomId),
      ]);

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

      const prevStored = await store.rooms.getEvents(extremities.map((e) => e.eventId));
      const prevEvents = [...prevStored.values()].map((stored) => stored.event);
      if (prevEvents.length === 0) throw forbidden(`Room ${roomId} has no events to build on`);
      const event = await buildEvent(draft, { version, roomId, prevEvents, state }, tools());

      const stateBefore: StateBefore =
        prevEvents.length === 1
          ? { afterEvent: (prevEvents[0] as IdentifiedPdu).event_id }
          : { state: await store.rooms.currentState(roomId) };
      const persist: PersistEventInput = { event, stateBefore };
      if (txn) persist.txn = txn;
      if (redaction) persist.redaction = redaction;
      await persistBuilt(roomId, [persist]);
      return { eventId: event.event_id };
    });
  }

  return { sendEvent, roomVersionOf, stateEventsAt, persistBuilt, tools, lock };
}
