/**
 * Capabilities — client-server-api/_index.md "Capabilities negotiation"
 * (data/api/client-server/capabilities.yaml): what this server lets the signed-in user do.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { roomVersions } from '../../core/room-versions.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint } from '../endpoint.ts';

/** The capabilities document for the configured default room version. */
export function capabilities(defaultRoomVersion: string): JsonObject {
  const available: JsonObject = {};
  for (const [id, version] of Object.entries(roomVersions)) available[id] = version.stability;
  return {
    'm.room_versions': { default: defaultRoomVersion, available },
    // POST /account/password (account.ts) is implemented with UIA.
    'm.change_password': { enabled: true },
    // PUT /profile/{userId}/{keyName} takes displayname, avatar_url, m.tz and any namespaced
    // key (profile.ts), so no `allowed`/`disallowed` list. The deprecated flags must agree with
    // it for displayname and avatar_url (capabilities.yaml).
    'm.profile_fields': { enabled: true },
    'm.set_displayname': { enabled: true },
    'm.set_avatar_url': { enabled: true },
    // The /account/3pid endpoints refuse changes: there is no email or phone verification.
    'm.3pid_changes': { enabled: false },
    // POST /login/get_token issues m.login.token tokens (api/client/operator.ts).
    'm.get_login_token': { enabled: true },
  };
}

export function capabilitiesEndpoints(services: Services): Endpoint[] {
  const document = capabilities(services.config.defaultRoomVersion);
  return [
    endpoint({
      // GET /_matrix/client/v3/capabilities
      method: 'GET',
      path: '/capabilities',
      // Added in r0.5.0, so both prefixes.
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      spec: 'client-server-api/#get_matrixclientv3capabilities',
      handler: async () => ({ capabilities: document }),
    }),
  ];
}
