/**
 * The query half of the `FederationPort` — server-server-api.md "Querying for information"
 * and "End-to-End Encryption": what this server asks another about its users and aliases
 * (a client's profile lookup or alias resolution for a remote name, a remote user's keys).
 * `createFederationPort` (port.ts) takes these from here.
 *
 * A refusal by the other server keeps its Matrix error (a 404 stays a 404 for the client);
 * a server that gives no usable answer is 502 M_UNKNOWN, never the client's fault.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import { isMatrixError, MatrixError } from '../homeserver/errors.ts';
import type { FederationPort } from '../homeserver/ports.ts';
import { isTransportError } from '../transport/transport.ts';
import { type FederationClient, FederationRequestError } from './client.ts';

export type QueryPort = Pick<
  FederationPort,
  'queryProfile' | 'queryDirectory' | 'queryHierarchy' | 'queryUserKeys' | 'claimUserKeys'
>;

/**
 * Remote answers a client may be told as they are: "not found" and "not allowed" are about what
 * was asked. Anything else (M_UNRECOGNIZED from a server without the endpoint, 401 because it
 * could not check our signature) is about the servers, not the client's request: 502.
 */
const PASSED_ON = new Set(['404 M_NOT_FOUND', '403 M_FORBIDDEN']);

/** What a client is told when `destination` failed to answer `what`. */
function remoteFailure(destination: string, what: string, err: unknown): MatrixError {
  if (isMatrixError(err)) return err;
  if (err instanceof FederationRequestError && PASSED_ON.has(`${err.status} ${err.errcode}`)) {
    return new MatrixError(
      err.status,
      err.errcode as string,
      `${destination} refused ${what}: ${err.message}`,
    );
  }
  const reason = isTransportError(err) || err instanceof Error ? err.message : String(err);
  return new MatrixError(502, 'M_UNKNOWN', `${destination} did not answer ${what}: ${reason}`);
}

const isStringArray = (x: unknown): x is string[] =>
  Array.isArray(x) && x.every((s) => typeof s === 'string');

export function createQueryPort(client: FederationClient): QueryPort {
  async function ask(destination: string, what: string, run: () => Promise<JsonObject>): Promise<JsonObject> {
    try {
      return await run();
    } catch (err) {
      throw remoteFailure(destination, what, err);
    }
  }
  return {
    async queryProfile(destination, userId, field) {
      const params = new URLSearchParams({ user_id: userId });
      if (field !== undefined) params.set('field', field);
      return ask(destination, 'a profile query', () =>
        client.request(destination, {
          method: 'GET',
          target: `/_matrix/federation/v1/query/profile?${params}`,
        }),
      );
    },
    async queryDirectory(destination, alias) {
      const params = new URLSearchParams({ room_alias: alias });
      const answer = await ask(destination, 'a directory query', () =>
        client.request(destination, {
          method: 'GET',
          target: `/_matrix/federation/v1/query/directory?${params}`,
        }),
      );
      if (typeof answer.room_id !== 'string' || !isStringArray(answer.servers)) {
        throw remoteFailure(destination, 'a directory query', new Error('malformed answer'));
      }
      return { roomId: answer.room_id, servers: answer.servers };
    },
    async queryHierarchy(destination, roomId, suggestedOnly) {
      const params = new URLSearchParams({ suggested_only: String(suggestedOnly) });
      const answer = await ask(destination, 'a space hierarchy query', () =>
        client.request(destination, {
          method: 'GET',
          target: `/_matrix/federation/v1/hierarchy/${encodeURIComponent(roomId)}?${params}`,
        }),
      );
      const room = answer.room;
      const isObject = (x: unknown): x is JsonObject =>
        typeof x === 'object' && x !== null && !Array.isArray(x);
      if (!isObject(room) || room.room_id !== roomId || !Array.isArray(answer.children)) {
        throw remoteFailure(destination, 'a space hierarchy query', new Error('malformed answer'));
      }
      const inaccessible = answer.inaccessible_children;
      return {
        room,
        children: answer.children.filter(isObject),
        inaccessibleChildren: isStringArray(inaccessible) ? inaccessible : [],
      };
    },
    async queryUserKeys(destination, deviceKeys) {
      const body = {
        device_keys: Object.fromEntries(Object.entries(deviceKeys).map(([u, d]) => [u, [...d]])),
      };
      return ask(destination, 'a key query', () =>
        client.request(destination, {
          method: 'POST',
          target: '/_matrix/federation/v1/user/keys/query',
          body,
        }),
      );
    },
    async claimUserKeys(destination, oneTimeKeys) {
      const body = { one_time_keys: oneTimeKeys as JsonObject };
      return ask(destination, 'a key claim', () =>
        client.request(destination, {
          method: 'POST',
          target: '/_matrix/federation/v1/user/keys/claim',
          body,
        }),
      );
    },
  };
}
