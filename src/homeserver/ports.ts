/**
 * What the homeserver needs from the world outside this server, declared here and
 * implemented elsewhere (DESIGN.md "Seams"; STYLE.md §4: the trait lives beside the service
 * that uses it). The homeserver never imports `src/federation/` or a transport: it is
 * handed these by `createHomeserver`. Without federation, each answers "federation is off".
 */

import type { JsonObject } from '../core/canonical-json.ts';
import type { SigningKey } from '../core/crypto.ts';
import type { Pdu } from '../core/pdu.ts';
import { MatrixError } from './errors.ts';
import type { ThumbnailRequest } from './media/thumbnail.ts';

/**
 * Other servers' signing keys (server-server-api.md "Retrieving server keys"). Used by the
 * accept pipeline to check the signatures of every event not built here.
 */
export interface KeyStore {
  /**
   * The ed25519 public keys of `serverName` with the given key IDs (`ed25519:abc`) that were
   * valid at `validAt` (ms since the epoch; `old_verify_keys` count up to their `expired_ts`).
   * Keys that cannot be found are absent from the answer; it never throws for a missing key.
   */
  verifyKeys(
    serverName: string,
    keyIds: readonly string[],
    validAt: number,
  ): Promise<Map<string, Uint8Array>>;
}

// ---------------------------------------------------------------------------------------
// What the homeserver asks of other servers

/** A room version's event template from `make_join`, `make_leave` or `make_knock`. */
export interface EventTemplate {
  roomVersion: string;
  /** The unsigned event to complete (origin_server_ts, hashes, signatures) and send back. */
  event: JsonObject;
}

/** `send_join` v2: the room as the resident server sees it at the join. */
export interface SendJoinResponse {
  origin: string;
  /** The state before the join. */
  state: Pdu[];
  /** The auth chain of the join and of every state event. */
  authChain: Pdu[];
  /** The join as the resident server signed it (restricted joins add its signature). */
  event?: Pdu;
  membersOmitted?: boolean;
  serversInRoom?: string[];
}

/** `state` / `state_ids` at an event: the room state and its auth chain. */
export interface RemoteState {
  pdus: Pdu[];
  authChain: Pdu[];
}

export interface RemoteStateIds {
  pduIds: string[];
  authChainIds: string[];
}

/**
 * The requests the homeserver makes of other servers (server-server-api.md "Joining Rooms",
 * "Leaving Rooms", "Inviting to a room", "Knocking upon a room", "Backfilling and retrieving
 * missing events", "Retrieving events", "Querying for information", "End-to-End Encryption").
 * `destination` is the server asked; every answer is already checked to be the shape the
 * endpoint promises, but PDUs in it are untrusted: they go through the accept pipeline.
 * A refusal by the remote server, or a server that cannot be reached, is a `MatrixError`.
 */
