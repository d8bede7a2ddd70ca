/**
 * Building one local event for a room of any version (v1–v12): the PDU in the version's
 * format (rooms/fragments/*-event-format.md), its auth events chosen by the "Auth events
 * selection" algorithm (server-server-api.md), the content hash and this server's signature
 * ("Signing Events") and its ID. Whether the event may be sent — its format, size and the
 * authorization rules — is decided by accept.ts, which every event goes through.
 *
 * Pure apart from the clock and randomness it is handed: `sendEvent` feeds it the room's
 * current state from the store, `createRoom` the in-memory state of a room being made.
 */

import {
  type AuthState,
  authTypesForEvent,
  computeReferenceHash,
  type EventReference,
  encodeBase64,
  type IdentifiedPdu,
  isCoreError,
  type JsonObject,
  MAX_DEPTH,
  MAX_ID_BYTES,
  MAX_PREV_EVENTS,
  type Pdu,
  type RoomVersion,
  type SigningKey,
  signAndIdentify,
  stateKey,
  utf8ByteLength,
} from '../../core/index.ts';
import { type Random, randomString } from '../context.ts';
import { badJson, tooLarge } from '../errors.ts';

export const CREATE_TYPE = 'm.room.create';
export const MEMBER_TYPE = 'm.room.member';
export const POWER_LEVELS_TYPE = 'm.room.power_levels';
export const REDACTION_TYPE = 'm.room.redaction';
export const CREATE_STATE_KEY = stateKey(CREATE_TYPE, '');

/** What a local sender asks for; everything else in the PDU the server fills in. */
export interface EventDraft {
  sender: string;
  type: string;
  content: JsonObject;
  stateKey?: string;
  /** For `m.room.redaction`: the event to redact (top level before v11, in `content` from v11). */
  redacts?: string;
}

/**
 * A prev event as building needs it: its ID and depth. v1/v2 events cite their prev events'
 * reference hashes, so there the whole event is needed; from v3 the ID is the hash.
 */
export type PrevEvent = IdentifiedPdu | { readonly event_id: string; readonly depth: number };

/** Where in the room the event goes and what authorises it. */
export interface BuildPlace {
  version: RoomVersion;
  /** Absent only for a v12 `m.room.create`, whose ID names the room. */
  roomId: string | undefined;
  /** The forward extremities the event follows (at most 20 used), with their depths. */
  prevEvents: readonly PrevEvent[];
  /**
   * The state the event is sent in, keyed by (type, state_key). It must hold every state
   * event `authTypesForEvent` selects, and the `m.room.create` event even in v12 (where
   * checkAuth finds it here, not among the auth events).
   */
  state: AuthState;
}

export interface BuildTools {
  serverName: string;
  signingKey: SigningKey;
  now: number;
  random: Random;
}

/** v1/v2 reference events as `[event_id, {sha256: reference hash}]`; v3+ by bare ID. */
export function referenceTo(event: PrevEvent, version: RoomVersion): EventReference {
  if (version.eventIdFormat !== 'server') return event.event_id;
  if (!('hashes' in event))
    throw new Error(`building a v${version.id} event needs prev event ${event.event_id} whole`);
  return [event.event_id, { sha256: encodeBase64(computeReferenceHash(event, version)) }];
}

/** Client input checks the PDU schema would otherwise only report after signing. */
export function checkDraft(draft: EventDraft): void {
  if (draft.type === '') throw badJson('The event type must not be empty');
  if (utf8ByteLength(draft.type) > MAX_ID_BYTES) {
    throw tooLarge(`The event type is over ${MAX_ID_BYTES} bytes`);
  }
  if (draft.stateKey !== undefined && utf8ByteLength(draft.stateKey) > MAX_ID_BYTES) {
    throw tooLarge(`The state key is over ${MAX_ID_BYTES} bytes`);
  }
}

/**
 * Builds, signs and identifies the event. Content canonical JSON cannot carry (floats in
 * v6+) is `400 M_BAD_JSON`. Nothing is checked against the rules here: accept.ts does.
 */
export async function buildEvent(
  draft: EventDraft,
  place: BuildPlace,
  tools: BuildTools,
): Promise<IdentifiedPdu> {
  checkDraft(draft);
  const { version } = place;
  const prev = [...place.prevEvents].sort((a, b) => b.depth - a.depth).slice(0, MAX_PREV_EVENTS);
  const depth = Math.min(MAX_DEPTH, prev.reduce((max, event) => Math.max(max, event.depth), 0) + 1);
  const content: JsonObject =
    draft.redacts !== undefined && version.redactsInContent
      ? { ...draft.content, redacts: draft.redacts }
      : draft.content;

  const selectable = { type: draft.type, sender: draft.sender, state_key: draft.stateKey, content };
  const authEvents: IdentifiedPdu[] = [];
  for (const key of authTypesForEvent(selectable, version)) {
    const event = place.state.get(key);
    if (event) authEvents.push(event);
  }

  const pdu: Pdu = {
    ...(version.eventIdFormat === 'server'
      ? { event_id: `$${randomString(tools.random, 24)}:${tools.serverName}` }
      : {}),
    ...(place.roomId !== undefined ? { room_id: place.roomId } : {}),
    sender: draft.sender,
    type: draft.type,
    ...(draft.stateKey !== undefined ? { state_key: draft.stateKey } : {}),
    content,
    ...(draft.redacts !== undefined && !version.redactsInContent ? { redacts: draft.redacts } : {}),
    origin_server_ts: tools.now,
    depth,
    prev_events: prev.map((event) => referenceTo(event, version)),
    auth_events: authEvents.map((event) => referenceTo(event, version)),
    hashes: { sha256: '' },
    signatures: {},
  };

  try {
    // Signed and identified from one encoding of the event; build.test.ts checks the result
    // against `computeEventId` and `verifyEvent` in every room version.
    return await signAndIdentify(pdu, tools.serverName, tools.signingKey, version);
  } catch (err) {
    throw coreToMatrix(err);
  }
}

/** A core rejection of client-supplied data as the Matrix error a client should see. */
export function coreToMatrix(err: unknown): unknown {
  if (!isCoreError(err)) return err;
  if (err.code === 'TOO_LARGE') return tooLarge(err.message);
  return badJson(err.message);
}
