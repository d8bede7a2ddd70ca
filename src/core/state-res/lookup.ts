/**
 * Event access for state resolution. The caller preloads every event the algorithms may
 * touch (the events of the state sets and their auth chains) and hands over a synchronous
 * `getEvent`; this wrapper validates each event once, remembers what the algorithms ask of it
 * again and again (its state key, its auth event IDs, its `m.room.power_levels` auth event) and
 * turns a missing or malformed event into a `CoreError('BAD_EVENT')` that names the event and
 * why it was needed, never a TypeError.
 */

import type { CheckAuthOptions } from '../auth.ts';
import { CoreError } from '../errors.ts';
import type { EventReference, IdentifiedPdu, StateKey } from '../pdu.ts';
import { stateKey } from '../pdu.ts';
import type { RoomVersion } from '../room-versions.ts';

/** Looks up a preloaded event by ID; `undefined` when the caller does not have it. */
export type GetEvent = (eventId: string) => IdentifiedPdu | undefined;

/** A state event as state resolution sees it. */
export interface StateEventInfo {
  readonly pdu: IdentifiedPdu;
  /** `(type, state_key)` as one key. */
  readonly key: StateKey;
  readonly authIds: readonly string[];
}

export const CREATE_KEY: StateKey = stateKey('m.room.create', '');
export const POWER_LEVELS_KEY: StateKey = stateKey('m.room.power_levels', '');

export class EventLookup {
  readonly version: RoomVersion;
  /** Passed to every `checkAuth` call (third-party invite and restricted-join signature checks). */
  readonly authOptions: CheckAuthOptions;
  readonly #getEvent: GetEvent;
  readonly #isRejected: ((eventId: string) => boolean) | undefined;
  readonly #infos = new Map<string, StateEventInfo>();
  /** Event ID → the ID of the `m.room.power_levels` event among its auth events, or null. */
  readonly #powerLevelsAuth = new Map<string, string | null>();
  #createEvent: IdentifiedPdu | null | undefined;

  constructor(
    getEvent: GetEvent,
    version: RoomVersion,
    isRejected?: (eventId: string) => boolean,
    authOptions: CheckAuthOptions = {},
  ) {
    this.#getEvent = getEvent;
    this.version = version;
    this.#isRejected = isRejected;
    this.authOptions = authOptions;
  }

  /** The validated state event `eventId`; `why` says who needed it, for the error message. */
  info(eventId: string, why: string): StateEventInfo {
    const cached = this.#infos.get(eventId);
    if (cached) return cached;
    const pdu = this.#getEvent(eventId);
    if (pdu === undefined || pdu === null) {
      throw new CoreError(
        'BAD_EVENT',
        `state resolution needs event ${eventId} (${why}) but it was not provided`,
      );
    }
    const info = validate(pdu, eventId);
    this.#infos.set(eventId, info);
    return info;
  }

  event(eventId: string, why: string): IdentifiedPdu {
    return this.info(eventId, why).pdu;
  }

  rejected(eventId: string): boolean {
    return this.#isRejected?.(eventId) ?? false;
  }

  /** The `m.room.power_levels` event cited in the auth events of `eventId`, if any. */
  powerLevelsAuthEvent(eventId: string): string | undefined {
    const cached = this.#powerLevelsAuth.get(eventId);
    if (cached !== undefined) return cached ?? undefined;
    let found: string | null = null;
    for (const authId of this.info(eventId, 'an event being sorted').authIds) {
      if (this.info(authId, `auth event of ${eventId}`).key === POWER_LEVELS_KEY) {
        found = authId;
        break;
      }
    }
    this.#powerLevelsAuth.set(eventId, found);
    return found ?? undefined;
  }

  /**
   * The room's `m.room.create` event as seen from `info`: from v12 (MSC4291) it is named by the
   * room ID and never cited in `auth_events`; before, it is one of the auth events.
   */
  createEventFor(info: StateEventInfo): IdentifiedPdu | undefined {
    if (info.key === CREATE_KEY) return info.pdu;
    if (this.version.roomIdFromCreateEvent) {
      if (this.#createEvent !== undefined) return this.#createEvent ?? undefined;
      const roomId = info.pdu.room_id;
      if (typeof roomId !== 'string' || !roomId.startsWith('!')) {
        throw new CoreError('BAD_EVENT', `event ${info.pdu.event_id} has no room ID naming its create event`);
      }
      const create = this.event(`$${roomId.slice(1)}`, `the create event of room ${roomId}`);
      this.#createEvent = create;
      return create;
    }
    for (const authId of info.authIds) {
      const auth = this.info(authId, `auth event of ${info.pdu.event_id}`);
      if (auth.key === CREATE_KEY) return auth.pdu;
    }
    return undefined;
  }
}

function validate(pdu: IdentifiedPdu, eventId: string): StateEventInfo {
  const bad = (what: string) => new CoreError('BAD_EVENT', `event ${eventId} ${what}`);
  if (typeof pdu !== 'object') throw bad('is not an object');
  if (pdu.event_id !== eventId)
    throw bad(`was looked up but the event returned has event_id ${String(pdu.event_id)}`);
  if (typeof pdu.type !== 'string') throw bad('has no string type');
  if (typeof pdu.state_key !== 'string') throw bad('is not a state event (no string state_key)');
  if (typeof pdu.sender !== 'string') throw bad('has no string sender');
  if (typeof pdu.origin_server_ts !== 'number' || !Number.isFinite(pdu.origin_server_ts)) {
    throw bad('has no numeric origin_server_ts');
  }
  if (typeof pdu.content !== 'object' || pdu.content === null || Array.isArray(pdu.content)) {
    throw bad('has no content object');
  }
  if (!Array.isArray(pdu.auth_events)) throw bad('has no auth_events array');
  const authIds = pdu.auth_events.map((ref: EventReference) => {
    const id = typeof ref === 'string' ? ref : Array.isArray(ref) ? ref[0] : undefined;
    if (typeof id !== 'string') throw bad('has a malformed auth_events entry');
    return id;
  });
  return { pdu, key: stateKey(pdu.type, pdu.state_key), authIds };
}
