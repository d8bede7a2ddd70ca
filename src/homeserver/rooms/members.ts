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