export interface FederationPort {
  /** GET /make_join: a join template for `userId`; `versions` are the room versions we speak. */
  makeJoin(
    destination: string,
    roomId: string,
    userId: string,
    versions: readonly string[],
  ): Promise<EventTemplate>;
  /** PUT /v2/send_join: the signed join; the resident server answers with the room's state. */
  sendJoin(destination: string, roomId: string, eventId: string, event: Pdu): Promise<SendJoinResponse>;
  makeLeave(destination: string, roomId: string, userId: string): Promise<EventTemplate>;
  sendLeave(destination: string, roomId: string, eventId: string, event: Pdu): Promise<void>;
  /** PUT /v2/invite: the invitee's server signs the invite and returns it. */
  invite(
    destination: string,
    roomId: string,
    eventId: string,
    request: { roomVersion: string; event: Pdu; inviteRoomState: JsonObject[] },
  ): Promise<Pdu>;
  makeKnock(
    destination: string,
    roomId: string,
    userId: string,
    versions: readonly string[],
  ): Promise<EventTemplate>;
  /** PUT /send_knock: answers with the stripped state shown to the knocker. */
  sendKnock(destination: string, roomId: string, eventId: string, event: Pdu): Promise<JsonObject[]>;
  /** GET /backfill: up to `limit` events before (and including) `from`. */
  backfill(destination: string, roomId: string, from: readonly string[], limit: number): Promise<Pdu[]>;
  /** POST /get_missing_events: events between what we have (`earliest`) and `latest`. */
  getMissingEvents(
    destination: string,
    roomId: string,
    request: { earliest: readonly string[]; latest: readonly string[]; limit: number; minDepth: number },
  ): Promise<Pdu[]>;
  /** GET /event/{eventId}. */
  getEvent(destination: string, eventId: string): Promise<Pdu>;
  /** GET /state/{roomId}?event_id=: the state before `eventId`. */
  getState(destination: string, roomId: string, eventId: string): Promise<RemoteState>;
  getStateIds(destination: string, roomId: string, eventId: string): Promise<RemoteStateIds>;
  /** GET /event_auth/{roomId}/{eventId}. */
  getEventAuth(destination: string, roomId: string, eventId: string): Promise<Pdu[]>;
  /** GET /query/profile: a remote user's profile (one field, or all). */
  queryProfile(destination: string, userId: string, field?: string): Promise<JsonObject>;
  /**
   * GET /hierarchy/{roomId}: a room another server holds, with its children (space_hierarchy.yaml),
   * as that server describes them; used for the rooms of a space this server is not in.
   */
  queryHierarchy(
    destination: string,
    roomId: string,
    suggestedOnly: boolean,
  ): Promise<{ room: JsonObject; children: JsonObject[]; inaccessibleChildren: string[] }>;
  /** GET /query/directory: a remote room alias. */
  queryDirectory(destination: string, alias: string): Promise<{ roomId: string; servers: string[] }>;
  /** POST /user/keys/query: `{userId: [deviceIds]}` → the body (device_keys, master_keys, …). */
  queryUserKeys(
    destination: string,
    deviceKeys: Readonly<Record<string, readonly string[]>>,
  ): Promise<JsonObject>;
  /** POST /user/keys/claim: `{userId: {deviceId: algorithm}}` → `one_time_keys`. */
  claimUserKeys(
    destination: string,
    oneTimeKeys: Readonly<Record<string, Readonly<Record<string, string>>>>,
  ): Promise<JsonObject>;
  /**
   * New rows were committed to the durable outbox for these servers (events, EDUs): the
   * sender may go now rather than on its next wake-up. Absent when nothing sends.
   */
  outboxWritten?(destinations: readonly string[]): void;
}

/**
 * The error every request to another server meets while federation is off. What a client
 * asked for cannot be found from here, so it is 404 M_NOT_FOUND (what clients already get
 * for a room or alias this server does not know), except handing something to another
 * server (an invite), which is refused: 403 M_FORBIDDEN.
 */
export function federationOffError(what: string, status: 403 | 404 = 404): MatrixError {
  return new MatrixError(
    status,
    status === 403 ? 'M_FORBIDDEN' : 'M_NOT_FOUND',
    `${what} needs federation, which is off on this server`,
  );
}

const off =
  (what: (destination: string) => string, status: 403 | 404 = 404) =>
  async (destination: string): Promise<never> => {
    throw federationOffError(what(destination), status);
  };

