/**
 * Server keys — server-server-api.md "Publishing Keys" and "Querying Keys Through Another
 * Server" (data/api/server-server/keys_server.yaml, keys_query.yaml). No authentication: a
 * server must be able to fetch keys before it can check any signature.
 */

import type { JsonObject } from '../../core/canonical-json.ts';
import type { SigningKey } from '../../core/crypto.ts';
import { isValidServerName } from '../../core/identifiers.ts';
import { addSignature, signedBytes } from '../../core/signing.ts';
import { ownKeyResponse, type ServerKeys } from '../../federation/server-keys.ts';
import type { Clock } from '../../homeserver/context.ts';
import { badJson } from '../../homeserver/errors.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { isPlainObject } from '../validate.ts';

/**
 * Most servers one `POST /query` may ask about. The spec sets no bound; each unknown server
 * can cost this server an outgoing fetch, so one request may not fan out without limit.
 */
export const MAX_NOTARY_SERVERS = 100;

const KEY_BASE = '/_matrix/key';

interface Criteria {
  /** The largest `minimum_valid_until_ts` asked for this server, or none. */
  minimumValidUntil: number | undefined;
}

/** `server_keys` of a `POST /query` body: server name → key ID → criteria. */
function readQuery(body: JsonObject): Map<string, Criteria> {
  const serverKeys = body.server_keys;
  if (!isPlainObject(serverKeys)) throw badJson('server_keys must be an object');
  const names = Object.keys(serverKeys);
  if (names.length > MAX_NOTARY_SERVERS) {
    throw badJson(`server_keys may name at most ${MAX_NOTARY_SERVERS} servers`);
  }
  const out = new Map<string, Criteria>();
  for (const name of names) {
    const keyIds = serverKeys[name];
    if (!isPlainObject(keyIds)) throw badJson(`server_keys.${name} must be an object`);
    let minimumValidUntil: number | undefined;
    for (const criteria of Object.values(keyIds)) {
      if (!isPlainObject(criteria)) throw badJson(`the criteria for ${name} must be objects`);
      const ts = criteria.minimum_valid_until_ts;
      if (ts === undefined) continue;
      if (!Number.isSafeInteger(ts)) throw badJson('minimum_valid_until_ts must be an integer');
      minimumValidUntil = Math.max(minimumValidUntil ?? (ts as number), ts as number);
    }
    out.set(name, { minimumValidUntil });
  }
  return out;
}

/** Who this server is, as the key endpoints need it. */
export interface ServerIdentity {
  serverName: string;
  signingKey: SigningKey;
  clock: Clock;
}

export function keyEndpoints(server: ServerIdentity, keys: ServerKeys): Endpoint[] {
  const { serverName, signingKey, clock } = server;

  /** The origin's responses, each countersigned by this server as notary. */
  async function notarise(name: string, minimumValidUntil: number | undefined): Promise<JsonObject[]> {
    // A name that is not a server name cannot be fetched: "an empty array if the server could
    // not be reached and no cached keys were available".
    if (!isValidServerName(name)) return [];
    // "If not supplied, the notary server MUST use the current time."
    const responses = await keys.notaryResponses(name, minimumValidUntil ?? clock.now());
    return Promise.all(
      responses.map(async (response) => ({
        ...response,
        signatures: await addSignature(response.signatures, serverName, signingKey, () =>
          signedBytes(response),
        ),
      })),
    );
  }

  return [
    endpoint({
      // GET /_matrix/key/v2/server
      method: 'GET',
      path: '/server',
      versions: ['v2'],
      base: KEY_BASE,
      auth: 'none',
      spec: 'server-server-api/#get_matrixkeyv2server',
      handler: async () => ownKeyResponse(serverName, signingKey, clock.now()),
    }),
    endpoint({
      // GET /_matrix/key/v2/query/{serverName}
      method: 'GET',
      path: '/query/{serverName}',
      versions: ['v2'],
      base: KEY_BASE,
      auth: 'none',
      // Each name asked about may cost an outgoing fetch: per-address limits, as anonymous client calls.
      rateLimit: 'default',
      query: q.object({ minimum_valid_until_ts: q.optional(q.int({ min: 0 })) }),
      spec: 'server-server-api/#get_matrixkeyv2queryservername',
      handler: async ({ params, query }) => ({
        server_keys: await notarise(params.serverName, query.minimum_valid_until_ts),
      }),
    }),
    endpoint({
      // POST /_matrix/key/v2/query
      method: 'POST',
      path: '/query',
      versions: ['v2'],
      base: KEY_BASE,
      auth: 'none',
      rateLimit: 'default',
      body: v.jsonObject(),
      spec: 'server-server-api/#post_matrixkeyv2query',
      handler: async ({ body }) => {
        const asked = readQuery(body);
        const answers = await Promise.all(
          [...asked].map(([name, criteria]) => notarise(name, criteria.minimumValidUntil)),
        );
        return { server_keys: answers.flat() };
      },
    }),
  ];
}
