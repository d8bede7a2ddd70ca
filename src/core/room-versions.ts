/**
 * What each room version changes — rooms/v1.md … rooms/v12.md. Every algorithm that
 * differs between versions reads one of these flags instead of comparing version strings.
 */
import { CoreError } from './errors.ts';

export interface RoomVersion {
  readonly id: string;
  readonly stability: 'stable' | 'unstable';
  /**
   * v1/v2: `$opaque:server`, assigned by the origin server, events carry `event_id`;
   * v3: `$` + standard base64 of the reference hash; v4+: `$` + URL-safe base64.
   */
  readonly eventIdFormat: 'server' | 'base64' | 'urlsafe';
  /** v1: the original algorithm; v2–v11: state resolution v2; v12: v2.1 (MSC4297). */
  readonly stateRes: 'v1' | 'v2' | 'v2.1';
  /** v1–v5: `m.room.aliases` has its own auth rule; v6 drops it (MSC2432). */
  readonly specialCaseAliasesAuth: boolean;
  /** v5+: a server key's `valid_until_ts` must cover the event (MSC2076). */
  readonly enforceKeyValidity: boolean;
  /** v6+: canonical JSON is enforced (integers only, in range), MSC2540. */
  readonly strictCanonicalJson: boolean;
  /** v6+: the `notifications` power levels are checked by the auth rules (MSC2209). */
  readonly limitNotificationsPowerLevels: boolean;
  /** v7+: the `knock` join rule and membership (MSC2403). */
  readonly knockJoinRule: boolean;
  /** v8+: the `restricted` join rule (MSC3083). */
  readonly restrictedJoinRule: boolean;
  /** v10+: the `knock_restricted` join rule (MSC3787). */
  readonly knockRestrictedJoinRule: boolean;
  /** v10+: power level values must be integers, not strings (MSC3667). */
  readonly integerPowerLevels: boolean;
  /** v11+: `creator` leaves the create event; the sender is the creator (MSC2175). */
  readonly implicitRoomCreator: boolean;
  /** v11+: `redacts` moves into the content of `m.room.redaction` (MSC2174). */
  readonly redactsInContent: boolean;
  /** v3+: redactions are authorised without the target event; the target is checked on use. */
  readonly redactionsCheckedLater: boolean;
  /** v12: the room ID is derived from the create event's ID; the create event has no `room_id` (MSC4291). */
  readonly roomIdFromCreateEvent: boolean;
  /** v12: creators have unlimited power and cannot be demoted; `additional_creators` (MSC4289). */
  readonly privilegedCreators: boolean;
  /** Which redaction algorithm keeps which keys (rooms/fragments/v*-redactions.md). */
  readonly redaction: 'v1' | 'v6' | 'v8' | 'v9' | 'v11';
}

const v1: RoomVersion = {
  id: '1',
  stability: 'stable',
  eventIdFormat: 'server',
  stateRes: 'v1',
  specialCaseAliasesAuth: true,
  enforceKeyValidity: false,
  strictCanonicalJson: false,
  limitNotificationsPowerLevels: false,
  knockJoinRule: false,
  restrictedJoinRule: false,
  knockRestrictedJoinRule: false,
  integerPowerLevels: false,
  implicitRoomCreator: false,
  redactsInContent: false,
  redactionsCheckedLater: false,
  roomIdFromCreateEvent: false,
  privilegedCreators: false,
  redaction: 'v1',
};
const v2: RoomVersion = { ...v1, id: '2', stateRes: 'v2' };
const v3: RoomVersion = { ...v2, id: '3', eventIdFormat: 'base64', redactionsCheckedLater: true };
const v4: RoomVersion = { ...v3, id: '4', eventIdFormat: 'urlsafe' };
const v5: RoomVersion = { ...v4, id: '5', enforceKeyValidity: true };
const v6: RoomVersion = {
  ...v5,
  id: '6',
  specialCaseAliasesAuth: false,
  strictCanonicalJson: true,
  limitNotificationsPowerLevels: true,
  redaction: 'v6',
};
const v7: RoomVersion = { ...v6, id: '7', knockJoinRule: true };
const v8: RoomVersion = { ...v7, id: '8', restrictedJoinRule: true, redaction: 'v8' };
const v9: RoomVersion = { ...v8, id: '9', redaction: 'v9' };
const v10: RoomVersion = { ...v9, id: '10', knockRestrictedJoinRule: true, integerPowerLevels: true };
const v11: RoomVersion = {
  ...v10,
  id: '11',
  implicitRoomCreator: true,
  redactsInContent: true,
  redaction: 'v11',
};
const v12: RoomVersion = {
  ...v11,
  id: '12',
  stateRes: 'v2.1',
  roomIdFromCreateEvent: true,
  privilegedCreators: true,
};

/** Every room version this server speaks, by ID. */
export const roomVersions: Readonly<Record<string, RoomVersion>> = Object.freeze({
  '1': v1,
  '2': v2,
  '3': v3,
  '4': v4,
  '5': v5,
  '6': v6,
  '7': v7,
  '8': v8,
  '9': v9,
  '10': v10,
  '11': v11,
  '12': v12,
});

/** The version new rooms get unless the client asks for another. */
export const DEFAULT_ROOM_VERSION = '12';

export function getRoomVersion(id: unknown): RoomVersion {
  const version = typeof id === 'string' && Object.hasOwn(roomVersions, id) ? roomVersions[id] : undefined;
  if (!version)
    throw new CoreError('UNSUPPORTED_ROOM_VERSION', `unsupported room version ${JSON.stringify(id)}`);
  return version;
}
