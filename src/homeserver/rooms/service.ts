/**
 * `services.rooms` — rooms as the client sees them: the event pipeline (`sendEvent`),
 * creation, membership, aliases and the published room directory, and the read helpers
 * other areas share (membership checks, room versions, current state, history visibility).
 * HTTP lives in src/api/client/rooms.ts and its siblings; this module never sees a request.
 */

import {
  type IdentifiedPdu,
  isValidRoomAlias,
  isValidUserId,
  type JsonObject,
  type JsonValue,
  type Pdu,
  type RoomVersion,
} from '../../core/index.ts';
import type { HomeserverContext } from '../context.ts';
import { badJson, forbidden, invalidParam, matrixError } from '../errors.ts';
import type { AcceptOutcome, Placement } from './accept.ts';
import { MEMBER_TYPE, REDACTION_TYPE } from './build.ts';
import { type CreateRoomRequest, createRoom } from './create-room.ts';
import { createDirectory, type Directory } from './directory.ts';
import { createMembership, type Membership } from './membership.ts';
import { createPartialStateSync, type PartialStateSync } from './partial-state.ts';
import {
  createEventPipeline,
  type RoomsDeps,
  type SendEventInput,
  type SendEventResult,
} from './pipeline.ts';
import { createResident, type ResidentService } from './resident.ts';
import { createVisibility, type Visibility } from './visibility.ts';

/** History visibility (`visibleToUser`, `filterVisible`) comes from visibility.ts. */
/** The resident side of federation's membership handshakes comes from resident.ts. */
export interface RoomsService extends Membership, Directory, Visibility, ResidentService {
  /** The one local event pipeline (see pipeline.ts). */
  sendEvent(input: SendEventInput): Promise<SendEventResult>;
  /**
   * Events of a room this server has, received from another server (a federation
   * transaction, a join's state, backfill): each checked and stored by accept.ts, in order.
   */
  acceptRemote(
    roomId: string,
    pdus: readonly Pdu[],
    options?: { placed?: Placement; forward?: boolean },
  ): Promise<AcceptOutcome[]>;
  createRoom(userId: string, body: CreateRoomRequest): Promise<{ roomId: string }>;
  /**
   * PUT /rooms/{roomId}/state/{eventType}/{stateKey}: a state event through the pipeline, with
   * the checks the spec asks of this endpoint (member state keys are user IDs; new canonical
   * aliases must be valid and point at this room).
   */
  setState(
    sender: string,
    roomId: string,
    type: string,
    stateKey: string,
    content: JsonObject,
  ): Promise<SendEventResult>;
  /** PUT /rooms/{roomId}/redact/{eventId}/{txnId}. */
  redact(input: {
    sender: string;
    deviceId?: string | null;
    roomId: string;
    eventId: string;
    txnId?: string;
    reason?: string;
  }): Promise<SendEventResult>;
  /** The room's version, or null for a room this server does not know. */
  roomVersionOf(roomId: string): Promise<RoomVersion | null>;
  /** The user's current membership in the room (`join`, `invite`, `leave`, `ban`, `knock`), or null. */
  membershipOf(userId: string, roomId: string): Promise<string | null>;
  /** Throws 403 M_FORBIDDEN unless the user is joined to the room (unknown rooms too). */
  requireJoined(userId: string, roomId: string): Promise<void>;
  /** The current state event at (type, state_key), or null. */
  currentStateEvent(roomId: string, type: string, stateKey: string): Promise<IdentifiedPdu | null>;
  /** The content of the current state event at (type, state_key), or null. */
  currentStateContent(roomId: string, type: string, stateKey?: string): Promise<JsonObject | null>;
  /** The background resync of rooms joined with partial state (partial-state.ts). */
  readonly partialStateSync: PartialStateSync;
}

const CANONICAL_ALIAS_TYPE = 'm.room.canonical_alias';

export type { CreateRoomRequest, RoomsDeps, SendEventInput, SendEventResult };

