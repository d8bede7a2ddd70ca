/**
 * `createRoom` — client-server-api "Creation" (data/api/client-server/create_room.yaml): the
 * events of a new room in the spec's order — create, the creator's join, power levels,
 * canonical alias, the preset's join rules / history visibility / guest access,
 * `initial_state`, name, topic, invites — each built and authorised against the state the
 * previous ones made, then persisted together in one transaction: a room is either wholly
 * created or not at all.
 */

import {
  type IdentifiedPdu,
  isValidUserId,
  type JsonObject,
  MAX_ID_BYTES,
  parseRoomAlias,
  type RoomVersion,
  roomIdFromCreateEvent,
  roomVersions,
  type StateKey,
  stateKey,
  utf8ByteLength,
} from '../../core/index.ts';
import { StoreError } from '../../storage/store.ts';
import { type HomeserverContext, isLocalId, randomString } from '../context.ts';
import {
  badJson,
  invalidParam,
  MatrixError,
  notFound,
  roomInUse,
  unrecognized,
  unsupportedRoomVersion,
} from '../errors.ts';
import { federationOff, federationOffError } from '../ports.ts';
import { BuiltEventRefused, type Candidate } from './accept.ts';
import {
  buildEvent,
  CREATE_STATE_KEY,
  CREATE_TYPE,
  type EventDraft,
  MEMBER_TYPE,
  POWER_LEVELS_TYPE,
} from './build.ts';
import { memberContent } from './members.ts';
import type { EventPipeline } from './pipeline.ts';

export type Preset = 'private_chat' | 'public_chat' | 'trusted_private_chat';

export interface InitialStateEvent {
  type: string;
  state_key?: string;
  content: JsonObject;
}

/** The createRoom request body (already shape-checked by the endpoint). */
export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  invite_3pid?: JsonObject[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: InitialStateEvent[];
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

/** create_room.yaml "presets": join rule, history visibility and guest access of each. */
const PRESETS: Readonly<
  Record<
    Preset,
    { joinRule: string; historyVisibility: string; guestAccess: string; inviteesAreAdmins: boolean }
  >
> = {
  private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    guestAccess: 'can_join',
    inviteesAreAdmins: false,
  },
  trusted_private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    guestAccess: 'can_join',
    inviteesAreAdmins: true,
  },
  public_chat: {
    joinRule: 'public',
    historyVisibility: 'shared',
    guestAccess: 'forbidden',
    inviteesAreAdmins: false,
  },
};

/**
 * The power levels a new room starts with. Moderation at 50, room-shaping state at 100 (as
 * Synapse and Conduit do); in private rooms anyone may invite. From v12 the tombstone level
 * must be above `state_default` (create_room.yaml step 3), so an upgrade stays with admins.
 */
function defaultPowerLevels(
  version: RoomVersion,
  preset: Preset,
  creator: string,
  admins: readonly string[],
): JsonObject {
  const users: JsonObject = {};
  // v12 creators have infinite power and must not be listed (rooms/v12.md).
  if (!version.privilegedCreators) {
    users[creator] = 100;
    for (const admin of admins) users[admin] = 100;
  }
  return {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.avatar': 50,
      'm.room.canonical_alias': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.tombstone': version.privilegedCreators ? 150 : 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === 'public_chat' ? 50 : 0,
    notifications: { room: 50 },
  };
}

/** A server-chosen room ID for v1–v11: `!opaque:server` (appendices.md "Room IDs"). */
function newRoomId(ctx: HomeserverContext): string {
  return `!${randomString(ctx.random, 18)}:${ctx.config.serverName}`;
}

function checkUserIds(ids: readonly string[], field: string): void {
  for (const [i, id] of ids.entries()) {
    if (!isValidUserId(id, { historical: true })) {
      throw badJson(`JSON field "${field}[${i}]": ${JSON.stringify(id)} is not a valid user ID`);
    }
  }
}

/** `#localpart:server` for `room_alias_name`, or M_INVALID_PARAM naming what is wrong. */
export function localAlias(localpart: string, serverName: string): string {
  if (localpart === '') throw invalidParam('room_alias_name must not be empty');
  if (/[:\s]/u.test(localpart)) {
    throw invalidParam('room_alias_name is the localpart only: no ":" and no whitespace');
  }
  const alias = `#${localpart}:${serverName}`;
  if (utf8ByteLength(alias) > MAX_ID_BYTES)
    throw invalidParam(`The room alias ${alias} is over ${MAX_ID_BYTES} bytes`);
  try {
    parseRoomAlias(alias);
  } catch (err) {
    throw invalidParam(`Invalid room alias ${JSON.stringify(alias)}: ${(err as Error).message}`);
  }
  return alias;
}

