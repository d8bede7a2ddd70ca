/**
 * End-to-end encryption keys — end_to_end_encryption.md "Key management API" and
 * "Cross-signing" (data/api/client-server/keys.yaml, cross_signing.yaml). The checks on keys
 * and signatures are the service's (src/homeserver/e2ee/keys.ts); these declare the shapes.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';

/** Users per query or claim: a client's whole contact list fits; more is a bug or an attack. */
const MAX_USERS = 10_000;

/** Larger than the default: a client with a few hundred contacts queries them all at once. */
const KEYS_BODY_BYTES = 1024 * 1024;

const crossSigningKey = v.optional(v.jsonObject());

export function keysEndpoints(services: Services): Endpoint[] {
  const { e2ee, accounts } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/keys/upload
      method: 'POST',
      path: '/keys/upload',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        device_keys: v.optional(v.jsonObject()),
        one_time_keys: v.optional(v.jsonObject()),
        fallback_keys: v.optional(v.jsonObject()),
        // MSC2732's name, which older clients still send.
        'org.matrix.msc2732.fallback_keys': v.optional(v.jsonObject()),
      }),
      allowEmptyBody: true,
      maxBodyBytes: KEYS_BODY_BYTES,
      spec: 'client-server-api/#post_matrixclientv3keysupload',
      handler: async ({ auth, body }) =>
        e2ee.uploadKeys(auth, {
          deviceKeys: body.device_keys,
          oneTimeKeys: body.one_time_keys,
          fallbackKeys: body.fallback_keys ?? body['org.matrix.msc2732.fallback_keys'],
        }),
    }),
    endpoint({
      // POST /_matrix/client/v3/keys/query
      method: 'POST',
      path: '/keys/query',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        device_keys: v.record(v.array(v.string()), { maxKeys: MAX_USERS }),
        timeout: v.optional(v.int({ min: 0 })),
        token: v.optional(v.string()),
      }),
      maxBodyBytes: KEYS_BODY_BYTES,
      spec: 'client-server-api/#post_matrixclientv3keysquery',
      handler: async ({ auth, body }) => e2ee.queryKeys(auth.userId, body.device_keys),
    }),
    endpoint({
      // POST /_matrix/client/v3/keys/claim
      method: 'POST',
      path: '/keys/claim',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        one_time_keys: v.record(v.record(v.string()), { maxKeys: MAX_USERS }),
        timeout: v.optional(v.int({ min: 0 })),
      }),
      maxBodyBytes: KEYS_BODY_BYTES,
      spec: 'client-server-api/#post_matrixclientv3keysclaim',
      handler: async ({ body }) => e2ee.claimKeys(body.one_time_keys),
    }),
    endpoint({
      // GET /_matrix/client/v3/keys/changes
      method: 'GET',
      path: '/keys/changes',
      versions: ['r0', 'v3'],
      auth: 'required',
      query: q.object({ from: q.string(), to: q.string() }),
      spec: 'client-server-api/#get_matrixclientv3keyschanges',
      handler: async ({ auth, query }) => e2ee.keyChanges(auth.userId, query.from, query.to),
    }),
    endpoint({
      // POST /_matrix/client/v3/keys/device_signing/upload
      method: 'POST',
      path: '/keys/device_signing/upload',
      versions: ['v3'],
      auth: 'required',
      body: v.object({
        master_key: crossSigningKey,
        self_signing_key: crossSigningKey,
        user_signing_key: crossSigningKey,
        auth: v.optional(v.jsonObject()),
      }),
      allowEmptyBody: true,
      spec: 'client-server-api/#post_matrixclientv3keysdevice_signingupload',
      handler: async ({ auth, body }) => {
        await e2ee.uploadCrossSigningKeys(
          auth,
          {
            master: body.master_key,
            self_signing: body.self_signing_key,
            user_signing: body.user_signing_key,
          },
          () => accounts.confirmOwner({ auth, operation: 'device_signing_upload', uia: body.auth }),
        );
        return {};
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/keys/signatures/upload
      method: 'POST',
      path: '/keys/signatures/upload',
      versions: ['v3'],
      auth: 'required',
      body: v.record(v.record(v.jsonObject()), { maxKeys: MAX_USERS }),
      maxBodyBytes: KEYS_BODY_BYTES,
      spec: 'client-server-api/#post_matrixclientv3keyssignaturesupload',
      handler: async ({ auth, body }) => e2ee.uploadSignatures(auth, body),
    }),
  ];
}
