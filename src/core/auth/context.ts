/**
 * What every rule of `checkAuth` reads: the event, its room's create and power levels events,
 * and strict lookups that reject (rather than guess) when a consulted value is malformed.
 */
import type { JsonObject } from '../canonical-json.ts';
import { type IdentifiedPdu, type StateKey, stateKey } from '../pdu.ts';
import {
  isJsonObject,
  type NamedLevel,
  namedPowerLevelFrom,
  type OnInvalidLevel,
  requiredPowerLevelFrom,
  userPowerLevelFrom,
} from '../power-levels.ts';
import type { RoomVersion } from '../room-versions.ts';
import { deny } from './result.ts';

/** The event's auth events (or any state containing them), keyed by `(type, state_key)`. */
export type AuthState = ReadonlyMap<StateKey, IdentifiedPdu>;

export interface CheckAuthOptions {
  /**
   * Decides the third-party invite rule "any signature in `signed` matches any public key in
   * the `m.room.third_party_invite` event". It is asked only once every other part of that
   * rule has passed. Default: `verifyThirdPartyInviteSignature`, a synchronous ed25519 check
   * with `@noble/curves`; a caller that verified the blob beforehand (e.g. with WebCrypto)
   * can pass its answer here instead.
   */
  verifyThirdPartyInviteSignature?: (event: IdentifiedPdu, thirdPartyInvite: IdentifiedPdu) => boolean;
  /**
   * Decides the v8+ rule "the event is validly signed by the homeserver of the user ID in
   * `join_authorised_via_users_server`". Default: the event carries a signature from that
   * server — the cryptographic check belongs to the signature checks done on receipt of a
   * PDU, which must include that server's signature for such events.
   */
  isSignedBy?: (event: IdentifiedPdu, serverName: string) => boolean;
}

export interface AuthContext {
  readonly event: IdentifiedPdu;
  readonly type: string;
  readonly sender: string;
  readonly content: JsonObject;
  readonly version: RoomVersion;
  readonly state: AuthState;
  readonly create: IdentifiedPdu;
  readonly powerLevels: IdentifiedPdu | undefined;
  readonly options: CheckAuthOptions;
}

export const rejectMalformed: OnInvalidLevel = (problem) => deny(problem);

export function contentOf(event: { content?: unknown } | undefined): JsonObject {
  return event && isJsonObject(event.content) ? event.content : {};
}

/** A user's current membership (`content.membership` of their member event), if any. */
export function membershipOf(ctx: AuthContext, userId: string): string | undefined {
  const membership = contentOf(ctx.state.get(stateKey('m.room.member', userId))).membership;
  return typeof membership === 'string' ? membership : undefined;
}

/** The room's join rule; `invite` when there is no `m.room.join_rules` event (as Synapse). */
export function joinRuleOf(ctx: AuthContext): string | undefined {
  const joinRules = ctx.state.get(stateKey('m.room.join_rules', ''));
  if (!joinRules) return 'invite';
  const rule = contentOf(joinRules).join_rule;
  if (rule === undefined || rule === null) return 'invite';
  return typeof rule === 'string' ? rule : undefined;
}

export function userLevel(ctx: AuthContext, userId: string): number {
  return userPowerLevelFrom(userId, ctx.powerLevels, ctx.create, ctx.version, rejectMalformed);
}

export function namedLevel(ctx: AuthContext, name: NamedLevel): number {
  return namedPowerLevelFrom(name, ctx.powerLevels, ctx.version, rejectMalformed);
}

export function requiredLevel(ctx: AuthContext, type: string, stateKeyValue: string | undefined): number {
  return requiredPowerLevelFrom(type, stateKeyValue, ctx.powerLevels, ctx.version, rejectMalformed);
}

/** Whether the event's `signatures` hold an entry for `serverName`. */
export function hasSignatureFrom(event: IdentifiedPdu, serverName: string): boolean {
  const signatures: unknown = event.signatures;
  if (!isJsonObject(signatures)) return false;
  const entry = signatures[serverName];
  return isJsonObject(entry) && Object.keys(entry).length > 0;
}