/** v12 room IDs of creations still running, per store (see where the create event is built). */
const creating = new WeakMap<object, Set<string>>();

export interface CreateRoomDeps {
  ctx: HomeserverContext;
  pipeline: EventPipeline;
}

export async function createRoom(
  { ctx, pipeline }: CreateRoomDeps,
  userId: string,
  body: CreateRoomRequest,
): Promise<{ roomId: string }> {
  const { store, config } = ctx;
  const versionId = body.room_version ?? config.defaultRoomVersion;
  const version = Object.hasOwn(roomVersions, versionId) ? roomVersions[versionId] : undefined;
  if (!version)
    throw unsupportedRoomVersion(`This server does not support room version ${JSON.stringify(versionId)}`);
  const preset = body.preset ?? (body.visibility === 'public' ? 'public_chat' : 'private_chat');
  const presetRules = PRESETS[preset];

  // --- check the whole request before anything is written ---------------------------------
  if (body.invite_3pid && body.invite_3pid.length > 0) {
    throw unrecognized(
      'Third-party invites (invite_3pid) need an identity server, which this server does not use',
    );
  }
  const invitees = [...new Set(body.invite ?? [])].filter((id) => id !== userId);
  checkUserIds(invitees, 'invite');
  for (const invitee of invitees) {
    if (isLocalId(config, invitee) && !(await store.accounts.getUser(invitee)))
      throw notFound(`Unknown user ${invitee}`);
  }
  // Users of other servers are invited once the room exists: their server signs each invite.
  const remoteInvitees = invitees.filter((id) => !isLocalId(config, id));
  // Without federation none of them can be: refuse before making a room that misses them.
  if (remoteInvitees.length > 0 && ctx.federation === federationOff)
    throw federationOffError(`Inviting ${remoteInvitees[0]}`, 403);
  const alias =
    body.room_alias_name === undefined ? undefined : localAlias(body.room_alias_name, config.serverName);
  if (alias && (await store.rooms.getAlias(alias)))
    throw roomInUse(`The room alias ${alias} is already in use`);
  for (const [i, item] of (body.initial_state ?? []).entries()) {
    if (item.type === CREATE_TYPE)
      throw badJson(`JSON field "initial_state[${i}]": use creation_content for m.room.create`);
  }

  const createContent: JsonObject = { ...body.creation_content, room_version: version.id };
  if (version.implicitRoomCreator) delete createContent.creator;
  else createContent.creator = userId;
  let admins = presetRules.inviteesAreAdmins ? invitees : [];
  if (version.privilegedCreators) {
    const given = createContent.additional_creators;
    if (given !== undefined) {
      if (!Array.isArray(given) || given.some((id) => typeof id !== 'string')) {
        throw badJson('JSON field "creation_content.additional_creators": expected an array of user IDs');
      }
      checkUserIds(given as string[], 'creation_content.additional_creators');
    }
    // create_room.yaml: trusted_private_chat invitees join `additional_creators` from v12.
    const creators = new Set([...((given as string[] | undefined) ?? []), ...admins]);
    creators.delete(userId);
    if (creators.size > 0) createContent.additional_creators = [...creators];
    else delete createContent.additional_creators;
    admins = [];
  }

  // --- build every event against the state the previous ones made ------------------------
  const tools = pipeline.tools();
  const state = new Map<StateKey, IdentifiedPdu>();
  const candidates: Candidate[] = [];
  const steps: string[] = [];
  let roomId: string | undefined = version.roomIdFromCreateEvent ? undefined : newRoomId(ctx);
  let last: IdentifiedPdu | undefined;

  // Each event is built on the one before and the state so far; accept checks them all.
  const add = async (draft: Omit<EventDraft, 'sender'>, step: string): Promise<IdentifiedPdu> => {
    const event = await buildEvent(
      { sender: userId, ...draft },
      { version, roomId, prevEvents: last ? [last] : [], state },
      tools,
    );
    candidates.push({
      pdu: event,
      built: {
        authState: new Map(state),
        stateBefore: last ? { afterEvent: last.event_id } : { state: new Map() },
        followsCurrent: true,
      },
    });
    steps.push(step);
    if (event.state_key !== undefined) state.set(stateKey(event.type, event.state_key), event);
    last = event;
    return event;
  };

  let create = await add({ type: CREATE_TYPE, stateKey: '', content: createContent }, 'm.room.create');
  let reserved: { ids: Set<string>; id: string } | undefined;
  if (roomId === undefined) {
    // A v12 room ID is the create event's hash: two rooms created by one user with the same
    // content in the same millisecond would be one room. The later one moves on a millisecond
    // until its ID is free here — in the store and among creations still running.
    const ids = creating.get(store) ?? new Set<string>();
    creating.set(store, ids);
    let id = roomIdFromCreateEvent(create, version);
    while (ids.has(id) || (await store.rooms.getRoom(id)) !== null || ids.has(id)) {
      candidates.pop();
      steps.pop();
      state.delete(CREATE_STATE_KEY);
      last = undefined;
      tools.now += 1;
      create = await add({ type: CREATE_TYPE, stateKey: '', content: createContent }, 'm.room.create');
      id = roomIdFromCreateEvent(create, version);
    }
    ids.add(id);
    reserved = { ids, id };
    roomId = id;
  }
  await add(
    { type: MEMBER_TYPE, stateKey: userId, content: await memberContent(store, userId, 'join') },
    "The creator's join",
  );
  const powerLevels = {
    ...defaultPowerLevels(version, preset, userId, admins),
    ...body.power_level_content_override,
  };
  await add({ type: POWER_LEVELS_TYPE, stateKey: '', content: powerLevels }, 'm.room.power_levels');
  if (alias)
    await add({ type: 'm.room.canonical_alias', stateKey: '', content: { alias } }, 'm.room.canonical_alias');

  const initial = body.initial_state ?? [];
  const initialKeys = new Set(initial.map((item) => stateKey(item.type, item.state_key ?? '')));
  const presetEvents: [string, JsonObject][] = [
    ['m.room.join_rules', { join_rule: presetRules.joinRule }],
    ['m.room.history_visibility', { history_visibility: presetRules.historyVisibility }],
    ['m.room.guest_access', { guest_access: presetRules.guestAccess }],
  ];
  for (const [type, content] of presetEvents) {
    // initial_state "takes precedence over events set by preset".
    if (!initialKeys.has(stateKey(type, ''))) await add({ type, stateKey: '', content }, type);
  }
  for (const [i, item] of initial.entries()) {
    // …"but gets overridden by name and topic keys".
    if (item.type === 'm.room.name' && body.name !== undefined && (item.state_key ?? '') === '') continue;
    if (item.type === 'm.room.topic' && body.topic !== undefined && (item.state_key ?? '') === '') continue;
    await add(
      { type: item.type, stateKey: item.state_key ?? '', content: item.content },
      `initial_state[${i}]`,
    );
  }
  if (body.name !== undefined)
    await add({ type: 'm.room.name', stateKey: '', content: { name: body.name } }, 'm.room.name');
  if (body.topic !== undefined) {
    const content = {
      topic: body.topic,
      'm.topic': { 'm.text': [{ body: body.topic, mimetype: 'text/plain' }] },
    };
    await add({ type: 'm.room.topic', stateKey: '', content }, 'm.room.topic');
  }
  const inviteContent = (invitee: string) =>
    memberContent(store, invitee, 'invite', body.is_direct ? { is_direct: true } : {});
  for (const invitee of invitees) {
    if (remoteInvitees.includes(invitee)) continue;
    await add(
      { type: MEMBER_TYPE, stateKey: invitee, content: await inviteContent(invitee) },
      `The invite of ${invitee}`,
    );
  }

  // --- write: the alias row first (it may be taken meanwhile), then every event at once ----
  const finalRoomId = roomId;
  if (alias) {
    try {
      await store.rooms.createAlias({
        alias,
        roomId: finalRoomId,
        servers: [config.serverName],
        creator: userId,
      });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'CONFLICT')
        throw roomInUse(`The room alias ${alias} is already in use`);
      throw err;
    }
  }
  try {
    await pipeline.lock.run(finalRoomId, () => pipeline.acceptLocked(finalRoomId, version, candidates));
    reserved?.ids.delete(reserved.id);
  } catch (err) {
    reserved?.ids.delete(reserved.id);
    if (alias) await store.rooms.deleteAlias(alias).catch(() => undefined);
    // The request implied a state its own events cannot satisfy (create_room.yaml 400).
    if (err instanceof BuiltEventRefused && err.errcode === 'M_FORBIDDEN') {
      throw new MatrixError(
        400,
        'M_INVALID_ROOM_STATE',
        `${steps[err.index]} is not allowed in the new room: ${err.message}`,
      );
    }
    throw err;
  }
  if (body.visibility === 'public') await store.rooms.setPublished(finalRoomId, true);
  for (const invitee of remoteInvitees) {
    // The room exists whatever another server answers: a refused invite is logged, not the
    // client's error (it could not learn the new room's ID from one).
    try {
      await pipeline.inviteRemote(userId, finalRoomId, invitee, await inviteContent(invitee));
    } catch (err) {
      ctx.logger.warn('createRoom: an invite to another server failed', { invitee, error: String(err) });
    }
  }
  return { roomId: finalRoomId };
}