export function createRoomsService(ctx: HomeserverContext, deps: RoomsDeps = {}): RoomsService {
  const { store } = ctx;
  const pipeline = createEventPipeline(ctx, deps);

  async function membershipOf(userId: string, roomId: string): Promise<string | null> {
    return (await store.rooms.membership(roomId, userId))?.membership ?? null;
  }

  async function requireJoined(userId: string, roomId: string): Promise<void> {
    if ((await membershipOf(userId, roomId)) !== 'join')
      throw forbidden(`You are not joined to room ${roomId}`);
  }

  async function currentStateEvent(
    roomId: string,
    type: string,
    stateKey: string,
  ): Promise<IdentifiedPdu | null> {
    return (await store.rooms.currentStateEvent(roomId, type, stateKey))?.event ?? null;
  }

  /**
   * room_state.yaml: aliases newly listed in m.room.canonical_alias must be valid and point
   * at this room (M_INVALID_PARAM / M_BAD_ALIAS); ones already listed are not re-checked.
   */
  async function checkCanonicalAlias(roomId: string, content: JsonObject): Promise<void> {
    const current = (await currentStateEvent(roomId, CANONICAL_ALIAS_TYPE, ''))?.content ?? {};
    const listed = new Set([
      current.alias,
      ...(Array.isArray(current.alt_aliases) ? current.alt_aliases : []),
    ]);
    if (content.alias !== undefined && typeof content.alias !== 'string') {
      throw badJson('JSON field "alias": expected a string');
    }
    if (content.alt_aliases !== undefined && !Array.isArray(content.alt_aliases)) {
      throw badJson('JSON field "alt_aliases": expected an array');
    }
    const given = [content.alias, ...((content.alt_aliases as JsonValue[] | undefined) ?? [])].filter(
      (a) => a !== undefined,
    );
    for (const alias of given) {
      if (listed.has(alias)) continue;
      if (typeof alias !== 'string' || !isValidRoomAlias(alias)) {
        throw invalidParam(`${JSON.stringify(alias)} is not a valid room alias`);
      }
      const found = await store.rooms.getAlias(alias);
      if (found?.roomId !== roomId) {
        throw matrixError(400, 'M_BAD_ALIAS', `Room alias ${alias} does not point to room ${roomId}`);
      }
    }
  }

  const visibility = createVisibility(ctx);
  const partialStateSync = createPartialStateSync(ctx, pipeline);
  const membership = createMembership(ctx, pipeline, { partialJoined: partialStateSync.begin });
  const directory = createDirectory(ctx, pipeline);
  const resident = createResident(ctx, pipeline);

  return {
    ...membership,
    ...directory,
    ...resident,
    sendEvent: pipeline.sendEvent,
    acceptRemote: pipeline.acceptRemote,
    async setState(sender, roomId, type, stateKey, content) {
      if (type === MEMBER_TYPE) {
        if (!isValidUserId(stateKey, { historical: true })) {
          throw invalidParam(
            `The state key of m.room.member must be a user ID, not ${JSON.stringify(stateKey)}`,
          );
        }
        if (typeof content.membership !== 'string')
          throw badJson('JSON field "membership": expected a string');
      }
      if (type === CANONICAL_ALIAS_TYPE && stateKey === '') await checkCanonicalAlias(roomId, content);
      return pipeline.sendEvent({ sender, roomId, type, stateKey, content });
    },
    redact({ sender, deviceId, roomId, eventId, txnId, reason }) {
      return pipeline.sendEvent({
        sender,
        deviceId,
        roomId,
        type: REDACTION_TYPE,
        content: reason !== undefined ? { reason } : {},
        redacts: eventId,
        ...(txnId !== undefined ? { txnId } : {}),
      });
    },
    createRoom: (userId, body) => createRoom({ ctx, pipeline }, userId, body),
    roomVersionOf: pipeline.roomVersionOf,
    membershipOf,
    requireJoined,
    currentStateEvent,
    async currentStateContent(roomId, type, stateKey = '') {
      return (await currentStateEvent(roomId, type, stateKey))?.content ?? null;
    },
    visibleToUser: visibility.visibleToUser,
    filterVisible: visibility.filterVisible,
    partialStateSync,
  };
}
