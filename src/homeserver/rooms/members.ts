/**
 * The content of `m.room.member` events this server writes — client-server-api
 * "m.room.member": `displayname` and `avatar_url` come from the user's profile, so other
 * members see who joined (or was invited) without a profile lookup.
 */
import type { JsonObject } from '../../core/index.ts';
import type { Store } from '../../storage/store.ts';

/** Memberships that carry the target's profile; leaves and bans describe no one. */
const WITH_PROFILE = new Set(['join', 'invite', 'knock']);

export async function memberContent(
  store: Store,
  userId: string,
  membership: string,
  extra: JsonObject = {},
): Promise<JsonObject> {
  const content: JsonObject = { membership };
  if (WITH_PROFILE.has(membership)) {
    const profile = await store.userData.getProfile(userId);
    if (typeof profile?.displayname === 'string') content.displayname = profile.displayname;
    if (typeof profile?.avatar_url === 'string') content.avatar_url = profile.avatar_url;
  }
  return { ...content, ...extra, membership };
}

/** State an invitee or knocker sees before joining (client-server-api "Stripped state"). */
const STRIPPED_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.room.encryption',
];

/** The room's stripped state, with `sender`'s own membership when given (who invited). */
export async function strippedState(store: Store, roomId: string, sender?: string): Promise<JsonObject[]> {
  const events = (await store.rooms.currentStateEvents(roomId, STRIPPED_TYPES)).map((s) => s.event);
  if (sender !== undefined) {
    const own = await store.rooms.currentStateEvent(roomId, 'm.room.member', sender);
    if (own) events.push(own.event);
  }
  return events.map((event) => ({
    type: event.type,
    state_key: event.state_key ?? '',
    sender: event.sender,
    content: event.content,
  }));
}
