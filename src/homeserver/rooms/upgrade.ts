/**
 * Room upgrades — client-server-api "Room Upgrades" (room_upgrades.yaml, `POST
 * /rooms/{roomId}/upgrade`), server behaviour as the spec lists it:
 * 1. the upgrading user must be allowed to send `m.room.tombstone` in the old room;
 * 2. a new room of the asked version, its create event naming the old room as `predecessor`
 *    (and keeping its `type`), with the old room's state copied (COPIED_STATE, bans, the
 *    power levels — the upgrader raised while the room is built, then set back);
 * 3. the local aliases moved to the new room, the canonical alias with them, and the
 *    directory listing moved;
 * 4. the tombstone sent in the old room (`replacement_room`);
 * 5. the old room's power levels raised so ordinary members can no longer speak or invite.
 * Clients follow the successor through the tombstone and the predecessor through the create.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { type RoomVersion, requiredPowerLevel, roomVersions, userPowerLevel } from '../../core/index.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, unsupportedRoomVersion } from '../errors.ts';
import type { InitialStateEvent } from './create-room.ts';
import type { RoomsService } from './index.ts';

/** State carried into the new room, as Synapse and the spec's list of "important" state go. */
const COPIED_STATE = [
  'm.room.join_rules',
  'm.room.name',
  'm.room.topic',
  'm.room.avatar',
  'm.room.history_visibility',
  'm.room.guest_access',
  'm.room.encryption',
  'm.room.server_acl',
  'm.room.canonical_alias',
  'm.space.child',
  'm.space.parent',
] as const;

const TOMBSTONE = 'm.room.tombstone';
const POWER_LEVELS = 'm.room.power_levels';

export interface UpgradeDeps {
  rooms: Pick<
    RoomsService,
    | 'createRoom'
    | 'setState'
    | 'membershipOf'
    | 'roomVersionOf'
    | 'getDirectoryVisibility'
    | 'setDirectoryVisibility'
  >;
}

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);