/** A homeserver alone: every request to another server answers "federation is off". */
export const federationOff: FederationPort = {
  makeJoin: off((d) => `Joining a room through ${d}`),
  sendJoin: off((d) => `Joining a room through ${d}`),
  makeLeave: off((d) => `Leaving a room through ${d}`),
  sendLeave: off((d) => `Leaving a room through ${d}`),
  invite: off((d) => `Inviting a user of ${d}`, 403),
  makeKnock: off((d) => `Knocking on a room through ${d}`),
  sendKnock: off((d) => `Knocking on a room through ${d}`),
  backfill: off((d) => `Fetching history from ${d}`),
  getMissingEvents: off((d) => `Fetching missing events from ${d}`),
  getEvent: off((d) => `Fetching an event from ${d}`),
  getState: off((d) => `Fetching room state from ${d}`),
  getStateIds: off((d) => `Fetching room state from ${d}`),
  getEventAuth: off((d) => `Fetching auth events from ${d}`),
  queryProfile: off((d) => `The profile of a user of ${d}`),
  queryDirectory: off((d) => `A room alias of ${d}`),
  queryHierarchy: off((d) => `A room of ${d}`),
  queryUserKeys: off((d) => `The device keys of users of ${d}`),
  claimUserKeys: off((d) => `One-time keys of users of ${d}`),
};

/**
 * The key store of a server without federation: it knows this server's own key and no
 * other. Events signed elsewhere then fail their signature check, as they must when their
 * signer's keys cannot be fetched.
 */
export function ownKeyStore(serverName: string, signingKey: SigningKey): KeyStore {
  return {
    async verifyKeys(server, keyIds) {
      const found = new Map<string, Uint8Array>();
      if (server === serverName && keyIds.includes(signingKey.keyId))
        found.set(signingKey.keyId, signingKey.publicKey);
      return found;
    },
  };
}

/**
 * Media that lives on another server (`mxc://other.server/…`), for the download and thumbnail
 * endpoints (client-server-api "Content repository": the local server fetches remote content
 * for its clients). Federation implements it over `/_matrix/federation/v1/media/download`;
 * without it, remote media answers 404 M_NOT_FOUND.
 */
export interface RemoteMediaPort {
  /**
   * The content and its type, or null when the origin does not have it. Waits at most
   * `timeoutMs`. Throws `MatrixError`s for the client (502 M_TOO_LARGE for content past the
   * limit, 504 when the origin does not answer in time).
   */
  fetchMedia(
    serverName: string,
    mediaId: string,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<{ contentType: string; uploadName: string | null; data: Blob | Uint8Array } | null>;
  /**
   * A thumbnail made by the origin (federation `media/thumbnail`), or null when it does not
   * have the media. Throws, as `fetchMedia` does, when it refuses or cannot be reached: the
   * media service then makes one here from the original. Without this hook it always does.
   */
  fetchThumbnail?(
    serverName: string,
    mediaId: string,
    want: ThumbnailRequest,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<{ contentType: string; data: Blob | Uint8Array } | null>;
}

/**
 * What end-to-end encryption needs from other servers (server-server-api.md "End-to-End
 * Encryption", "Send-to-device messaging", "Device Management"). The local side calls these
 * where federation plugs in; without federation (`e2eeRemoteOff`) a remote user's keys are
 * reported as failures and to-device messages for them are dropped with a warning.
 */
export interface E2eeRemote {
  /** `POST /_matrix/federation/v1/user/keys/query` to `destination`; its `device_keys`, cross-signing keys. */
  queryKeys(destination: string, deviceKeys: Record<string, string[]>): Promise<JsonObject>;
  /** `POST /_matrix/federation/v1/user/keys/claim` to `destination`; its `one_time_keys`. */
  claimKeys(destination: string, claims: Record<string, Record<string, string>>): Promise<JsonObject>;
  /** Queues an `m.direct_to_device` EDU for `destination` (the federation outbox owns retries). */
  sendToDevice(
    destination: string,
    edu: {
      sender: string;
      type: string;
      messageId: string;
      messages: Record<string, Record<string, JsonObject>>;
    },
  ): Promise<void>;
  /**
   * A local user's devices or cross-signing keys changed: the servers sharing a room with
   * them are owed an `m.device_list_update` / `m.signing_key_update` EDU. `deleted`: devices
   * just deleted, each announced with `deleted: true`.
   */
  deviceListChanged(userId: string, deleted?: readonly string[]): Promise<void>;
}
