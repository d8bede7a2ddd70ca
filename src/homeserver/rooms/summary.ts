/**
 * A room as the spaces API describes it — space_hierarchy.yaml `SpaceHierarchyRoomsChunk`
 * (definitions/room_summary.yaml plus `children_state`): read from the room's current state.
 * Shared by the client `/hierarchy` and `/room_summary` and the federation `/hierarchy`.
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import type { Store } from '../../storage/store.ts';

export interface HierarchyRoom {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  join_rule?: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  room_type?: string;
  room_version?: string;
  encryption?: string;
  allowed_room_ids?: string[];
  children_state: JsonObject[];
}

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: JsonValue | undefined): string | undefined => (typeof x === 'string' ? x : undefined);

/** The room's summary, or null when this server holds no state for it. */
export async function loadRoomSummary(store: Store, roomId: string): Promise<HierarchyRoom | null> {
  const types = [
    'm.room.create',
    'm.room.name',
    'm.room.topic',
    'm.room.canonical_alias',
    'm.room.avatar',
    'm.room.join_rules',
    'm.room.history_visibility',
    'm.room.guest_access',
    'm.room.encryption',
  ];
  const [events, joined, children] = await Promise.all([
    store.rooms.currentStateEvents(roomId, types),
    store.rooms.countMembers(roomId, 'join'),
    store.rooms.currentStateEvents(roomId, ['m.space.child']),
  ]);
  const content = new Map<string, JsonObject>();
  for (const { event } of events) if ((event.state_key ?? '') === '') content.set(event.type, event.content);
  const create = content.get('m.room.create');
  if (!create) return null;
  const c = (type: string) => content.get(type) ?? {};
  const joinRules = c('m.room.join_rules');
  const room: HierarchyRoom = {
    room_id: roomId,
    num_joined_members: joined,
    world_readable: c('m.room.history_visibility').history_visibility === 'world_readable',
    guest_can_join: c('m.room.guest_access').guest_access === 'can_join',
    // No m.room.join_rules event: the auth rules treat the room as invite-only.
    join_rule: str(joinRules.join_rule) ?? 'invite',
    children_state: [],
  };
  const set = <K extends keyof HierarchyRoom>(key: K, value: HierarchyRoom[K] | undefined) => {
    if (value !== undefined) room[key] = value;
  };
  set('name', str(c('m.room.name').name));
  set('topic', str(c('m.room.topic').topic));
  set('canonical_alias', str(c('m.room.canonical_alias').alias));
  set('avatar_url', str(c('m.room.avatar').url));
  set('room_type', str(create.type));
  set('encryption', str(c('m.room.encryption').algorithm));
  set('room_version', (await store.rooms.getRoom(roomId))?.roomVersion ?? str(create.room_version) ?? '1');
  if (room.join_rule === 'restricted' || room.join_rule === 'knock_restricted') {
    const allow = Array.isArray(joinRules.allow) ? joinRules.allow : [];
    room.allowed_room_ids = allow
      .filter(isObject)
      .filter((a) => a.type === 'm.room_membership')
      .map((a) => str(a.room_id))
      .filter((id): id is string => id !== undefined);
  }
  // Stripped state with origin_server_ts; a child event with empty content is a removed child.
  room.children_state = children
    .filter(({ event }) => isObject(event.content) && Array.isArray(event.content.via))
    .map(({ event }) => ({
      type: event.type,
      state_key: event.state_key ?? '',
      content: event.content,
      sender: event.sender,
      origin_server_ts: event.origin_server_ts,
    }));
  return room;
}
