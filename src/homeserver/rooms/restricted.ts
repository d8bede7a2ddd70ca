/**
 * Restricted rooms — client-server-api "Restricted rooms", server-server-api.md "Restricted
 * rooms": in a room whose join rule is `restricted` (v8+) or `knock_restricted` (v10+), a
 * user not invited joins only with `join_authorised_via_users_server` naming a member of a
 * resident server who may invite, and that server's signature — given when the user is
 * joined to one of the rooms the rule's `allow` lists, as this server sees them.
 *
 * Used by a local join (membership.ts) and by make_join / send_join for another server's
 * user (resident.ts), whose refusals are the spec's: 403 M_FORBIDDEN when the user meets no
 * condition, 400 M_UNABLE_TO_AUTHORISE_JOIN when this server knows none of the allowed rooms,
 * 400 M_UNABLE_TO_GRANT_JOIN when no member here may authorise it.
 */
import { namedPowerLevel, type RoomVersion, stateKey, userPowerLevel } from '../../core/index.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import { forbidden, MatrixError } from '../errors.ts';
import { CREATE_STATE_KEY, POWER_LEVELS_TYPE } from './build.ts';
import type { EventPipeline } from './pipeline.ts';

export type RestrictedJoin =
  /** Not a restricted room, or the user is invited or joined already: no authoriser needed. */
  | { kind: 'open' }
  | { kind: 'authorised'; by: string }
  /** The user is in an allowed room, but no member of this server may invite. */
  | { kind: 'cannot-grant' }
  /** This server is in none of the allowed rooms: it cannot tell. */
  | { kind: 'cannot-authorise' }
  /** The user is in none of the allowed rooms this server knows. */
  | { kind: 'fails' };

export async function restrictedJoin(
  ctx: HomeserverContext,
  pipeline: EventPipeline,
  roomId: string,
  userId: string,
  version: RoomVersion,
): Promise<RestrictedJoin> {
  const { store, config } = ctx;
  if (!version.restrictedJoinRule) return { kind: 'open' };
  const rules = (await store.rooms.currentStateEvent(roomId, 'm.room.join_rules', ''))?.event.content;
  const rule = rules?.join_rule;
  if (rule !== 'restricted' && !(rule === 'knock_restricted' && version.knockRestrictedJoinRule))
    return { kind: 'open' };
  const current = (await store.rooms.membership(roomId, userId))?.membership;
  if (current === 'join' || current === 'invite') return { kind: 'open' };
  const allow = Array.isArray(rules?.allow) ? rules.allow : [];
  let known = false;
  let allowed = false;
  for (const entry of allow) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue;
    if (entry.type !== 'm.room_membership' || typeof entry.room_id !== 'string') continue;
    const residents = await store.rooms.members(entry.room_id, 'join');
    if (residents.some((m) => isLocalId(config, m.userId))) known = true;
    if ((await store.rooms.membership(entry.room_id, userId))?.membership === 'join') {
      allowed = true;
      break;
    }
  }
  if (!allowed) return { kind: known ? 'fails' : 'cannot-authorise' };
  const state = await pipeline.stateEventsAt(roomId, [CREATE_STATE_KEY, stateKey(POWER_LEVELS_TYPE, '')]);
  const create = state.get(CREATE_STATE_KEY);
  const powerLevels = state.get(stateKey(POWER_LEVELS_TYPE, ''));
  const needed = namedPowerLevel('invite', powerLevels, version);
  const level = (id: string) => userPowerLevel(id, powerLevels, create, version);
  const by = (await store.rooms.members(roomId, 'join'))
    .map((m) => m.userId)
    .filter((id) => isLocalId(config, id) && level(id) >= needed)
    .sort((a, b) => level(b) - level(a) || (a < b ? -1 : 1))[0];
  return by === undefined ? { kind: 'cannot-grant' } : { kind: 'authorised', by };
}

/** The spec's refusal of another server's join for a restricted-join answer, or null. */
export function restrictedRefusal(join: RestrictedJoin, userId: string, roomId: string): MatrixError | null {
  switch (join.kind) {
    case 'fails':
      return forbidden(`${userId} is in none of the rooms that ${roomId} admits members of`);
    case 'cannot-authorise':
      return new MatrixError(
        400,
        'M_UNABLE_TO_AUTHORISE_JOIN',
        `This server is in none of the rooms that ${roomId} admits members of: try another`,
      );
    case 'cannot-grant':
      return new MatrixError(
        400,
        'M_UNABLE_TO_GRANT_JOIN',
        `No user of this server may authorise joins to ${roomId}: try another server`,
      );
    default:
      return null;
  }
}