export async function upgradeRoom(
  ctx: HomeserverContext,
  deps: UpgradeDeps,
  userId: string,
  roomId: string,
  newVersionId: string,
): Promise<{ replacement_room: string }> {
  const { store, logger } = ctx;
  const { rooms } = deps;
  const newVersion: RoomVersion | undefined = Object.hasOwn(roomVersions, newVersionId)
    ? roomVersions[newVersionId]
    : undefined;
  if (!newVersion) throw unsupportedRoomVersion(`This server does not support room version ${newVersionId}`);
  if ((await rooms.membershipOf(userId, roomId)) !== 'join')
    throw forbidden(`You are not joined to ${roomId}`);
  const oldVersion = await rooms.roomVersionOf(roomId);
  if (!oldVersion) throw forbidden(`${roomId} is not known here`);

  const [create, powerLevels] = await Promise.all([
    store.rooms.currentStateEvent(roomId, 'm.room.create', ''),
    store.rooms.currentStateEvent(roomId, POWER_LEVELS, ''),
  ]);
  const plHolder = powerLevels ? { content: powerLevels.event.content } : undefined;
  const createLike = create?.event;
  const level = userPowerLevel(userId, plHolder, createLike, oldVersion);
  if (level < requiredPowerLevel(TOMBSTONE, '', plHolder, oldVersion))
    throw forbidden('You are not allowed to upgrade this room (sending m.room.tombstone)');

  // --- the new room -------------------------------------------------------------------------
  const createContent: JsonObject = { predecessor: { room_id: roomId } };
  const oldCreate = create?.event.content ?? {};
  if (typeof oldCreate.type === 'string') createContent.type = oldCreate.type;
  if (oldCreate['m.federate'] === false) createContent['m.federate'] = false;

  const copied = await store.rooms.currentStateEvents(roomId, COPIED_STATE);
  const bans = (await store.rooms.currentStateEvents(roomId, ['m.room.member'])).filter(
    (e) => e.event.content.membership === 'ban',
  );
  const initialState: InitialStateEvent[] = [...copied, ...bans]
    .filter((e) => isObject(e.event.content) && Object.keys(e.event.content).length > 0)
    .map((e) => ({
      type: e.event.type,
      state_key: e.event.state_key ?? '',
      content:
        e.event.type === 'm.room.member'
          ? {
              membership: 'ban',
              ...(typeof e.event.content.reason === 'string' ? { reason: e.event.content.reason } : {}),
            }
          : e.event.content,
    }));

  // The old power levels, with the upgrader able to set every copied state while building.
  const oldPl: JsonObject = { ...(powerLevels?.event.content ?? {}) };
  const users: JsonObject = isObject(oldPl.users) ? { ...oldPl.users } : {};
  const finalUsers: JsonObject = { ...users };
  if (newVersion.privilegedCreators) {
    // From v12 the creator's power is implicit and may not be listed (rooms/v12.md).
    delete users[userId];
    delete finalUsers[userId];
  } else {
    const levels = [100, ...Object.values(isObject(oldPl.events) ? oldPl.events : {})].filter(
      (n): n is number => typeof n === 'number',
    );
    for (const key of ['state_default', 'ban', 'events_default'])
      if (typeof oldPl[key] === 'number') levels.push(oldPl[key] as number);
    users[userId] = Math.max(Number.isFinite(level) ? level : 100, ...levels);
  }
  const buildPl: JsonObject = { ...oldPl, users };
  const { roomId: newRoomId } = await rooms.createRoom(userId, {
    room_version: newVersion.id,
    creation_content: createContent,
    initial_state: initialState,
    power_level_content_override: buildPl,
    // The copied join rules, history visibility and guest access take precedence over a preset.
    preset: 'private_chat',
  });
  if (JSON.stringify(finalUsers) !== JSON.stringify(users))
    await rooms.setState(userId, newRoomId, POWER_LEVELS, '', { ...oldPl, users: finalUsers });

  // --- aliases and the directory --------------------------------------------------------------
  for (const alias of await store.rooms.aliasesOf(roomId)) {
    await store.rooms.deleteAlias(alias.alias);
    await store.rooms.createAlias({ ...alias, roomId: newRoomId });
  }
  if ((await rooms.getDirectoryVisibility(roomId)) === 'public') {
    await rooms.setDirectoryVisibility(userId, newRoomId, 'public');
    await rooms.setDirectoryVisibility(userId, roomId, 'private');
  }

  // --- the old room: tombstone, canonical alias dropped, members silenced -----------------------
  await rooms.setState(userId, roomId, TOMBSTONE, '', {
    body: 'This room has been replaced',
    replacement_room: newRoomId,
  });
  const best = async (what: string, run: () => Promise<unknown>) => {
    // The upgrade has happened once the tombstone is sent; these tidy the old room where allowed.
    try {
      await run();
    } catch (err) {
      logger.warn(`upgrade: could not ${what} in the old room`, { roomId, error: String(err) });
    }
  };
  if (copied.some((e) => e.event.type === 'm.room.canonical_alias'))
    await best('drop the canonical alias', () =>
      rooms.setState(userId, roomId, 'm.room.canonical_alias', '', {}),
    );
  const usersDefault = typeof oldPl.users_default === 'number' ? oldPl.users_default : 0;
  const restricted = Math.max(50, usersDefault + 1);
  await best('restrict the power levels', () =>
    rooms.setState(userId, roomId, POWER_LEVELS, '', {
      ...oldPl,
      events_default: Math.max(
        restricted,
        typeof oldPl.events_default === 'number' ? oldPl.events_default : 0,
      ),
      invite: Math.max(restricted, typeof oldPl.invite === 'number' ? oldPl.invite : 0),
    }),
  );
  return { replacement_room: newRoomId };
}

export interface UpgradeService {
  /** `POST /rooms/{roomId}/upgrade` */
  upgrade(userId: string, roomId: string, newVersion: string): Promise<{ replacement_room: string }>;
}

export function createUpgradeService(ctx: HomeserverContext, deps: UpgradeDeps): UpgradeService {
  return { upgrade: (userId, roomId, newVersion) => upgradeRoom(ctx, deps, userId, roomId, newVersion) };
}
